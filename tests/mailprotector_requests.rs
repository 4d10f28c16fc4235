//! Request economy against the simulator: the exact requests of a cold and a warm run, the
//! service-list cache and its refresh, the cheaper walk, and cancellation.

use std::collections::HashMap;
use std::time::Duration;

use chrono::Utc;
use mpsync::mailprotector::{CollectError, CollectInput, Walk, collect_usage};
use mpsync::model::UserCountState;
use mpsync_sim::{Fault, FaultKind, Services, Variant};
use tokio_util::sync::CancellationToken;

use crate::support::common;
use crate::support::mp::{as_map, client, collect, config, expected, start};

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
    assert!(e.user_pages() < e.primary_domains, "many small domains: the listing is cheaper");
    let c = client(&cfg);

    // Cold: the user listing counts every user; no user_count comparison is worth its cost.
    let cold = collect(&c, &cfg, &HashMap::new(), None).await.expect("cold run");
    let seen = sim.control().requests();
    assert_eq!(cold.walk, Walk::Users);
    assert_eq!(seen.get(CUSTOMERS), e.customer_pages);
    assert_eq!(seen.get(DOMAINS), e.domain_pages);
    assert_eq!(seen.get(USERS), e.user_pages(), "one listing of every user");
    assert_eq!(seen.get(GROUPS), 0, "user_count is not needed");
    assert_eq!(seen.get(SERVICES), e.groups_with_users, "one service list per group with users");
    assert_eq!(
        seen.total,
        e.customer_pages + e.domain_pages + e.user_pages() + e.groups_with_users
    );
    assert_eq!(cold.requests.requests, seen.by_endpoint, "the client counts what the server saw");
    assert_eq!(cold.services_fetched, e.groups_with_users);
    assert_eq!(cold.walk_stats.users_listed, e.users_listed, "the listing size is kept");
    assert!(!cold.counting.user_count.relied_on && !cold.counting.user_count.checked_this_run);
    assert_eq!(as_map(&cold.customers), sim.control().expected_counts());

    // Warm: the same walk, no service lists.
    sim.control().reset_requests();
    let warm =
        collect(&c, &cfg, &cold.cache, Some(cold.walk_stats.clone())).await.expect("warm run");
    let seen = sim.control().requests();
    assert_eq!(warm.walk, Walk::Users);
    assert_eq!(seen.get(SERVICES), 0, "no service-list calls for known groups");
    assert_eq!(seen.total, e.customer_pages + e.domain_pages + e.user_pages());
    assert_eq!(as_map(&warm.customers), sim.control().expected_counts());
}

/// A few big domains: the per-domain user-group listings are cheaper than the user listing.
async fn few_big_domains(seed: u64) -> mpsync_sim::SimHandle {
    let sim = start(seed, 6).await;
    sim.control().add_users(109, 3_000).expect("group 109 exists");
    let e = expected(&sim.control().read());
    assert!(e.primary_domains < e.user_pages(), "{e:?}");
    sim
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_count_stands_in_only_after_a_run_verified_it() {
    let sim = few_big_domains(25).await;
    // user_count counts what mpsync counts here (users of type User).
    sim.control().add_fault(Fault::new(FaultKind::Variant { variant: Variant::UserCountUsers }));
    let cfg = config(&sim);
    let c = client(&cfg);
    let e = expected(&sim.control().read());
    let truth = sim.control().expected_counts();

    // Cold: counted user by user, and user_count compared on every group.
    let cold = collect(&c, &cfg, &HashMap::new(), None).await.expect("cold run");
    let seen = sim.control().requests();
    assert_eq!(cold.walk, Walk::Users);
    assert_eq!(seen.get(USERS), e.user_pages());
    assert_eq!(seen.get(GROUPS), e.primary_domains, "the comparison lists every domain's groups");
    let note = &cold.counting.user_count;
    assert!(note.checked_this_run && !note.relied_on);
    assert_eq!(note.state, UserCountState::Agrees, "{}", note.detail);
    assert_eq!(note.groups_differing, 0);
    assert_eq!(as_map(&cold.customers), truth);

    // Warm: user_count stands in; the user listing is not read.
    sim.control().reset_requests();
    let warm =
        collect(&c, &cfg, &cold.cache, Some(cold.walk_stats.clone())).await.expect("warm run");
    let seen = sim.control().requests();
    assert_eq!(warm.walk, Walk::UserGroups);
    assert_eq!(seen.get(USERS), 0);
    assert_eq!(seen.total, e.customer_pages + e.domain_pages + e.primary_domains);
    assert!(warm.counting.user_count.relied_on && !warm.counting.user_count.checked_this_run);
    assert!(warm.counting.user_types.is_empty(), "no per-user tally when user_count stands in");
    assert_eq!(as_map(&warm.customers), truth);

    // A day later the comparison is due again: one more run of both walks.
    let mut day_later = warm.walk_stats.clone();
    day_later.user_count.as_mut().unwrap().checked_at -= chrono::TimeDelta::hours(25);
    sim.control().reset_requests();
    let again = collect(&c, &cfg, &warm.cache, Some(day_later)).await.expect("re-check run");
    assert_eq!(again.walk, Walk::Users);
    assert!(again.counting.user_count.checked_this_run);
    assert_eq!(sim.control().requests().get(GROUPS), e.primary_domains);
    assert_eq!(as_map(&again.customers), truth);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_count_that_counts_mailing_lists_is_never_relied_on() {
    // The simulator's default user_count counts users, mailing lists and unlicensed users.
    let sim = few_big_domains(26).await;
    let cfg = config(&sim);
    let c = client(&cfg);
    let truth = sim.control().expected_counts();
    let cold = collect(&c, &cfg, &HashMap::new(), None).await.expect("cold run");
    let note = &cold.counting.user_count;
    assert_eq!(note.state, UserCountState::Differs, "{}", note.detail);
    assert!(note.groups_differing > 0 && note.checked_this_run);
    assert!(note.detail.contains("user_count is not relied on"), "{}", note.detail);
    assert_eq!(as_map(&cold.customers), truth);
    // Next run: counted user by user again, and not compared again before a day has passed.
    sim.control().reset_requests();
    let warm = collect(&c, &cfg, &cold.cache, Some(cold.walk_stats.clone())).await.expect("warm");
    assert_eq!(warm.walk, Walk::Users);
    assert_eq!(sim.control().requests().get(GROUPS), 0);
    assert_eq!(warm.counting.user_count.state, UserCountState::Differs);
    assert_eq!(as_map(&warm.customers), truth);
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
        common::wait_for(Duration::from_secs(10), "the walk to start", || {
            (control.requests().get(USERS) > 0).then_some(())
        })
    })
    .await
    .unwrap();
    cancel.cancel();
    let result =
        tokio::time::timeout(Duration::from_secs(10), run).await.expect("stops promptly").unwrap();
    assert_eq!(result.unwrap_err(), CollectError::Cancelled);
}
