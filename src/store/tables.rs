//! The on-disk schema: table definitions (names carry a version), the schema version kept in
//! `meta`, and the versioned encoding of values (one format byte, then JSON).
//!
//! redb has no migrations (pitfalls B2-5): a changed value layout gets a new format byte (old
//! ones stay decodable); a changed key layout gets a new table name plus a copy at open.

use std::path::Path;

use redb::{ReadableTable, TableDefinition, WriteTransaction};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::StoreError;

/// The schema version this build writes and the highest it can open.
pub const SCHEMA_VERSION: u32 = 2;

/// Internal counters and the schema version: `schema_version`, `next_run_id`,
/// `last_ok.<kind>`, `latest_snapshot`, `latest_billed_snapshot`, `latest_billed_run`.
/// Unversioned name and fixed types: it is how versions are found.
pub(crate) const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
/// Caller metadata for [`super::Store::put_meta`]: key → encoded JSON value.
pub(crate) const KV: TableDefinition<&str, &[u8]> = TableDefinition::new("kv_v1");
/// Every run record by id.
pub(crate) const RUNS: TableDefinition<u64, &[u8]> = TableDefinition::new("runs_v1");
/// Ids of runs currently recorded as running (an index so start-up need not scan all runs).
pub(crate) const RUNNING: TableDefinition<u64, ()> = TableDefinition::new("running_v1");
/// The latest usage snapshot, one row per customer (materialised; rewritten per changed row).
pub(crate) const CURRENT: TableDefinition<u64, &[u8]> = TableDefinition::new("usage_current_v1");
/// One row per stored usage snapshot, keyed by the run that first produced its content:
/// when it was observed and how to undo it (see `snapshots.rs`).
pub(crate) const SNAPSHOTS: TableDefinition<u64, &[u8]> =
    TableDefinition::new("usage_snapshots_v1");
/// Count changes: (customer, product, run) → (observed at, unix µs; count).
pub(crate) const HISTORY: TableDefinition<(u64, &str, u64), (i64, u64)> =
    TableDefinition::new("usage_history_v1");
/// Customer renames: (customer, run) → encoded [`super::Rename`].
pub(crate) const RENAMES: TableDefinition<(u64, u64), &[u8]> = TableDefinition::new("renames_v1");
/// Billed snapshots, whole, keyed by the billing run that first produced the content.
pub(crate) const BILLED: TableDefinition<u64, &[u8]> = TableDefinition::new("billed_snapshots_v1");
/// Service lists per user group id (a rebuildable cache).
pub(crate) const SERVICE_CACHE: TableDefinition<u64, &[u8]> =
    TableDefinition::new("service_cache_v1");

/// Names of every table, for row counting in tests and diagnostics.
pub(crate) const ALL_TABLE_NAMES: [&str; 10] = [
    "meta",
    "kv_v1",
    "runs_v1",
    "running_v1",
    "usage_current_v1",
    "usage_snapshots_v1",
    "usage_history_v1",
    "renames_v1",
    "billed_snapshots_v1",
    "service_cache_v1",
];

pub(crate) const KEY_SCHEMA: &str = "schema_version";
pub(crate) const KEY_NEXT_RUN: &str = "next_run_id";
pub(crate) const KEY_LATEST_SNAPSHOT: &str = "latest_snapshot";
pub(crate) const KEY_LATEST_BILLED: &str = "latest_billed_snapshot";
pub(crate) const KEY_LATEST_BILLED_RUN: &str = "latest_billed_run";

/// The `meta` key holding the id of the latest successful run of `kind`.
pub(crate) fn key_last_ok(kind: crate::model::RunKind) -> &'static str {
    match kind {
        crate::model::RunKind::Vendor => "last_ok.vendor",
        crate::model::RunKind::Billing => "last_ok.billing",
        crate::model::RunKind::Push => "last_ok.push",
    }
}

/// The format byte in front of every encoded value.
const FORMAT_JSON_V1: u8 = 1;

/// Encodes a value as one format byte plus JSON.
pub(crate) fn encode<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    let mut out = vec![FORMAT_JSON_V1];
    // Serialising our own plain data types (maps with string keys) cannot fail.
    serde_json::to_writer(&mut out, value).expect("store values serialise to JSON");
    out
}

