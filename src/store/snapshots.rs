//! Usage snapshots. The latest snapshot is kept materialised, one row per customer
//! (`usage_current_v1`); each stored snapshot also has a row holding the previous values of
//! just the customers it changed (an undo record), so an older snapshot is rebuilt by undoing
//! newer ones and a run that changes nothing writes no snapshot row at all.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use redb::{ReadableTable, WriteTransaction};
use serde::{Deserialize, Serialize};

use super::history::record_change;
use super::runs::{put_run, take_running};
use super::tables::{self, CURRENT, META, RUNS, SNAPSHOTS};
use super::{Inner, Store, StoreError};
use crate::model::{
    CountingReport, CustomerId, CustomerUsage, RunId, RunKind, RunOutcome, RunRecord, UsageSnapshot,
};

/// The stored row of one usage snapshot.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct SnapshotRow {
    /// When the run that first produced this content observed it.
    pub(crate) observed_at: DateTime<Utc>,
    /// What each customer this snapshot changed looked like in the previous snapshot
    /// (`None`: absent). Empty when no older snapshot is kept.
    pub(crate) undo: Vec<(CustomerId, Option<CustomerUsage>)>,
}

impl Store {
    /// Finishes vendor run `id` as `Ok` in ONE write transaction: the run record, the snapshot
    /// (only when `customers` differs from the latest; otherwise the record points at the
    /// existing one) and the history of what changed. Nothing is written if any step fails.
    pub async fn commit_vendor_run(
        &self,
        id: RunId,
        finished_at: DateTime<Utc>,
        requests: BTreeMap<String, u64>,
        customers: Vec<CustomerUsage>,
    ) -> Result<RunRecord, StoreError> {
        self.commit_vendor_run_with(id, finished_at, requests, customers, None).await
    }

    /// [`Store::commit_vendor_run`] keeping how the run counted in its record.
    pub async fn commit_vendor_run_with(
        &self,
        id: RunId,
        finished_at: DateTime<Utc>,
        requests: BTreeMap<String, u64>,
        mut customers: Vec<CustomerUsage>,
        counting: Option<CountingReport>,
    ) -> Result<RunRecord, StoreError> {
        self.blocking_run_end(id, "commit a vendor run", move |inner| {
            customers.sort_by_key(|c| c.id);
            if let Some(w) = customers.windows(2).find(|w| w[0].id == w[1].id) {
                return Err(StoreError::DuplicateCustomer { run: id, customer: w[0].id });
            }
            let txn = inner.write()?;
            let mut record = take_running(inner, &txn, id)?;
            if record.kind != RunKind::Vendor {
                return Err(StoreError::WrongKind {
                    id,
                    actual: record.kind,
                    expected: RunKind::Vendor,
                });
            }
            record.snapshot = Some(write_snapshot(inner, &txn, id, finished_at, customers)?);
            record.finished_at = Some(finished_at);
            record.outcome = RunOutcome::Ok;
            record.requests = requests;
            record.counting = counting;
            put_run(inner, &txn, &record)?;
            txn.commit().map_err(inner.err("commit the vendor run"))?;
            Ok(record)
        })
        .await
    }

    /// The latest complete usage snapshot: `run_id` is the latest successful vendor run and
    /// `observed_at` its end, even when that run found nothing changed. `None` before the
    /// first success. Failed runs never change what this returns.
    pub async fn latest_usage_snapshot(&self) -> Result<Option<UsageSnapshot>, StoreError> {
        self.blocking("read the latest snapshot", |inner| {
            let txn = inner.read()?;
            let meta = txn.open_table(META).map_err(inner.err("open meta"))?;
            let last_ok =
                meta.get(tables::key_last_ok(RunKind::Vendor)).map_err(inner.err("read meta"))?;
            let Some(run_id) = last_ok.map(|v| v.value()) else {
                return Ok(None);
            };
            let runs = txn.open_table(RUNS).map_err(inner.err("open runs"))?;
            let run = super::runs::read_run(inner, &runs, run_id)?
                .ok_or_else(|| StoreError::UnknownRun { id: run_id, path: inner.path.clone() })?;
            let current = txn.open_table(CURRENT).map_err(inner.err("open the latest snapshot"))?;
            let customers = read_current(inner, &current)?.into_values().collect();
            Ok(Some(UsageSnapshot {
                run_id,
                observed_at: run.finished_at.unwrap_or(run.started_at),
                customers,
            }))
        })
        .await
    }

