//! [`WriteError`]: why reading or writing one PSA line failed, typed so that a caller can tell
//! a deleted line, a refused value, an answer that contradicts the write, a plan for another
//! PSA and an unreachable or refusing PSA apart, with the exit status each deserves.

use crate::exit::{Exit, ExitStatus};
use crate::model::LineRef;
use crate::upstream::UpstreamError;

/// Why a line could not be read or written. Nothing was changed in the PSA, except perhaps
/// when a write timed out or its answer was lost or unreadable (see
/// [`super::GuardError::may_have_applied`]).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum WriteError {
    /// The PSA says the line does not exist (404): deleted, or moved to another agreement,
    /// since the billing was read.
    #[error(
        "{line} no longer exists in {psa} ({endpoint} answered 404: {message}); it was deleted \
         or moved since the billing was read. Nothing was changed; run a billing sync and make \
         a new plan"
    )]
    Gone {
        /// The PSA's short name.
        psa: &'static str,
        /// The line.
        line: LineRef,
        /// The route pattern, e.g. `PATCH /finance/agreements/{id}/additions/{id}`.
        endpoint: String,
        /// The PSA's own words.
        message: String,
    },
    /// The PSA refused the new quantity itself (400, 422, ...), naming the fields it objects to.
    #[error(
        "{psa} refused to set {line} to {quantity} ({status} on {endpoint}: {message}{}); \
         nothing was changed. Open the line in {psa}: it may be locked or not take that quantity",
        fields_note(.fields)
    )]
    Rejected {
        /// The PSA's short name.
        psa: &'static str,
        /// The line.
        line: LineRef,
        /// The quantity that was refused.
        quantity: f64,
        /// The route pattern.
        endpoint: String,
        /// The HTTP status.
        status: u16,
        /// The PSA's own words.
        message: String,
        /// The fields the PSA named (ConnectWise `errors[].field`, e.g. `quantity`).
        fields: Vec<String>,
    },
    /// The PSA accepted the write but answered with another quantity.
    #[error(
        "{psa} accepted setting {line} to {quantity} but answered with quantity {answered}; \
         open the line in {psa} and check it before trying again"
    )]
    Unconfirmed {
        /// The PSA's short name.
        psa: &'static str,
        /// The line.
        line: LineRef,
        /// The quantity sent.
        quantity: f64,
        /// The quantity in the answer.
        answered: f64,
    },
    /// The line must not be written as the PSA holds it now (HaloPSA: a quantity Halo
    /// computes, an inactive line, a disabled or ended invoice): nothing was sent.
    #[error("{line} is left alone: {why}; nothing was sent to {psa}")]
    Locked {
        /// The PSA's short name.
        psa: &'static str,
        /// The line.
        line: LineRef,
        /// Why, in the operator's words.
        why: String,
    },
    /// The write landed, but re-reading the record it went through (a HaloPSA recurring
    /// invoice) shows changes mpsync did not ask for: another line changed, appeared or
    /// disappeared. Each change is listed with its before and after.
    #[error(
        "{psa} took the write of {line} (to {quantity}), but re-reading {record} after it          shows changes mpsync did not make: {}. Check {record} in {psa} and put those lines          back by hand; something else is editing it, or {psa} recalculated it, so the apply          stopped",
        .changes.join("; ")
    )]
    SideEffect {
        /// The PSA's short name.
        psa: &'static str,
        /// The line written.
        line: LineRef,
        /// The quantity written.
        quantity: f64,
        /// The record re-read, e.g. `recurring invoice -94`.
        record: String,
        /// Every unasked-for change, before → after.
        changes: Vec<String>,
    },
    /// The line belongs to another billing source than this writer's PSA.
    #[error(
        "{line} is not a {psa} line: the plan was made for another billing source than the \
         configured one; make a new plan"
    )]
    WrongPsa {
        /// The writer's PSA.
        psa: &'static str,
        /// The line.
        line: LineRef,
    },
    /// The quantity cannot be sent (negative, NaN or infinite); nothing was sent.
    #[error("cannot set {line} to {quantity}: a quantity must be a finite number of at least 0")]
    InvalidQuantity {
        /// The line.
        line: LineRef,
        /// The quantity asked for.
        quantity: f64,
    },
    /// The configured billing source has no write path.
    #[error(
        "billing.source = \"{billing}\" has no write path: {why}; to correct quantities with \
         mpsync, bill from ConnectWise, Autotask or HaloPSA (billing.source = \"connectwise\", \
         \"autotask\" or \"halopsa\")"
    )]
    NotWritable {
        /// The configured source (`csv`, `none`).
        billing: &'static str,
        /// Why, in the operator's words.
        why: &'static str,
    },
    /// The call failed after any retries: keys (401), the role's rights (403), an outage, a
    /// timeout, a malformed answer, or a client set-up problem.
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
}

