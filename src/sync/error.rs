//! Why a run did not succeed ([`JobError`], kept as the run record's `error`), why a job
//! cannot run yet ([`NotReady`]), and the push's own failures ([`PushError`], [`CountFailure`]).
//! Each keeps the error it came from: the record's text, the engine's backoff and a one-shot
//! run's exit status all come from one value.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::billing::BillingError;
use crate::exit::{Exit, ExitStatus};
use crate::gradient::{GradientError, IntegrationStatus};
use crate::mailprotector::CollectError;
use crate::model::{CustomerId, RunId, RunKind};
use crate::store::StoreError;
use crate::upstream::UpstreamError;

/// Why the push is not ready; health shows it while the push waits.
pub const WAITING_FOR_SNAPSHOT: &str = "waiting for the first vendor snapshot: no Mailprotector \
     poll has completed yet; the push starts as soon as one does";

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
    #[error("{WAITING_FOR_SNAPSHOT}")]
    NoVendorSnapshot,
}

/// Why a push run did not succeed (other than a Gradient call failing before any count).
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// There is nothing to push yet (a `sync --once` push before any vendor run completed).
    #[error("nothing pushed to Gradient: {0}")]
    NotReady(NotReady),
    /// The latest complete vendor snapshot is too old to be pushed.
    #[error(
        "nothing pushed to Gradient: the latest complete vendor snapshot (run #{run}, observed \
         {}) is {} old, older than [reconcile] max_age ({}); let a vendor poll complete first",
        .observed_at.to_rfc3339(),
        humantime::format_duration(Duration::from_secs(.age.as_secs())),
        humantime::format_duration(*.max_age)
    )]
    Stale {
        /// The vendor run whose snapshot it is.
        run: RunId,
        /// When that snapshot was observed.
        observed_at: DateTime<Utc>,
        /// Its age when the push started.
        age: Duration,
        /// `[reconcile] max_age`.
        max_age: Duration,
    },
    /// The integration's status in Gradient forbids counts; mpsync never changes it.
    #[error(
        "nothing pushed to Gradient: the integration is {status}: {}; mpsync does not change \
         the status",
        .status.meaning()
    )]
    Blocked {
        /// The status read at the start of the push.
        status: IntegrationStatus,
    },
    /// A fatal answer (401, 403) or too many failures in a row stopped the push.
    #[error(
        "the Gradient push stopped without sending the remaining counts and is not retried \
         before its failure backoff has passed: {0}"
    )]
    Stopped(CountFailure),
    /// Every count was sent, but some were not accepted.
    #[error(
        "{failed} of {total} counts were not accepted by Gradient; first: customer {customer} \
         {product}: {detail}"
    )]
    NotAccepted {
        /// Counts that failed.
        failed: usize,
        /// Counts in the push.
        total: usize,
        /// The customer of the first failed count.
        customer: CustomerId,
        /// Its product.
        product: String,
        /// Why it failed, as its pair's detail says.
        detail: String,
    },
}

impl ExitStatus for PushError {
    fn exit(&self) -> Exit {
        match self {
            // Nothing wrong upstream: it is too early (or too late) to push; try again later.
            PushError::NotReady(_) | PushError::Stale { .. } => Exit::TempFail,
            PushError::Blocked { .. } | PushError::Stopped(_) | PushError::NotAccepted { .. } => {
                Exit::Unavailable
            }
        }
    }
}

/// Why one count was not taken.
#[derive(Debug, thiserror::Error)]
pub enum CountFailure {
    /// The product's service is not in the catalogue (its creation failed or was refused).
    #[error("the service {product:?} is missing from the Gradient catalogue")]
    MissingService {
        /// The product whose service is missing.
        product: String,
    },
    /// Gradient refused or did not answer the post.
    #[error(transparent)]
    Gradient(#[from] GradientError),
}

impl CountFailure {
    /// Whether the whole push must stop: no later post can succeed (see
    /// [`GradientError::is_fatal`]).
    pub fn is_fatal(&self) -> bool {
        matches!(self, CountFailure::Gradient(e) if e.is_fatal())
    }
}

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

    #[test]
    fn refusals_wait_and_failures_are_unavailable() {
        let stale = PushError::Stale {
            run: 7,
            observed_at: "2026-12-01T10:00:00Z".parse().unwrap(),
            age: Duration::from_millis(7_200_900),
            max_age: Duration::from_secs(3600),
        };
        assert_eq!(
            stale.to_string(),
            "nothing pushed to Gradient: the latest complete vendor snapshot (run #7, observed \
             2026-12-01T10:00:00+00:00) is 2h old, older than [reconcile] max_age (1h); let a \
             vendor poll complete first"
        );
        assert_eq!(stale.exit(), Exit::TempFail);
        assert_eq!(PushError::NotReady(NotReady::NoVendorSnapshot).exit(), Exit::TempFail);
        let missing = CountFailure::MissingService { product: "CloudFilter".into() };
        assert!(!missing.is_fatal());
        let stopped = PushError::Stopped(missing);
        assert!(
            stopped.to_string().ends_with(
                "passed: the service \"CloudFilter\" is missing from the Gradient catalogue"
            ),
            "{stopped}"
        );
        assert_eq!(stopped.exit(), Exit::Unavailable);
        let revoked = GradientError::Unauthorized {
            endpoint: "POST /billing".into(),
            message: "bad key".into(),
            keys: "gradient.vendor_key_file".into(),
        };
        assert!(CountFailure::from(revoked).is_fatal(), "a 401 stops the whole push");
    }
}
