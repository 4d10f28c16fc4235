//! Write-back with the daemon running: `mpsync apply` and `mpsync audit` go through the
//! control socket (the daemon holds the store), `GET /v1/audit`, the metric and the dashboard
//! show the result, the socket is owner-only and gone after shutdown; the auto mode applies
//! only what may be applied without a person, then asks for a billing run.

use std::os::unix::fs::PermissionsExt;

use mpsync::control::SOCKET_NAME;
use mpsync::writeback::WriteBackMode;
use serde_json::Value;

use crate::support::common::{TestDir, wait_for};
use crate::support::daemon::DEADLINE;
use crate::support::sync::{Sim, metric, runs, start_daemon};
use crate::support::writeback::{
    PATCH, cli, counted_additions, output, plan_of, save_plan, sim_config, state_dir_of,
};

fn quantity(sim: &Sim, change: &mpsync::writeback::Change) -> Option<f64> {
    let mpsync::model::LineRef::Connectwise { addition, .. } = change.line else { unreachable!() };
    sim.control().connectwise().addition(addition).map(|a| a.quantity)
}

#[test]
fn apply_and_audit_go_through_the_socket_while_the_daemon_holds_the_store() {
    let sim = Sim::start(21, 30);
    let dir = TestDir::new();
    let config = sim_config(&sim, dir.path(), "10s");
    let state = state_dir_of(&config);
    let data = sim.control().connectwise().read().clone();
    let adds = counted_additions(&data);
    let mut plan = plan_of(&data, &[(&adds[0], 2.0), (&adds[1], 3.0), (&adds[2], -1.0)]);
    plan.id = save_plan(&sim, &state, plan.clone());
    let id = plan.id.to_string();

    let mut d = start_daemon(&config);
    let socket = state.join(SOCKET_NAME);
    assert_eq!(std::fs::metadata(&socket).unwrap().permissions().mode() & 0o777, 0o600);

    let (code, out, err) = output(cli(&config, &["apply", &id]));
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("applying plan") && err.contains("row 3 "), "progress: {err}");
    assert!(out.contains("3 applied, 0 skipped, 0 failed, 0 not attempted"), "{out}");
    for c in &plan.changes {
        assert_eq!(quantity(&sim, c), Some(c.to), "row {}", c.row);
    }

    let (code, out, err) = output(cli(&config, &["audit", "--json"]));
    assert_eq!(code, 0, "{err}");
    let doc: Value = serde_json::from_str(&out).unwrap();
    let entries = doc["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 3);
    assert!(entries.iter().all(|e| e["who"] == "alice" && e["result"] == "applied"));

    // Over HTTP: newest first, by plan, limited.
    let r = d.get(&format!("/v1/audit?plan={id}&limit=2"));
    assert_eq!(r.status, 200, "{}", r.body);
    let entries = r.json()["entries"].as_array().unwrap().clone();
    assert_eq!(entries.len(), 2);
    let newest = &entries[0];
    assert_eq!(newest["plan"], plan.id);
    assert_eq!(newest["line"], plan.changes[2].line_key.as_str());
    assert_eq!(newest["from"].as_f64(), Some(plan.changes[2].from));
    assert_eq!(newest["to"].as_f64(), Some(plan.changes[2].to));
    assert_eq!(newest["result"], "applied");
    assert_eq!(d.get("/v1/audit?plan=99").json()["entries"], serde_json::json!([]));
    assert_eq!(d.get("/v1/audit?limit=abc").status, 400);
    let m = d.get("/metrics").body;
    assert_eq!(metric(&m, "mpsync_writeback_changes_total", &[("result", "applied")]), 3.0);
    assert_eq!(metric(&m, "mpsync_writeback_changes_total", &[("result", "failed")]), 0.0);
    let page = d.get("/").body;
    assert!(
        page.contains("id=\"writeback\"") && page.contains(&format!("Plan <b>#{id}</b>")),
        "{page}"
    );
    assert_eq!(page.matches("<tr data-seq=").count(), 3, "the audit entries are listed");

    // Again: nothing is sent; a plan that does not exist is refused with the daemon's words.
    let patches = sim.control().requests().get(PATCH);
    let (code, out, _) = output(cli(&config, &["apply", &id]));
    assert_eq!(code, 0);
    assert!(out.contains("3 already done earlier"), "{out}");
    assert_eq!(sim.control().requests().get(PATCH), patches);
    let (code, _, err) = output(cli(&config, &["apply", "99"]));
    assert_eq!(code, 65, "{err}");
    assert!(err.contains("there is no plan 99"), "{err}");

    d.signal("TERM");
    assert!(d.wait_exit().success(), "{}", d.stderr());
    assert!(!socket.exists(), "the socket is removed at shutdown");
    // Without the daemon the command line reads the store itself.
    let (code, out, _) = output(cli(&config, &["audit", "--limit", "1"]));
    assert_eq!(code, 0);
    assert_eq!(out.lines().count(), 2, "a header and one entry: {out}");
}

