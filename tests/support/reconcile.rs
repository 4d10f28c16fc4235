//! A small reconciliation with one row of most statuses, built through the real engine.

use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use mpsync::config::Mapping;
use mpsync::model::{Account, BilledLine, BilledSnapshot, CustomerUsage, UsageSnapshot};
use mpsync::reconcile::{self, Inputs, Reconciliation, Settings, SourceStatus};

pub fn at(hour: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 27, hour, 0, 0).unwrap()
}

pub const MAPPING: &str = r#"
[customers]
1 = "A1"
2 = "A2"
3 = "A3"
[products.CloudFilter]
psa_product = "MP-CF"
"#;

fn customer(id: u64, name: &str, counts: &[(&str, u64)]) -> CustomerUsage {
    CustomerUsage {
        id,
        name: name.into(),
        counts: counts.iter().map(|(p, n)| (p.to_string(), *n)).collect(),
    }
}

fn line(account: &str, qty: f64) -> BilledLine {
    BilledLine {
        account_id: account.into(),
        product_id: "MP-CF".into(),
        quantity: qty,
        unit_price: Some(3.5),
        counted: true,
        note: None,
        source_ref: format!("agreement 7 addition {account}"),
        line: None,
    }
}

/// match (A1), under_billed (A2, 2 users × 3.50), unbilled (A3), unmapped customer 329
/// "Acme, Inc." (suggested account 250 "ACME Inc"), unmapped product XtraMail.
pub fn sample() -> Reconciliation {
    let mapping = Mapping::parse(Path::new("mapping.toml"), MAPPING).unwrap();
    let usage = UsageSnapshot {
        run_id: 7,
        observed_at: at(9),
        customers: vec![
            customer(1, "Match Co", &[("CloudFilter", 10)]),
            customer(2, "Leak, Co", &[("CloudFilter", 12), ("XtraMail", 2)]),
            customer(3, "New Co", &[("CloudFilter", 4)]),
            customer(329, "Acme, Inc.", &[("CloudFilter", 5)]),
        ],
    };
    let billed = BilledSnapshot {
        run_id: 8,
        observed_at: at(9),
        accounts: vec![
            Account { id: "A1".into(), name: "Match Company".into() },
            Account { id: "A2".into(), name: "Leak Company".into() },
            Account { id: "250".into(), name: "ACME Inc".into() },
        ],
        lines: vec![line("A1", 10.0), line("A2", 10.0)],
    };
    reconcile::compute(&Inputs {
        usage: Some(&usage),
        vendor: SourceStatus::default(),
        billed: Some(&billed),
        billing: SourceStatus::default(),
        mapping: &mapping,
        settings: Settings { max_age: Duration::from_secs(7200), debounce_runs: 1 },
        now: at(10),
        previous_at: None,
        previous: None,
    })
}

/// A reconciliation of `n` customers, every one mapped and billed one short (so every row is
/// `under_billed`, with its evidence): megabytes of JSON for a few thousand customers.
pub fn large(n: u64) -> Reconciliation {
    let mut text = String::from("[customers]\n");
    for id in 1..=n {
        text.push_str(&format!("{id} = \"A{id}\"\n"));
    }
    text.push_str("[products.CloudFilter]\npsa_product = \"MP-CF\"\n");
    let mapping = Mapping::parse(Path::new("mapping.toml"), &text).unwrap();
    let usage = UsageSnapshot {
        run_id: 7,
        observed_at: at(9),
        customers: (1..=n)
            .map(|id| customer(id, &format!("Customer {id}"), &[("CloudFilter", 10)]))
            .collect(),
    };
    let billed = BilledSnapshot {
        run_id: 8,
        observed_at: at(9),
        accounts: (1..=n)
            .map(|id| Account { id: format!("A{id}"), name: format!("Customer {id}") })
            .collect(),
        lines: (1..=n).map(|id| line(&format!("A{id}"), 9.0)).collect(),
    };
    reconcile::compute(&Inputs {
        usage: Some(&usage),
        vendor: SourceStatus::default(),
        billed: Some(&billed),
        billing: SourceStatus::default(),
        mapping: &mapping,
        settings: Settings { max_age: Duration::from_secs(7200), debounce_runs: 1 },
        now: at(10),
        previous_at: None,
        previous: None,
    })
}
