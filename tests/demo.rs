//! `mpsync demo` — the README's first command — starts, polls the demo reseller, serves what
//! it counted, and on Ctrl-C stops cleanly and removes its temporary directory.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::mpsc;
use std::time::Duration;

use crate::support::common::{self, KillOnDrop};

/// The body of a 200 answer to `GET path`, or `None` (not listening yet, or another status).
fn get(addr: &str, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").ok()?;
    let mut raw = String::new();
    s.read_to_string(&mut raw).ok()?;
    let (head, body) = common::split_response(&raw);
    head.starts_with("HTTP/1.1 200").then_some(body)
}

#[test]
fn demo_polls_serves_and_cleans_up_on_ctrl_c() {
    let child = common::mpsync()
        .args(["demo", "--listen", "127.0.0.1:0", "--customers", "20"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start mpsync demo");
    let mut child = KillOnDrop(child);
    let (tx, rx) = mpsc::channel();
    let stdout = child.0.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut lines = Vec::new();
    let dir: PathBuf =
        common::wait_for(Duration::from_secs(30), "the demo to name its directory", || {
            lines.extend(rx.try_iter());
            lines.iter().find_map(|l| {
                l.trim()
                    .strip_prefix("config and state in ")
                    .map(|rest| PathBuf::from(rest.trim_end_matches(" (removed on exit)")))
            })
        });
    assert!(dir.exists(), "the demo directory {} exists while it runs", dir.display());
    // Once the daemon serves, the URLs to look at, on the port it bound.
    common::wait_for(Duration::from_secs(30), "the demo to print its URLs", || {
        lines.extend(rx.try_iter());
        lines.iter().any(|l| l.trim() == "Ctrl-C stops the demo.").then_some(())
    });
    let addr = lines
        .iter()
        .find_map(|l| l.trim_start().strip_prefix("dashboard:  http://")?.split('/').next())
        .unwrap_or_else(|| panic!("no dashboard URL: {lines:?}"))
        .to_owned();
    assert!(!addr.ends_with(":0"), "the URLs name the bound port: {addr}");
    let base = format!("http://{addr}");
    assert!(
        lines.iter().any(|l| l.contains(&format!("{base}/v1/health"))),
        "prints the health URL: {lines:?}"
    );
    assert!(
        lines.iter().any(|l| l.trim_start().starts_with(&format!("dashboard:  {base}/ "))),
        "prints the dashboard URL: {lines:?}"
    );

    // The start-up catch-up polls the demo reseller; its customers are then served.
    let customers = common::wait_for(Duration::from_secs(60), "a completed demo poll", || {
        let body = get(&addr, "/v1/customers")?;
        let v: serde_json::Value = serde_json::from_str(&body).ok()?;
        let list = v["customers"].as_array()?.clone();
        (!list.is_empty()).then_some(list)
    });
    assert_eq!(customers.len(), 20, "every demo customer is counted");
    assert!(customers.iter().any(|c| c["counts"].as_object().is_some_and(|m| !m.is_empty())));
    // The billing poll and the reconciliation follow: the planted discrepancies show up.
    let by_status =
        common::wait_for(Duration::from_secs(60), "a reconciliation of both polls", || {
            let body = get(&addr, "/v1/reconciliation")?;
            let v: serde_json::Value = serde_json::from_str(&body).ok()?;
            let by = v["summary"]["by_status"].as_object()?.clone();
            (by.get("match")?.as_u64()? > 0).then_some(by)
        });
    for status in mpsync_sim::connectwise::PLANTED_STATUSES {
        assert!(
            by_status[status].as_u64().unwrap_or(0) >= 1,
            "the demo plants {status}: {by_status:?}"
        );
    }
    assert_eq!(by_status["stale"].as_u64(), Some(0), "both inputs are fresh: {by_status:?}");
    // The dashboard shows the same totals.
    let page = get(&addr, "/").expect("the dashboard answers");
    let under = by_status["under_billed"].as_u64().unwrap();
    assert!(page.contains(&format!("id=\"count-under_billed\">{under}</b>")), "{page}");
    let health = get(&addr, "/v1/health").expect("health answers");
    let health: serde_json::Value = serde_json::from_str(&health).unwrap();
    assert_eq!(health["status"], "warn", "discrepancies make health warn: {health}");
    assert_eq!(health["checks"]["mailprotector:lastSuccess"][0]["status"], "pass", "{health}");
    assert_eq!(health["checks"]["billing:lastSuccess"][0]["status"], "pass", "{health}");

    // Every demo product is opted in for review: the planted discrepancies become a plan.
    assert!(
        lines.iter().any(|l| l.contains(&format!("{base}/v1/plan"))),
        "prints the plan URL: {lines:?}"
    );
    let changes = common::wait_for(Duration::from_secs(30), "the demo's plan", || {
        let body = get(&addr, "/v1/plan")?;
        let v: serde_json::Value = serde_json::from_str(&body).ok()?;
        let changes = v["changes"].as_array()?.clone();
        (!changes.is_empty()).then_some(changes)
    });
    assert!(
        changes.iter().all(|c| c["mode"] == "review" && c["line_key"].as_str().is_some()),
        "{changes:?}"
    );

    // Ctrl-C: exit 0, and the temporary directory is gone.
    let pid = child.0.id().to_string();
    assert!(std::process::Command::new("kill").args(["-INT", &pid]).status().unwrap().success());
    let status = common::wait_for(Duration::from_secs(30), "the demo to exit", || {
        child.0.try_wait().ok().flatten()
    });
    assert_eq!(status.code(), Some(0));
    assert!(!dir.exists(), "the demo removed {}", dir.display());
}
