//! Run records: begun durably as `running`, finished exactly once, aborted at start-up if a
//! crash left them running. Ids come from a counter in `meta`, so they never repeat, even
//! after a crash or after old runs are pruned.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use redb::{ReadableTable, Table, WriteTransaction};

use super::tables::{self, META, RUNNING, RUNS};
use super::unrecorded;
use super::{Inner, Store, StoreError};
use crate::model::{RunId, RunKind, RunOutcome, RunRecord};

impl Store {
    /// Records the start of a run and returns its id (strictly greater than every id handed
    /// out before by this file). Durable when it returns.
    pub async fn begin_run(
        &self,
        kind: RunKind,
        started_at: DateTime<Utc>,
    ) -> Result<RunId, StoreError> {
        self.blocking("begin a run", move |inner| {
            let txn = inner.write()?;
            let id = {
                let mut meta = txn.open_table(META).map_err(inner.err("open meta"))?;
                let mut runs = txn.open_table(RUNS).map_err(inner.err("open runs"))?;
                let counter = meta
                    .get(tables::KEY_NEXT_RUN)
                    .map_err(inner.err("read the run counter"))?
                    .map_or(1, |v| v.value());
                // Defensive: never below an id already present.
                let after_last =
                    runs.last().map_err(inner.err("read runs"))?.map_or(1, |(k, _)| k.value() + 1);
                let id = counter.max(after_last);
                let record = RunRecord {
                    id,
                    kind,
                    started_at,
                    finished_at: None,
                    outcome: RunOutcome::Running,
                    requests: BTreeMap::new(),
                    error: None,
                    snapshot: None,
                    counting: None,
                };
                runs.insert(id, tables::encode(&record).as_slice())
                    .map_err(inner.err("write a run"))?;
                meta.insert(tables::KEY_NEXT_RUN, id + 1)
                    .map_err(inner.err("bump the run counter"))?;
                txn.open_table(RUNNING)
                    .map_err(inner.err("open running"))?
                    .insert(id, ())
                    .map_err(inner.err("index a running run"))?;
                id
            };
            txn.commit().map_err(inner.err("commit the run start"))?;
            Ok(id)
        })
        .await
    }

    /// Finishes a running run as failed with `error` (words an operator can act on).
    pub async fn fail_run(
        &self,
        id: RunId,
        finished_at: DateTime<Utc>,
        error: String,
        requests: BTreeMap<String, u64>,
    ) -> Result<RunRecord, StoreError> {
        self.finish(id, finished_at, RunOutcome::Failed, Some(error), requests).await
    }

    /// Finishes a running run as cancelled (shutdown stopped it; nothing else was written);
    /// `reason` says what stopped it (a signal, Ctrl-C).
    pub async fn cancel_run(
        &self,
        id: RunId,
        finished_at: DateTime<Utc>,
        reason: String,
        requests: BTreeMap<String, u64>,
    ) -> Result<RunRecord, StoreError> {
        self.finish(id, finished_at, RunOutcome::Cancelled, Some(reason), requests).await
    }

    /// Finishes a run of a kind that produces no snapshot (push) with `outcome`.
    /// A vendor run must use [`Store::commit_vendor_run`] to finish as `Ok`.
    pub async fn commit_run(
        &self,
        id: RunId,
        finished_at: DateTime<Utc>,
        requests: BTreeMap<String, u64>,
        outcome: RunOutcome,
    ) -> Result<RunRecord, StoreError> {
        self.finish(id, finished_at, outcome, None, requests).await
    }

    async fn finish(
        &self,
        id: RunId,
        finished_at: DateTime<Utc>,
        outcome: RunOutcome,
        error: Option<String>,
        requests: BTreeMap<String, u64>,
    ) -> Result<RunRecord, StoreError> {
        self.blocking_run_end(id, "finish a run", move |inner| {
            let txn = inner.write()?;
            let mut record = take_running(inner, &txn, id)?;
            if outcome == RunOutcome::Ok && record.kind == RunKind::Vendor {
                return Err(StoreError::WrongKind {
                    id,
                    actual: RunKind::Vendor,
                    expected: RunKind::Push,
                });
            }
            record.finished_at = Some(finished_at);
            record.outcome = outcome;
            record.error = error;
            record.requests = requests;
            put_run(inner, &txn, &record)?;
            txn.commit().map_err(inner.err("commit the run end"))?;
            Ok(record)
        })
        .await
    }

