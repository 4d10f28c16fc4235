//! Billed snapshots: what the PSA (or CSV) bills, stored whole per content change. They are
//! small (one line per billed product per account), so a full copy per change is cheaper than
//! undo records; a billing run that reads the same content points at the existing snapshot.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use redb::{ReadableTable, WriteTransaction};
use serde::{Deserialize, Serialize};

use super::runs::{put_run, read_run, take_running};
use super::tables::{self, BILLED, META, RUNS};
use super::{Inner, Store, StoreError};
use crate::model::{Account, BilledLine, BilledSnapshot, RunId, RunKind, RunOutcome, RunRecord};

/// The stored content of one billed snapshot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct BilledRow {
    /// When the run that first produced this content read it.
    pub(crate) observed_at: DateTime<Utc>,
    pub(crate) accounts: Vec<Account>,
    pub(crate) lines: Vec<BilledLine>,
}

impl Store {
    /// Finishes billing run `id` as `Ok` in ONE write transaction: the run record and the billed
    /// snapshot (only when its content differs from the latest; otherwise the record points at
    /// the existing one). Accounts and lines are stored in a canonical order, so a source that
    /// lists the same lines in another order does not make a new snapshot.
    pub async fn commit_billing_run(
        &self,
        id: RunId,
        finished_at: DateTime<Utc>,
        requests: BTreeMap<String, u64>,
        mut accounts: Vec<Account>,
        mut lines: Vec<BilledLine>,
    ) -> Result<RunRecord, StoreError> {
        accounts.sort();
        lines.sort_by(|a, b| {
            (&a.account_id, &a.product_id, &a.source_ref).cmp(&(
                &b.account_id,
                &b.product_id,
                &b.source_ref,
            ))
        });
        self.blocking_run_end(id, "commit a billing run", move |inner| {
            let txn = inner.write()?;
            let mut record = take_running(inner, &txn, id)?;
            if record.kind != RunKind::Billing {
                return Err(StoreError::WrongKind {
                    id,
                    actual: record.kind,
                    expected: RunKind::Billing,
                });
            }
            let row = BilledRow { observed_at: finished_at, accounts, lines };
            record.snapshot = Some(write_billed(inner, &txn, id, row)?);
            record.finished_at = Some(finished_at);
            record.outcome = RunOutcome::Ok;
            record.requests = requests;
            put_run(inner, &txn, &record)?;
            txn.open_table(META)
                .map_err(inner.err("open meta"))?
                .insert(tables::KEY_LATEST_BILLED_RUN, id)
                .map_err(inner.err("record the latest billing run"))?;
            txn.commit().map_err(inner.err("commit the billing run"))?;
            Ok(record)
        })
        .await
    }

    /// The latest billed snapshot: `run_id` is the latest billing run committed through
    /// [`Store::commit_billing_run`], `observed_at` its end. `None` before the first.
    pub async fn latest_billed_snapshot(&self) -> Result<Option<BilledSnapshot>, StoreError> {
        self.blocking("read the latest billed snapshot", |inner| {
            let txn = inner.read()?;
            let meta = txn.open_table(META).map_err(inner.err("open meta"))?;
            let get = |key| -> Result<Option<u64>, StoreError> {
                Ok(meta.get(key).map_err(inner.err("read meta"))?.map(|v| v.value()))
            };
            let (Some(run_id), Some(snapshot_id)) =
                (get(tables::KEY_LATEST_BILLED_RUN)?, get(tables::KEY_LATEST_BILLED)?)
            else {
                return Ok(None);
            };
            let runs = txn.open_table(RUNS).map_err(inner.err("open runs"))?;
            let run = read_run(inner, &runs, run_id)?
                .ok_or_else(|| StoreError::UnknownRun { id: run_id, path: inner.path.clone() })?;
            let table = txn.open_table(BILLED).map_err(inner.err("open billed snapshots"))?;
            let row = read_billed(inner, &table, snapshot_id)?.ok_or_else(|| {
                StoreError::UnknownRun { id: snapshot_id, path: inner.path.clone() }
            })?;
            Ok(Some(BilledSnapshot {
                run_id,
                observed_at: run.finished_at.unwrap_or(run.started_at),
                accounts: row.accounts,
                lines: row.lines,
            }))
        })
        .await
    }

    /// The billed snapshot first produced by run `snapshot_id`; `None` if never stored or pruned.
    pub async fn billed_snapshot(
        &self,
        snapshot_id: RunId,
    ) -> Result<Option<BilledSnapshot>, StoreError> {
        self.blocking("read a billed snapshot", move |inner| {
            let txn = inner.read()?;
            let table = txn.open_table(BILLED).map_err(inner.err("open billed snapshots"))?;
            Ok(read_billed(inner, &table, snapshot_id)?.map(|row| BilledSnapshot {
                run_id: snapshot_id,
                observed_at: row.observed_at,
                accounts: row.accounts,
                lines: row.lines,
            }))
        })
        .await
    }
}

fn read_billed(
    inner: &Inner,
    table: &impl ReadableTable<u64, &'static [u8]>,
    id: RunId,
) -> Result<Option<BilledRow>, StoreError> {
    match table.get(id).map_err(inner.err("read a billed snapshot"))? {
        Some(v) => Ok(Some(tables::decode(&inner.path, "billed snapshot", v.value())?)),
        None => Ok(None),
    }
}

/// Stores `row` as run `id`'s billed snapshot unless its content equals the latest; returns
/// the id of the snapshot the run produced or confirmed.
fn write_billed(
    inner: &Inner,
    txn: &WriteTransaction,
    id: RunId,
    row: BilledRow,
) -> Result<RunId, StoreError> {
    let mut meta = txn.open_table(META).map_err(inner.err("open meta"))?;
    let mut table = txn.open_table(BILLED).map_err(inner.err("open billed snapshots"))?;
    let latest =
        meta.get(tables::KEY_LATEST_BILLED).map_err(inner.err("read meta"))?.map(|v| v.value());
    if let Some(latest) = latest
        && let Some(prev) = read_billed(inner, &table, latest)?
        && (&prev.accounts, &prev.lines) == (&row.accounts, &row.lines)
    {
        return Ok(latest);
    }
    table
        .insert(id, tables::encode(&row).as_slice())
        .map_err(inner.err("write a billed snapshot"))?;
    meta.insert(tables::KEY_LATEST_BILLED, id)
        .map_err(inner.err("record the latest billed snapshot"))?;
    Ok(id)
}
