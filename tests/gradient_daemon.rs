//! The Gradient push in the real daemon against the in-process simulator: before the first
//! vendor snapshot the push waits (a skip, shown in health, not a failed run); after SIGKILLs
//! that leave vendor runs aborted the push still sends the latest complete snapshot; a 403 on
//! counts fails the push at once and the engine's backoff spaces out the next attempts; and
//! `mpsync check` shows each integration status with what it means for the operator.

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use mpsync_sim::{Fault, FaultKind};
use serde_json::Value;

use crate::support::common::{TestDir, mpsync, wait_for};
use crate::support::daemon::{DEADLINE, Daemon};
use crate::support::sync::{Sim, metric, runs, start_daemon, trigger_sync, write_config};

/// A config whose vendor poll runs only at start-up (catch-up) and on `POST /v1/sync`, and
/// whose push runs every second with `in_flight` counts at a time.
fn config(dir: &TestDir, sim: &Sim, in_flight: u32) -> PathBuf {
    let path = write_config(dir, "127.0.0.1:9", sim, "0 0 0 1 1 *");
    let g = sim.control().gradient();
    let vendor = dir.secret("gradient-vendor-key", &g.vendor_key());
    let partner = dir.secret("gradient-partner-key", &g.partner_key());
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str(&format!(
        "\n[gradient]\nenabled = true\nbase_url = \"{}\"\nvendor_key_file = \"{}\"\n\
         partner_key_file = \"{}\"\nschedule = \"* * * * * *\"\nrate_limit = 500.0\n\
         burst = 500\nmax_in_flight = {in_flight}\n",
        sim.base_url(),
        vendor.display(),
        partner.display()
    ));
    std::fs::write(&path, text).unwrap();
    path
}

fn of_kind<'a>(all: &'a [Value], kind: &str) -> Vec<&'a Value> {
    all.iter().filter(|r| r["kind"] == kind).collect()
}

fn id(r: &Value) -> u64 {
    r["id"].as_u64().unwrap()
}

/// Waits for a push run started at or after `since` that succeeded; returns it.
fn wait_push_ok(d: &Daemon, since: DateTime<Utc>) -> Value {
    wait_for(DEADLINE, &format!("a successful push started after {since}"), || {
        let all = runs(d);
        let started =
            |r: &Value| r["started_at"].as_str().unwrap().parse::<DateTime<Utc>>().unwrap();
        of_kind(&all, "push")
            .into_iter()
            .find(|r| started(r) >= since && r["outcome"] == "ok")
            .cloned()
    })
}

#[test]
fn the_push_waits_for_the_first_snapshot_then_survives_repeated_sigkills() {
    let sim = Sim::start(41, 20);
    let dir = TestDir::new();
    let config = config(&dir, &sim, 4);
    // Mailprotector refuses the key at first: no vendor snapshot can exist.
    let refused = sim.add_fault(Fault::new(FaultKind::Status { status: 401 }));
    let d = start_daemon(&config);
    wait_for(DEADLINE, "the push to be skipped as not ready, twice", || {
        let m = d.get("/metrics").body;
        (metric(&m, "mpsync_sync_runs_total", &[("job", "push"), ("outcome", "skipped_not_ready")])
            >= 2.0)
            .then_some(())
    });
    let health = d.get("/v1/health").json();
    let g = &health["checks"]["gradient:lastSuccess"][0];
    assert_eq!(g["status"], "pass", "waiting is not a failure: {health}");
    assert!(
        g["waiting"].as_str().unwrap().starts_with("waiting for the first vendor snapshot"),
        "{health}"
    );
    assert!(!health["notes"].to_string().contains("gradient"), "{health}");
    let all = runs(&d);
    assert!(of_kind(&all, "push").is_empty(), "no push run recorded while waiting: {all:?}");
    assert_eq!(sim.control().gradient().requests().total, 0);

    // The key works again: the next vendor poll succeeds and the push follows.
    assert!(sim.control().remove_fault(refused));
    let fixed = Utc::now();
    trigger_sync(&d);
    wait_push_ok(&d, fixed);
    let vendor_ok = |all: &[Value]| -> u64 {
        of_kind(all, "vendor").into_iter().find(|r| r["outcome"] == "ok").map(id).unwrap()
    };
    d.wait_log("gradient: pushing the latest complete vendor snapshot");
    drop(d);

    // Kill the daemon in the middle of vendor polls, over and over: each restart finds the
    // newest vendor run aborted, and the push still sends the latest complete snapshot.
    let slow = sim.latency(150);
    for round in 0..3 {
        let d = start_daemon(&config);
        let before = sim.control().requests().total;
        trigger_sync(&d);
        wait_for(DEADLINE, "the vendor poll to be under way", || {
            (sim.control().requests().total >= before + 3).then_some(())
        });
        d.signal("KILL");
        drop(d);

        let restarted = Utc::now();
        let d = start_daemon(&config);
        let pushed = wait_push_ok(&d, restarted);
        let all = runs(&d);
        let newest_vendor = of_kind(&all, "vendor")[0].clone();
        assert_eq!(newest_vendor["outcome"], "aborted", "round {round}: {newest_vendor}");
        let good = vendor_ok(&all);
        assert!(good < id(&newest_vendor), "round {round}");
        let customers = d.get("/v1/customers").json();
        let sp = &customers["synthesize_push"];
        assert!(sp["run_id"].as_u64().unwrap() >= id(&pushed), "round {round}: {sp}");
        assert_eq!(sp["snapshot_run"], good, "round {round}: the pushed snapshot: {sp}");
        assert!(sp["snapshot_observed_at"].is_string(), "{sp}");
        d.wait_log(&format!("later vendor runs did not complete: #{} aborted", id(&newest_vendor)));
        drop(d);
    }
    assert!(sim.control().remove_fault(slow));
    assert_eq!(sim.control().gradient().status(), "active", "Gradient set it active itself");
}

