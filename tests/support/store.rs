//! Helpers shared by the store tests: customer data sets and fixed times.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, TimeZone, Utc};
use mpsync::model::{CustomerUsage, RunKind, RunRecord};
use mpsync::store::Store;

/// A fixed start time so tests never depend on the clock.
pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
}

/// `t0` plus `minutes`.
pub fn at(minutes: i64) -> DateTime<Utc> {
    t0() + Duration::minutes(minutes)
}

/// One customer with the given (product, count) pairs.
pub fn customer(id: u64, name: &str, counts: &[(&str, u64)]) -> CustomerUsage {
    CustomerUsage {
        id,
        name: name.to_string(),
        counts: counts.iter().map(|(p, n)| (p.to_string(), *n)).collect(),
    }
}

/// `n` customers with three products each, deterministic.
pub fn dataset(n: u64) -> Vec<CustomerUsage> {
    (1..=n)
        .map(|id| {
            customer(
                id,
                &format!("Customer {id:05} Holdings Ltd"),
                &[("CloudFilter", 10 + id % 50), ("SafeSend", id % 7), ("Bracket", 3 + id % 11)],
            )
        })
        .collect()
}

/// Some per-endpoint request counts.
pub fn requests() -> BTreeMap<String, u64> {
    BTreeMap::from([("mailprotector GET /customers".to_string(), 3)])
}

/// Begins a vendor run at `minutes` and commits `customers` one minute later.
pub async fn vendor_run(store: &Store, minutes: i64, customers: Vec<CustomerUsage>) -> RunRecord {
    let id = store.begin_run(RunKind::Vendor, at(minutes)).await.expect("begin run");
    store
        .commit_vendor_run(id, at(minutes + 1), requests(), customers)
        .await
        .expect("commit vendor run")
}

/// A fresh temp dir; the state dir is a not-yet-existing subdirectory.
pub fn state_dir() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let state = dir.path().join("state");
    (dir, state)
}
