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

/// The JSON document of a list of entries: `{"entries": [...]}` (`GET /v1/audit`,
/// `mpsync audit --json`).
pub fn json(entries: &[AuditEntry]) -> serde_json::Value {
    serde_json::json!({ "entries": entries })
}

/// An aligned table of `entries` for people, one line each; a sentence when there are none.
pub fn table(entries: &[AuditEntry]) -> String {
    use crate::reconcile::quantity;
    if entries.is_empty() {
        return "no write-back attempt is recorded (yet)\n".into();
    }
    let header = ["SEQ", "WHEN", "WHO", "PLAN", "ROW", "LINE", "ACCOUNT", "PRODUCT", "FROM", "TO"];
    let mut rows: Vec<Vec<String>> = vec![header.iter().map(|h| (*h).to_owned()).collect()];
    let mut tails = vec!["RESULT".to_owned()];
    for e in entries {
        rows.push(vec![
            e.seq.to_string(),
            e.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            e.who.clone(),
            e.plan.to_string(),
            e.row.to_string(),
            e.line.clone(),
            e.account.clone(),
            e.psa_product.clone(),
            quantity(e.from),
            quantity(e.to),
        ]);
        let mut tail = e.result.as_str().to_owned();
        if let Some(found) = e.found.filter(|_| e.result != AuditResult::Applied) {
            tail.push_str(&format!(" (PSA held {})", quantity(found)));
        }
        if let Some(reason) = &e.reason {
            tail.push_str(": ");
            tail.push_str(reason);
        }
        tails.push(tail);
    }
    let widths: Vec<usize> = (0..header.len())
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for (row, tail) in rows.iter().zip(&tails) {
        for (cell, w) in row.iter().zip(&widths) {
            out.push_str(&format!("{cell:<w$}  "));
        }
        out.push_str(tail);
        out.push('\n');
    }
    out
}
