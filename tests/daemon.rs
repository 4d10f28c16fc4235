//! The real `mpsync run`: probes, health, the notify protocol, signals and exit codes.

use crate::support::common::{self, TestDir, mpsync};
use crate::support::daemon::{self, Daemon, NotifySocket};

/// Starts `mpsync --config <valid config> run` on 127.0.0.1:0 (a port the system picks; the
/// ready line names it).
fn start(dir: &TestDir, extra: &[&str]) -> Daemon {
    let config = dir.valid_config("127.0.0.1:0", "http://127.0.0.1:9");
    let mut cmd = mpsync();
    cmd.arg("--config").arg(&config).args(extra).arg("run");
    Daemon::spawn(cmd)
}

#[test]
fn run_serves_probes_health_and_metrics_then_stops_on_sigterm() {
    let dir = TestDir::new();
    let mut d = start(&dir, &[]);
    d.wait_ready();

    let live = d.get("/livez");
    assert_eq!(live.status, 200, "{live:?}");
    assert_eq!(live.header("cache-control").as_deref(), Some("no-store"));
    common::wait_for(daemon::DEADLINE, "/readyz 200", || {
        (d.get("/readyz").status == 200).then_some(())
    });

    let health = d.get("/v1/health");
    assert_eq!(health.status, 200, "{}", health.body);
    assert_eq!(health.header("content-type").as_deref(), Some("application/health+json"));
    assert_eq!(health.header("cache-control").as_deref(), Some("no-store"));
    let v = health.json();
    assert_eq!(v["status"], "warn", "no run yet is a warning: {v}");
    assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(v["checks"]["store:open"][0]["status"], "pass");
    let mp = &v["checks"]["mailprotector:lastSuccess"][0];
    assert_eq!((mp["status"].as_str(), mp["output"].as_str()), (Some("warn"), Some("no run yet")));

    let metrics = d.get("/metrics");
    assert_eq!(
        metrics.header("content-type").as_deref(),
        Some("application/openmetrics-text; version=1.0.0; charset=utf-8")
    );
    assert!(metrics.body.contains("mpsync_build_info{"), "{}", metrics.body);
    assert_eq!(d.get("/no/such/path").status, 404);

    d.signal("TERM");
    let status = d.wait_exit();
    assert_eq!(status.code(), Some(0), "stderr:\n{}", d.stderr());
    let log = d.stderr();
    assert!(log.contains("SIGTERM received"), "{log}");
    assert!(log.contains("mpsync stopped"), "{log}");
}

#[test]
fn sigint_also_drains_and_exits_zero() {
    let dir = TestDir::new();
    let mut d = start(&dir, &[]);
    d.wait_ready();
    d.signal("INT");
    assert_eq!(d.wait_exit().code(), Some(0), "stderr:\n{}", d.stderr());
    assert!(d.stderr().contains("SIGINT received"));
}

#[test]
fn notify_socket_gets_ready_watchdog_and_stopping() {
    let dir = TestDir::new();
    let mut notify = NotifySocket::bind(dir.path());
    let config = dir.valid_config("127.0.0.1:0", "http://127.0.0.1:9");
    let mut cmd = mpsync();
    cmd.arg("--config").arg(&config).arg("run");
    cmd.env("NOTIFY_SOCKET", &notify.path).env("WATCHDOG_USEC", "200000");
    let mut d = Daemon::spawn(cmd);

    notify.wait_for("READY=1", 1);
    // READY only after the listener is up: the port its STATUS names answers now.
    d.addr = notify.serving_addr();
    assert_eq!(d.get("/livez").status, 200);
    notify.wait_for("WATCHDOG=1", 3);
    d.signal("TERM");
    notify.wait_for("STOPPING=1", 1);
    assert_eq!(d.wait_exit().code(), Some(0), "stderr:\n{}", d.stderr());
    let seen = notify.seen();
    let ready = seen.iter().position(|l| l == "READY=1").unwrap();
    assert!(seen[..ready].iter().all(|l| l != "WATCHDOG=1" && l != "STOPPING=1"), "{seen:?}");
}

