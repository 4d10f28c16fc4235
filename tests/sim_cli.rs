//! `mpsync sim` as a user runs it: `--help` lists every variant; bad fault specs are usage
//! errors showing the forms (the removed `no_content_delete` names its replacement);
//! `--keys-dir` writes a 0600 key and a config that `mpsync config` accepts and whose key and
//! URL work against the running simulator; SIGTERM stops it cleanly.

use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;
use std::time::Duration;

use crate::support::common::{KillOnDrop, mpsync, wait_for};

#[test]
fn a_bad_fault_spec_is_a_usage_error_that_shows_the_forms() {
    for spec in ["bogus", "status=abc", "kind=explode"] {
        let out =
            mpsync().args(["sim", "--listen", "127.0.0.1:0", "--fault", spec]).output().unwrap();
        assert_eq!(out.status.code(), Some(64), "{spec}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("fault SPEC forms") && err.contains("kind=hang"), "{spec}: {err}");
    }
}

#[test]
fn help_lists_every_variant_and_the_old_delete_variant_points_at_the_new_one() {
    let out = mpsync().args(["sim", "--help"]).output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for v in mpsync_sim::Variant::ALL {
        assert!(help.contains(v.name()), "--help lists {}: {help}", v.name());
        assert!(help.contains(v.describe()), "--help describes {}: {help}", v.name());
    }
    let out = mpsync()
        .args(["sim", "--listen", "127.0.0.1:0", "--fault", "variant=no_content_delete"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("variant=ok_delete") && err.contains("204"), "{err}");
}

#[test]
fn keys_dir_gives_a_ready_config_for_the_running_simulator() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    let child = mpsync()
        .args([
            "sim",
            "--listen",
            "127.0.0.1:0",
            "--customers",
            "5",
            "--seed",
            "3",
            "--rate-limit",
            "50",
        ])
        .arg("--keys-dir")
        .arg(&keys)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut sim = KillOnDrop(child);
    let config = keys.join("mpsync.toml");
    let text =
        wait_for(Duration::from_secs(30), "mpsync.toml", || std::fs::read_to_string(&config).ok());
    let key_file = keys.join("mailprotector-api-key");
    let mode = std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert!(text.contains("reseller_id = 188") && text.contains("rate_limit = 50.0"), "{text}");

    let out = mpsync().arg("-c").arg(&config).arg("config").output().unwrap();
    assert!(out.status.success(), "config rejected: {}", String::from_utf8_lossy(&out.stderr));

    let table: toml::Table = text.parse().unwrap();
    let base = table["mailprotector"]["base_url"].as_str().unwrap().to_owned();
    let key = std::fs::read_to_string(&key_file).unwrap().trim().to_owned();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let status = rt.block_on(async {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
        let url = format!("{base}/api/v1/resellers/188");
        client.get(url).bearer_auth(key).send().await.unwrap().status()
    });
    assert_eq!(status, reqwest::StatusCode::OK);

    let pid = sim.0.id().to_string();
    assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let code = wait_for(Duration::from_secs(20), "sim to exit", || sim.0.try_wait().unwrap());
    assert_eq!(code.code(), Some(0));
}
