//! SIGHUP on the real daemon: a broken config keeps the old one and keeps serving; a fixed one
//! is applied.

use crate::support::common::{TestDir, mpsync};
use crate::support::daemon::{Daemon, NotifySocket};

fn metric(d: &Daemon, name: &str) -> Option<u64> {
    let body = d.get("/metrics").body;
    body.lines().find_map(|l| l.strip_prefix(&format!("{name} "))?.trim().parse().ok())
}

#[test]
fn sighup_with_a_broken_file_keeps_serving_and_a_fixed_file_applies() {
    let dir = TestDir::new();
    let addr = "127.0.0.1:0";
    let config = dir.valid_config(addr, "http://127.0.0.1:9");
    let good = std::fs::read_to_string(&config).unwrap();
    let mut notify = NotifySocket::bind(dir.path());
    let mut cmd = mpsync();
    cmd.arg("--config").arg(&config).arg("run").env("NOTIFY_SOCKET", &notify.path);
    let mut d = Daemon::spawn(cmd);
    d.wait_ready();
    notify.wait_for("READY=1", 1);

    // Broken: a 5-field cron.
    std::fs::write(
        &config,
        good.replace("schedule = \"0 0 0 1 1 *\"", "schedule = \"*/5 * * * *\""),
    )
    .unwrap();
    d.signal("HUP");
    d.wait_log("keeping the previous configuration");
    assert!(
        d.stderr().contains("mailprotector.schedule"),
        "the log says which key: {}",
        d.stderr()
    );
    assert_eq!(d.get("/v1/health").status, 200);
    assert_eq!(d.get("/livez").status, 200);
    assert_eq!(metric(&d, "mpsync_reload_failures_total"), Some(1));
    assert_eq!(metric(&d, "mpsync_reloads_total"), Some(0));
    // systemd saw the reload begin and end, and `systemctl status` says it failed.
    notify.wait_for("READY=1", 2);
    let seen = notify.seen();
    let reloading = seen.iter().position(|l| l == "RELOADING=1").expect("RELOADING=1");
    assert!(seen[reloading + 1].starts_with("MONOTONIC_USEC="), "{seen:?}");
    assert!(
        seen.iter().any(|l| l.starts_with("STATUS=") && l.contains("last reload failed")),
        "{seen:?}"
    );

    // Fixed, with a new log filter and a new listen address (cold: needs a restart).
    // Never bound: a listen change only takes effect on a restart.
    let other = "127.0.0.1:1";
    let fixed = good
        .replace(&format!("listen = \"{addr}\""), &format!("listen = \"{other}\""))
        .replace("[daemon]\n", "[daemon]\nlog = \"debug\"\n");
    std::fs::write(&config, fixed).unwrap();
    d.signal("HUP");
    d.wait_log("configuration reloaded");
    assert_eq!(metric(&d, "mpsync_reloads_total"), Some(1));
    notify.wait_for("READY=1", 3);
    assert!(
        notify.seen().last().unwrap().starts_with("STATUS=serving on http://"),
        "{:?}",
        notify.seen()
    );
    assert_eq!(metric(&d, "mpsync_reload_failures_total"), Some(1));
    let log = d.stderr();
    assert!(log.contains("log filter changed"), "{log}");
    assert!(log.contains(&format!("daemon.listen changed from {addr} to {other}")), "{log}");
    assert!(log.contains("restart required"), "{log}");
    // Still on the old address.
    assert_eq!(d.get("/livez").status, 200);

    d.signal("TERM");
    assert_eq!(d.wait_exit().code(), Some(0), "{}", d.stderr());
}
