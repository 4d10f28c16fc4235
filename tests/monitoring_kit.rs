//! The monitoring kit in `contrib/` cannot drift from the daemon: every `mpsync_*` metric the
//! Prometheus rules and the Grafana dashboard use is one a running daemon (billing, Gradient
//! push and write-back configured) exports on `/metrics`. (`promtool check rules` checks the
//! rules' syntax in CI where promtool is installable.)

use std::collections::BTreeSet;
use std::path::Path;

use crate::support::common::wait_for;
use crate::support::daemon::DEADLINE;
use crate::support::e2e::{SimProcess, pin_for_test};
use crate::support::sync::{runs, start_daemon};

/// Every `mpsync_…` name in `text`.
fn names_used(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find("mpsync_") {
        let tail = &rest[i..];
        let end =
            tail.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(tail.len());
        out.insert(tail[..end].to_owned());
        rest = &tail[end..];
    }
    out
}

/// The sample names a family exports: itself, and `_total`, `_info`, `_bucket`, `_sum`,
/// `_count` after it.
fn exported(metrics: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for line in metrics.lines() {
        let name = match line.strip_prefix("# TYPE ") {
            Some(t) => t.split(' ').next().unwrap_or_default(),
            None if !line.starts_with('#') => line.split(['{', ' ']).next().unwrap_or_default(),
            None => continue,
        };
        for suffix in ["", "_total", "_info", "_bucket", "_sum", "_count", "_created"] {
            out.insert(format!("{name}{suffix}"));
        }
    }
    out
}

fn contrib(path: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("contrib").join(path);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn every_metric_the_rules_and_the_dashboard_use_is_exported_by_the_daemon() {
    let rules = contrib("prometheus/mpsync-alerts.yml");
    let dashboard = contrib("grafana/mpsync-dashboard.json");
    let parsed: serde_json::Value =
        serde_json::from_str(&dashboard).expect("the dashboard is JSON");
    assert!(parsed["panels"].as_array().is_some_and(|p| !p.is_empty()));

    let dir = tempfile::tempdir().unwrap();
    let sim = SimProcess::start(dir.path(), 3, 10);
    pin_for_test(&sim.config, 1);
    // Keep the Gradient push on: its metric families exist only while it is configured.
    let mut t: toml::Table = std::fs::read_to_string(&sim.config).unwrap().parse().unwrap();
    t["gradient"].as_table_mut().unwrap().insert("enabled".into(), true.into());
    std::fs::write(&sim.config, toml::to_string(&t).unwrap()).unwrap();
    let d = start_daemon(&sim.config);
    wait_for(DEADLINE, "the first vendor and billing runs", || {
        let all = runs(&d);
        let ok = |k: &str| all.iter().any(|r| r["kind"] == k && r["outcome"] == "ok");
        (ok("vendor") && ok("billing")).then_some(())
    });
    let metrics = wait_for(DEADLINE, "the reconciliation metrics", || {
        let body = d.get("/metrics").body;
        body.contains("mpsync_discrepancy_accrued_money{").then_some(body)
    });
    let exported = exported(&metrics);
    for (what, text) in [
        ("contrib/prometheus/mpsync-alerts.yml", &rules),
        ("contrib/grafana/mpsync-dashboard.json", &dashboard),
    ] {
        let used = names_used(text);
        assert!(used.len() >= 8, "{what} uses mpsync's metrics: {used:?}");
        let unknown: Vec<&String> = used.iter().filter(|n| !exported.contains(*n)).collect();
        assert!(
            unknown.is_empty(),
            "{what} uses metrics the daemon does not export: {unknown:?}\n{metrics}"
        );
    }
}
