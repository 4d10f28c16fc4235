//! What a job is, what it returns, and the two seams the engine talks through: the ledger that
//! records runs (the store) and the observer that publishes them (health, metrics).

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use super::push_error::PushError;
use crate::billing::BillingError;
use crate::exit::{Exit, ExitStatus};
use crate::gradient::GradientError;
use crate::mailprotector::CollectError;
use crate::model::{CountingReport, CustomerUsage, RunId, RunKind, RunRecord};
use crate::store::StoreError;
use crate::upstream::UpstreamError;

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

/// Why a run did not succeed. Each failure keeps the error it came from: its exit status is
/// that error's own, and its text (what the run record's `error` says) is that error's text.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// Shutdown stopped it before it completed; nothing was written.
    #[error("stopped by shutdown before it completed")]
    Cancelled,
    /// A Mailprotector call failed (after retries) or answered something unusable.
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    /// The billing source could not be read.
    #[error(transparent)]
    Billing(BillingError),
    /// A Gradient call failed.
    #[error(transparent)]
    Gradient(#[from] GradientError),
    /// The push refused to send, or Gradient did not take every count.
    #[error(transparent)]
    Push(#[from] PushError),
    /// The store could not be read for the run.
    #[error("cannot {action}: {source}")]
    Store {
        /// What the run needed from the store, e.g. "read the service-list cache".
        action: &'static str,
        /// The store's error.
        #[source]
        source: StoreError,
    },
    /// The job's task panicked (a bug in mpsync).
    #[error("the {kind} job panicked: {source}")]
    Panicked {
        /// Which job.
        kind: RunKind,
        /// The panic, as the task's join error.
        #[source]
        source: tokio::task::JoinError,
    },
}

impl JobError {
    /// A store failure while doing `action` (e.g. "read the store to push").
    pub fn store(action: &'static str) -> impl FnOnce(StoreError) -> JobError {
        move |source| JobError::Store { action, source }
    }
}

/// A collection either completes or fails whole; its cancellation is the run's.
impl From<CollectError> for JobError {
    fn from(e: CollectError) -> JobError {
        match e {
            CollectError::Upstream(e) => JobError::Upstream(e),
            CollectError::Cancelled => JobError::Cancelled,
        }
    }
}

/// A billing read stopped by the run's cancellation is a cancelled run, not a failed one.
impl From<BillingError> for JobError {
    fn from(e: BillingError) -> JobError {
        match e {
            BillingError::Cancelled => JobError::Cancelled,
            other => JobError::Billing(other),
        }
    }
}

impl ExitStatus for JobError {
    fn exit(&self) -> Exit {
        match self {
            JobError::Cancelled => Exit::Failure,
            JobError::Upstream(e) => e.exit(),
            JobError::Billing(e) => e.exit(),
            JobError::Gradient(e) => e.exit(),
            JobError::Push(e) => e.exit(),
            JobError::Store { source, .. } => source.exit(),
            JobError::Panicked { .. } => Exit::Software,
        }
    }
}

/// Why a job cannot run yet, asked before a run is recorded: the trigger is recorded as a
/// skip, and health shows this text while the job waits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotReady {
    /// The push before the first vendor snapshot.
    #[error("{}", super::push::WAITING_FOR_SNAPSHOT)]
    NoVendorSnapshot,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::billing::{CsvError, CsvProblem};

    fn unavailable() -> UpstreamError {
        UpstreamError::Unavailable {
            upstream: "mailprotector".into(),
            endpoint: "GET /resellers/{id}/domains".into(),
            attempts: 5,
            detail: "503 Service Unavailable".into(),
        }
    }

    /// A failure keeps its source: the run record gets the source's own text, a one-shot run
    /// the source's own exit status.
    #[test]
    fn a_job_error_speaks_and_exits_as_its_source() {
        let e = JobError::from(CollectError::Upstream(unavailable()));
        assert!(matches!(e, JobError::Upstream(_)), "{e:?}");
        assert_eq!(e.to_string(), unavailable().to_string());
        assert_eq!(e.exit(), Exit::Unavailable);

        let csv = CsvError {
            path: "billed.csv".into(),
            problems: vec![CsvProblem {
                file: "billed.csv".into(),
                line: 3,
                column: Some("quantity".into()),
                message: "\"four\" is not a number".into(),
            }],
        };
        let e = JobError::from(BillingError::Csv(csv.clone()));
        assert_eq!(e.to_string(), BillingError::Csv(csv).to_string());
        assert_eq!(e.exit(), Exit::DataErr);

        let locked = StoreError::Locked { path: "/var/lib/mpsync/mpsync.redb".into() };
        let e = JobError::store("read the service-list cache")(locked);
        assert!(
            e.to_string().starts_with(
                "cannot read the service-list cache: the store /var/lib/mpsync/mpsync.redb is in use"
            ),
            "{e}"
        );
        assert_eq!(e.exit(), Exit::TempFail);
    }

    /// Whatever stopped it, a cancelled collection or read is a cancelled run, not a failure.
    #[test]
    fn cancellation_stays_cancellation() {
        assert!(matches!(JobError::from(CollectError::Cancelled), JobError::Cancelled));
        assert!(matches!(JobError::from(BillingError::Cancelled), JobError::Cancelled));
        assert_eq!(JobError::Cancelled.exit(), Exit::Failure);
    }
}
