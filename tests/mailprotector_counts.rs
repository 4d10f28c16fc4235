//! Usage counts against the simulator equal its ground truth: both walks, count definitions,
//! and every response shape the reference says the client must tolerate.

mod mp_support;

use std::collections::{BTreeMap, HashMap};

use mp_support::{as_map, client, collect, config, start};
use mpsync::config::CountDefinition;
use mpsync::mailprotector::products::is_canonical;
use mpsync::mailprotector::{Walk, WalkStats};
use mpsync::sim::{Fault, FaultKind, Variant};

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
    assert_eq!(out.walk, Walk::UserGroups, "a first run has no sizes to choose by");
    // Names come through (the renamed customers carry their current name).
    let ds = sim.control().read();
    for c in &out.customers {
        assert_eq!(Some(c.name.as_str()), ds.customer_name(c.id));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_user_listing_walk_gives_the_same_counts() {
    let sim = start(11, 150).await;
    let cfg = config(&sim);
    // Sizes saying the user listing is one page: cheaper than a call per domain.
    let hint = WalkStats { walk: Some(Walk::UserGroups), users_listed: 50, ..WalkStats::default() };
    let out =
        collect(&client(&cfg), &cfg, &HashMap::new(), Some(hint)).await.expect("run completes");
    assert_eq!(out.walk, Walk::Users);
    assert_same_counts(&as_map(&out.customers), &sim.control().expected_counts(), "user walk");
    assert_eq!(out.requests.requests_to("GET /domains/{id}/user_groups"), 0);
    assert!(out.walk_stats.users_listed > 0, "the real listing size is kept for next time");
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
