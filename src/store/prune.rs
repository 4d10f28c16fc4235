//! Retention. Snapshots older than the snapshot window are dropped oldest first, never the
//! latest; history points and run records older than the history retention are dropped, but
//! the latest point of every (customer, product) and the last success of every kind stay.

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::{DateTime, Utc};
use redb::ReadableTable;
use serde::Serialize;

use super::billing::BilledRow;
use super::snapshots::SnapshotRow;
use super::tables::{self, BILLED, HISTORY, META, RENAMES, RUNS, SNAPSHOTS};
use super::{Inner, Store, StoreError};
use crate::model::{RunKind, RunOutcome, RunRecord};

/// What one [`Store::prune`] removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PruneStats {
    /// Stored snapshots dropped (older snapshots can no longer be rebuilt).
    pub snapshots: u64,
    /// Stored billed snapshots dropped.
    pub billed_snapshots: u64,
    /// History points dropped.
    pub history_points: u64,
    /// Renames dropped.
    pub renames: u64,
    /// Run records dropped.
    pub runs: u64,
    /// Events dropped from the event log.
    pub events: u64,
}

impl Store {
    /// Drops what is past its retention, in one transaction:
    /// - usage and billed snapshots observed before `now - snapshot_retention`, oldest first,
    ///   always keeping the latest (a run record may then point at a snapshot that
    ///   [`Store::snapshot`] no longer returns; its counts survive in the history);
    /// - history points observed before `now - history_retention`, except the latest point per
    ///   (customer, product), which tells since when the current value holds; that latest
    ///   point is dropped too when it is a 0 (the product is gone, there is nothing to date);
    /// - renames and finished run records older than the history retention, except the last
    ///   success of each kind;
    /// - events recorded before the history retention, except those above the event log's
    ///   low-water mark (not yet delivered) once a consumer has set one.
    pub async fn prune(
        &self,
        now: DateTime<Utc>,
        snapshot_retention: Duration,
        history_retention: Duration,
    ) -> Result<PruneStats, StoreError> {
        let snap_cutoff = cutoff(now, snapshot_retention);
        let hist_cutoff = cutoff(now, history_retention);
        self.blocking("prune the store", move |inner| {
            let txn = inner.write()?;
            let mut stats = PruneStats::default();
            prune_snapshots(inner, &txn, snap_cutoff, &mut stats)?;
            prune_billed(inner, &txn, snap_cutoff, &mut stats)?;
            prune_history(inner, &txn, hist_cutoff, &mut stats)?;
            prune_runs(inner, &txn, hist_cutoff, &mut stats)?;
            stats.events = super::events::prune_in(inner, &txn, hist_cutoff)?;
            txn.commit().map_err(inner.err("commit the pruning"))?;
            Ok(stats)
        })
        .await
    }
}

