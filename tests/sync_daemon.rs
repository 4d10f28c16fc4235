//! The real `mpsync run` against the in-process simulator: the start-up catch-up poll, what
//! `/v1/customers`, `/v1/runs`, `/v1/history` and `/metrics` then show, `POST /v1/sync` (202,
//! 409 while a run is going), failed runs that keep the last good snapshot, and SIGTERM in
//! the middle of a run.

use mpsync::model::RunOutcome;
use mpsync_sim::{Fault, FaultKind};

use crate::support::common::{TestDir, wait_for};
use crate::support::daemon::DEADLINE;
use crate::support::sync::{
    Sim, customers_of, metric, post, runs, start_daemon, trigger_sync, wait_next_run,
    wait_run_finished, write_config,
};

/// Once a year: only catch-up and `POST /v1/sync` start runs in these tests.
const YEARLY: &str = "0 0 0 1 1 *";

/// A user group of some customer that counts for at least one product: (customer, group,
/// one of the group's products).
fn counted_group(sim: &Sim) -> (u64, u64, String) {
    let data = sim.control().read();
    let main = data.main_customers();
    data.groups()
        .values()
        .filter(|g| g.count_of(&[1]) > 0 && !g.services.products().is_empty())
        .find_map(|g| {
            let c = data.customer_of_group(g.id)?;
            let primary = data.domains().get(&g.domain_id)?.parent.is_none();
            (main.contains(&c) && primary).then(|| (c, g.id, g.services.products()[0].to_owned()))
        })
        .expect("the dataset has a counted group")
}

#[test]
fn start_up_catch_up_counts_every_customer_like_the_simulator() {
    let sim = Sim::start(7, 40);
    let dir = TestDir::new();
    let config = write_config(&dir, "127.0.0.1:9", &sim, YEARLY);
    let d = start_daemon(&config);

    // The store is empty, so the first run starts at once although the next tick is months away.
    let run = wait_run_finished(&d, 1);
    assert_eq!(run["outcome"], "ok", "{run}\n{}", d.stderr());
    assert_eq!(run["kind"], "vendor");

    let customers = d.get("/v1/customers").json();
    assert_eq!(customers["run_id"], 1);
    assert_eq!(customers_of(&customers), sim.truth(), "every customer, counted like the truth");
    assert_eq!(sim.truth().len(), 40);

    // The run's requests are recorded per endpoint and add up to what the simulator saw.
    let requests = run["requests"].as_object().unwrap();
    assert!(requests.len() >= 3, "several endpoints: {requests:?}");
    assert!(requests.keys().all(|k| k.starts_with("mailprotector GET /")), "{requests:?}");
    let sent = sim.control().requests().total;
    assert_eq!(run["requests_total"].as_u64(), Some(sent), "{requests:?}");

    let m = d.get("/metrics").body;
    assert_eq!(metric(&m, "mpsync_sync_runs_total", &[("job", "vendor"), ("outcome", "ok")]), 1.0);
    let last = metric(&m, "mpsync_sync_last_success_timestamp_seconds", &[("job", "vendor")]);
    let finished = chrono::DateTime::parse_from_rfc3339(run["finished_at"].as_str().unwrap())
        .unwrap()
        .timestamp();
    assert_eq!(last as i64, finished, "last success is the run's end:\n{m}");
    let upstream = metric(&m, "mpsync_upstream_requests_total", &[("upstream", "mailprotector")]);
    assert_eq!(upstream as u64, sent, "{m}");
    assert_eq!(metric(&m, "mpsync_sync_duration_seconds_count", &[("job", "vendor")]), 1.0);
    assert!(m.contains("mpsync_ratelimit_wait_seconds"), "{m}");

    let health = d.get("/v1/health").json();
    let mp = &health["checks"]["mailprotector:lastSuccess"][0];
    assert_eq!(mp["status"], "pass", "{health}");

    // How the run counted: in its record, and in health (also after a restart).
    let counting = &run["counting"];
    assert_eq!(counting["walk"], "users", "{run}");
    assert_eq!(counting["count_user_types"], "User (1)");
    assert_eq!(counting["user_count"]["state"], "unchecked");
    assert!(counting["user_types"].as_array().unwrap().iter().any(|t| t["id"] == 11));
    let shown = |h: &serde_json::Value| {
        let c = &h["checks"]["mailprotector:counting"][0];
        assert_eq!(c["status"], "pass", "{h}");
        assert_eq!(c["runId"], 1, "{h}");
        assert_eq!(c["observedValue"]["countUserTypes"], "User (1)", "{h}");
        assert_eq!(c["observedValue"]["userCountReliedOn"], false, "{h}");
    };
    shown(&health);
    drop(d);
    let d = start_daemon(&config);
    shown(&d.get("/v1/health").json());
}

