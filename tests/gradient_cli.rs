//! `mpsync sim --keys-dir` writes the Gradient keys and an enabled `[gradient]` section;
//! `mpsync check` then reports the integration, and a push with that config works against
//! the simulator without editing anything (most accounts and services auto-mapped).

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;
use std::time::Duration;

use mpsync::config::LoadOptions;
use mpsync::gradient::GradientClient;
use mpsync::model::RunOutcome;
use mpsync::sync::PushJob;

use crate::support::common::{KillOnDrop, mpsync, wait_for};
use crate::support::daemon;
use crate::support::gradient;

#[test]
fn keys_dir_config_checks_and_pushes_to_the_simulator_without_editing() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    let child = mpsync()
        .args(["sim", "--listen", "127.0.0.1:0", "--customers", "12", "--seed", "5"])
        .arg("--keys-dir")
        .arg(&keys)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _sim = KillOnDrop(child);
    let config = keys.join("mpsync.toml");
    let text = wait_for(Duration::from_secs(30), "the [gradient] section", || {
        std::fs::read_to_string(&config).ok().filter(|t| t.contains("[gradient]"))
    });
    assert!(text.contains("enabled = true"), "{text}");
    for key in ["gradient-vendor-key", "gradient-partner-key"] {
        let mode = std::fs::metadata(keys.join(key)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{key}");
    }

    let out = mpsync().arg("-c").arg(&config).args(["check", "--json"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "check failed: {stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let gradient = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "gradient")
        .expect("a gradient check")
        .clone();
    let detail = gradient["detail"].as_str().unwrap();
    assert!(detail.contains("status inactive"), "{detail}");
    assert!(detail.contains("0 accounts and 0 services"), "{detail}");

    // The operator files one product under another subcategory before the first push.
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(
        "\n[gradient.services.CloudFilter]\ncategory = \"security\"\nsubcategory = \"DNS filtering\"\n",
    );
    std::fs::write(&config, text).unwrap();
    let out = mpsync().arg("-c").arg(&config).args(["sync", "--once"]).output().unwrap();
    assert!(out.status.success(), "sync failed: {}", String::from_utf8_lossy(&out.stderr));

    let opts = LoadOptions { path: config.clone(), env: HashMap::new(), overrides: Vec::new() };
    let cfg = mpsync::config::load(&opts).expect("the written config loads");
    let rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let summary = rt.block_on(async {
        let state = cfg.daemon.state_dir.clone();
        let store = tokio::task::spawn_blocking(move || mpsync::store::Store::open(&state))
            .await
            .unwrap()
            .unwrap();
        let client = GradientClient::new(&cfg.gradient).unwrap();
        let skus = client.skus().await.expect("the catalogue");
        let filed = |name: &str| {
            skus.iter().find(|s| s.name == name).and_then(|s| s.filed_under.clone()).unwrap()
        };
        assert_eq!(filed("CloudFilter"), ("security".to_owned(), "DNS filtering".to_owned()));
        assert_eq!(filed("CloudMail"), ("productivity".to_owned(), "hosted email".to_owned()));
        let job = PushJob::new(client, store.clone(), cfg.reconcile.max_age, cfg.gradient.dry_run);
        let (record, report) = gradient::push(&store, &job).await;
        assert_eq!(record.outcome, RunOutcome::Ok, "{:?}", record.error);
        let s = report.unwrap().summary();
        assert!(s.accepted > 0 && s.unmapped > 0 && s.failed == 0, "{s:?}");
        s
    });

    // A restarted daemon shows the last push in health before it pushes again (pushes may be
    // a day apart; the recent runs mean no catch-up run starts).
    let mut run = mpsync();
    run.arg("-c").arg(&config).arg("run").env("MPSYNC_DAEMON__LISTEN", "127.0.0.1:0");
    let mut daemon = daemon::Daemon::spawn(run);
    daemon.wait_ready();
    let health = daemon.get("/v1/health").json();
    let pairs = &health["checks"]["gradient:pushPairs"][0]["observedValue"];
    assert_eq!(pairs["accepted"], summary.accepted, "{health}");
    assert_eq!(pairs["unmapped"], summary.unmapped, "{health}");
    drop(daemon);

    let out = mpsync().arg("-c").arg(&config).args(["check"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("status active") && stdout.contains("12 accounts"), "{stdout}");
}
