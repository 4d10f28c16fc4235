//! End to end: the real daemon against `mpsync sim`'s planted discrepancies serves what each
//! discrepancy has cost (`/v1/reconciliation` JSON and CSV, `/metrics`), and the period
//! report (`GET /v1/report`, and `mpsync report` through the control socket while the daemon
//! runs, then from the store once it stopped) lists every raised discrepancy as appeared and
//! still open, per account; bad dates are refused naming the parameter or flag.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::support::common::{mpsync, wait_for};
use crate::support::daemon::DEADLINE;
use crate::support::e2e::{SimProcess, pin_for_test};
use crate::support::sync::{metric, runs, start_daemon, wait_reconciled_from_latest_runs};

const DISCREPANCIES: [&str; 4] =
    ["under_billed", "over_billed", "unbilled", "billed_without_usage"];

/// (account, PSA product) of each item of a report section, over every account.
fn items(report: &Value, section: &str) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for a in report["accounts"].as_array().unwrap() {
        for i in a[section].as_array().unwrap() {
            out.insert((
                a["account"].as_str().unwrap().into(),
                i["psa_product"].as_str().unwrap().into(),
            ));
        }
    }
    out
}

fn report_cli(config: &std::path::Path, args: &[&str]) -> std::process::Output {
    mpsync().arg("-c").arg(config).arg("report").args(args).output().unwrap()
}

#[test]
fn discrepancies_carry_their_money_and_the_report_lists_them_per_account() {
    let dir = tempfile::tempdir().unwrap();
    let sim = SimProcess::start(dir.path(), 11, 40);
    pin_for_test(&sim.config, 1);
    let mut d = start_daemon(&sim.config);
    // The start-up catch-up runs both polls once.
    wait_for(DEADLINE, "the first vendor and billing runs", || {
        let all = runs(&d);
        let ok = |k: &str| all.iter().any(|r| r["kind"] == k && r["outcome"] == "ok");
        (ok("vendor") && ok("billing")).then_some(())
    });
    let doc = wait_reconciled_from_latest_runs(&d);
    let rows = doc["rows"].as_array().unwrap();
    let raised: BTreeSet<(String, String)> = rows
        .iter()
        .filter(|r| DISCREPANCIES.contains(&r["status"].as_str().unwrap()))
        .map(|r| (r["account"].as_str().unwrap().into(), r["psa_product"].as_str().unwrap().into()))
        .collect();
    assert!(raised.len() >= 4, "the simulator plants discrepancies: {raised:?}");
    for r in rows.iter().filter(|r| DISCREPANCIES.contains(&r["status"].as_str().unwrap())) {
        assert_eq!(r["excluded_seconds"], 0, "{r}");
        assert!(r["episode"]["started_at"].is_string(), "{r}");
        if r["monthly_impact"].is_number() {
            let (a, m) = (r["accrued"].as_f64().unwrap(), r["monthly_impact"].as_f64().unwrap());
            assert!(a * m >= 0.0, "money accrues in the impact's direction: {r}");
        }
    }
    for r in rows.iter().filter(|r| r["status"] == "match") {
        assert!(r.get("accrued").is_none(), "no money on a matching row: {r}");
    }
    assert!(doc["summary"]["accrued_under_billed"].as_f64().unwrap() >= 0.0);
    let csv = d.get("/v1/reconciliation?format=csv").body;
    assert!(
        csv.lines().next().unwrap().ends_with(",vendor_run,accrued,accrued_since,excluded_seconds")
    );
    let metrics = d.get("/metrics").body;
    let accrued =
        metric(&metrics, "mpsync_discrepancy_accrued_money", &[("direction", "under_billed")]);
    assert!(
        accrued >= 0.0
            && metrics.contains("mpsync_discrepancy_accrued_money{direction=\"under_billed\"}"),
        "{metrics}"
    );

    // The report over everything so far: every raised discrepancy appeared and is open.
    let r = d.get("/v1/report?since=2000-01-01");
    assert_eq!(r.status, 200, "{}", r.body);
    let report = r.json();
    assert_eq!(items(&report, "appeared"), raised);
    assert_eq!(items(&report, "open"), raised);
    assert_eq!(report["totals"]["open"], raised.len());
    assert_eq!(report["totals"]["fixed"], 0);
    let md = d.get("/v1/report?since=2000-01-01&format=md");
    assert!(md.body.starts_with("# mpsync report 2000-01-01T00:00:00Z"), "{}", md.body);
    let bad = d.get("/v1/report?since=2026-13-01");
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains("since: \\\"2026-13-01\\\" is not a date"), "{}", bad.body);
    assert_eq!(d.get("/v1/report").status, 400, "since is required");

    // The command line asks the running daemon through its control socket.
    let out = report_cli(&sim.config, &["--since", "2000-01-01", "--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let via_socket: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(items(&via_socket, "open"), raised);
    let out = report_cli(&sim.config, &["--since", "2026-13-01"]);
    assert_eq!(out.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--since: \"2026-13-01\" is not a date"), "{stderr}");
    let out = report_cli(&sim.config, &["--since", "2026-11-02", "--until", "2026-11-01"]);
    assert_eq!(out.status.code(), Some(64));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--until 2026-11-01 is not after --since")
    );

    d.signal("TERM");
    assert!(d.wait_exit().success());
    // From the store itself once the daemon is gone.
    let out = report_cli(&sim.config, &["--since", "2000-01-01", "--format", "csv"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let open = text.lines().filter(|l| l.starts_with("open,")).count();
    assert_eq!(open, raised.len(), "{text}");
    let out = mpsync().arg("-c").arg(&sim.config).arg("reconcile").output().unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("ACCRUED") && table.contains("accrued so far: under-billed"), "{table}");
}
