//! Opening the store: creation, reopening, the lock, and refusal of a newer schema.

mod store_support;

use std::os::unix::fs::PermissionsExt;

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
async fn unwritable_state_dir_is_an_io_error_naming_the_path() {
    let (tmp, _) = state_dir();
    let parent = tmp.path().join("ro");
    std::fs::create_dir(&parent).unwrap();
    std::fs::set_permissions(&parent, std::fs::Permissions::from_mode(0o500)).unwrap();
    let state = parent.join("state");
    let result = Store::open(&state);
    std::fs::set_permissions(&parent, std::fs::Permissions::from_mode(0o700)).unwrap();
    // Root ignores directory permissions; the check only means something for other users.
    if let Err(err) = result {
        assert_eq!(err.exit(), Exit::IoErr, "{err:?}");
        assert!(err.to_string().contains(&state.display().to_string()), "{err}");
    } else {
        assert!(is_root(), "a read-only parent must stop a non-root user");
    }
}

fn is_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false)
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