#[test]
fn manual_sync_answers_409_while_running_and_history_records_changes_and_renames() {
    let sim = Sim::start(11, 40);
    let dir = TestDir::new();
    let config = write_config(&dir, "127.0.0.1:9", &sim, YEARLY);
    let d = start_daemon(&config);
    assert_eq!(wait_run_finished(&d, 1)["outcome"], "ok");

    let (customer, group, product) = counted_group(&sim);
    let before = sim.truth()[&customer].1[&product];
    let renamed = *sim.truth().keys().find(|c| **c != customer).unwrap();
    let old_name = sim.truth()[&renamed].0.clone();
    sim.control().add_users(group, 3).unwrap();
    sim.control().rename_customer(renamed, "Renamed Customer LLC").unwrap();
    // Slow answers make the run last long enough for a second trigger to find it running.
    sim.latency(60);

    let first = trigger_sync(&d);
    assert_eq!(first.json()["started"][0], "vendor");
    let second = post(&d.addr, "/v1/sync");
    assert_eq!(second.status, 409, "{}", second.body);
    assert!(second.json()["error"].as_str().unwrap().contains("already running"));

    let run = wait_next_run(&d, 1);
    assert_eq!(run["outcome"], "ok", "{run}");
    let id = run["id"].as_u64().unwrap();
    assert_eq!(runs(&d).len(), 2, "the 409 started nothing");

    let customers = d.get("/v1/customers").json();
    assert_eq!(customers_of(&customers), sim.truth());

    let h = d.get(&format!("/v1/history?customer={customer}&product={product}")).json();
    let points: Vec<(u64, u64)> = h["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["run_id"].as_u64().unwrap(), p["count"].as_u64().unwrap()))
        .collect();
    assert_eq!(points, vec![(1, before), (id, before + 3)], "{h}");

    let h = d.get(&format!("/v1/history?customer={renamed}&product=CloudFilter")).json();
    let renames = h["renames"].as_array().unwrap();
    assert_eq!(renames.len(), 1, "{h}");
    assert_eq!(renames[0]["old_name"], old_name.as_str());
    assert_eq!(renames[0]["new_name"], "Renamed Customer LLC");
    assert_eq!(renames[0]["run_id"], id);

    let bad = d.get("/v1/history?customer=abc&product=CloudFilter");
    assert_eq!(bad.status, 400);
}

#[test]
fn failed_runs_name_the_endpoint_show_in_health_and_keep_the_last_snapshot() {
    let sim = Sim::start(13, 40);
    let dir = TestDir::new();
    let config = write_config(&dir, "127.0.0.1:9", &sim, YEARLY);
    let d = start_daemon(&config);
    assert_eq!(wait_run_finished(&d, 1)["outcome"], "ok");
    let good = d.get("/v1/customers").json();

    // 503 everywhere: retried, then the run fails with the endpoint in its reason.
    let outage = sim.add_fault(Fault::new(FaultKind::Status { status: 503 }));
    let _ = trigger_sync(&d);
    let run = wait_next_run(&d, 1);
    assert_eq!(run["outcome"], "failed", "{run}");
    let reason = run["error"].as_str().unwrap();
    assert!(reason.contains("unavailable") && reason.contains("GET /"), "{reason}");
    assert!(run["requests_total"].as_u64().unwrap() >= 2, "retried: {run}");
    sim.control().remove_fault(outage);

    // A revoked key: 401, not retried.
    sim.control().revoke_key(&sim.control().reseller_key());
    let mutated = {
        let (c, group, _) = counted_group(&sim);
        sim.control().add_users(group, 5).unwrap();
        c
    };
    let _ = trigger_sync(&d);
    let run = wait_next_run(&d, 2);
    assert_eq!(run["outcome"], "failed", "{run}");
    let reason = run["error"].as_str().unwrap().to_owned();
    assert!(reason.contains("401") && reason.contains("GET /"), "{reason}");
    assert!(!reason.contains(&sim.control().reseller_key()), "no secret in the reason");

    // The last good snapshot is still what readers see, although the data changed upstream.
    let now = d.get("/v1/customers").json();
    assert_eq!(now, good);
    assert_ne!(customers_of(&now)[&mutated], sim.truth()[&mutated]);

    let health = d.get("/v1/health");
    let v = health.json();
    let mp = &v["checks"]["mailprotector:lastSuccess"][0];
    assert_eq!(mp["status"], "warn", "{v}");
    assert_eq!(mp["consecutiveFailures"], 2, "{v}");
    let out = mp["output"].as_str().unwrap();
    assert!(out.contains("401"), "{out}");
    assert!(v["checks"]["mailprotector:lastSuccess"].to_string().contains("lastError"), "{v}");

    let m = d.get("/metrics").body;
    let failed = [("job", "vendor"), ("outcome", "failed")];
    assert_eq!(metric(&m, "mpsync_sync_runs_total", &failed), 2.0, "{m}");
    assert_eq!(metric(&m, "mpsync_sync_runs_total", &[("job", "vendor"), ("outcome", "ok")]), 1.0);
    assert!(metric(&m, "mpsync_upstream_retries_total", &[("upstream", "mailprotector")]) > 0.0);
}

#[test]
fn sigterm_during_a_long_run_exits_zero_and_records_it_cancelled() {
    let sim = Sim::start(17, 40);
    sim.latency(150);
    let dir = TestDir::new();
    let config = write_config(&dir, "127.0.0.1:9", &sim, YEARLY);
    let mut d = start_daemon(&config);

    // The catch-up run is under way once the simulator has answered a few requests.
    wait_for(DEADLINE, "the catch-up run to be under way", || {
        (sim.control().requests().total >= 3).then_some(())
    });
    d.signal("TERM");
    let status = d.wait_exit();
    let log = d.stderr();
    assert_eq!(status.code(), Some(0), "{log}");
    drop(d);
    // The log says the run was cancelled and why, not that it "did not succeed".
    let why = "stopped before it completed: mpsync was shutting down (SIGTERM received: \
               systemctl stop, or kill); nothing it collected was stored";
    assert!(log.contains(&format!("run cancelled: {why}")), "{log}");
    assert!(!log.contains("run did not succeed"), "{log}");

    let store = sim.open_store(&dir.state_dir());
    let recorded = sim.block_on(store.recent_runs(10, None)).unwrap();
    assert_eq!(recorded.len(), 1, "{recorded:?}");
    assert_eq!(recorded[0].outcome, RunOutcome::Cancelled, "{recorded:?}");
    assert_eq!(recorded[0].error.as_deref(), Some(why), "the record says why too");
    assert!(sim.block_on(store.latest_usage_snapshot()).unwrap().is_none());
    drop(store);

    // Nothing was left running, so the next start aborts nothing; its catch-up run succeeds.
    sim.control().clear_faults();
    let d = start_daemon(&config);
    let run = wait_run_finished(&d, 2);
    assert_eq!(run["outcome"], "ok");
    assert!(!d.stderr().contains("as aborted"), "{}", d.stderr());
    assert_eq!(runs(&d)[1]["outcome"], "cancelled");
}
