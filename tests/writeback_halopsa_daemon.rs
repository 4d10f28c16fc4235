//! HaloPSA write-back end to end with the daemon running, against the simulated HaloPSA's
//! planted discrepancies: with every product opted in for review, `mpsync plan --json` and
//! `mpsync apply` go through the control socket; each planned line is written once (one
//! `updatelines` each, no other line of any invoice touched), the line Halo computes is never
//! planned, and the billing poll the daemon starts after the apply shows the rows as `match`.

use chrono::Utc;
use serde_json::Value;

use crate::support::common::{TestDir, wait_for};
use crate::support::daemon::{DEADLINE, Daemon};
use crate::support::sync::{Sim, runs, start_daemon, wait_reconciled_from_latest_runs};
use crate::support::writeback::{
    HALO_REPOST, HALO_UPDATELINES, cli, halo_sim_config, opt_in, output, state_dir_of,
};

const SEED: u64 = 7;
const CUSTOMERS: u32 = 40;

/// The quantity the simulated Halo holds on a plan change's line.
fn holds(sim: &Sim, change: &Value) -> f64 {
    let line = change["line"]["line"].as_i64().unwrap();
    let (_, l) = sim.control().halopsa().line(line).expect("the line");
    l["qty_order"].as_f64().unwrap()
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

fn reconciled_after(d: &Daemon, after: chrono::DateTime<Utc>) -> Value {
    wait_for(DEADLINE, "a billing run after the apply", || {
        let all = runs(d);
        let idle = all.iter().all(|r| r["outcome"] != "running");
        let polled = all.iter().any(|r| {
            r["kind"] == "billing"
                && r["outcome"] == "ok"
                && r["started_at"]
                    .as_str()
                    .and_then(|s| s.parse::<chrono::DateTime<Utc>>().ok())
                    .is_some_and(|s| s >= after)
        });
        (idle && polled).then_some(())
    });
    wait_reconciled_from_latest_runs(d)
}

#[test]
fn halopsa_plan_and_apply_through_the_socket_and_the_next_poll_shows_match() {
    let sim = Sim::start(SEED, CUSTOMERS);
    let dir = TestDir::new();
    let config = halo_sim_config(&sim, dir.path(), "10s");
    opt_in(&dir.path().join("mapping.toml"), "review");
    let _state = state_dir_of(&config);
    let mut d = start_daemon(&config);
    wait_for(DEADLINE, "the start-up polls", || {
        let all = runs(&d);
        let done = |k: &str| all.iter().any(|x| x["kind"] == k && x["outcome"] == "ok");
        (done("vendor") && done("billing")).then_some(())
    });
    let served = wait_for(DEADLINE, "a plan built from both polls", || {
        let plan = d.get("/v1/plan").json();
        let changes = plan["changes"].as_array().map_or(0, Vec::len);
        (plan["billing_run"].is_u64() && changes > 0).then_some(plan)
    });

    let (code, out, err) = output(cli(&config, &["plan", "--json"]));
    assert_eq!(code, 0, "{err}");
    let plan: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (plan["id"].clone(), plan["billing"].as_str()),
        (served["id"].clone(), Some("halopsa"))
    );
    let id = plan["id"].as_u64().unwrap().to_string();
    let changes = plan["changes"].as_array().unwrap().clone();
    for c in &changes {
        assert_eq!(c["line"]["psa"], "halopsa", "{c}");
        assert_eq!(holds(&sim, c), c["from"].as_f64().unwrap(), "nothing written yet: {c}");
    }
    // The line Halo computes is never planned; the plan says why.
    let auto = sim.control().halopsa().read().plants_of("auto_calculated_line")[0].clone();
    let key = format!("/{}/", auto.line_id.unwrap());
    assert!(changes.iter().all(|c| !c["line_key"].as_str().unwrap().contains(&key)));
    let not = plan["not_planned"].to_string();
    assert!(not.contains("computes itself"), "{not}");

    let started = Utc::now();
    let (code, out, err) = output(cli(&config, &["apply", &id]));
    assert_eq!(code, 0, "{err}");
    let n = changes.len();
    assert!(out.contains(&format!("{n} applied, 0 skipped, 0 failed, 0 not attempted")), "{out}");
    for c in &changes {
        assert_eq!(holds(&sim, c), c["to"].as_f64().unwrap(), "{c}");
    }
    let writes = sim.control().halopsa().writes();
    assert_eq!(writes.len(), n, "one write per change: {writes:?}");
    assert!(writes.iter().all(|w| w.route == HALO_UPDATELINES && w.changes.len() == 1));
    assert_eq!(sim.control().requests().get(HALO_REPOST), 0);

    let rec = reconciled_after(&d, started);
    for c in &changes {
        assert_eq!(status_of(&rec, c), "match", "{c}");
    }
    d.signal("TERM");
    assert!(d.wait_exit().success(), "{}", d.stderr());
}
