//! Upstreams that echo the credential back — in error bodies, in wrong-typed values serde
//! quotes, in text mpsync keeps verbatim (a version, an organization name, an unknown
//! integration status), in per-count refusals — never make mpsync show it: not in
//! `mpsync check`, `sync --once` or `reconcile` (every format), not in any HTTP answer of the
//! daemon, not in its log, not in the store file's bytes. And the store file is 0600 whatever
//! the umask, an exposed one is tightened at start-up.

mod common;
mod daemon_support;
mod echo_support;
mod sync_support;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{TestDir, clean_command, free_port, wait_for};
use daemon_support::{DEADLINE, Daemon};
use echo_support::{
    CW_PRIVATE, CW_PUBLIC, EchoProxy, G_PARTNER, G_VENDOR, MP_KEY, assert_no_secret,
};
use serde_json::Value;
use sync_support::Sim;

/// `mpsync ARGS` under a umask that would leave any file it creates open to everyone.
fn permissive(config: &Path, args: &[&str]) -> Command {
    let mut cmd = clean_command("sh");
    cmd.arg("-c").arg("umask 000; exec \"$0\" \"$@\"").arg(common::bin());
    cmd.arg("--config").arg(config).args(args);
    cmd
}

/// Runs `mpsync ARGS` to the end: its exit code, stdout and stderr.
fn run(config: &Path, args: &[&str]) -> (Option<i32>, String, String) {
    let Output { status, stdout, stderr } = permissive(config, args).output().unwrap();
    let text = |b: Vec<u8>| String::from_utf8_lossy(&b).into_owned();
    (status.code(), text(stdout), text(stderr))
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// The config `mpsync sim --keys-dir` would write, pointed at the proxy, with the test's own
/// keys, every job every second, and a debug log.
fn config(dir: &TestDir, sim: &Sim, proxy: &EchoProxy) -> PathBuf {
    let path =
        mpsync::commands::write_sim_config(dir.path(), sim.control(), &proxy.base_url, Some(500.0))
            .unwrap();
    for (file, key) in [
        ("mailprotector-api-key", MP_KEY),
        ("connectwise-public-key", CW_PUBLIC),
        ("connectwise-private-key", CW_PRIVATE),
        ("gradient-vendor-key", G_VENDOR),
        ("gradient-partner-key", G_PARTNER),
    ] {
        dir.secret(file, key);
    }
    let mut t: toml::Table = std::fs::read_to_string(&path).unwrap().parse().unwrap();
    let mut set = |section: &str, key: &str, value: toml::Value| {
        let s = t.entry(section).or_insert(toml::Value::Table(Default::default()));
        s.as_table_mut().unwrap().insert(key.to_owned(), value);
    };
    set("daemon", "log", "debug".into());
    set("daemon", "state_dir", dir.state_dir().display().to_string().into());
    set("daemon", "shutdown_grace", "5s".into());
    for section in ["mailprotector", "billing", "gradient"] {
        set(section, "schedule", "* * * * * *".into());
    }
    set("gradient", "rate_limit", 500.0.into());
    set("gradient", "burst", 100.into());
    std::fs::write(&path, toml::to_string(&t).unwrap()).unwrap();
    path
}

/// The runs `/v1/runs` lists.
fn runs(d: &Daemon) -> Vec<Value> {
    d.get("/v1/runs?limit=1000").json()["runs"].as_array().unwrap().clone()
}

#[test]
fn echoed_secrets_reach_no_sink_and_the_store_is_owner_only() {
    let sim = Sim::start(11, 8);
    let proxy = EchoProxy::start(&sim);
    let dir = TestDir::new();
    let config = config(&dir, &sim, &proxy);
    let company = proxy.company();
    let store = dir.state_dir().join("mpsync.redb");

    // A clean sync through the proxy first (the keys are swapped, the answers are real), so
    // there is a snapshot to push later. The store it creates is 0600 under umask 000.
    let (code, out, err) = run(&config, &["sync", "--once"]);
    assert_eq!(code, Some(0), "a clean sync through the proxy:\n{out}{err}");
    assert_eq!(mode(&store), 0o600, "the store file is owner-only whatever the umask");
    assert_eq!(mode(&dir.state_dir()), 0o700);

    // From now on the upstreams echo the credential.
    proxy.echo(true);
    let mut sinks: Vec<(String, Vec<u8>)> = Vec::new();
    let mut keep = |sink: &str, out: String, err: String| {
        sinks.push((format!("{sink} (stdout)"), out.into_bytes()));
        sinks.push((format!("{sink} (stderr)"), err.into_bytes()));
    };
    // A store file someone opened to everyone: `check` tightens it and says so.
    std::fs::set_permissions(&store, std::fs::Permissions::from_mode(0o666)).unwrap();
    let (code, check, err) = run(&config, &["check"]);
    assert_eq!(mode(&store), 0o600);
    assert!(check.contains("(mode 666); its mode is now 600"), "{check}");
    assert_ne!(code, Some(0), "the revoked key fails the check:\n{check}{err}");
    assert!(check.contains("<redacted>"), "the echo is cut, the message kept:\n{check}");
    keep("mpsync check", check, err);
    let (_, out, err) = run(&config, &["check", "--json"]);
    serde_json::from_str::<Value>(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    keep("mpsync check --json", out, err);

    let (code, out, err) = run(&config, &["sync", "--once"]);
    assert_ne!(code, Some(0), "{out}{err}");
    keep("mpsync sync --once", out, err);
    let (_, out, err) = run(&config, &["sync", "--once", "--json"]);
    let summary: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    let by_kind = |k: &str| {
        summary["runs"].as_array().unwrap().iter().find(|r| r["kind"] == k).cloned().unwrap()
    };
    for kind in ["vendor", "billing"] {
        let r = by_kind(kind);
        assert_eq!(r["outcome"], "failed", "{r}");
        assert!(r["error"].as_str().unwrap().contains("<redacted>"), "{r}");
    }
    let last_id = by_kind("push")["run_id"].as_u64().unwrap();
    keep("mpsync sync --once --json", out, err);
    for format in ["table", "json", "csv"] {
        let (code, out, err) = run(&config, &["reconcile", "--format", format]);
        assert_eq!(code, Some(0), "{out}{err}");
        keep(&format!("mpsync reconcile --format {format}"), out, err);
    }

    // The daemon, on a store someone made readable by everyone.
    std::fs::set_permissions(&store, std::fs::Permissions::from_mode(0o644)).unwrap();
    let addr = format!("127.0.0.1:{}", free_port());
    let mut d = Daemon::spawn(permissive(&config, &["run", "--listen", &addr]), &addr);
    d.wait_ready();
    assert_eq!(mode(&store), 0o600, "tightened at start-up");
    assert!(d.stderr().contains("its mode is now 600"), "and the log says so:\n{}", d.stderr());
    let newer = |r: &Value, kind: &str| r["kind"] == kind && r["id"].as_u64() > Some(last_id);
    wait_for(DEADLINE, "a failed vendor, a failed billing and a finished push run", || {
        let all = runs(&d);
        let failed = |k: &str| all.iter().any(|r| newer(r, k) && r["outcome"] == "failed");
        let pushed = all.iter().any(|r| newer(r, "push") && r["outcome"] != "running");
        (failed("vendor") && failed("billing") && pushed).then_some(())
    });
    let all = runs(&d);
    for kind in ["vendor", "billing"] {
        let r = all.iter().find(|r| newer(r, kind) && r["outcome"] == "failed").unwrap();
        assert!(r["error"].as_str().unwrap().contains("<redacted>"), "{r}");
    }
    let customers = d.get("/v1/customers").json();
    assert_eq!(customers["synthesize_push"]["integration_status"], "<redacted>", "{customers}");
    for path in [
        "/v1/runs?limit=1000",
        "/v1/health",
        "/v1/reconciliation",
        "/v1/reconciliation?format=csv",
        "/",
        "/v1/customers",
        "/metrics",
    ] {
        let r = d.get(path);
        assert!(r.status == 200 || (path == "/v1/health" && r.status == 503), "{path}: {r:?}");
        sinks.push((format!("GET {path}"), format!("{}\r\n\r\n{}", r.head, r.body).into_bytes()));
    }
    d.signal("TERM");
    d.wait_exit();
    let log = d.stderr();
    assert!(log.contains("<redacted>"), "the log shows the cut echoes:\n{log}");
    sinks.push(("the daemon's log".into(), log.into_bytes()));
    for entry in std::fs::read_dir(dir.state_dir()).unwrap() {
        let path = entry.unwrap().path();
        assert_eq!(mode(&path), 0o600, "{}", path.display());
        sinks.push((path.display().to_string(), std::fs::read(&path).unwrap()));
    }

    // Every echoing endpoint answered (the echoes were really there to leak).
    let hits = proxy.hits();
    for name in ["mp 401", "mp customers", "cw info", "cw 403", "g organization", "g count 400"] {
        assert!(hits.get(name).copied().unwrap_or(0) > 0, "{name} never echoed: {hits:?}");
    }
    for (sink, bytes) in &sinks {
        assert_no_secret(sink, bytes, &company);
    }
}
