//! The ConnectWise billing generator: deterministic, every status planted, a mapping file the
//! reconciliation reads, and — end to end through the ConnectWise client and the reconcile
//! engine — exactly the planted rows, no more, no fewer.

use std::collections::BTreeMap;
use std::path::Path;

use chrono::Utc;
use mpsync::billing::BilledSource;
use mpsync::config::Mapping;
use mpsync::model::{BilledSnapshot, CustomerUsage, UsageSnapshot};
use mpsync::reconcile::{Inputs, RowKey, Settings, SourceStatus, compute};
use mpsync_sim::Dataset;
use mpsync_sim::connectwise::{BillingData, PLANTED_STATUSES, Planted};
use tokio_util::sync::CancellationToken;

use crate::support::cw::CwServer;

#[test]
fn the_same_dataset_and_seed_give_the_same_billing() {
    let ds = Dataset::generate(11, 80);
    let a = BillingData::generate(&ds, 11);
    assert_eq!(a, BillingData::generate(&ds, 11));
    let b = BillingData::generate(&ds, 12);
    assert_ne!(a.planted, b.planted, "another seed plants elsewhere");
    assert_ne!(a.credentials, b.credentials);
}

#[test]
fn every_status_is_planted_at_every_size() {
    for (seed, customers) in [(1, 50), (2, 30), (7, 200), (42, 1000)] {
        let ds = Dataset::generate(seed, customers);
        let data = BillingData::generate(&ds, seed);
        for status in PLANTED_STATUSES {
            assert!(
                !data.planted_with(status).is_empty(),
                "seed {seed}, {customers} customers: no {status} row planted"
            );
        }
        // Ids are unique and ascending; every addition belongs to an agreement.
        assert!(data.companies.windows(2).all(|w| w[0].id < w[1].id));
        assert!(data.additions.windows(2).all(|w| w[0].id < w[1].id));
        assert!(
            data.additions.iter().all(|a| data.agreements.iter().any(|g| g.id == a.agreement_id))
        );
    }
}

#[test]
fn the_mapping_leaves_the_planted_customer_and_product_unmapped() {
    let ds = Dataset::generate(1, 50);
    let data = BillingData::generate(&ds, 1);
    let m =
        Mapping::parse(Path::new("mapping.toml"), &data.mapping_toml).expect("the mapping parses");
    let unmapped = data.planted_with("unmapped_customer")[0].customer_ids[0];
    assert_eq!(m.account_of(unmapped), None);
    assert!(!m.products.contains_key("ForceEncrypt"));
    assert_eq!(m.products["CloudFilter"].psa_product, "MP-CF");
    assert_eq!(
        (m.products["CloudFilter"].tolerance, m.products["CloudFilter"].tolerance_percent),
        (1.0, 2.0)
    );
    assert_eq!(m.exclude_customers.len(), 1);
    assert_eq!(m.suppressions.len(), data.planted_with("suppressed").len());
    // The unmapped customer's company exists under a varied name for suggestions to find.
    let name = ds.customer_name(unmapped).unwrap();
    let norm = mpsync::reconcile::normalize_name;
    assert!(
        data.companies.iter().any(|c| norm(&c.name) == norm(name) && c.name != name),
        "a company named like {name:?} (but not exactly)"
    );
}

/// (status, vendor, billed) per row key, as planted.
fn planted_rows(planted: &[Planted]) -> BTreeMap<RowKey, (String, Option<u64>, Option<f64>)> {
    planted
        .iter()
        .map(|p| {
            let (key, vendor) = match (p.expected_status, &p.account_id, &p.psa_product) {
                ("unmapped_customer", _, _) => {
                    (RowKey::UnmappedCustomer { customer: p.customer_ids[0] }, None)
                }
                ("unmapped_product", _, _) => (
                    RowKey::UnmappedProduct { product: p.product.clone().unwrap() },
                    Some(p.vendor_qty),
                ),
                (_, Some(a), Some(psa)) => (
                    RowKey::Service { account: a.clone(), psa_product: psa.clone() },
                    Some(p.vendor_qty),
                ),
                other => panic!("planted row without a key: {other:?}"),
            };
            let billed = (p.billed_qty > 0.0).then_some(p.billed_qty);
            (key, (p.expected_status.to_owned(), vendor, billed))
        })
        .collect()
}

#[tokio::test]
async fn reconciling_the_simulator_gives_exactly_the_planted_rows() {
    for (seed, customers) in [(1, 50), (2, 30), (5, 120)] {
        let server = CwServer::start(seed, customers).await;
        let data = server.data();
        let ds = Dataset::generate(seed, customers);
        let now = Utc::now();
        let usage = UsageSnapshot {
            run_id: 1,
            observed_at: now,
            customers: ds
                .expected_counts()
                .into_iter()
                .map(|(id, counts)| CustomerUsage {
                    id,
                    name: ds.customer_name(id).unwrap().to_owned(),
                    counts,
                })
                .collect(),
        };
        let source = CwServer::source(&server.config());
        let billed =
            source.fetch(now, &CancellationToken::new()).await.outcome.expect("billing read");
        let billed = BilledSnapshot {
            run_id: 2,
            observed_at: now,
            accounts: billed.accounts,
            lines: billed.lines,
        };
        let mapping = Mapping::parse(Path::new("mapping.toml"), &data.mapping_toml).unwrap();
        let result = compute(&Inputs {
            usage: Some(&usage),
            vendor: SourceStatus::default(),
            billed: Some(&billed),
            billing: SourceStatus::default(),
            mapping: &mapping,
            settings: Settings { max_age: std::time::Duration::from_secs(7200), debounce_runs: 1 },
            now,
            previous_at: None,
            previous: None,
        });
        let got: BTreeMap<RowKey, (String, Option<u64>, Option<f64>)> = result
            .rows
            .iter()
            .map(|r| {
                (
                    r.key.clone(),
                    (r.status.as_str().to_owned(), r.vendor_quantity, r.billed_quantity),
                )
            })
            .collect();
        let want = planted_rows(&data.planted);
        for (k, w) in &want {
            assert_eq!(got.get(k), Some(w), "seed {seed}: row {k:?}");
        }
        let extra: Vec<_> = got.keys().filter(|k| !want.contains_key(*k)).collect();
        assert!(extra.is_empty(), "seed {seed}: rows nobody planted: {extra:?}");
    }
}