    /// The stored snapshot first produced by run `snapshot_id` (the id in
    /// [`RunRecord::snapshot`]), rebuilt from the latest; `None` if never stored or pruned.
    pub async fn snapshot(&self, snapshot_id: RunId) -> Result<Option<UsageSnapshot>, StoreError> {
        self.blocking("read a snapshot", move |inner| {
            let txn = inner.read()?;
            let snapshots = txn.open_table(SNAPSHOTS).map_err(inner.err("open snapshots"))?;
            let Some(row) = snapshots.get(snapshot_id).map_err(inner.err("read a snapshot"))?
            else {
                return Ok(None);
            };
            let row: SnapshotRow = tables::decode(&inner.path, "snapshot", row.value())?;
            let current = txn.open_table(CURRENT).map_err(inner.err("open the latest snapshot"))?;
            let mut customers = read_current(inner, &current)?;
            let newer = snapshots.range(snapshot_id + 1..).map_err(inner.err("read snapshots"))?;
            for newer in newer.rev() {
                let (_, v) = newer.map_err(inner.err("read snapshots"))?;
                let newer: SnapshotRow = tables::decode(&inner.path, "snapshot", v.value())?;
                for (cid, before) in newer.undo {
                    match before {
                        Some(c) => customers.insert(cid, c),
                        None => customers.remove(&cid),
                    };
                }
            }
            Ok(Some(UsageSnapshot {
                run_id: snapshot_id,
                observed_at: row.observed_at,
                customers: customers.into_values().collect(),
            }))
        })
        .await
    }
}

/// Reads the materialised latest snapshot.
fn read_current(
    inner: &Inner,
    current: &impl ReadableTable<u64, &'static [u8]>,
) -> Result<BTreeMap<CustomerId, CustomerUsage>, StoreError> {
    let mut out = BTreeMap::new();
    for row in current.iter().map_err(inner.err("read the latest snapshot"))? {
        let (k, v) = row.map_err(inner.err("read the latest snapshot"))?;
        out.insert(k.value(), tables::decode(&inner.path, "customer usage", v.value())?);
    }
    Ok(out)
}

/// Stores `customers` (sorted, unique) as the snapshot of run `id` unless it equals the
/// latest; returns the id of the snapshot the run produced or confirmed.
fn write_snapshot(
    inner: &Inner,
    txn: &WriteTransaction,
    id: RunId,
    observed_at: DateTime<Utc>,
    customers: Vec<CustomerUsage>,
) -> Result<RunId, StoreError> {
    let mut meta = txn.open_table(META).map_err(inner.err("open meta"))?;
    let latest =
        meta.get(tables::KEY_LATEST_SNAPSHOT).map_err(inner.err("read meta"))?.map(|v| v.value());
    let mut current = txn.open_table(CURRENT).map_err(inner.err("open the latest snapshot"))?;
    // Customer by customer against the stored one, so the previous snapshot is never held
    // whole beside the new one (10,000 customers at the largest resellers).
    let new_ids: BTreeSet<CustomerId> = customers.iter().map(|c| c.id).collect();
    let mut gone = Vec::new();
    for row in current.iter().map_err(inner.err("read the latest snapshot"))? {
        let (k, _) = row.map_err(inner.err("read the latest snapshot"))?;
        if !new_ids.contains(&k.value()) {
            gone.push(k.value());
        }
    }
    drop(new_ids);
    let mut undo = Vec::new();
    for c in &customers {
        let prev: Option<CustomerUsage> =
            match current.get(c.id).map_err(inner.err("read the latest snapshot"))? {
                Some(v) => Some(tables::decode(&inner.path, "customer usage", v.value())?),
                None => None,
            };
        if prev.as_ref() != Some(c) {
            record_change(inner, txn, id, observed_at, prev.as_ref(), Some(c))?;
            current
                .insert(c.id, tables::encode(c).as_slice())
                .map_err(inner.err("write a customer"))?;
            undo.push((c.id, prev));
        }
    }
    for cid in gone {
        let prev: CustomerUsage =
            match current.remove(cid).map_err(inner.err("remove a customer"))? {
                Some(v) => tables::decode(&inner.path, "customer usage", v.value())?,
                None => continue,
            };
        record_change(inner, txn, id, observed_at, Some(&prev), None)?;
        undo.push((cid, Some(prev)));
    }
    if let Some(latest) = latest
        && undo.is_empty()
    {
        return Ok(latest);
    }
    // Undo records exist to rebuild older snapshots; the first snapshot has none before it.
    let row = SnapshotRow { observed_at, undo: if latest.is_some() { undo } else { Vec::new() } };
    txn.open_table(SNAPSHOTS)
        .map_err(inner.err("open snapshots"))?
        .insert(id, tables::encode(&row).as_slice())
        .map_err(inner.err("write a snapshot"))?;
    meta.insert(tables::KEY_LATEST_SNAPSHOT, id)
        .map_err(inner.err("record the latest snapshot"))?;
    Ok(id)
}
