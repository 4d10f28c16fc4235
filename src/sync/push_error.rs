//! Why a Gradient push sent nothing, or not everything: [`PushError`] (kept in the push run's
//! record) and [`CountFailure`] (why one count was not taken). Every variant keeps what it is
//! about, so the run record, the push report and the exit status all come from one value.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::job::NotReady;
use crate::exit::{Exit, ExitStatus};
use crate::gradient::{GradientError, IntegrationStatus};
use crate::model::{CustomerId, RunId};

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