    /// Marks every run still recorded as running as aborted: the process died during it, or
    /// (when the side record next to the store says so) it could not write the run's end.
    /// Call once at start-up, before any new run begins. Returns the ids it aborted.
    pub async fn abort_leftover_runs(&self, now: DateTime<Utc>) -> Result<Vec<RunId>, StoreError> {
        self.blocking("abort leftover runs", move |inner| {
            let notes_path = unrecorded::path_for(&inner.path);
            let mut notes = unrecorded::read(&notes_path);
            let had_notes = !notes.is_empty();
            let txn = inner.write()?;
            let ids: Vec<RunId> = {
                let running = txn.open_table(RUNNING).map_err(inner.err("open running"))?;
                let iter = running.iter().map_err(inner.err("list running runs"))?;
                iter.map(|r| r.map(|(k, _)| k.value()))
                    .collect::<Result<_, _>>()
                    .map_err(inner.err("list running runs"))?
            };
            for &id in &ids {
                let mut record = take_running(inner, &txn, id)?;
                record.finished_at = Some(now);
                record.outcome = RunOutcome::Aborted;
                record.error = Some(notes.remove(&id).unwrap_or_else(|| {
                    "mpsync stopped during this run (crash, kill or power loss); nothing it \
                     collected was stored"
                        .into()
                }));
                put_run(inner, &txn, &record)?;
            }
            txn.commit().map_err(inner.err("commit aborted runs"))?;
            // Recorded now (or about runs no longer running): the side record has done its job.
            if had_notes && let Err(e) = unrecorded::clear(&notes_path) {
                tracing::warn!("cannot empty {}: {e}", notes_path.display());
            }
            Ok(ids)
        })
        .await
    }

    /// The most recent runs, newest first, optionally only of one kind.
    pub async fn recent_runs(
        &self,
        limit: usize,
        kind: Option<RunKind>,
    ) -> Result<Vec<RunRecord>, StoreError> {
        self.blocking("list recent runs", move |inner| {
            let txn = inner.read()?;
            let runs = txn.open_table(RUNS).map_err(inner.err("open runs"))?;
            let mut out = Vec::new();
            for row in runs.iter().map_err(inner.err("read runs"))?.rev() {
                if out.len() >= limit {
                    break;
                }
                let (_, v) = row.map_err(inner.err("read runs"))?;
                let record: RunRecord = tables::decode(&inner.path, "run record", v.value())?;
                if kind.is_none_or(|k| k == record.kind) {
                    out.push(record);
                }
            }
            Ok(out)
        })
        .await
    }

    /// One run by id, if it exists (runs older than the history retention are pruned).
    pub async fn run(&self, id: RunId) -> Result<Option<RunRecord>, StoreError> {
        self.blocking("read a run", move |inner| {
            let txn = inner.read()?;
            let runs = txn.open_table(RUNS).map_err(inner.err("open runs"))?;
            read_run(inner, &runs, id)
        })
        .await
    }

    /// The latest run of `kind` that finished `Ok`.
    pub async fn last_success(&self, kind: RunKind) -> Result<Option<RunRecord>, StoreError> {
        self.blocking("read the last success", move |inner| {
            let txn = inner.read()?;
            let meta = txn.open_table(META).map_err(inner.err("open meta"))?;
            let Some(id) = meta
                .get(tables::key_last_ok(kind))
                .map_err(inner.err("read meta"))?
                .map(|v| v.value())
            else {
                return Ok(None);
            };
            let runs = txn.open_table(RUNS).map_err(inner.err("open runs"))?;
            read_run(inner, &runs, id)
        })
        .await
    }
}

/// Reads one run from any readable runs table.
pub(crate) fn read_run(
    inner: &Inner,
    runs: &impl ReadableTable<u64, &'static [u8]>,
    id: RunId,
) -> Result<Option<RunRecord>, StoreError> {
    match runs.get(id).map_err(inner.err("read a run"))? {
        Some(v) => Ok(Some(tables::decode(&inner.path, "run record", v.value())?)),
        None => Ok(None),
    }
}

/// Loads run `id`, checks it is still running and removes it from the running index.
pub(crate) fn take_running(
    inner: &Inner,
    txn: &WriteTransaction,
    id: RunId,
) -> Result<RunRecord, StoreError> {
    let runs = txn.open_table(RUNS).map_err(inner.err("open runs"))?;
    let record = read_run(inner, &runs, id)?
        .ok_or_else(|| StoreError::UnknownRun { id, path: inner.path.clone() })?;
    if record.outcome != RunOutcome::Running {
        return Err(StoreError::RunNotRunning { id, outcome: record.outcome });
    }
    let mut running: Table<u64, ()> = txn.open_table(RUNNING).map_err(inner.err("open running"))?;
    running.remove(id).map_err(inner.err("unindex a running run"))?;
    Ok(record)
}

/// Writes a run record; an `Ok` one also becomes the last success of its kind.
pub(crate) fn put_run(
    inner: &Inner,
    txn: &WriteTransaction,
    record: &RunRecord,
) -> Result<(), StoreError> {
    let mut runs = txn.open_table(RUNS).map_err(inner.err("open runs"))?;
    runs.insert(record.id, tables::encode(record).as_slice()).map_err(inner.err("write a run"))?;
    if record.outcome == RunOutcome::Ok {
        let mut meta = txn.open_table(META).map_err(inner.err("open meta"))?;
        meta.insert(tables::key_last_ok(record.kind), record.id)
            .map_err(inner.err("record the last success"))?;
    }
    Ok(())
}
