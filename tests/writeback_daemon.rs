//! Write-back end to end with the daemon running, against the simulators' planted
//! discrepancies: with every product opted in for review, `mpsync plan --json` and `mpsync
//! apply` go through the control socket (the daemon holds the store), the billing poll the
//! daemon starts after the apply shows those rows as `match`, and `mpsync audit`,
//! `GET /v1/audit`, the metric and the dashboard show who applied what; the socket is
//! owner-only and gone after shutdown. Under `auto` the daemon applies the changes on its own,
//! except the held drops, which wait for a person.

use std::os::unix::fs::PermissionsExt;

use chrono::{DateTime, Utc};
use mpsync::control::SOCKET_NAME;
use serde_json::Value;

use crate::support::common::{TestDir, wait_for};
use crate::support::daemon::{DEADLINE, Daemon};
use crate::support::sync::{Sim, metric, runs, start_daemon, wait_reconciled_from_latest_runs};
use crate::support::writeback::{PATCH, cli, opt_in, output, sim_config, state_dir_of};

/// The seed and size the planner's own end-to-end test uses: every planned status, held
/// drops and free changes are planted.
const SEED: u64 = 7;
const CUSTOMERS: u32 = 40;

/// A simulator and a daemon against it, every product opted in with `mode`.
struct Running {
    sim: Sim,
    _dir: TestDir,
    config: std::path::PathBuf,
    state: std::path::PathBuf,
    d: Daemon,
}

fn start(mode: &str) -> Running {
    let sim = Sim::start(SEED, CUSTOMERS);
    let dir = TestDir::new();
    let config = sim_config(&sim, dir.path(), "10s");
    opt_in(&dir.path().join("mapping.toml"), mode);
    let state = state_dir_of(&config);
    // The start-up catch-up polls both sources once.
    let d = start_daemon(&config);
    Running { sim, _dir: dir, config, state, d }
}

impl Running {
    /// The quantity the simulated PSA holds on a plan change's line.
    fn holds(&self, change: &Value) -> f64 {
        let addition = change["line"]["addition"].as_u64().unwrap();
        self.sim.control().connectwise().addition(addition).unwrap().quantity
    }

    /// Waits until no run is going and a billing run that started at or after `after` has
    /// finished, then for the reconciliation of the latest runs; returns it.
    fn reconciled_after(&self, after: DateTime<Utc>) -> Value {
        wait_for(DEADLINE, "a billing run after the apply", || {
            let all = runs(&self.d);
            let idle = all.iter().all(|r| r["outcome"] != "running");
            let polled = all.iter().any(|r| {
                r["kind"] == "billing"
                    && r["outcome"] == "ok"
                    && r["started_at"]
                        .as_str()
                        .and_then(|s| s.parse::<DateTime<Utc>>().ok())
                        .is_some_and(|s| s >= after)
            });
            (idle && polled).then_some(())
        });
        wait_reconciled_from_latest_runs(&self.d)
    }
}

