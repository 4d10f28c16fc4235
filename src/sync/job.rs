//! What a job is, what it returns, and the two seams the engine talks through: the ledger that
//! records runs (the store) and the observer that publishes them (health, metrics).

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use super::error::{JobError, NotReady};
use crate::model::{CountingReport, CustomerUsage, RunId, RunKind, RunRecord};
use crate::store::StoreError;

/// A boxed, sendable future (object-safe async trait methods).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What a run is given.
#[derive(Debug, Clone)]
pub struct RunContext {
    /// The run's id, already recorded as running.
    pub run_id: RunId,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// Cancelled at shutdown: stop at the next safe point (between pages, never mid-commit).
    pub cancel: CancellationToken,
}

/// The output of a successful run, committed by the ledger in one transaction.
#[derive(Debug, Clone, PartialEq)]
pub enum JobOutput {
    /// A complete vendor snapshot: every customer, counted.
    Vendor {
        /// Every customer of the reseller, ordered by id.
        customers: Vec<CustomerUsage>,
        /// How the run counted (kept in its run record).
        counting: Option<CountingReport>,
    },
    /// A complete billed snapshot: every account and billed line the source holds.
    Billing {
        /// Accounts known to the billing source.
        accounts: Vec<crate::model::Account>,
        /// Every billed line read, counted or not.
        lines: Vec<crate::model::BilledLine>,
    },
    /// A run that leaves no snapshot (e.g. a push); its results are in the run record.
    Plain,
}

/// What a job returns: its outcome and the requests it made (recorded either way).
#[derive(Debug)]
pub struct JobResult {
    /// The output, or why there is none.
    pub outcome: Result<JobOutput, JobError>,
    /// Requests made, per upstream endpoint ("<upstream> <METHOD> <pattern>").
    pub requests: BTreeMap<String, u64>,
    /// Each upstream's accounting for the run (retries, 429s, time waited on the limiter).
    pub stats: Vec<crate::upstream::StatsSnapshot>,
}

/// One kind of scheduled work.
pub trait Job: Send + Sync + 'static {
    /// Runs once. Must return (not panic) on failure and honour `ctx.cancel`.
    fn run(&self, ctx: RunContext) -> BoxFuture<'_, JobResult>;

    /// Whether the job has what it needs to run (asked before a run is recorded). `Err`
    /// says what it waits for: the trigger is recorded as a skip, not as a failed run, and
    /// the engine tries again when another job succeeds. By default a job is always ready.
    fn ready(&self) -> BoxFuture<'_, Result<(), NotReady>> {
        Box::pin(async { Ok(()) })
    }
}

/// Where runs are recorded (the store, in the daemon).
pub trait RunLedger: Send + Sync + 'static {
    /// Records a run as started and returns its id.
    fn begin(&self, kind: RunKind, at: DateTime<Utc>) -> BoxFuture<'_, Result<RunId, StoreError>>;
    /// Commits a successful run and its output in one transaction.
    fn complete(
        &self,
        id: RunId,
        at: DateTime<Utc>,
        requests: BTreeMap<String, u64>,
        output: JobOutput,
    ) -> BoxFuture<'_, Result<RunRecord, StoreError>>;
    /// Records a failed run; no snapshot changes.
    fn fail(
        &self,
        id: RunId,
        at: DateTime<Utc>,
        reason: String,
        requests: BTreeMap<String, u64>,
    ) -> BoxFuture<'_, Result<RunRecord, StoreError>>;
    /// Records a run stopped by shutdown; `reason` says what stopped it.
    fn cancel(
        &self,
        id: RunId,
        at: DateTime<Utc>,
        reason: String,
        requests: BTreeMap<String, u64>,
    ) -> BoxFuture<'_, Result<RunRecord, StoreError>>;
    /// When the last successful run of `kind` finished.
    fn last_success(
        &self,
        kind: RunKind,
    ) -> BoxFuture<'_, Result<Option<DateTime<Utc>>, StoreError>>;
}

/// Why a trigger did not start a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkipReason {
    /// The previous run of the job was still going.
    Overlap,
    /// The job is waiting out its failure backoff.
    Backoff,
    /// The job is not ready (e.g. the push before the first vendor snapshot): what it waits
    /// for.
    NotReady(NotReady),
}

impl SkipReason {
    /// The label used in logs and metrics.
    pub fn as_str(&self) -> &'static str {
        match self {
            SkipReason::Overlap => "skipped_overlap",
            SkipReason::Backoff => "skipped_backoff",
            SkipReason::NotReady(_) => "skipped_not_ready",
        }
    }
}

/// Told about every run as it happens (health and metrics implement it).
pub trait RunObserver: Send + Sync + 'static {
    /// A run started.
    fn started(&self, _kind: RunKind, _run_id: RunId) {}
    /// A run ended and was recorded (`record.outcome` says how); `duration` is its wall time.
    fn finished(&self, _kind: RunKind, _record: &RunRecord, _duration: Duration) {}
    /// A run could not even be recorded (the store failed).
    fn unrecorded(&self, _kind: RunKind, _reason: &str) {}
    /// What each upstream saw during a run (requests, retries, time waited on the limiter).
    fn upstream_stats(&self, _kind: RunKind, _stats: &[crate::upstream::StatsSnapshot]) {}
    /// A trigger was skipped.
    fn skipped(&self, _kind: RunKind, _why: &SkipReason) {}
    /// After a failure the next attempt waits this long.
    fn backing_off(&self, _kind: RunKind, _failures: u32, _wait: Duration) {}
}

/// An observer that ignores everything.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoopObserver;

impl RunObserver for NoopObserver {}
