//! Helpers shared by the capture tests: running the binary off the runtime, reading a state
//! dir's latest counts and billed lines, and starting `mpsync sim --replay` with a keys dir.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

use mpsync::model::{Account, BilledLine};
use mpsync::store::Store;
use serde_json::Value;

use crate::common::{KillOnDrop, mpsync, wait_for};

/// Runs `mpsync ARGS...` to the end without blocking the runtime (in-process servers serve).
pub async fn run(args: Vec<std::ffi::OsString>) -> Output {
    tokio::task::spawn_blocking(move || mpsync().args(args).output().expect("run mpsync"))
        .await
        .unwrap()
}

/// `mpsync -c CONFIG capture DIR [extra...]`.
pub async fn capture(config: &Path, dir: &Path, extra: &[&str]) -> Output {
    let mut args: Vec<std::ffi::OsString> =
        vec!["-c".into(), config.into(), "capture".into(), dir.into()];
    args.extend(extra.iter().map(Into::into));
    run(args).await
}

/// `mpsync -c CONFIG sync --once --json`, which must succeed; its JSON.
pub async fn sync_once(config: &Path) -> Value {
    let out =
        run(vec!["-c".into(), config.into(), "sync".into(), "--once".into(), "--json".into()])
            .await;
    assert_eq!(out.status.code(), Some(0), "sync failed: {}", text(&out));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", text(&out)))
}

/// stdout and stderr, for messages.
pub fn text(out: &Output) -> String {
    format!(
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// What a state dir's latest runs stored: counts per customer, billed accounts and lines.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    pub counts: BTreeMap<u64, BTreeMap<String, u64>>,
    pub accounts: Vec<String>,
    pub lines: Vec<BilledLine>,
}

pub async fn stored(state: PathBuf) -> Stored {
    let store = tokio::task::spawn_blocking(move || Store::open(&state)).await.unwrap().unwrap();
    let usage = store.latest_usage_snapshot().await.unwrap().expect("a vendor snapshot");
    let billed = store.latest_billed_snapshot().await.unwrap();
    let (accounts, lines) = billed.map_or((Vec::new(), Vec::new()), |b| {
        (b.accounts.iter().map(|a: &Account| a.id.clone()).collect(), b.lines)
    });
    Stored {
        counts: usage.customers.into_iter().map(|c| (c.id, c.counts)).collect(),
        accounts,
        lines,
    }
}

/// `mpsync sim --replay BUNDLE --listen 127.0.0.1:0 --keys-dir KEYS`, running; returns the
/// guard, the written config and the replay's base URL.
pub fn start_replay(bundle: &Path, keys: &Path) -> (KillOnDrop, PathBuf, String) {
    let child = mpsync()
        .args(["sim", "--listen", "127.0.0.1:0", "--replay"])
        .arg(bundle)
        .arg("--keys-dir")
        .arg(keys)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let guard = KillOnDrop(child);
    let config = keys.join("mpsync.toml");
    // The config is written in one rename: once it exists it is whole.
    let toml = wait_for(Duration::from_secs(30), "the replay's mpsync.toml", || {
        std::fs::read_to_string(&config).ok()
    });
    let table: toml::Table = toml.parse().unwrap();
    let base = table["mailprotector"]["base_url"].as_str().unwrap().to_owned();
    (guard, config, base)
}

/// `GET {base}/_sim/requests` of a running replay.
pub async fn replay_counts(base: &str) -> Value {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
    client.get(format!("{base}/_sim/requests")).send().await.unwrap().json().await.unwrap()
}
