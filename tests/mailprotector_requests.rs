//! Request economy against the simulator: the exact requests of a cold and a warm run, the
//! service-list cache and its refresh, the cheaper walk, and cancellation.

mod mp_support;

use std::collections::HashMap;
use std::time::Duration;

use chrono::Utc;
use mp_support::{as_map, client, collect, config, expected, start};
use mpsync::mailprotector::{CollectError, CollectInput, Walk, collect_usage};
use mpsync::sim::{Fault, FaultKind, Services};
use tokio_util::sync::CancellationToken;

const CUSTOMERS: &str = "GET /resellers/{id}/customers";
const DOMAINS: &str = "GET /resellers/{id}/domains";
const GROUPS: &str = "GET /domains/{id}/user_groups";
const SERVICES: &str = "GET /user_groups/{id}/services";
const USERS: &str = "GET /resellers/{id}/users";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cold_and_warm_runs_make_exactly_the_requests_the_data_needs() {
    let sim = start(21, 200).await;
    let cfg = config(&sim);
    let e = expected(&sim.control().read());
    let c = client(&cfg);

    let cold = collect(&c, &cfg, &HashMap::new(), None).await.expect("cold run");
    let seen = sim.control().requests();
    assert_eq!(seen.get(CUSTOMERS), e.customer_pages);
    assert_eq!(seen.get(DOMAINS), e.domain_pages);
    assert_eq!(seen.get(GROUPS), e.primary_domains, "one user-group call per non-alias domain");
    assert_eq!(seen.get(SERVICES), e.groups_with_users, "one service list per group with users");
    assert_eq!(
        seen.total,
        e.customer_pages + e.domain_pages + e.primary_domains + e.groups_with_users
    );
    assert_eq!(cold.requests.requests, seen.by_endpoint, "the client counts what the server saw");
    assert_eq!(cold.services_fetched, e.groups_with_users);

    sim.control().reset_requests();
    let warm =
        collect(&c, &cfg, &cold.cache, Some(cold.walk_stats.clone())).await.expect("warm run");
    let seen = sim.control().requests();
    assert_eq!(seen.get(SERVICES), 0, "no service-list calls for known groups");
    let listings = e.customer_pages + e.domain_pages;
    assert!(
        seen.total <= listings + e.primary_domains,
        "at most the listings plus one call per domain"
    );
    match warm.walk {
        Walk::UserGroups => assert_eq!(seen.total, listings + e.primary_domains),
        Walk::Users => assert_eq!(seen.total, listings + e.users_listed.div_ceil(100)),
    }
    // The walk chosen is the cheaper one for this data.
    let user_pages = cold.walk_stats.users_counted.div_ceil(100);
    let want = if user_pages < e.primary_domains { Walk::Users } else { Walk::UserGroups };
    assert_eq!(warm.walk, want);
    assert_eq!(as_map(&warm.customers), sim.control().expected_counts());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_groups_and_expired_lists_are_read_again() {
    let sim = start(22, 80).await;
    let mut cfg = config(&sim);
    let c = client(&cfg);
    let cold = collect(&c, &cfg, &HashMap::new(), None).await.expect("cold run");
    // A new group with users on a primary domain, and a changed product mix on another.
    let domain = {
        let ds = sim.control().read();
        *ds.domains()
            .iter()
            .find(|(_, d)| d.parent.is_none() && ds.main_customers().contains(&d.customer_id))
            .unwrap()
            .0
    };
    sim.control()
        .add_group(domain, "New Team", Services::new(Some("CloudFilter"), &["XtraMail"]), 9)
        .unwrap();
    sim.control().reset_requests();
    let warm = collect(&c, &cfg, &cold.cache, None).await.expect("warm run");
    assert_eq!(sim.control().requests().get(SERVICES), 1, "only the unseen group's list is read");
    assert_eq!(as_map(&warm.customers), sim.control().expected_counts());

    // With a refresh period of zero every list is stale and read again.
    cfg.services_refresh = Duration::ZERO;
    sim.control().reset_requests();
    let again = collect(&c, &cfg, &warm.cache, None).await.expect("refresh run");
    assert_eq!(
        sim.control().requests().get(SERVICES),
        expected(&sim.control().read()).groups_with_users
    );
    assert_eq!(again.services_fetched, expected(&sim.control().read()).groups_with_users);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_user_listing_is_taken_when_it_needs_fewer_pages() {
    let sim = start(23, 120).await;
    let cfg = config(&sim);
    let c = client(&cfg);
    let e = expected(&sim.control().read());
    let first = collect(&c, &cfg, &HashMap::new(), None).await.expect("first run");
    let mut hint = first.walk_stats.clone();
    // Pretend the last run saw a listing of 150 users: 2 pages against one call per domain.
    hint.users_listed = 150;
    sim.control().reset_requests();
    let second = collect(&c, &cfg, &first.cache, Some(hint)).await.expect("second run");
    assert_eq!(second.walk, Walk::Users);
    let seen = sim.control().requests();
    assert_eq!(seen.get(GROUPS), 0);
    assert_eq!(seen.get(USERS), e.users_listed.div_ceil(100));
    assert_eq!(second.walk_stats.users_listed, e.users_listed, "the real size is kept");
    assert_eq!(as_map(&second.customers), sim.control().expected_counts());
    // With the real size known, a dataset with more user pages than domains walks groups again.
    let cheaper = second.walk_stats.cheaper(e.primary_domains);
    let want = if e.primary_domains < e.users_listed.div_ceil(100) {
        Walk::UserGroups
    } else {
        Walk::Users
    };
    assert_eq!(cheaper, Some(want));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancellation_stops_the_run_without_counts() {
    let sim = start(24, 60).await;
    let cfg = config(&sim);
    let c = client(&cfg);
    let cancel = CancellationToken::new();
    cancel.cancel();
    let cache = HashMap::new();
    let input =
        CollectInput { config: &cfg, cache: &cache, walk_stats: None, now: Utc::now(), cancel };
    assert_eq!(collect_usage(&c, input).await.unwrap_err(), CollectError::Cancelled);
    assert_eq!(sim.control().requests().total, 0, "a cancelled run sends nothing more");

    // Mid-run: slow answers, cancel once the walk has started.
    sim.control().add_fault(Fault::new(FaultKind::Latency { ms: 100, jitter_ms: 0 }));
    let cancel = CancellationToken::new();
    let run = {
        let (c, cfg, cancel) = (c.clone(), cfg.clone(), cancel.clone());
        tokio::spawn(async move {
            let cache = HashMap::new();
            let input = CollectInput {
                config: &cfg,
                cache: &cache,
                walk_stats: None,
                now: Utc::now(),
                cancel,
            };
            collect_usage(&c, input).await
        })
    };
    let control = sim.control().clone();
    tokio::task::spawn_blocking(move || {
        mp_common::wait_for(Duration::from_secs(10), "the walk to start", || {
            (control.requests().get(GROUPS) > 0).then_some(())
        })
    })
    .await
    .unwrap();
    cancel.cancel();
    let result =
        tokio::time::timeout(Duration::from_secs(10), run).await.expect("stops promptly").unwrap();
    assert_eq!(result.unwrap_err(), CollectError::Cancelled);
}

#[path = "common/mod.rs"]
mod mp_common;
