//! The capture and replay command lines: a non-empty directory (64, nothing asked), a bad
//! config (78), a refused key (69, the refusal captured), `--no-pseudonymize`, and `sim
//! --replay` with generator flags (64) or a broken bundle (65, naming the file and line).

use std::path::Path;

use mpsync::sim::{SimHandle, SimOptions, SimServer};
use serde_json::Value;

use crate::common::mpsync;
use crate::support::{capture, run, text};

async fn small_sim() -> SimHandle {
    SimServer::start(SimOptions { seed: 4, customers: 5, ..SimOptions::default() }).await.unwrap()
}

fn config_for(sim: &SimHandle, dir: &Path) -> std::path::PathBuf {
    mpsync::commands::write_sim_config(dir, sim.control(), &sim.base_url(), Some(500.0)).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_empty_directory_is_refused_before_anything_is_asked() {
    let sim = small_sim().await;
    let tmp = tempfile::tempdir().unwrap();
    let config = config_for(&sim, &tmp.path().join("keys"));
    let target = tmp.path().join("full");
    std::fs::create_dir(&target).unwrap();
    std::fs::write(target.join("notes.txt"), "mine").unwrap();
    sim.control().reset_requests();
    let out = capture(&config, &target, &[]).await;
    assert_eq!(out.status.code(), Some(64), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&target.display().to_string()) && err.contains("not empty"), "{err}");
    assert_eq!(sim.control().requests().total, 0);
    assert_eq!(std::fs::read_dir(&target).unwrap().count(), 1);
    assert_eq!(std::fs::read_to_string(target.join("notes.txt")).unwrap(), "mine");

    let file = tmp.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let out = capture(&config, &file, &[]).await;
    assert_eq!(out.status.code(), Some(64), "{}", text(&out));
}

#[tokio::test]
async fn a_bad_config_is_78() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("mpsync.toml");
    std::fs::write(&config, "[mailprotector]\nreseller_idd = 188\n").unwrap();
    let out = capture(&config, &tmp.path().join("b"), &[]).await;
    assert_eq!(out.status.code(), Some(78), "{}", text(&out));
    assert!(!tmp.path().join("b").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_key_is_69_and_the_refusal_is_in_the_bundle() {
    let sim = small_sim().await;
    let tmp = tempfile::tempdir().unwrap();
    let keys = tmp.path().join("keys");
    let config = config_for(&sim, &keys);
    std::fs::write(keys.join("mailprotector-api-key"), "not-the-key\n").unwrap();
    let bundle = tmp.path().join("b");
    let out = capture(&config, &bundle, &[]).await;
    assert_eq!(out.status.code(), Some(69), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("mailprotector failed") && err.contains("401"), "{err}");
    assert!(err.contains("the bundle holds the answers up to the failure"), "{err}");
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(bundle.join("manifest.json")).unwrap()).unwrap();
    let outcome = manifest["upstreams"][0]["outcome"].as_str().unwrap();
    assert!(outcome.starts_with("failed: ") && outcome.contains("401"), "{outcome}");
    assert!(manifest["upstreams"][1]["outcome"].as_str().unwrap().starts_with("complete"));
    let mp: Value =
        serde_json::from_slice(&std::fs::read(bundle.join("mailprotector.json")).unwrap()).unwrap();
    let statuses: Vec<u64> = mp["exchanges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["response"]["status"].as_u64().unwrap())
        .collect();
    assert!(!statuses.is_empty() && statuses.iter().all(|s| *s == 401), "{statuses:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_pseudonymize_keeps_the_names_and_says_so() {
    let sim = small_sim().await;
    let tmp = tempfile::tempdir().unwrap();
    let config = config_for(&sim, &tmp.path().join("keys"));
    let bundle = tmp.path().join("b");
    let out = capture(&config, &bundle, &["--pseudonymize", "--no-pseudonymize"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("NOT pseudonymized"), "{}", text(&out));
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(bundle.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["pseudonymized"], false);
    let mp = std::fs::read_to_string(bundle.join("mailprotector.json")).unwrap();
    let names: Vec<String> = {
        let ds = sim.control().read();
        ds.customers_in_reseller(188).iter().map(|c| ds.customers()[c].name.clone()).collect()
    };
    assert_eq!(names.len(), 5);
    for name in names {
        assert!(mp.contains(&name), "{name} kept");
    }
}

#[tokio::test]
async fn replay_refuses_generator_flags_and_broken_bundles() {
    let fixture =
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/replay-public");
    for flags in [
        &["--customers", "5"][..],
        &["--fault", "status=503"],
        &["--seed", "2"],
        &["--rate-limit", "5"],
    ] {
        let out = mpsync()
            .args(["sim", "--listen", "127.0.0.1:0", "--replay"])
            .arg(&fixture)
            .args(flags)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(64), "{flags:?}: {}", text(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("--replay") && err.contains(flags[0]), "{err}");
    }

    let tmp = tempfile::tempdir().unwrap();
    let broken = tmp.path().join("broken");
    std::fs::create_dir(&broken).unwrap();
    for f in ["manifest.json", "mailprotector.json", "connectwise.json"] {
        std::fs::copy(fixture.join(f), broken.join(f)).unwrap();
    }
    let cw = std::fs::read_to_string(broken.join("connectwise.json")).unwrap();
    std::fs::write(
        broken.join("connectwise.json"),
        cw.replacen("\"status\": 200,", "\"status\": 200", 1),
    )
    .unwrap();
    let out = run(vec![
        "sim".into(),
        "--listen".into(),
        "127.0.0.1:0".into(),
        "--replay".into(),
        broken.clone().into(),
    ])
    .await;
    assert_eq!(out.status.code(), Some(65), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    let file = broken.join("connectwise.json");
    assert!(err.contains(&file.display().to_string()) && err.contains("line 8"), "{err}");

    let out = mpsync().args(["sim", "--replay"]).arg(tmp.path().join("missing")).output().unwrap();
    assert_eq!(out.status.code(), Some(65), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("manifest.json"), "{}", text(&out));
}
