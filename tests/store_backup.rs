//! `mpsync backup`: a copy taken while the daemon syncs against the simulator (through its
//! control socket) holds every run committed before it; restored into a fresh state
//! directory, a daemon serves them all. Without a daemon the command copies the store itself.
//! An existing file is never replaced (73), and the copy is private (0600).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Output;

use crate::support::common::{TestDir, mpsync, wait_for};
use crate::support::daemon::DEADLINE;
use crate::support::sync::{
    Sim, runs, start_daemon, trigger_sync, wait_next_run, wait_run_finished, write_config,
};

/// Once a year: only catch-up and `POST /v1/sync` start runs here.
const YEARLY: &str = "0 0 0 1 1 *";

fn backup(config: &Path, to: &Path) -> Output {
    mpsync().arg("-c").arg(config).arg("backup").arg(to).output().expect("run mpsync backup")
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// (id, outcome) of every run a daemon lists, oldest first.
fn finished(d: &crate::support::daemon::Daemon) -> Vec<(u64, String)> {
    let mut all: Vec<(u64, String)> = runs(d)
        .iter()
        .filter(|r| r["outcome"] != "running")
        .map(|r| (r["id"].as_u64().unwrap(), r["outcome"].as_str().unwrap().to_owned()))
        .collect();
    all.sort();
    all
}

#[test]
fn a_backup_taken_during_a_sync_restores_every_committed_run() {
    let sim = Sim::start(21, 30);
    let dir = TestDir::new();
    let config = write_config(&dir, "127.0.0.1:9", &sim, YEARLY);
    let mut d = start_daemon(&config);
    wait_run_finished(&d, 1);
    trigger_sync(&d);
    wait_next_run(&d, 1);
    // Slow answers keep the next run going (seconds) while the backup is taken.
    sim.latency(300);
    trigger_sync(&d);
    wait_for(DEADLINE, "run 3 to be in progress", || {
        runs(&d).iter().any(|r| r["id"] == 3 && r["outcome"] == "running").then_some(())
    });
    let committed = finished(&d);
    assert_eq!(committed.len(), 2, "{committed:?}");

    let copy = dir.path().join("backup.redb");
    let out = backup(&config, &copy);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("through the running daemon"), "{}", text(&out));
    // Still going after the copy was made, so it was going while it was made.
    let during = runs(&d).iter().any(|r| r["id"] == 3 && r["outcome"] == "running");
    assert_eq!(std::fs::metadata(&copy).unwrap().permissions().mode() & 0o777, 0o600);
    // The daemon's copy in the state directory was moved out, not left behind.
    let left: Vec<_> = std::fs::read_dir(dir.state_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("backup"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    // Never replaced.
    let again = backup(&config, &copy);
    assert_eq!(again.status.code(), Some(73), "{}", text(&again));
    assert!(text(&again).contains("never replaces"), "{}", text(&again));

    wait_next_run(&d, 2);
    d.signal("TERM");
    d.wait_exit();

    // Restore: the copy in place of mpsync.redb in a fresh state directory, then start.
    let fresh = TestDir::new();
    let config2 = write_config(&fresh, "127.0.0.1:9", &sim, YEARLY);
    std::fs::create_dir_all(fresh.state_dir()).unwrap();
    std::fs::copy(&copy, fresh.state_dir().join("mpsync.redb")).unwrap();
    let d2 = start_daemon(&config2);
    let restored = finished(&d2);
    for run in &committed {
        assert!(restored.contains(run), "run {run:?} lost in the restore: {restored:?}");
    }
    // The run that was going during the backup is in the copy as begun, so the restored
    // daemon records it as aborted rather than losing it. (On a machine so slow that it
    // ended before the copy, it is there as it ended.)
    if during {
        assert!(restored.iter().any(|(id, o)| *id == 3 && o == "aborted"), "{restored:?}");
    }
    assert!(restored.iter().any(|(id, _)| *id == 3), "{restored:?}");
}

#[test]
fn without_a_daemon_the_command_copies_the_store_itself() {
    let sim = Sim::start(22, 10);
    let dir = TestDir::new();
    let config = write_config(&dir, "127.0.0.1:9", &sim, YEARLY);
    let mut d = start_daemon(&config);
    wait_run_finished(&d, 1);
    let committed = finished(&d);
    d.signal("TERM");
    d.wait_exit();

    let copy = dir.path().join("copy.redb");
    let out = backup(&config, &copy);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("no daemon running"), "{}", text(&out));
    assert!(text(&out).contains("1 runs (the newest 1)"), "{}", text(&out));

    let fresh = TestDir::new();
    std::fs::create_dir_all(fresh.state_dir()).unwrap();
    std::fs::copy(&copy, fresh.state_dir().join("mpsync.redb")).unwrap();
    let store = sim.open_store(&fresh.state_dir());
    let restored: Vec<(u64, String)> = sim
        .block_on(store.recent_runs(100, None))
        .unwrap()
        .iter()
        .map(|r| (r.id, serde_json::to_value(r.outcome).unwrap().as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(restored, committed);
    let snapshot = sim.block_on(store.latest_usage_snapshot()).unwrap().expect("a snapshot");
    assert_eq!(snapshot.customers.len(), 10);

    // --state-dir needs no config; a directory without a store says so.
    let empty = TestDir::new();
    let out = mpsync()
        .args(["backup", "--state-dir"])
        .arg(empty.path())
        .arg(empty.path().join("x.redb"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(74), "{}", text(&out));
    assert!(text(&out).contains("there is no store at"), "{}", text(&out));
}

/// Every table and every row of a store with every kind of record (the v1 fixture) is in the
/// copy: a table the backup does not list would fail it rather than go missing.
#[tokio::test]
async fn the_copy_holds_every_table_and_row() {
    let (_tmp, state) = crate::support::store::state_dir();
    std::fs::create_dir_all(&state).unwrap();
    let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/store-v1/mpsync.redb");
    std::fs::copy(fixture, state.join("mpsync.redb")).unwrap();
    let store = mpsync::store::Store::open(&state).unwrap();
    let copy = state.parent().unwrap().join("copy.redb");
    let report = store.backup_to(copy.clone()).await.unwrap();
    assert_eq!((report.runs, report.last_run), (4, Some(4)));
    let original = store.row_counts().await.unwrap();
    assert!(original.contains_key("plans_v1") && original["reconciliation_rows_v2"] > 0);

    let restored_dir = state.parent().unwrap().join("restored");
    std::fs::create_dir_all(&restored_dir).unwrap();
    std::fs::rename(&copy, restored_dir.join("mpsync.redb")).unwrap();
    let restored = mpsync::store::Store::open(&restored_dir).unwrap();
    assert_eq!(restored.row_counts().await.unwrap(), original);
    assert_eq!(report.rows, original.values().sum::<u64>());
}
