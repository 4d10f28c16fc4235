//! Catch-up after downtime: a daemon whose last vendor success is older than one period of
//! its schedule polls at start-up instead of waiting for the next tick (here months away);
//! one whose last success is recent waits.

use std::collections::BTreeMap;

use chrono::{Duration, Utc};
use mpsync::model::{CustomerUsage, RunKind};

use crate::support::common::{TestDir, wait_for};
use crate::support::daemon::DEADLINE;
use crate::support::sync::{
    Sim, customers_of, runs, start_daemon, wait_run_finished, write_config,
};

/// Once a year, on January 1st: a tick never comes during the test.
const YEARLY: &str = "0 0 0 1 1 *";

#[test]
fn a_stale_last_success_is_caught_up_at_start_and_a_fresh_one_waits_for_its_tick() {
    let sim = Sim::start(41, 25);
    let dir = TestDir::new();
    let config = write_config(&dir, "127.0.0.1:9", &sim, YEARLY);

    // A store whose only vendor success finished two years ago (longer than one period).
    let store = sim.open_store(&dir.state_dir());
    let old = Utc::now() - Duration::days(730);
    let customers: Vec<CustomerUsage> = sim
        .truth()
        .into_iter()
        .map(|(id, (name, counts))| CustomerUsage { id, name, counts })
        .collect();
    let id = sim.block_on(store.begin_run(RunKind::Vendor, old)).unwrap();
    sim.block_on(store.commit_vendor_run(
        id,
        old + Duration::minutes(1),
        BTreeMap::new(),
        customers,
    ))
    .unwrap();
    drop(store);

    let mut d = start_daemon(&config);
    let run = wait_run_finished(&d, id + 1);
    assert_eq!(run["outcome"], "ok", "{run}");
    assert!(d.stderr().contains("catching up"), "{}", d.stderr());
    assert_eq!(customers_of(&d.get("/v1/customers").json()), sim.truth());
    d.signal("TERM");
    assert_eq!(d.wait_exit().code(), Some(0), "{}", d.stderr());
    drop(d);

    // Now the last success is seconds old: the restart decides against catching up (the
    // decision is made before the first turn of the loop, which latches readiness).
    let d = start_daemon(&config);
    wait_for(DEADLINE, "/readyz 200", || (d.get("/readyz").status == 200).then_some(()));
    assert!(!d.stderr().contains("catching up"), "{}", d.stderr());
    assert_eq!(runs(&d).len(), 2, "no new run");
}
