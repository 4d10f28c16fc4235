//! The migration path: steps run in order from the file's version, in the one transaction
//! that opens the store (a failing step leaves the file as it was, runs and all), a gap in
//! the steps is an error, and the shipped list covers every older version.

use std::path::Path;

use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};

use super::*;

/// A table a test step creates (version 2 "records something new").
const NOTES: TableDefinition<u64, &str> = TableDefinition::new("notes_v2");

fn to_v2(txn: &WriteTransaction, path: &Path) -> Result<(), StoreError> {
    let err = |e: redb::Error| StoreError::db("test step", path.to_path_buf(), e);
    let runs = txn.open_table(RUNS).map_err(|e| err(e.into()))?;
    let mut notes = txn.open_table(NOTES).map_err(|e| err(e.into()))?;
    for row in runs.iter().map_err(|e| err(e.into()))? {
        let (id, _) = row.map_err(|e| err(e.into()))?;
        notes.insert(id.value(), "kept").map_err(|e| err(e.into()))?;
    }
    Ok(())
}

fn to_v3(_: &WriteTransaction, _: &Path) -> Result<(), StoreError> {
    Ok(())
}

fn broken(_: &WriteTransaction, path: &Path) -> Result<(), StoreError> {
    Err(StoreError::Corrupt { path: path.to_path_buf(), what: "run", reason: "test".into() })
}

const STEP_2: Migration = Migration { from: 1, what: "notes per run", run: to_v2 };
const STEP_3: Migration = Migration { from: 2, what: "nothing", run: to_v3 };

/// A version-1 file holding three runs.
fn v1_store(path: &Path) -> Database {
    let db = Database::create(path).unwrap();
    let txn = db.begin_write().unwrap();
    init_schema_with(&txn, path, 1, &[]).unwrap();
    {
        let mut runs = txn.open_table(RUNS).unwrap();
        for id in 1..=3u64 {
            runs.insert(id, encode(&id).as_slice()).unwrap();
        }
    }
    txn.commit().unwrap();
    db
}

fn version(db: &Database) -> u64 {
    let txn = db.begin_read().unwrap();
    txn.open_table(META).unwrap().get(KEY_SCHEMA).unwrap().unwrap().value()
}

fn run_ids(db: &Database) -> Vec<u64> {
    let txn = db.begin_read().unwrap();
    let runs = txn.open_table(RUNS).unwrap();
    runs.iter().unwrap().map(|r| r.unwrap().0.value()).collect()
}

#[test]
fn an_older_store_runs_each_step_in_order_and_keeps_every_run() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.redb");
    let db = v1_store(&path);
    let txn = db.begin_write().unwrap();
    // Steps are found by the version they start from, whatever the list's order.
    let ran = init_schema_with(&txn, &path, 3, &[STEP_3, STEP_2]).unwrap();
    txn.commit().unwrap();
    assert_eq!(ran, ["notes per run", "nothing"]);
    assert_eq!(version(&db), 3);
    assert_eq!(run_ids(&db), [1, 2, 3]);
    let txn = db.begin_read().unwrap();
    assert_eq!(txn.open_table(NOTES).unwrap().len().unwrap(), 3);

    // Opening again at the same version runs nothing.
    let txn = db.begin_write().unwrap();
    assert!(init_schema_with(&txn, &path, 3, &[STEP_2, STEP_3]).unwrap().is_empty());
}

#[test]
fn a_failing_step_leaves_the_file_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.redb");
    let db = v1_store(&path);
    let txn = db.begin_write().unwrap();
    let failing = Migration { from: 2, what: "a step that fails", run: broken };
    let e = init_schema_with(&txn, &path, 3, &[STEP_2, failing]).unwrap_err();
    // The caller drops the transaction on error: nothing of step 1→2 stays.
    drop(txn);
    let msg = e.to_string();
    assert!(msg.contains("from schema version 2 (a step that fails)"), "{msg}");
    assert!(msg.contains("was not changed"), "{msg}");
    assert_eq!(version(&db), 1);
    assert_eq!(run_ids(&db), [1, 2, 3]);
    let txn = db.begin_read().unwrap();
    let tables: Vec<String> =
        txn.list_tables().unwrap().map(|t| redb::TableHandle::name(&t).to_string()).collect();
    assert!(!tables.contains(&"notes_v2".to_string()), "{tables:?}");
}

#[test]
fn a_missing_step_and_a_newer_store_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.redb");
    let db = v1_store(&path);
    let txn = db.begin_write().unwrap();
    let e = init_schema_with(&txn, &path, 3, &[STEP_2]).unwrap_err();
    assert!(matches!(e, StoreError::MigrationMissing { from: 2, to: 3, .. }), "{e:?}");
    drop(txn);
    let txn = db.begin_write().unwrap();
    init_schema_with(&txn, &path, 3, &[STEP_2, STEP_3]).unwrap();
    txn.commit().unwrap();
    let txn = db.begin_write().unwrap();
    let e = init_schema_with(&txn, &path, 2, &[STEP_2]).unwrap_err();
    assert!(matches!(e, StoreError::NewerSchema { found: 3, supported: 2, .. }), "{e:?}");
}

/// Whether `steps` hold exactly one step from each version below `version`, and no other.
fn covers(steps: &[Migration], version: u32) -> bool {
    let mut from: Vec<u32> = steps.iter().map(|m| m.from).collect();
    from.sort_unstable();
    from == (1..version).collect::<Vec<_>>()
}

#[test]
fn the_shipped_steps_cover_every_older_version() {
    assert!(covers(crate::store::MIGRATIONS, SCHEMA_VERSION), "one upgrade step per older version");
    // The rule itself: a gap, a duplicate or a step past the version is caught.
    assert!(covers(&[STEP_2, STEP_3], 3));
    assert!(!covers(&[STEP_3], 3));
    assert!(!covers(&[STEP_2, STEP_2], 2));
    assert!(!covers(&[STEP_2, STEP_3], 2));
}
