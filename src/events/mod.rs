//! The event log's events: what happened that someone should be told about — a discrepancy
//! raised, changed or resolved, an unmapped customer or product appearing, a source failing
//! or recovering, a push or write-back failing. Notifications, digests and the period report
//! are built on them.
//!
//! Row events are derived here, purely, from a row's previous state and its new one
//! ([`rows`]); the store appends them in the same write transaction as the rows (see
//! `store::events`). Source events come from a small state machine ([`sources`]) the daemon
//! feeds with run outcomes. Nothing here does I/O.

pub mod rows;
pub mod sources;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::model::RunId;
pub(crate) use crate::reconcile::span_words;
use crate::reconcile::{RowKey, Status};

/// An event's id: assigned by the store, counting up from 1, never reused (pruning and
/// restarts keep the counter).
pub type EventId = u64;

pub use crate::model::event_kind::EventKind;

/// Why a discrepancy was resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cause {
    /// mpsync's write-back applied a change to the row's PSA line since the discrepancy began.
    WriteBackApplied,
    /// The billed quantity changed (someone corrected the PSA).
    BillingChanged,
    /// The vendor count changed (users added or removed).
    UsageChanged,
    /// Both quantities changed.
    BillingAndUsageChanged,
    /// An operator suppression now covers the row.
    Suppressed,
    /// Neither quantity changed: the mapping (tolerance, products) did.
    MappingChanged,
    /// The row is gone (the customer, product or line no longer exists or is no longer
    /// mapped).
    RowGone,
}

impl Cause {
    /// The snake_case name used in JSON and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Cause::WriteBackApplied => "write_back_applied",
            Cause::BillingChanged => "billing_changed",
            Cause::UsageChanged => "usage_changed",
            Cause::BillingAndUsageChanged => "billing_and_usage_changed",
            Cause::Suppressed => "suppressed",
            Cause::MappingChanged => "mapping_changed",
            Cause::RowGone => "row_gone",
        }
    }

    /// In words, for sentences and reports.
    pub fn words(self) -> &'static str {
        match self {
            Cause::WriteBackApplied => "write-back applied",
            Cause::BillingChanged => "billing changed",
            Cause::UsageChanged => "usage changed",
            Cause::BillingAndUsageChanged => "billing and usage changed",
            Cause::Suppressed => "suppressed",
            Cause::MappingChanged => "mapping changed",
            Cause::RowGone => "row gone",
        }
    }
}

/// One entry of the event log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Its id in the log (0 until the store appends it): what a receiver de-duplicates on.
    pub id: EventId,
    /// When it happened (the computation or run that saw it).
    pub at: DateTime<Utc>,
    /// What happened.
    pub kind: EventKind,
    /// The PSA account, for row events and write-back failures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// Its name, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_name: Option<String>,
    /// The reconciliation row (`kind` plus its ids), for row events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub row: Option<RowKey>,
    /// Mailprotector products of the row.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub products: Vec<String>,
    /// The status before (for `discrepancy_opened` the row's previous status, e.g. `pending`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_from: Option<Status>,
    /// The status after (`None` when the row is gone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_to: Option<Status>,
    /// Monthly money at stake: + missed, − overcharged (for `discrepancy_resolved`, the last
    /// reported one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monthly_impact: Option<f64>,
    /// What the discrepancy has cost so far (at resolution: in total).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accrued: Option<f64>,
    /// Seconds of the discrepancy left out of `accrued` (stale inputs, the daemon down).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub excluded_seconds: Option<i64>,
    /// When the discrepancy began (first seen, debounce included).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<DateTime<Utc>>,
    /// For `discrepancy_resolved`: why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<Cause>,
    /// For source, push and write-back events: `mailprotector`, `billing`, `gradient`, or
    /// `write_back`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The run (or write-back plan) concerned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<RunId>,
    /// The error, in the upstream's words with secrets cut out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// One sentence for people.
    pub text: String,
}

impl Event {
    /// An event of `kind` at `at` saying `text`, with every other field empty.
    pub fn new(kind: EventKind, at: DateTime<Utc>, text: String) -> Event {
        Event {
            id: 0,
            at,
            kind,
            account: None,
            account_name: None,
            row: None,
            products: Vec::new(),
            status_from: None,
            status_to: None,
            monthly_impact: None,
            accrued: None,
            excluded_seconds: None,
            since: None,
            cause: None,
            source: None,
            run_id: None,
            detail: None,
            text,
        }
    }
}

/// A write-back change that failed, as [`writeback_failed`] tells it.
#[derive(Debug, Clone, Copy)]
pub struct FailedChange<'a> {
    /// When the failure was recorded.
    pub at: DateTime<Utc>,
    /// The plan.
    pub plan: u64,
    /// The PSA account.
    pub account: &'a str,
    /// Its name, when known.
    pub account_name: Option<&'a str>,
    /// The PSA product.
    pub psa_product: &'a str,
    /// The PSA line's key.
    pub line: &'a str,
    /// The quantity the plan read.
    pub from: f64,
    /// The quantity it proposed.
    pub to: f64,
    /// The PSA's error (secrets cut out).
    pub reason: &'a str,
}

/// The `writeback_failed` event of one failed change.
pub fn writeback_failed(c: FailedChange<'_>) -> Event {
    let who = match c.account_name {
        Some(name) => format!("{name} ({})", c.account),
        None => format!("account {}", c.account),
    };
    let text = format!(
        "Write-back of plan {} failed for {who} {} (line {}, {} → {}): {}",
        c.plan,
        c.psa_product,
        c.line,
        crate::reconcile::quantity(c.from),
        crate::reconcile::quantity(c.to),
        c.reason
    );
    let mut ev = Event::new(EventKind::WritebackFailed, c.at, text);
    ev.account = Some(c.account.to_owned());
    ev.account_name = c.account_name.map(str::to_owned);
    ev.row = Some(RowKey::Service {
        account: c.account.to_owned(),
        psa_product: c.psa_product.to_owned(),
    });
    ev.source = Some("write_back".into());
    ev.run_id = Some(c.plan);
    ev.detail = Some(c.reason.to_owned());
    ev
}

/// The `push_failed` event of Gradient push run `run_id`.
pub fn push_failed(run_id: RunId, at: DateTime<Utc>, error: &str) -> Event {
    let text = format!("The Gradient push (run {run_id}) failed: {error}");
    let mut ev = Event::new(EventKind::PushFailed, at, text);
    ev.source = Some("gradient".into());
    ev.run_id = Some(run_id);
    ev.detail = Some(error.to_owned());
    ev
}

/// Money with two decimals and its direction: "24.00 a month missed", "3.50 overcharged".
pub(crate) fn money_words(x: f64, per_month: bool) -> String {
    let per = if per_month { " a month" } else { "" };
    if x < 0.0 { format!("{:.2}{per} overcharged", -x) } else { format!("{x:.2}{per} missed") }
}

#[cfg(test)]
mod tests;
