//! Opening the store: creation, reopening, the lock, and refusal of a newer schema.

mod common;
mod store_support;

use std::os::unix::fs::PermissionsExt;

use common::KillOnDrop;
use mpsync::exit::{Exit, ExitStatus};
use mpsync::model::{RunKind, RunOutcome};
use mpsync::store::{SCHEMA_VERSION, Store, StoreError};
use store_support::*;

#[tokio::test]
async fn creates_state_dir_private_and_reopens_with_data() {
    let (_tmp, state) = state_dir();
    let store = Store::open(&state).expect("open new store");
    assert_eq!(store.path(), state.join("mpsync.redb"));
    let mode = std::fs::metadata(&state).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700, "state dir must be private");
    let mode = std::fs::metadata(store.path()).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the store file is owner-only whatever the umask");
    assert!(store.latest_usage_snapshot().await.unwrap().is_none());
    let run = vendor_run(&store, 0, dataset(3)).await;
    drop(store);

    let store = Store::open(&state).expect("reopen");
    let snap = store.latest_usage_snapshot().await.unwrap().expect("snapshot survives reopen");
    assert_eq!(snap.run_id, run.id);
    assert_eq!(snap.customers, dataset(3));
    assert_eq!(store.run(run.id).await.unwrap().unwrap().outcome, RunOutcome::Ok);
}

#[tokio::test]
async fn a_store_file_others_may_read_is_tightened_to_0600_and_keeps_its_data() {
    let (_tmp, state) = state_dir();
    let store = Store::open(&state).expect("open new store");
    assert_eq!(store.tightened(), None, "a new file is 0600 from the start");
    let run = vendor_run(&store, 0, dataset(2)).await;
    let path = store.path().to_path_buf();
    drop(store);
    // As an mpsync before this change left it under a 022 umask, or an operator's chmod.
    for wide in [0o644, 0o666, 0o640] {
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(wide)).unwrap();
        let store = Store::open(&state).expect("an exposed store still opens");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{wide:o} is tightened");
        let note = store.tightened().expect("and says so");
        assert!(note.contains(&format!("(mode {wide:o})")) && note.contains("now 600"), "{note}");
        assert_eq!(store.run(run.id).await.unwrap().unwrap().outcome, RunOutcome::Ok);
    }
}

#[tokio::test]
async fn second_open_in_same_process_is_locked_exit_75() {
    let (_tmp, state) = state_dir();
    let _held = Store::open(&state).expect("first open");
    let err = Store::open(&state).expect_err("second open must fail");
    assert!(matches!(err, StoreError::Locked { .. }), "{err:?}");
    assert_eq!(err.exit(), Exit::TempFail);
    let msg = err.to_string();
    assert!(msg.contains("mpsync.redb"), "names the file: {msg}");
    assert!(msg.contains("daemon"), "says a daemon holds it: {msg}");
    assert!(msg.contains("/v1/sync"), "points at the HTTP API: {msg}");
}

#[tokio::test]
async fn lock_is_released_when_last_clone_drops() {
    let (_tmp, state) = state_dir();
    let a = Store::open(&state).unwrap();
    let b = a.clone();
    drop(a);
    assert!(matches!(Store::open(&state), Err(StoreError::Locked { .. })), "clone keeps the lock");
    drop(b);
    Store::open(&state).expect("open after all clones dropped");
}

#[tokio::test]
async fn newer_schema_is_refused_and_left_untouched() {
    let (_tmp, state) = state_dir();
    drop(Store::open(&state).unwrap());
    let file = state.join("mpsync.redb");
    let newer = u64::from(SCHEMA_VERSION) + 1;
    {
        let db = redb::Database::create(&file).unwrap();
        let txn = db.begin_write().unwrap();
        let meta: redb::TableDefinition<&str, u64> = redb::TableDefinition::new("meta");
        txn.open_table(meta).unwrap().insert("schema_version", newer).unwrap();
        txn.commit().unwrap();
    }
    let err = Store::open(&state).expect_err("newer schema must be refused");
    match &err {
        StoreError::NewerSchema { found, supported, path } => {
            assert_eq!(u64::from(*found), newer);
            assert_eq!(*supported, SCHEMA_VERSION);
            assert_eq!(path, &file);
        }
        other => panic!("expected NewerSchema, got {other:?}"),
    }
    assert_eq!(err.exit(), Exit::DataErr);
    let msg = err.to_string();
    assert!(msg.contains("newer mpsync") && msg.contains("state_dir"), "{msg}");
    // Refusing must not rewrite the version.
    let err = Store::open(&state).expect_err("still refused");
    assert!(matches!(err, StoreError::NewerSchema { .. }));
}