#[test]
fn a_403_on_counts_fails_each_push_at_once_and_the_engine_backs_off() {
    let sim = Sim::start(43, 10);
    let dir = TestDir::new();
    // One count at a time: each push meets exactly one 403 before it stops.
    let config = config(&dir, &sim, 1);
    let g = sim.control().gradient().clone();
    sim.block_on(async {
        g.add_fault(Fault::new(FaultKind::Status { status: 403 }).on("count"));
    });
    let d = start_daemon(&config);
    wait_for(DEADLINE, "a push tick skipped for backoff, three times", || {
        let m = d.get("/metrics").body;
        (metric(&m, "mpsync_sync_runs_total", &[("job", "push"), ("outcome", "skipped_backoff")])
            >= 3.0)
            .then_some(())
    });
    let health = d.get("/v1/health").json();
    let last_error = health["checks"]["gradient:lastSuccess"][0]["lastError"]["reason"]
        .as_str()
        .unwrap_or_else(|| panic!("no last error: {health}"))
        .to_owned();
    for needle in ["anomaly detection", "contact Gradient support", "gradient.rate_limit"] {
        assert!(last_error.contains(needle), "{needle:?} missing from {last_error}");
    }
    d.signal("TERM");
    let mut d = d;
    d.wait_exit();
    let store = sim.open_store(&dir.state_dir());
    let pushes = sim.block_on(store.recent_runs(1000, Some(mpsync::model::RunKind::Push))).unwrap();
    let failed = pushes.iter().filter(|r| r.outcome == mpsync::model::RunOutcome::Failed).count();
    let refusals = g.requests().status(403) as usize;
    // A push stopped by the shutdown after its 403 may be recorded cancelled.
    assert!(
        refusals == failed || refusals == failed + 1,
        "one 403 per failed push, never retried: {refusals} 403s, {failed} failed pushes"
    );
    assert!(pushes.iter().all(|r| r.outcome != mpsync::model::RunOutcome::Ok));
    assert!(failed >= 2, "{pushes:?}");
}

/// `mpsync check --json`'s gradient check against the simulator: (exit code, detail).
fn check(config: &PathBuf) -> (Option<i32>, String) {
    let out = mpsync().arg("-c").arg(config).args(["check", "--json"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!("not JSON ({e}): {stdout} {}", String::from_utf8_lossy(&out.stderr))
    });
    let gradient = report["checks"].as_array().unwrap().iter().find(|c| c["name"] == "gradient");
    let detail = gradient.expect("a gradient check")["detail"].as_str().unwrap().to_owned();
    (out.status.code(), detail)
}

#[test]
fn check_shows_each_integration_status_and_what_it_means() {
    let sim = Sim::start(47, 5);
    let dir = TestDir::new();
    let config = config(&dir, &sim, 4);
    let g = sim.control().gradient();
    for (sent, shown) in [
        ("inactive", "status inactive (not set up yet, mpsync will set pending on the first push)"),
        (
            "pending",
            "status pending (waiting for you to map accounts and services in Synthesize; \
             Gradient turns it active when counts arrive)",
        ),
        ("Active", "status active (set up;"),
        ("disabled", "status disabled (turned off in Synthesize"),
        ("error", "status error (Gradient marked the integration in error"),
        ("Suspended", "status Suspended (a status Gradient does not document (\"Suspended\")"),
    ] {
        g.set_status_verbatim(sent);
        let (code, detail) = check(&config);
        assert_eq!(code, Some(0), "{sent}: {detail}");
        assert!(detail.contains(shown), "{sent}: {detail}");
    }
}