fn fields_note(fields: &[String]) -> String {
    if fields.is_empty() { String::new() } else { format!("; fields: {}", fields.join(", ")) }
}

impl WriteError {
    /// Whether the same call could succeed later without anyone changing anything (rate
    /// limits, outages, timeouts).
    pub fn is_retryable(&self) -> bool {
        matches!(self, WriteError::Upstream(e) if e.is_retryable())
    }

    /// A short machine-readable kind for audit records and JSON: `gone`, `rejected`,
    /// `unconfirmed`, `locked`, `side_effect`, `wrong_psa`, `invalid_quantity`, `not_writable`, or the upstream
    /// error's kind (`unauthorized`, `forbidden`, `rate_limited`, `unavailable`, `timeout`, ...).
    pub fn kind(&self) -> &'static str {
        match self {
            WriteError::Gone { .. } => "gone",
            WriteError::Rejected { .. } => "rejected",
            WriteError::Unconfirmed { .. } => "unconfirmed",
            WriteError::Locked { .. } => "locked",
            WriteError::SideEffect { .. } => "side_effect",
            WriteError::WrongPsa { .. } => "wrong_psa",
            WriteError::InvalidQuantity { .. } => "invalid_quantity",
            WriteError::NotWritable { .. } => "not_writable",
            WriteError::Upstream(e) => e.kind(),
        }
    }
}

impl ExitStatus for WriteError {
    fn exit(&self) -> Exit {
        match self {
            // The plan no longer fits the PSA, or the PSA's answer makes no sense: data.
            WriteError::Gone { .. }
            | WriteError::Rejected { .. }
            | WriteError::Unconfirmed { .. }
            | WriteError::Locked { .. }
            | WriteError::SideEffect { .. }
            | WriteError::WrongPsa { .. }
            | WriteError::InvalidQuantity { .. } => Exit::DataErr,
            WriteError::NotWritable { .. } => Exit::Config,
            WriteError::Upstream(e) => e.exit(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_exit_codes() {
        let line = LineRef::Connectwise { agreement: 12, addition: 345 };
        let gone = WriteError::Gone {
            psa: "connectwise",
            line: line.clone(),
            endpoint: "GET /finance/agreements/{id}/additions/{id}".into(),
            message: "Addition ID 345 not found".into(),
        };
        assert_eq!((gone.kind(), gone.exit(), gone.is_retryable()), ("gone", Exit::DataErr, false));
        let msg = gone.to_string();
        assert!(msg.contains("ConnectWise agreement 12 addition 345") && msg.contains("new plan"));
        let rejected = WriteError::Rejected {
            psa: "connectwise",
            line: line.clone(),
            quantity: 5.0,
            endpoint: "PATCH /finance/agreements/{id}/additions/{id}".into(),
            status: 400,
            message: "invalid".into(),
            fields: vec!["quantity".into()],
        };
        assert!(rejected.to_string().contains("fields: quantity"), "{rejected}");
        let timeout = WriteError::from(UpstreamError::Timeout {
            upstream: "connectwise".into(),
            endpoint: "PATCH /finance/agreements/{id}/additions/{id}".into(),
            attempts: 3,
        });
        assert_eq!((timeout.kind(), timeout.exit()), ("timeout", Exit::Unavailable));
        assert!(timeout.is_retryable());
        let csv = WriteError::NotWritable { billing: "csv", why: "a CSV export is read-only" };
        assert_eq!(csv.exit(), Exit::Config);
        assert!(csv.to_string().contains("billing.source = \"csv\""), "{csv}");
    }
}