/// `now - retention`, saturating at the earliest representable time.
fn cutoff(now: DateTime<Utc>, retention: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(retention)
        .ok()
        .and_then(|d| now.checked_sub_signed(d))
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

fn prune_snapshots(
    inner: &Inner,
    txn: &redb::WriteTransaction,
    cutoff: DateTime<Utc>,
    stats: &mut PruneStats,
) -> Result<(), StoreError> {
    let meta = txn.open_table(META).map_err(inner.err("open meta"))?;
    let latest =
        meta.get(tables::KEY_LATEST_SNAPSHOT).map_err(inner.err("read meta"))?.map(|v| v.value());
    let mut table = txn.open_table(SNAPSHOTS).map_err(inner.err("open snapshots"))?;
    let mut drop = Vec::new();
    // Oldest first, stopping at the first one to keep: rebuilding a kept snapshot needs
    // every newer undo record, so only a prefix may go.
    for row in table.iter().map_err(inner.err("read snapshots"))? {
        let (k, v) = row.map_err(inner.err("read snapshots"))?;
        let row: SnapshotRow = tables::decode(&inner.path, "snapshot", v.value())?;
        if Some(k.value()) == latest || row.observed_at >= cutoff {
            break;
        }
        drop.push(k.value());
    }
    for id in &drop {
        table.remove(*id).map_err(inner.err("drop a snapshot"))?;
    }
    stats.snapshots = drop.len() as u64;
    if !drop.is_empty() {
        // The new oldest snapshot has nothing older to rebuild: its undo record is dead weight.
        let first: Option<(u64, SnapshotRow)> = match table
            .first()
            .map_err(inner.err("read snapshots"))?
        {
            Some((k, v)) => Some((k.value(), tables::decode(&inner.path, "snapshot", v.value())?)),
            None => None,
        };
        if let Some((id, mut row)) = first
            && !row.undo.is_empty()
        {
            row.undo.clear();
            table
                .insert(id, tables::encode(&row).as_slice())
                .map_err(inner.err("write a snapshot"))?;
        }
    }
    Ok(())
}

fn prune_billed(
    inner: &Inner,
    txn: &redb::WriteTransaction,
    cutoff: DateTime<Utc>,
    stats: &mut PruneStats,
) -> Result<(), StoreError> {
    let meta = txn.open_table(META).map_err(inner.err("open meta"))?;
    let latest =
        meta.get(tables::KEY_LATEST_BILLED).map_err(inner.err("read meta"))?.map(|v| v.value());
    let mut table = txn.open_table(BILLED).map_err(inner.err("open billed snapshots"))?;
    let mut drop = Vec::new();
    for row in table.iter().map_err(inner.err("read billed snapshots"))? {
        let (k, v) = row.map_err(inner.err("read billed snapshots"))?;
        let row: BilledRow = tables::decode(&inner.path, "billed snapshot", v.value())?;
        if Some(k.value()) != latest && row.observed_at < cutoff {
            drop.push(k.value());
        }
    }
    for id in &drop {
        table.remove(*id).map_err(inner.err("drop a billed snapshot"))?;
    }
    stats.billed_snapshots = drop.len() as u64;
    Ok(())
}

fn prune_history(
    inner: &Inner,
    txn: &redb::WriteTransaction,
    cutoff: DateTime<Utc>,
    stats: &mut PruneStats,
) -> Result<(), StoreError> {
    let cut = cutoff.timestamp_micros();
    let mut history = txn.open_table(HISTORY).map_err(inner.err("open history"))?;
    let mut drop: Vec<(u64, String, u64)> = Vec::new();
    {
        // Walk each (customer, product) group in run order; a point may go when it is old and
        // a newer point exists, or when it is the last, old, and 0.
        let mut prev: Option<((u64, String, u64), i64, u64)> = None;
        for row in history.iter().map_err(inner.err("read history"))? {
            let (k, v) = row.map_err(inner.err("read history"))?;
            let (c, p, r) = k.value();
            let (at, count) = v.value();
            if let Some(((pc, pp, pr), pat, pcount)) = prev.take() {
                let same_group = pc == c && pp == p;
                if pat < cut && (same_group || pcount == 0) {
                    drop.push((pc, pp, pr));
                }
            }
            prev = Some(((c, p.to_owned(), r), at, count));
        }
        if let Some((key, at, count)) = prev
            && at < cut
            && count == 0
        {
            drop.push(key);
        }
    }
    for (c, p, r) in &drop {
        history.remove((*c, p.as_str(), *r)).map_err(inner.err("drop history"))?;
    }
    stats.history_points = drop.len() as u64;

    let mut renames = txn.open_table(RENAMES).map_err(inner.err("open renames"))?;
    let mut old = Vec::new();
    for row in renames.iter().map_err(inner.err("read renames"))? {
        let (k, v) = row.map_err(inner.err("read renames"))?;
        let rename: super::Rename = tables::decode(&inner.path, "rename", v.value())?;
        if rename.observed_at < cutoff {
            old.push(k.value());
        }
    }
    for key in &old {
        renames.remove(*key).map_err(inner.err("drop a rename"))?;
    }
    stats.renames = old.len() as u64;
    Ok(())
}

fn prune_runs(
    inner: &Inner,
    txn: &redb::WriteTransaction,
    cutoff: DateTime<Utc>,
    stats: &mut PruneStats,
) -> Result<(), StoreError> {
    let meta = txn.open_table(META).map_err(inner.err("open meta"))?;
    let mut keep = BTreeSet::new();
    for kind in [RunKind::Vendor, RunKind::Billing, RunKind::Push] {
        if let Some(v) = meta.get(tables::key_last_ok(kind)).map_err(inner.err("read meta"))? {
            keep.insert(v.value());
        }
    }
    let mut runs = txn.open_table(RUNS).map_err(inner.err("open runs"))?;
    let mut drop = Vec::new();
    for row in runs.iter().map_err(inner.err("read runs"))? {
        let (_, v) = row.map_err(inner.err("read runs"))?;
        let run: RunRecord = tables::decode(&inner.path, "run record", v.value())?;
        let ended = run.finished_at.unwrap_or(run.started_at);
        if ended >= cutoff {
            // Ids grow with time, so everything after this is newer still.
            break;
        }
        if run.outcome != RunOutcome::Running && !keep.contains(&run.id) {
            drop.push(run.id);
        }
    }
    for id in &drop {
        runs.remove(*id).map_err(inner.err("drop a run"))?;
    }
    stats.runs = drop.len() as u64;
    Ok(())
}
