//! The real `mpsync run` and who may read it: a listen address other hosts reach is refused
//! without `allow_remote` and a token; with them, every request but the probes needs the
//! token; a foreign `Host` is refused; a client that leaves mid-answer is no error.

use std::io::{Read, Write};
use std::net::TcpStream;

use crate::support::common::{self, TestDir, mpsync};
use crate::support::daemon::{self, Daemon, request};
use crate::support::reconcile;

const TOKEN: &str = "daemon-token-5c8e2a91f04b";

/// The valid test config with `extra` lines appended to `[daemon]`.
fn config_with(dir: &TestDir, listen: &str, extra: &str) -> std::path::PathBuf {
    let base = std::fs::read_to_string(dir.valid_config(listen, "http://127.0.0.1:9")).unwrap();
    dir.config(&base.replacen("[daemon]\n", &format!("[daemon]\n{extra}"), 1))
}

#[test]
fn a_listen_address_other_hosts_reach_needs_allow_remote_and_a_token() {
    let dir = TestDir::new();
    for (extra, key, fix) in [
        ("", "daemon.listen", "daemon.allow_remote = true"),
        ("allow_remote = true\n", "daemon.access_token_file", ".credentials/mpsync-access-token"),
    ] {
        let config = config_with(&dir, "0.0.0.0:9847", extra);
        let mut cmd = mpsync();
        cmd.arg("--config").arg(&config).arg("run");
        let (code, err) = Daemon::run_to_exit(cmd);
        assert_eq!(code, Some(78), "{err}");
        assert!(err.contains(key) && err.contains(fix), "{extra:?} → {err}");
    }
    // The same from the command line says so.
    let config = config_with(&dir, "127.0.0.1:9847", "");
    let mut cmd = mpsync();
    cmd.arg("--config").arg(&config).arg("run").arg("--listen").arg("0.0.0.0:9847");
    let (code, err) = Daemon::run_to_exit(cmd);
    assert_eq!(code, Some(78), "{err}");
    assert!(
        err.contains("0.0.0.0:9847 (set on the command line) lets other hosts connect"),
        "{err}"
    );
}

#[test]
fn with_allow_remote_every_request_but_the_probes_needs_the_token() {
    let dir = TestDir::new();
    let token = dir.secret("access-token", &format!("{TOKEN}\n"));
    // Loopback, so the test reaches nothing else; the rules are the remote ones.
    let extra = format!("allow_remote = true\naccess_token_file = \"{}\"\n", token.display());
    let config = config_with(&dir, "127.0.0.1:0", &extra);
    let mut cmd = mpsync();
    cmd.arg("--config").arg(&config).arg("run");
    let mut d = Daemon::spawn(cmd);
    d.wait_ready();
    let addr = d.addr.clone();

    assert_eq!(d.get("/livez").status, 200);
    common::wait_for(daemon::DEADLINE, "/readyz 200", || {
        (d.get("/readyz").status == 200).then_some(())
    });
    let health = d.get("/v1/health");
    assert_eq!(health.status, 401, "{}", health.body);
    assert_eq!(health.header("content-type").as_deref(), Some("application/json"));
    assert!(health.json()["hint"].as_str().unwrap().contains("Authorization: Bearer"));
    let bearer = format!("Bearer {TOKEN}");
    let health = request(&addr, "GET", "/v1/health", &[("Authorization", &bearer)]);
    assert_eq!(health.status, 200, "{}", health.body);
    let sync = request(&addr, "POST", "/v1/sync", &[]);
    assert_eq!(sync.status, 401, "{}", sync.body);
    let foreign = request(&addr, "GET", "/v1/health", &[("Host", "attacker.example")]);
    assert_eq!(foreign.status, 421, "{}", foreign.body);

    d.signal("TERM");
    assert_eq!(d.wait_exit().code(), Some(0));
    assert!(!d.stderr().contains(TOKEN), "the token leaked into the log");
}

#[test]
fn a_client_that_leaves_mid_answer_is_logged_at_debug_not_as_an_error() {
    let dir = TestDir::new();
    // A reconciliation of megabytes in the store before the daemon starts.
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let store = mpsync::store::Store::open(&dir.state_dir()).unwrap();
        store.save_reconciliation(&reconcile::large(4000)).await.unwrap();
    });
    let config = dir.valid_config("127.0.0.1:0", "http://127.0.0.1:9");
    let mut cmd = mpsync();
    cmd.arg("--config").arg(&config).arg("--log").arg("info,mpsync::server=debug").arg("run");
    let mut d = Daemon::spawn(cmd);
    d.wait_ready();
    let addr = d.addr.clone();

    let mut s = TcpStream::connect(&addr).unwrap();
    s.set_read_timeout(Some(daemon::DEADLINE)).unwrap();
    write!(s, "GET /v1/reconciliation?format=csv HTTP/1.1\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut first = vec![0u8; 64 * 1024];
    s.read_exact(&mut first).unwrap();
    assert!(String::from_utf8_lossy(&first).starts_with("HTTP/1.1 200"));
    drop(s);

    d.wait_log("the client went away during the reconciliation");
    d.signal("TERM");
    assert_eq!(d.wait_exit().code(), Some(0));
    let log = d.stderr();
    assert!(!log.contains("ERROR"), "{log}");
}
