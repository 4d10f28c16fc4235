//! End to end on Autotask: `mpsync sim --psa autotask --keys-dir` plants every kind of
//! discrepancy in a simulated Autotask (the same truth as the ConnectWise one), the real
//! daemon looks the zone up and polls it, and `/v1/reconciliation` serves exactly the rows
//! the ground truth predicts; through an Autotask outage every row that needs billing is
//! `stale` (never a discrepancy) and nothing is lost; after it, the rows come back.
//!
//! Prices are left out of the comparison: the simulated Autotask gives every third line a
//! contract price of its own (`adjustedPrice`), which the client tests check.

use mpsync::reconcile::Status;
use mpsync_sim::Dataset;
use mpsync_sim::autotask::AtData;
use mpsync_sim::connectwise::{BillingData, PLANTED_STATUSES};
use serde_json::Value;

use crate::support::common::wait_for;
use crate::support::daemon::{DEADLINE, Daemon};
use crate::support::e2e::{
    Rows, SimProcess, assert_rows, billing_stale, pin_for_test, planted_rows, served,
};
use crate::support::sync::{runs, start_daemon, trigger_sync, wait_reconciled_from_latest_runs};

const SEED: u64 = 11;
const CUSTOMERS: u32 = 60;

fn settle(d: &Daemon, n: usize) -> Value {
    wait_for(DEADLINE, &format!("{n} vendor and billing runs to finish"), || {
        let all = runs(d);
        let count = |k: &str| all.iter().filter(|r| r["kind"] == k).count();
        let idle = all.iter().all(|r| r["outcome"] != "running");
        (idle && count("vendor") == n && count("billing") == n).then_some(())
    });
    wait_reconciled_from_latest_runs(d)
}

/// `rows` without prices (see the module doc).
fn unpriced(rows: &Rows) -> Rows {
    let mut out = rows.clone();
    for e in out.values_mut() {
        e.unit_price = None;
        e.impact_cents = None;
    }
    out
}

#[test]
fn planted_statuses_come_out_of_autotask_and_an_outage_makes_them_stale_not_lost() {
    let dir = tempfile::tempdir().unwrap();
    let sim = SimProcess::start_psa(dir.path(), SEED, CUSTOMERS, "autotask");
    pin_for_test(&sim.config, 1);
    // The written config names no zone: the daemon looks it up from the user name.
    let config: toml::Table = std::fs::read_to_string(&sim.config).unwrap().parse().unwrap();
    assert_eq!(config["billing"]["source"].as_str(), Some("autotask"));
    assert!(config["billing"]["autotask"].get("base_url").is_none(), "{config}");
    let ds = Dataset::generate(SEED, CUSTOMERS);
    let at = AtData::generate(&BillingData::generate(&ds, SEED));
    for status in PLANTED_STATUSES {
        assert!(!at.planted_with(status).is_empty(), "no {status} row planted");
    }
    let settled = unpriced(&planted_rows(&at.planted));
    let d = start_daemon(&sim.config);

    let doc = settle(&d, 1);
    assert_rows(&unpriced(&served(&doc)), &settled, "after the first runs");
    let by_status = &doc["summary"]["by_status"];
    for status in PLANTED_STATUSES {
        assert!(by_status[status].as_u64() > Some(0), "{status}: {by_status}");
    }

    // An Autotask outage: the billing run fails naming Autotask; rows needing billing are
    // stale, the unmapped rows stand.
    sim.autotask_outage(503);
    trigger_sync(&d);
    let doc = settle(&d, 2);
    let last = runs(&d);
    let failed = last.iter().find(|r| r["kind"] == "billing").unwrap();
    assert_eq!(failed["outcome"], "failed", "{failed}");
    let reason = failed["error"].as_str().unwrap_or_default();
    assert!(reason.contains("autotask") && reason.contains("503"), "{reason}");
    let stale = unpriced(&billing_stale(&settled));
    assert_rows(&unpriced(&served(&doc)), &stale, "during the Autotask outage");
    assert!(
        served(&doc)
            .values()
            .all(|e| !(e.status == Status::UnderBilled || e.status == Status::OverBilled))
    );

    // Recovery: the next billing run restores every row.
    sim.clear_faults();
    trigger_sync(&d);
    let doc = settle(&d, 3);
    assert_rows(&unpriced(&served(&doc)), &settled, "after the outage");
}
