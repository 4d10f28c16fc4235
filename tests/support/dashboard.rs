//! Seeded data for tests/dashboard.rs: a count history, a reconciliation whose names are
//! markup, and a large one.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use mpsync::config::Mapping;
use mpsync::model::{Account, BilledLine, BilledSnapshot, CustomerUsage, RunKind, UsageSnapshot};
use mpsync::reconcile::{self, Inputs, Reconciliation, Settings, SourceStatus};
use mpsync::store::Store;

use crate::support::reconcile::at;

fn compute(usage: &UsageSnapshot, billed: &BilledSnapshot, mapping: &Mapping) -> Reconciliation {
    reconcile::compute(&Inputs {
        usage: Some(usage),
        vendor: SourceStatus::default(),
        billed: Some(billed),
        billing: SourceStatus::default(),
        mapping,
        settings: Settings { max_age: Duration::from_secs(7200), debounce_runs: 1 },
        now: at(10),
        previous_at: None,
        previous: None,
    })
}

/// Three vendor runs in which customer 2's CloudFilter count grows 10 → 11 → 12, so its row
/// has a history to draw.
pub async fn seed_history(store: &Store) {
    for (hour, leak) in [(6, 10), (7, 11), (8, 12)] {
        let id = store.begin_run(RunKind::Vendor, at(hour)).await.unwrap();
        let customers = vec![
            CustomerUsage {
                id: 1,
                name: "Match Co".into(),
                counts: BTreeMap::from([("CloudFilter".to_string(), 10)]),
            },
            CustomerUsage {
                id: 2,
                name: "Leak, Co".into(),
                counts: BTreeMap::from([("CloudFilter".to_string(), leak)]),
            },
        ];
        store.commit_vendor_run(id, at(hour), BTreeMap::new(), customers).await.unwrap();
    }
}

/// A customer and an account whose names are markup, and an account id with a quote.
pub fn hostile() -> Reconciliation {
    let mapping = Mapping::parse(
        Path::new("mapping.toml"),
        "[customers]\n1 = \"X\\\"><b>\"\n[products.CloudFilter]\npsa_product = \"MP-CF\"\n",
    )
    .unwrap();
    let usage = UsageSnapshot {
        run_id: 1,
        observed_at: at(9),
        customers: vec![
            CustomerUsage {
                id: 1,
                name: "Mapped".into(),
                counts: BTreeMap::from([("CloudFilter".to_string(), 3)]),
            },
            CustomerUsage {
                id: 666,
                name: "<script>alert('pwned')</script>".into(),
                counts: BTreeMap::from([("CloudFilter".to_string(), 5)]),
            },
        ],
    };
    let billed = BilledSnapshot {
        run_id: 2,
        observed_at: at(9),
        accounts: vec![
            Account { id: "X\"><b>".into(), name: "\"><img src=x onerror=alert(1)>".into() },
            Account { id: "77".into(), name: "<SCRIPT>alert('pwned')</SCRIPT> Inc".into() },
        ],
        lines: vec![BilledLine {
            account_id: "X\"><b>".into(),
            product_id: "MP-CF".into(),
            quantity: 2.0,
            unit_price: Some(1.0),
            counted: true,
            note: None,
            source_ref: "line <i>1</i>".into(),
            line: None,
        }],
    };
    compute(&usage, &billed, &mapping)
}

/// `n` customers with an account each; the first `mapped` are mapped to it (the rest are
/// unmapped customers); the first `under` are billed one user short (under_billed), the rest
/// exactly (match).
pub fn many(n: u64, under: u64, mapped: u64) -> Reconciliation {
    let mut toml = String::from("[customers]\n");
    for i in 0..mapped {
        toml.push_str(&format!("{i} = \"ACC{i}\"\n"));
    }
    toml.push_str("[products.CloudFilter]\npsa_product = \"MP-CF\"\n");
    let mapping = Mapping::parse(Path::new("mapping.toml"), &toml).unwrap();
    let usage = UsageSnapshot {
        run_id: 1,
        observed_at: at(9),
        customers: (0..n)
            .map(|i| CustomerUsage {
                id: i,
                name: format!("Customer {i}"),
                counts: BTreeMap::from([("CloudFilter".to_string(), 10)]),
            })
            .collect(),
    };
    let billed = BilledSnapshot {
        run_id: 2,
        observed_at: at(9),
        accounts: (0..n)
            .map(|i| Account { id: format!("ACC{i}"), name: format!("Account {i}") })
            .collect(),
        lines: (0..n)
            .map(|i| BilledLine {
                account_id: format!("ACC{i}"),
                product_id: "MP-CF".into(),
                quantity: if i < under { 9.0 } else { 10.0 },
                unit_price: Some(2.0),
                counted: true,
                note: None,
                source_ref: format!("line {i}"),
                line: None,
            })
            .collect(),
    };
    compute(&usage, &billed, &mapping)
}