/// Decodes a value written by [`encode`]; `what` names it in the error.
pub(crate) fn decode<T: DeserializeOwned>(
    path: &Path,
    what: &'static str,
    bytes: &[u8],
) -> Result<T, StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt { path: path.to_path_buf(), what, reason };
    match bytes.split_first() {
        Some((&FORMAT_JSON_V1, rest)) => {
            serde_json::from_slice(rest).map_err(|e| corrupt(e.to_string()))
        }
        Some((other, _)) => Err(corrupt(format!("unknown value format {other}"))),
        None => Err(corrupt("empty value".into())),
    }
}

/// One schema step: turns a store of schema version `from` into version `from + 1` inside the
/// caller's write transaction (a new table plus a copy, pitfalls B2-5). When a change needs
/// one, raise [`SCHEMA_VERSION`] and add the step to `MIGRATIONS` (in `store/mod.rs`, where
/// the modules owning the tables are wired); never edit or remove a step that shipped, and
/// keep a fixture store of the old version (tests/fixtures/).
#[derive(Clone, Copy)]
pub(crate) struct Migration {
    /// The version the step starts from.
    pub from: u32,
    /// What it does, for the log line and errors.
    pub what: &'static str,
    /// The step.
    pub run: fn(&WriteTransaction, &Path) -> Result<(), StoreError>,
}

/// Creates every table, and checks, migrates or writes the schema version, in `txn`. Returns
/// an error (and the caller aborts the transaction, so a failed upgrade leaves the file as it
/// was) when the file is newer than this build or a step fails.
pub(crate) fn init_schema(
    txn: &WriteTransaction,
    path: &Path,
    steps: &[Migration],
) -> Result<(), StoreError> {
    init_schema_with(txn, path, SCHEMA_VERSION, steps)?;
    let err =
        |e: redb::TableError| StoreError::db("create the store tables", path.to_path_buf(), e);
    txn.open_table(KV).map_err(err)?;
    txn.open_table(RUNS).map_err(err)?;
    txn.open_table(RUNNING).map_err(err)?;
    txn.open_table(CURRENT).map_err(err)?;
    txn.open_table(SNAPSHOTS).map_err(err)?;
    txn.open_table(HISTORY).map_err(err)?;
    txn.open_table(RENAMES).map_err(err)?;
    txn.open_table(BILLED).map_err(err)?;
    txn.open_table(SERVICE_CACHE).map_err(err)?;
    Ok(())
}

/// Reads the schema version and brings it to `target` with `steps`, all in `txn`: a new store
/// gets `target`; an older one runs each step from its version up, in order, then records
/// `target`; a newer one is refused. Returns the steps run.
pub(crate) fn init_schema_with(
    txn: &WriteTransaction,
    path: &Path,
    target: u32,
    steps: &[Migration],
) -> Result<Vec<&'static str>, StoreError> {
    let found = {
        let meta = txn
            .open_table(META)
            .map_err(|e| StoreError::db("create the store tables", path.to_path_buf(), e))?;
        meta.get(KEY_SCHEMA)
            .map_err(|e| StoreError::db("read the schema version", path.to_path_buf(), e))?
            .map(|v| v.value())
    };
    let found = match found {
        Some(v) if v > u64::from(target) => {
            return Err(StoreError::NewerSchema {
                path: path.to_path_buf(),
                found: u32::try_from(v).unwrap_or(u32::MAX),
                supported: target,
            });
        }
        Some(v) => u32::try_from(v).unwrap_or(target),
        // A new file: it is created at the current version.
        None => target,
    };
    let mut ran = Vec::new();
    for from in found..target {
        let step = steps.iter().find(|m| m.from == from).ok_or_else(|| {
            StoreError::MigrationMissing { path: path.to_path_buf(), from, to: target }
        })?;
        (step.run)(txn, path).map_err(|source| StoreError::Migration {
            path: path.to_path_buf(),
            from,
            what: step.what,
            source: Box::new(source),
        })?;
        ran.push(step.what);
    }
    let mut meta = txn
        .open_table(META)
        .map_err(|e| StoreError::db("create the store tables", path.to_path_buf(), e))?;
    meta.insert(KEY_SCHEMA, u64::from(target))
        .map_err(|e| StoreError::db("write the schema version", path.to_path_buf(), e))?;
    if !ran.is_empty() {
        tracing::info!(
            "store {} upgraded from schema version {found} to {target} ({}); the upgrade \
             commits in one transaction with every run kept",
            path.display(),
            ran.join("; ")
        );
    }
    Ok(ran)
}

#[cfg(test)]
#[path = "migrate_tests.rs"]
mod migrate_tests;