#[test]
fn a_watchdog_for_another_pid_is_ignored() {
    let dir = TestDir::new();
    let mut notify = NotifySocket::bind(dir.path());
    let config = dir.valid_config("127.0.0.1:0", "http://127.0.0.1:9");
    let mut cmd = mpsync();
    cmd.arg("--config").arg(&config).arg("run");
    // WATCHDOG_PID names another process (pid 1): this one must not ping.
    cmd.env("NOTIFY_SOCKET", &notify.path).env("WATCHDOG_USEC", "200000").env("WATCHDOG_PID", "1");
    let mut d = Daemon::spawn(cmd);
    notify.wait_for("READY=1", 1);
    d.signal("TERM");
    notify.wait_for("STOPPING=1", 1);
    assert_eq!(d.wait_exit().code(), Some(0));
    assert!(!notify.seen().iter().any(|l| l == "WATCHDOG=1"), "{:?}", notify.seen());
}

#[test]
fn a_second_instance_on_the_same_state_dir_exits_75() {
    let dir = TestDir::new();
    let mut first = start(&dir, &[]);
    first.wait_ready();

    let config = dir.path().join("mpsync.toml");
    let mut cmd = mpsync();
    cmd.arg("--config").arg(&config).arg("run").arg("--listen").arg("127.0.0.1:0");
    let (code, err) = Daemon::run_to_exit(cmd);
    assert_eq!(code, Some(75), "{err}");
    let file = dir.state_dir().join("mpsync.redb");
    assert!(
        err.contains(&file.display().to_string()),
        "message should name {}: {err}",
        file.display()
    );
    assert!(err.contains("already holds it"), "{err}");
    // The first one is unaffected.
    assert_eq!(first.get("/livez").status, 200);
}

/// A taken port is a configuration problem (78), not an upstream outage (69): the message
/// names daemon.listen, the address, and both ways out.
#[test]
fn a_listen_address_in_use_exits_78_naming_daemon_listen() {
    let dir = TestDir::new();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let config = dir.valid_config(&addr, "http://127.0.0.1:9");
    let mut cmd = mpsync();
    cmd.arg("--config").arg(&config).arg("run");
    let (code, err) = Daemon::run_to_exit(cmd);
    assert_eq!(code, Some(78), "{err}");
    for needle in [
        format!("cannot listen on {addr} (daemon.listen)"),
        "already in use".to_owned(),
        "Stop that process".to_owned(),
        "set daemon.listen".to_owned(),
    ] {
        assert!(err.contains(&needle), "the message says {needle:?}: {err}");
    }
    drop(taken);
}

#[test]
fn a_bad_config_exits_78_from_run() {
    let dir = TestDir::new();
    let config = dir.config("[daemon]\nlisten = \"127.0.0.1:1\"\nno_such_key = 1\n");
    let mut cmd = mpsync();
    cmd.arg("--config").arg(&config).arg("run");
    let (code, err) = Daemon::run_to_exit(cmd);
    assert_eq!(code, Some(78), "{err}");
    assert!(err.contains("no_such_key"), "{err}");
}

#[test]
fn json_log_format_writes_one_json_object_per_line() {
    let dir = TestDir::new();
    let mut d = start(&dir, &["--log-format", "json"]);
    d.wait_ready();
    d.signal("TERM");
    assert_eq!(d.wait_exit().code(), Some(0));
    let log = d.stderr();
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let ready = lines
        .iter()
        .find(|v| v["message"].as_str().is_some_and(|m| m.starts_with("mpsync ready on http://")));
    let ready = ready.unwrap_or_else(|| panic!("no ready line in {log}"));
    assert_eq!(ready["level"], "INFO");
}
