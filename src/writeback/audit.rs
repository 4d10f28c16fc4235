//! The apply journal and the audit log, as types: what the store keeps so that every change
//! of a plan is applied once and only once, and so that "who changed this quantity, when,
//! from what, and why" has an answer.
//!
//! The journal holds one [`JournalEntry`] per (plan, row) that an apply has touched: an
//! intent ([`JournalEntry::InFlight`]) committed before the PSA is written to, replaced by
//! [`JournalEntry::Done`] together with the [`AuditEntry`] of the result in one transaction.
//! A failed change leaves no journal entry (only its audit entry), so the next apply retries
//! it; an entry still in flight when an apply starts is what a crash left behind.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::PlanId;

/// What became of one change, as the audit log records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditResult {
    /// The PSA line now holds the plan's quantity.
    Applied,
    /// Nothing was written, on purpose (the line changed in the PSA since the plan, or was
    /// deleted): the change is settled for this plan.
    Skipped,
    /// The attempt failed (the PSA refused, or could not be reached); a later apply retries.
    Failed,
}

impl AuditResult {
    /// Every result, in the order summaries list them.
    pub const ALL: [AuditResult; 3] =
        [AuditResult::Applied, AuditResult::Skipped, AuditResult::Failed];

    /// The name used in JSON, metrics labels and tables.
    pub fn as_str(self) -> &'static str {
        match self {
            AuditResult::Applied => "applied",
            AuditResult::Skipped => "skipped",
            AuditResult::Failed => "failed",
        }
    }
}

/// One attempt to apply one change, kept in the store for good.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Its number in the log, counting up from 1 (0 until the store gives it one).
    pub seq: u64,
    /// The plan the change belongs to.
    pub plan: PlanId,
    /// The change's row in that plan.
    pub row: u32,
    /// The PSA line (its key, e.g. `cw:12/345`).
    pub line: String,
    /// The PSA account.
    pub account: String,
    /// Its name, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_name: Option<String>,
    /// The PSA product.
    pub psa_product: String,
    /// The quantity the plan read.
    pub from: f64,
    /// The quantity the plan proposed.
    pub to: f64,
    /// What happened.
    pub result: AuditResult,
    /// Why, in words: for `skipped` why nothing was written, for `failed` the PSA's error
    /// (secrets cut out), for `applied` a note when there is one (the line already held the
    /// new quantity).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// For `failed`: the error's kind (`unauthorized`, `rate_limited`, `rejected`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// The quantity the PSA held when the line was read, when it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub found: Option<f64>,
    /// The monthly money the change moves, when the price is known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monthly_amount: Option<f64>,
    /// When the result was known.
    pub at: DateTime<Utc>,
    /// Who applied it: the operator's login (`$SUDO_USER`, `$USER`) or `daemon`.
    pub who: String,
}

/// Where one (plan, row) stands in the apply journal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum JournalEntry {
    /// An apply recorded its intent and then went to write: if this is still here when the
    /// next apply starts, that apply stopped (a crash, kill -9) somewhere between the intent
    /// and recording the result.
    InFlight {
        /// When the intent was recorded.
        since: DateTime<Utc>,
        /// Who was applying.
        who: String,
    },
    /// Settled: applied or skipped, as audit entry `seq` says.
    Done {
        /// `applied` or `skipped`.
        result: AuditResult,
        /// When.
        at: DateTime<Utc>,
        /// By whom.
        who: String,
        /// Its audit entry.
        seq: u64,
        /// The audit entry's reason, repeated for reports.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
}

/// Which audit entries to list, newest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditQuery {
    /// At most this many.
    pub limit: usize,
    /// Only those of this plan.
    pub plan: Option<PlanId>,
}

impl Default for AuditQuery {
    fn default() -> AuditQuery {
        AuditQuery { limit: 50, plan: None }
    }
}