/// The status of the row of (account, PSA product) of `change` in `rec`.
fn status_of(rec: &Value, change: &Value) -> String {
    rec["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["account"] == change["account"] && r["psa_product"] == change["psa_product"])
        .map(|r| r["status"].as_str().unwrap().to_owned())
        .unwrap_or_else(|| panic!("no row for {change}"))
}

/// The first plan built from both polls, once the start-up catch-up is done.
fn first_plan(r: &Running) -> Value {
    wait_for(DEADLINE, "the start-up polls", || {
        let all = runs(&r.d);
        let done = |k: &str| all.iter().any(|x| x["kind"] == k && x["outcome"] == "ok");
        (done("vendor") && done("billing")).then_some(())
    });
    wait_for(DEADLINE, "a plan built from both polls", || {
        let plan = r.d.get("/v1/plan").json();
        let changes = plan["changes"].as_array().map_or(0, Vec::len);
        (plan["billing_run"].is_u64() && changes > 0).then_some(plan)
    })
}

#[test]
fn plan_apply_and_audit_through_the_socket_and_the_next_poll_shows_match() {
    let mut r = start("review");
    let socket = r.state.join(SOCKET_NAME);
    assert_eq!(std::fs::metadata(&socket).unwrap().permissions().mode() & 0o777, 0o600);
    let served = first_plan(&r);

    // The plan, through the socket (the daemon holds the store).
    let (code, out, err) = output(cli(&r.config, &["plan", "--json"]));
    assert_eq!(code, 0, "{err}");
    let plan: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(plan["id"], served["id"]);
    let id = plan["id"].as_u64().unwrap().to_string();
    let changes = plan["changes"].as_array().unwrap().clone();
    assert!(changes.iter().any(|c| c.get("held").is_some()), "a held drop is planted");
    for c in &changes {
        assert_eq!(r.holds(c), c["from"].as_f64().unwrap(), "nothing written yet: {c}");
    }

    // Applied through the socket: each line once, held drops included (a person reviewed).
    let started = Utc::now();
    let (code, out, err) = output(cli(&r.config, &["apply", &id]));
    assert_eq!(code, 0, "{err}");
    let n = changes.len();
    assert!(out.contains(&format!("{n} applied, 0 skipped, 0 failed, 0 not attempted")), "{out}");
    assert_eq!(err.matches(": applied").count(), n, "progress per change: {err}");
    for c in &changes {
        assert_eq!(r.holds(c), c["to"].as_f64().unwrap(), "{c}");
    }
    assert_eq!(r.sim.control().connectwise().writes().len(), n, "one PATCH per change");

    // The billing poll the daemon starts after the apply: every corrected row matches.
    let rec = r.reconciled_after(started);
    for c in &changes {
        assert_eq!(status_of(&rec, c), "match", "{c}");
    }

    // Who applied what: the command line, HTTP, metrics, the dashboard.
    let (code, out, err) = output(cli(&r.config, &["audit", "--json"]));
    assert_eq!(code, 0, "{err}");
    let audit: Value = serde_json::from_str(&out).unwrap();
    let entries = audit["entries"].as_array().unwrap();
    assert_eq!(entries.len(), n);
    for e in entries {
        assert_eq!((e["result"].as_str(), e["who"].as_str()), (Some("applied"), Some("alice")));
        assert_eq!(e["plan"].as_u64().map(|p| p.to_string()), Some(id.clone()));
        let c = changes.iter().find(|c| c["line_key"] == e["line"]).expect("a planned line");
        assert_eq!((&e["from"], &e["to"]), (&c["from"], &c["to"]));
    }
    let http = r.d.get(&format!("/v1/audit?plan={id}&limit=2"));
    assert_eq!(http.status, 200, "{}", http.body);
    assert_eq!(http.json()["entries"].as_array().unwrap()[..], entries[..2]);
    assert_eq!(r.d.get("/v1/audit?plan=999").json()["entries"], serde_json::json!([]));
    assert_eq!(r.d.get("/v1/audit?limit=abc").status, 400);
    let m = r.d.get("/metrics").body;
    let count = |result| metric(&m, "mpsync_writeback_changes_total", &[("result", result)]);
    assert_eq!((count("applied"), count("skipped"), count("failed")), (n as f64, 0.0, 0.0));
    let page = r.d.get("/").body;
    assert!(page.contains("id=\"writeback\""), "{page}");
    assert_eq!(page.matches("<tr data-seq=").count(), n.min(10), "the latest audit entries");

    // The poll replaced the plan (its rows match now): applying it again is refused and
    // sends nothing; a plan that does not exist is refused with the daemon's words.
    let patches = r.sim.control().requests().get(PATCH);
    let (code, _, err) = output(cli(&r.config, &["apply", &id]));
    assert_eq!(code, 65, "{err}");
    assert!(err.contains(&format!("plan {id} was replaced by plan")), "{err}");
    let (code, _, err) = output(cli(&r.config, &["apply", "999"]));
    assert_eq!(code, 65, "{err}");
    assert!(err.contains("there is no plan 999"), "{err}");
    assert_eq!(r.sim.control().requests().get(PATCH), patches);

    r.d.signal("TERM");
    assert!(r.d.wait_exit().success(), "{}", r.d.stderr());
    assert!(!socket.exists(), "the socket is removed at shutdown");
    // Without the daemon the command line reads the store itself.
    let (code, out, _) = output(cli(&r.config, &["audit", "--limit", "1"]));
    assert_eq!(code, 0);
    assert_eq!(out.lines().count(), 2, "a header and one entry: {out}");
}

#[test]
fn under_auto_the_daemon_applies_all_but_the_held_drops_which_wait_for_a_person() {
    let r = start("auto");
    // The daemon applies the first plan's free changes right after it is built.
    let first = wait_for(DEADLINE, "the auto mode's audit entries", || {
        let doc = r.d.get("/v1/audit").json();
        let plan = doc["entries"].as_array()?.first()?["plan"].as_u64()?;
        Some(r.d.get(&format!("/v1/plan?id={plan}")).json())
    });
    let (held, free): (Vec<Value>, Vec<Value>) =
        first["changes"].as_array().unwrap().iter().cloned().partition(|c| c.get("held").is_some());
    assert!(!held.is_empty() && !free.is_empty(), "{first}");
    let entries = wait_for(DEADLINE, "every free change applied", || {
        let doc = r.d.get("/v1/audit?limit=1000").json();
        let entries = doc["entries"].as_array().unwrap().clone();
        (entries.len() >= free.len()).then_some(entries)
    });
    assert_eq!(entries.len(), free.len(), "each once: {entries:#?}");
    assert!(entries.iter().all(|e| e["who"] == "daemon" && e["result"] == "applied"));
    for c in &free {
        assert_eq!(r.holds(c), c["to"].as_f64().unwrap(), "{c}");
    }
    for c in &held {
        assert_eq!(r.holds(c), c["from"].as_f64().unwrap(), "held: {c}");
    }

    // The billing poll after it: the free rows match, the held ones still wait.
    let at = entries.iter().map(|e| e["at"].as_str().unwrap().parse().unwrap()).max().unwrap();
    let rec = r.reconciled_after(at);
    for c in &free {
        assert_eq!(status_of(&rec, c), "match", "{c}");
    }
    for c in &held {
        assert_eq!(status_of(&rec, c), c["status"].as_str().unwrap(), "{c}");
    }
    let m = r.d.get("/metrics").body;
    let applied = metric(&m, "mpsync_writeback_changes_total", &[("result", "applied")]);
    assert_eq!(applied, free.len() as f64);

    // A person applies the held drops from the plan now current.
    let plan = wait_for(DEADLINE, "the plan of the held drops", || {
        let p = r.d.get("/v1/plan").json();
        (p["changes"].as_array()?.len() == held.len()).then_some(p)
    });
    let id = plan["id"].as_u64().unwrap().to_string();
    let (code, out, err) = output(cli(&r.config, &["apply", &id]));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(&format!("{} applied", held.len())), "{out}");
    for c in &held {
        assert_eq!(r.holds(c), c["to"].as_f64().unwrap(), "{c}");
    }
    let entries = r.d.get("/v1/audit?limit=1000").json()["entries"].as_array().unwrap().clone();
    assert_eq!(entries.iter().filter(|e| e["who"] == "alice").count(), held.len());
}