#[tokio::test]
async fn unusable_paths_are_io_errors_naming_the_path() {
    // A state dir below a regular file cannot be created, even by root.
    let (tmp, _) = state_dir();
    let blocker = tmp.path().join("not-a-dir");
    std::fs::write(&blocker, b"x").unwrap();
    let state = blocker.join("state");
    let err = Store::open(&state).expect_err("cannot create a dir under a file");
    assert_eq!(err.exit(), Exit::IoErr, "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("create the state directory") && msg.contains(&state.display().to_string()),
        "{msg}"
    );

    // The store file itself is a directory.
    let state = tmp.path().join("state2");
    std::fs::create_dir_all(state.join("mpsync.redb")).unwrap();
    let err = Store::open(&state).expect_err("the file is a directory");
    assert_eq!(err.exit(), Exit::IoErr, "{err:?}");
    assert!(err.to_string().contains("mpsync.redb"), "{err}");
}

#[tokio::test]
async fn run_ids_increase_across_kinds_and_reopen() {
    let (_tmp, state) = state_dir();
    let store = Store::open(&state).unwrap();
    let a = store.begin_run(RunKind::Vendor, at(0)).await.unwrap();
    let b = store.begin_run(RunKind::Push, at(1)).await.unwrap();
    let c = store.begin_run(RunKind::Billing, at(2)).await.unwrap();
    assert!(a < b && b < c);
    drop(store);
    let store = Store::open(&state).unwrap();
    let aborted = store.abort_leftover_runs(at(3)).await.unwrap();
    assert_eq!(aborted, vec![a, b, c]);
    let d = store.begin_run(RunKind::Vendor, at(4)).await.unwrap();
    assert!(d > c, "ids are never reused after a restart: {d} after {c}");
}

/// Kills the child process if the test panics before it is reaped.
/// Another process on the same state dir gets `Locked` too. The test binary re-executes
/// itself as the holder (the sled crash-test pattern): with `STORE_LOCK_HOLDER` set this test
/// plays the child, opens the store, says so, and holds it until its stdin closes.
#[test]
fn second_process_on_same_state_dir_is_locked() {
    use std::io::{BufRead, BufReader, Read};
    use std::process::{Command, Stdio};

    if let Some(dir) = std::env::var_os("STORE_LOCK_HOLDER") {
        let _store = Store::open(std::path::Path::new(&dir)).expect("child opens the store");
        println!("STORE-HELD");
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
        return;
    }
    let (_tmp, state) = state_dir();
    let child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "second_process_on_same_state_dir_is_locked", "--nocapture"])
        .env("STORE_LOCK_HOLDER", &state)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut child = KillOnDrop(child);
    let mut out = BufReader::new(child.0.stdout.take().unwrap());
    let mut line = String::new();
    loop {
        line.clear();
        // EOF (0) means the child died before holding the store.
        assert!(out.read_line(&mut line).unwrap() > 0, "child exited before opening the store");
        if line.contains("STORE-HELD") {
            break;
        }
    }
    let err = Store::open(&state).expect_err("a second process must be refused");
    assert!(matches!(err, StoreError::Locked { .. }), "{err:?}");
    drop(child.0.stdin.take()); // lets the child finish
    assert!(child.0.wait().unwrap().success());
    Store::open(&state).expect("open once the other process is gone");
}

#[tokio::test]
async fn a_file_that_is_not_a_store_is_refused_and_left_alone() {
    let (_tmp, state) = state_dir();
    std::fs::create_dir_all(&state).unwrap();
    let file = state.join("mpsync.redb");
    let garbage: Vec<u8> = (0..20_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(&file, &garbage).unwrap();
    let err = Store::open(&state).expect_err("garbage is not a store");
    assert!(matches!(err, StoreError::NotAStore { .. }), "{err:?}");
    assert!(err.to_string().contains("mpsync.redb"), "{err}");
    assert_eq!(err.exit(), Exit::DataErr);
    assert_eq!(std::fs::read(&file).unwrap(), garbage, "a foreign file is never overwritten");
}
