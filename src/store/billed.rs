//! Billed snapshots: the complete output of a billing run (accounts and billed lines), stored
//! whole, keyed by the run that first produced the content. A run that reads exactly what the
//! latest snapshot holds stores nothing new: its record points at the existing snapshot.
//!
//! The table is created on first write; a store that never ran billing simply has none.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use redb::{ReadableTable, TableDefinition, TableError};
use serde::{Deserialize, Serialize};

use super::runs::{put_run, read_run, take_running};
use super::tables::{self, META, RUNS};
use super::{Inner, Store, StoreError};
use crate::model::{Account, BilledLine, BilledSnapshot, RunId, RunKind, RunOutcome, RunRecord};

/// One row per stored billed snapshot, keyed by the run that first produced its content.
const BILLED_SNAPSHOTS: TableDefinition<u64, &[u8]> = TableDefinition::new("billed_snapshots_v1");

/// The `meta` key holding the id of the latest stored billed snapshot.
const KEY_LATEST_BILLED: &str = "latest_billed_snapshot";

/// The stored content of one billed snapshot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct BilledRow {
    /// When the run that first produced this content finished reading it.
    observed_at: DateTime<Utc>,
    /// Every account, sorted by id.
    accounts: Vec<Account>,
    /// Every line, in a canonical order (see [`canonical_order`]).
    lines: Vec<BilledLine>,
}

/// Sorts accounts by id and lines by (account, product, source), so the same content read in
/// another order compares equal and is not stored twice.
fn canonical_order(accounts: &mut [Account], lines: &mut [BilledLine]) {
    accounts.sort();
    lines.sort_by(|a, b| {
        (&a.account_id, &a.product_id, &a.source_ref).cmp(&(
            &b.account_id,
            &b.product_id,
            &b.source_ref,
        ))
    });
}

impl Store {
    /// Finishes billing run `id` as `Ok` in ONE write transaction: the run record and the
    /// billed snapshot (stored only when it differs from the latest; otherwise the record
    /// points at the existing one). Nothing is written if any step fails.
    pub async fn commit_billing_run(
        &self,
        id: RunId,
        finished_at: DateTime<Utc>,
        requests: BTreeMap<String, u64>,
        mut accounts: Vec<Account>,
        mut lines: Vec<BilledLine>,
    ) -> Result<RunRecord, StoreError> {
        self.blocking("commit a billing run", move |inner| {
            canonical_order(&mut accounts, &mut lines);
            let txn = inner.write()?;
            let mut record = take_running(inner, &txn, id)?;
            if record.kind != RunKind::Billing {
                return Err(StoreError::WrongKind {
                    id,
                    actual: record.kind,
                    expected: RunKind::Billing,
                });
            }
            let snapshot = {
                let mut meta = txn.open_table(META).map_err(inner.err("open meta"))?;
                let mut table =
                    txn.open_table(BILLED_SNAPSHOTS).map_err(inner.err("open billed snapshots"))?;
                let latest =
                    meta.get(KEY_LATEST_BILLED).map_err(inner.err("read meta"))?.map(|v| v.value());
                let unchanged = match latest {
                    Some(latest) => {
                        match table.get(latest).map_err(inner.err("read a billed snapshot"))? {
                            Some(v) => {
                                let row: BilledRow =
                                    tables::decode(&inner.path, "billed snapshot", v.value())?;
                                row.accounts == accounts && row.lines == lines
                            }
                            None => false,
                        }
                    }
                    None => false,
                };
                match latest {
                    Some(latest) if unchanged => latest,
                    _ => {
                        let row = BilledRow { observed_at: finished_at, accounts, lines };
                        table
                            .insert(id, tables::encode(&row).as_slice())
                            .map_err(inner.err("write a billed snapshot"))?;
                        meta.insert(KEY_LATEST_BILLED, id)
                            .map_err(inner.err("record the latest billed snapshot"))?;
                        id
                    }
                }
            };
            record.snapshot = Some(snapshot);
            record.finished_at = Some(finished_at);
            record.outcome = RunOutcome::Ok;
            record.requests = requests;
            put_run(inner, &txn, &record)?;
            txn.commit().map_err(inner.err("commit the billing run"))?;
            Ok(record)
        })
        .await
    }

    /// The latest complete billed snapshot: `run_id` is the latest successful billing run and
    /// `observed_at` its end, even when that run found nothing changed. `None` before the
    /// first success. A failed run never changes what this returns.
    pub async fn latest_billed_snapshot(&self) -> Result<Option<BilledSnapshot>, StoreError> {
        self.blocking("read the latest billed snapshot", |inner| {
            let txn = inner.read()?;
            let meta = txn.open_table(META).map_err(inner.err("open meta"))?;
            let last_ok =
                meta.get(tables::key_last_ok(RunKind::Billing)).map_err(inner.err("read meta"))?;
            let Some(run_id) = last_ok.map(|v| v.value()) else {
                return Ok(None);
            };
            let runs = txn.open_table(RUNS).map_err(inner.err("open runs"))?;
            let run = read_run(inner, &runs, run_id)?
                .ok_or_else(|| StoreError::UnknownRun { id: run_id, path: inner.path.clone() })?;
            let Some(snapshot_id) = run.snapshot else {
                return Ok(None);
            };
            let row = read_row(inner, &txn, snapshot_id)?;
            Ok(row.map(|row| BilledSnapshot {
                run_id,
                observed_at: run.finished_at.unwrap_or(run.started_at),
                accounts: row.accounts,
                lines: row.lines,
            }))
        })
        .await
    }

    /// The billed snapshot first stored by run `snapshot_id` (the id in
    /// [`RunRecord::snapshot`] of a billing run), as observed then; `None` if never stored.
    pub async fn billed_snapshot(
        &self,
        snapshot_id: RunId,
    ) -> Result<Option<BilledSnapshot>, StoreError> {
        self.blocking("read a billed snapshot", move |inner| {
            let txn = inner.read()?;
            let row = read_row(inner, &txn, snapshot_id)?;
            Ok(row.map(|row| BilledSnapshot {
                run_id: snapshot_id,
                observed_at: row.observed_at,
                accounts: row.accounts,
                lines: row.lines,
            }))
        })
        .await
    }
}

/// Reads one stored billed snapshot; a missing table (no billing run yet) reads as none.
fn read_row(
    inner: &Inner,
    txn: &redb::ReadTransaction,
    id: RunId,
) -> Result<Option<BilledRow>, StoreError> {
    let table = match txn.open_table(BILLED_SNAPSHOTS) {
        Ok(t) => t,
        Err(TableError::TableDoesNotExist(_)) => return Ok(None),
        Err(e) => return Err(StoreError::db("open billed snapshots", inner.path.clone(), e)),
    };
    match table.get(id).map_err(inner.err("read a billed snapshot"))? {
        Some(v) => Ok(Some(tables::decode(&inner.path, "billed snapshot", v.value())?)),
        None => Ok(None),
    }
}