#[test]
fn the_auto_mode_applies_only_unheld_auto_changes_then_polls_the_billing_again() {
    let sim = Sim::start(22, 30);
    let dir = TestDir::new();
    let config = sim_config(&sim, dir.path(), "10s");
    let state = state_dir_of(&config);
    let data = sim.control().connectwise().read().clone();
    let adds = counted_additions(&data);
    let mut plan = plan_of(&data, &[(&adds[0], 2.0), (&adds[1], -1.0), (&adds[2], 1.0)]);
    plan.changes[0].mode = WriteBackMode::Auto;
    plan.changes[1].mode = WriteBackMode::Auto;
    plan.changes[1].held = Some("a drop of more than 20%: waits for review".into());
    plan.id = save_plan(&sim, &state, plan.clone());

    // The start-up catch-up polls both sources; each reconciliation lets the auto mode run.
    let d = start_daemon(&config);
    let entry = wait_for(DEADLINE, "the auto mode's audit entry", || {
        let doc = d.get("/v1/audit").json();
        doc["entries"].as_array().and_then(|e| e.first().cloned())
    });
    assert_eq!((entry["who"].as_str(), entry["row"].as_u64()), (Some("daemon"), Some(1)));
    assert_eq!(entry["result"], "applied");
    assert_eq!(quantity(&sim, &plan.changes[0]), Some(plan.changes[0].to));
    assert_eq!(quantity(&sim, &plan.changes[1]), Some(plan.changes[1].from), "held");
    assert_eq!(quantity(&sim, &plan.changes[2]), Some(plan.changes[2].from), "review");

    // A billing run starts after the write, so the next reconciliation sees it.
    let at: chrono::DateTime<chrono::Utc> = entry["at"].as_str().unwrap().parse().unwrap();
    wait_for(DEADLINE, "a billing run after the apply", || {
        runs(&d).into_iter().find(|r| {
            r["kind"] == "billing"
                && r["outcome"] == "ok"
                && r["started_at"]
                    .as_str()
                    .and_then(|s| s.parse::<chrono::DateTime<chrono::Utc>>().ok())
                    .is_some_and(|s| s >= at)
        })
    });
    let m = d.get("/metrics").body;
    assert_eq!(metric(&m, "mpsync_writeback_changes_total", &[("result", "applied")]), 1.0);
    assert_eq!(d.get("/v1/audit").json()["entries"].as_array().unwrap().len(), 1, "once");

    // The operator applies the rest, the held change included.
    let (code, out, err) = output(cli(&config, &["apply", &plan.id.to_string()]));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("2 applied") && out.contains("1 already done earlier"), "{out}");
    for c in &plan.changes {
        assert_eq!(quantity(&sim, c), Some(c.to), "row {}", c.row);
    }
}
