//! Usage counts against the simulator equal its ground truth: both walks, count definitions,
//! and every response shape the reference says the client must tolerate.

use std::collections::{BTreeMap, HashMap};

use mpsync::config::{CountDefinition, CountedTypes};
use mpsync::mailprotector::Walk;
use mpsync::mailprotector::products::is_canonical;
use mpsync::model::UserCountState;
use mpsync_sim::{Fault, FaultKind, Services, SimHandle, Variant};

use crate::support::mp::{as_map, client, collect, config, start};

/// Compares two count maps, reporting only the first customer that differs.
fn assert_same_counts(
    got: &BTreeMap<u64, BTreeMap<String, u64>>,
    want: &BTreeMap<u64, BTreeMap<String, u64>>,
    what: &str,
) {
    assert_eq!(got.len(), want.len(), "{what}: customers counted");
    for (id, counts) in want {
        assert_eq!(got.get(id), Some(counts), "{what}: customer {id}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_equal_ground_truth_on_500_customers() {
    let sim = start(7, 500).await;
    let cfg = config(&sim);
    let out = collect(&client(&cfg), &cfg, &HashMap::new(), None).await.expect("run completes");
    let truth = sim.control().expected_counts();
    assert_eq!(truth.len(), out.customers.len(), "every customer is present");
    assert!(truth.len() >= 500);
    assert_same_counts(&as_map(&out.customers), &truth, "500 customers");
    assert_eq!(out.walk, Walk::Users, "a first run counts user by user");
    // Names come through (the renamed customers carry their current name).
    let ds = sim.control().read();
    for c in &out.customers {
        assert_eq!(Some(c.name.as_str()), ds.customer_name(c.id));
    }
}

/// Keeps only each group's first product, so the SDK's single-object services answer can
/// describe every group completely.
fn single_product_groups(sim: &SimHandle) {
    let groups: Vec<(u64, Option<String>)> = sim
        .control()
        .read()
        .groups()
        .values()
        .map(|g| (g.id, g.services.products().first().map(|p| p.to_string())))
        .collect();
    for (id, first) in groups {
        let services = match first.as_deref() {
            Some(p @ ("CloudFilter" | "CloudMail")) => Services::new(Some(p), &[]),
            Some(p) => Services::new(None, &[p]),
            None => Services::default(),
        };
        sim.control().set_services(id, services).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_count_whatever_user_count_counts_and_whichever_walk() {
    let services_shapes = [
        None,
        Some(Variant::ServicesObject),
        Some(Variant::ServicesArray),
        Some(Variant::ServicesSdk),
    ];
    let user_counts = [None, Some(Variant::UserCountUsers), Some(Variant::UserCountAll)];
    for seed in [3, 17, 29] {
        let sim = start(seed, 8).await;
        // One big group makes the per-domain user-group listings the cheaper walk, so runs
        // compare user_count and may rely on it.
        sim.control().add_users(109, 1_500).unwrap();
        let cfg = config(&sim);
        let c = client(&cfg);
        for services in services_shapes {
            if services == Some(Variant::ServicesSdk) {
                single_product_groups(&sim);
            }
            let truth = sim.control().expected_counts();
            for user_count in user_counts {
                let what = |run: &str| format!("seed {seed} {services:?} {user_count:?} {run}");
                sim.control().clear_faults();
                for variant in [services, user_count].into_iter().flatten() {
                    sim.control().add_fault(Fault::new(FaultKind::Variant { variant }));
                }
                let agrees = user_count == Some(Variant::UserCountUsers);

                let cold = collect(&c, &cfg, &HashMap::new(), None).await.expect("cold");
                assert_same_counts(&as_map(&cold.customers), &truth, &what("cold"));
                assert_eq!(cold.walk, Walk::Users, "{}", what("cold"));
                let note = &cold.counting.user_count;
                assert!(note.checked_this_run, "{}", what("cold"));
                let state = if agrees { UserCountState::Agrees } else { UserCountState::Differs };
                assert_eq!(note.state, state, "{}: {}", what("cold"), note.detail);

                let warm = collect(&c, &cfg, &cold.cache, Some(cold.walk_stats.clone()))
                    .await
                    .expect("warm");
                assert_same_counts(&as_map(&warm.customers), &truth, &what("warm"));
                let walk = if agrees { Walk::UserGroups } else { Walk::Users };
                assert_eq!(warm.walk, walk, "{}", what("warm"));

                // Forced: the comparison is due again (both walks in one run) ...
                let mut due = warm.walk_stats.clone();
                due.user_count.as_mut().unwrap().checked_at -= chrono::TimeDelta::hours(25);
                let recheck = collect(&c, &cfg, &warm.cache, Some(due)).await.expect("re-check");
                assert_same_counts(&as_map(&recheck.customers), &truth, &what("re-check"));
                assert!(recheck.counting.user_count.checked_this_run, "{}", what("re-check"));
                // ... and the listing believed cheap: counted user by user, nothing compared.
                let mut cheap = warm.walk_stats.clone();
                (cheap.users_listed, cheap.users_counted) = (1, 1);
                let listing = collect(&c, &cfg, &warm.cache, Some(cheap)).await.expect("listing");
                assert_same_counts(&as_map(&listing.customers), &truth, &what("listing"));
                assert_eq!(listing.walk, Walk::Users, "{}", what("listing"));
                assert!(!listing.counting.user_count.checked_this_run, "{}", what("listing"));
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_of_one_user_one_list_and_one_unlicensed_user_counts_one_on_every_run() {
    // The trust bug: a cold run summed user_count (3), a warm run counted users (1).
    let sim = start(9, 3).await;
    let domain = 102;
    let group = sim
        .control()
        .add_group(domain, "Mixed", Services::new(Some("CloudFilter"), &[]), 1)
        .unwrap();
    sim.control().add_mailing_lists(group, 1).unwrap();
    sim.control().add_unlicensed_users(group, 1).unwrap();
    assert_eq!(sim.control().read().groups()[&group].user_count(), 3, "user_count says 3");
    let cfg = config(&sim);
    let c = client(&cfg);
    let mut cache = HashMap::new();
    let mut stats = None;
    let truth = sim.control().expected_counts();
    for run in 0..4 {
        let out = collect(&c, &cfg, &cache, stats.clone()).await.expect("run");
        assert_same_counts(&as_map(&out.customers), &truth, &format!("run {run}"));
        let types = &out.counting.user_types;
        let users_of =
            |id: u64| types.iter().find(|t| t.id == Some(id)).map(|t| (t.users, t.counted));
        if out.walk == Walk::Users {
            assert!(matches!(users_of(1), Some((_, true))), "{types:?}");
            assert!(matches!(users_of(3), Some((n, false)) if n >= 1), "{types:?}");
            assert!(matches!(users_of(11), Some((n, false)) if n >= 1), "{types:?}");
        }
        cache = out.cache;
        stats = Some(out.walk_stats);
    }
    // Counting mailing lists and unlicensed users too is one setting away.
    let mut wide = cfg.clone();
    wide.count_user_types = CountedTypes::new([1, 3, 11]).unwrap();
    let out = collect(&c, &wide, &HashMap::new(), None).await.expect("wide run");
    assert_same_counts(
        &as_map(&out.customers),
        &sim.control().expected_counts_for(&[1, 3, 11]),
        "wide",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_points_outside_the_customer_listing_is_counted_nowhere_and_reported() {
    let sim = start(31, 40).await;
    let hidden = {
        let ds = sim.control().read();
        *ds.main_customers()
            .iter()
            .find(|c| {
                ds.domains_of_customer(**c).iter().any(|d| {
                    ds.domains()[d].parent.is_none()
                        && ds.groups_of_domain(*d).iter().any(|g| ds.groups()[g].count_of(&[1]) > 0)
                })
            })
            .expect("a customer with users")
    };
    let (domains, users) = {
        let ds = sim.control().read();
        let domains: Vec<u64> = ds.domains_of_customer(hidden);
        let users: u64 = domains
            .iter()
            .filter(|d| ds.domains()[d].parent.is_none())
            .flat_map(|d| ds.groups_of_domain(*d))
            .map(|g| ds.groups()[&g].count_of(&[1]))
            .sum();
        (domains, users)
    };
    sim.control().hide_customer(hidden).unwrap();
    let cfg = config(&sim);
    let out = collect(&client(&cfg), &cfg, &HashMap::new(), None).await.expect("run");
    assert!(out.customers.iter().all(|c| c.id != hidden), "a hidden customer is not listed");
    assert_same_counts(&as_map(&out.customers), &sim.control().expected_counts(), "others");
    let o = &out.counting.orphans;
    assert_eq!(o.domain_count, domains.len() as u64);
    let ids: Vec<u64> = o.domains.iter().map(|d| d.id).collect();
    assert_eq!(ids, domains, "every domain of the hidden customer, by id");
    assert!(o.domains.iter().all(|d| d.owner == hidden));
    assert_eq!(o.users, users, "its users of the counted types");
    assert!(!o.user_ids.is_empty() && !o.group_ids.is_empty());
    assert!(o.summary().contains(&format!("(owner {hidden})")), "{}", o.summary());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn count_definitions_combine_products() {
    let sim = start(3, 120).await;
    let mut cfg = config(&sim);
    cfg.count_each_product = false;
    cfg.counts = vec![
        CountDefinition {
            name: "Email Security Total".into(),
            any_of: vec!["CloudFilter".into(), "Bracket".into()],
        },
        CountDefinition { name: "Archive".into(), any_of: vec!["securestore".into()] },
    ];
    let out = collect(&client(&cfg), &cfg, &HashMap::new(), None).await.expect("run completes");
    let total = sim.control().expected_count_any_of(&["CloudFilter", "Bracket"]);
    let archive = sim.control().expected_count_any_of(&["SecureStore"]);
    assert!(!total.is_empty() && !archive.is_empty(), "the dataset exercises both definitions");
    for c in &out.customers {
        let mut want = BTreeMap::new();
        if let Some(n) = total.get(&c.id) {
            want.insert("Email Security Total".to_owned(), *n);
        }
        if let Some(n) = archive.get(&c.id) {
            want.insert("Archive".to_owned(), *n);
        }
        assert_eq!(c.counts, want, "customer {}", c.id);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_tolerated_shape_gives_the_same_counts() {
    let sim = start(5, 150).await;
    let cfg = config(&sim);
    let truth = sim.control().expected_counts();
    for variant in [
        Variant::ServicesArray,
        Variant::LongNames,
        Variant::LowercaseNames,
        Variant::NoPagination,
        Variant::PaginationAltKeys,
        Variant::PaginationStrings,
    ] {
        sim.control().clear_faults();
        sim.control().add_fault(Fault::new(FaultKind::Variant { variant }));
        let out = collect(&client(&cfg), &cfg, &HashMap::new(), None)
            .await
            .unwrap_or_else(|e| panic!("{variant:?}: {e}"));
        let mut want = truth.clone();
        if variant == Variant::LowercaseNames {
            // Unknown products are kept verbatim: lowercase in, lowercase out.
            for counts in want.values_mut() {
                *counts = counts
                    .iter()
                    .map(|(p, n)| (if is_canonical(p) { p.clone() } else { p.to_lowercase() }, *n))
                    .collect();
            }
        }
        assert_same_counts(&as_map(&out.customers), &want, &format!("{variant:?}"));
    }
    // The SDK's single-object shape names only one service per group: the run must still
    // complete, and never count more than the truth.
    sim.control().clear_faults();
    sim.control().add_fault(Fault::new(FaultKind::Variant { variant: Variant::ServicesSdk }));
    let out =
        collect(&client(&cfg), &cfg, &HashMap::new(), None).await.expect("SDK shape accepted");
    for c in &out.customers {
        for (p, n) in &c.counts {
            assert!(*n <= truth[&c.id].get(p).copied().unwrap_or(0), "customer {} {p}", c.id);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_pagination_headers_listings_still_end_correctly() {
    let sim = start(13, 250).await;
    let cfg = config(&sim);
    sim.control().add_fault(Fault::new(FaultKind::Variant { variant: Variant::NoPagination }));
    let c = client(&cfg);
    let out = collect(&c, &cfg, &HashMap::new(), None).await.expect("run completes");
    assert_same_counts(&as_map(&out.customers), &sim.control().expected_counts(), "no header");
    // 250+ customers: 3 pages of 100 (the last one short ends the listing), no extra request.
    let customers = sim.control().read().main_customers().len() as u64;
    let want =
        if customers.is_multiple_of(100) { customers / 100 + 1 } else { customers.div_ceil(100) };
    assert_eq!(out.requests.requests_to("GET /resellers/{id}/customers"), want);
}
