//! Write-back: from the latest reconciliation to a reviewed [`Plan`] of quantity changes on
//! PSA lines, applied exactly once, with an audit trail.
//!
//! - [`plan`]: the pure planner (reconciliation + mapping policy → [`Plan`]).
//! - [`view`]: the plan for people and scripts (table, JSON, CSV, filters), shared by
//!   `mpsync plan` and `GET /v1/plan`.
//! - The policy types ([`Policy`], [`WriteBackMode`]) belong to the mapping file
//!   ([`crate::config::mapping`]) and are re-exported here.
//! - [`apply`]: the engine that applies a plan exactly once; [`audit`]: the journal and audit
//!   types; [`ApplyLedger`]: what the engine needs from the store.
//! - The store keeps plans (`Store::save_plan`, `Store::plan`, `Store::latest_plan`), the
//!   apply journal and the audit log.
//! - The PSA side is [`crate::billing::write`]: a [`crate::billing::write::LineWriter`] per
//!   PSA and the guarded write.
//!
//! A plan is rebuilt after every reconciliation. When the rebuilt plan proposes the same
//! changes (same lines, same from and to quantities) it keeps its id and stays current, so a
//! plan an operator reviewed does not expire because a poll confirmed the same numbers; when
//! the changes differ, the new plan gets the next id and the old one is marked superseded
//! (`superseded_by`), and applying it is refused.

pub mod apply;
pub mod audit;
mod ledger;
pub mod plan;
mod report;
pub mod view;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

// The policy is part of the mapping file, so config owns its types; they are re-exported here
// with the rest of the write-back's vocabulary.
pub use crate::config::mapping::{DEFAULT_MAX_DECREASE_PERCENT, Policy, WriteBackMode};

pub use self::apply::{ApplyError, ApplyOptions, apply};
pub use self::audit::{AuditEntry, AuditQuery, AuditResult, JournalEntry};
pub use self::ledger::{ApplyLedger, LedgerError, LedgerFailure};
pub use self::report::{
    ApplyEvent, ApplyReport, ApplySummary, ChangeOutcome, Outcome, signed_money,
};
use crate::model::{LineRef, RunId};
use crate::reconcile::Status;

/// A plan's id: a number counting up from 1 in each store.
pub type PlanId = u64;

/// What a plan records about where it applies, from the config: the billing source, whether
/// it can be written to, and the per-apply cap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanSettings {
    /// `billing.source`.
    pub billing: &'static str,
    /// Whether that source has a write path ([`crate::billing::has_write_path`]).
    pub writable: bool,
    /// `[write_back] max_changes_per_apply`.
    pub max_changes_per_apply: u32,
}

impl PlanSettings {
    /// The settings `config` gives.
    pub fn from_config(config: &crate::config::Config) -> PlanSettings {
        PlanSettings {
            billing: config.billing.source.name(),
            writable: crate::billing::has_write_path(&config.billing),
            max_changes_per_apply: config.write_back.max_changes_per_apply,
        }
    }
}

/// A stored plan: what to change in the PSA, built from one reconciliation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// Its id (0 until the store gives it one).
    pub id: PlanId,
    /// When this plan was first built.
    pub created_at: DateTime<Utc>,
    /// The reconciliation it was (last) built from: its computation time.
    pub reconciliation_at: DateTime<Utc>,
    /// That reconciliation's vendor run.
    pub vendor_run: Option<RunId>,
    /// That reconciliation's billing run.
    pub billing_run: Option<RunId>,
    /// The billing source (`connectwise`, `csv`, `none`): which PSA the lines belong to.
    pub billing: String,
    /// Whether that source has a write path (`false` for a CSV export: the changes are
    /// entered by hand).
    pub writable: bool,
    /// The most changes one apply makes (`[write_back] max_changes_per_apply`).
    pub max_changes_per_apply: u32,
    /// The changes, numbered from 1 (`row`), in reconciliation order.
    pub changes: Vec<Change>,
    /// Discrepancies the plan does not change and why (several counted lines, a line that
    /// cannot be addressed, the minimum).
    pub not_planned: Vec<NotPlanned>,
    /// `unbilled` rows: lines to create by hand (never written by mpsync).
    pub manual: Vec<ManualStep>,
    /// The newer plan that replaced this one, if any: then it can no longer be applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub superseded_by: Option<PlanId>,
}

impl Plan {
    /// Whether this plan proposes the same changes as `other` (lines, from and to), so the
    /// newer one need not replace it.
    pub fn same_changes(&self, other: &Plan) -> bool {
        self.changes.len() == other.changes.len()
            && self.changes.iter().zip(&other.changes).all(|(a, b)| {
                a.line == b.line
                    && crate::billing::write::same_quantity(a.from, b.from)
                    && crate::billing::write::same_quantity(a.to, b.to)
            })
    }

    /// The change numbered `row`.
    pub fn change(&self, row: u32) -> Option<&Change> {
        self.changes.iter().find(|c| c.row == row)
    }
}

/// One quantity change on one PSA line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    /// Its number in the plan (from 1), for `apply --only`.
    pub row: u32,
    /// The PSA account.
    pub account: String,
    /// Its name, when known.
    pub account_name: Option<String>,
    /// The PSA product.
    pub psa_product: String,
    /// The Mailprotector products mapped to it.
    pub products: Vec<String>,
    /// The reconciliation status that calls for the change.
    pub status: Status,
    /// The PSA line to change.
    pub line: LineRef,
    /// [`LineRef::key`] of `line` (`cw:12/345`), for people and `--only`.
    pub line_key: String,
    /// The line's quantity as read in the billing run.
    pub from: f64,
    /// The quantity proposed.
    pub to: f64,
    /// The users counted in the vendor run.
    pub vendor_quantity: u64,
    /// Price per unit per month, when known.
    pub unit_price: Option<f64>,
    /// (to − from) × unit price: the monthly money the change moves (positive: billing
    /// grows), when the price is known.
    pub monthly_amount: Option<f64>,
    /// Why, in words (e.g. "Mailprotector counts 42 users; the line bills 40").
    pub reason: String,
    /// The product policy's mode (`review` or `auto`).
    pub mode: WriteBackMode,
    /// Why it waits for review even under `auto` (a drop above `max_decrease_percent`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held: Option<String>,
    /// The vendor run of the evidence.
    pub vendor_run: Option<RunId>,
    /// The billing run of the evidence.
    pub billing_run: Option<RunId>,
}

impl Change {
    /// Whether the daemon may apply it on its own.
    pub fn is_auto(&self) -> bool {
        self.mode == WriteBackMode::Auto && self.held.is_none()
    }
}

/// A discrepancy the plan leaves alone, and what the operator can do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NotPlanned {
    /// The PSA account.
    pub account: String,
    /// Its name, when known.
    pub account_name: Option<String>,
    /// The PSA product.
    pub psa_product: String,
    /// The row's status.
    pub status: Status,
    /// The counted lines of the row (`line_key` and quantity).
    pub lines: Vec<LineChoice>,
    /// Why nothing is planned and what to do, e.g. how to name one line in the mapping.
    pub reason: String,
    /// For a row billed by several counted lines: the `[[line]]` table to paste into the
    /// mapping file (naming its first counted line; change it to the line to correct).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stanza: Option<String>,
}

/// A counted line offered for a choice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LineChoice {
    /// [`LineRef::key`].
    pub line_key: String,
    /// Where it came from, as the billing source says it.
    pub source_ref: String,
    /// Its quantity.
    pub quantity: f64,
}

/// An `unbilled` row: nothing bills the product yet; an operator creates the line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManualStep {
    /// The PSA account.
    pub account: String,
    /// Its name, when known.
    pub account_name: Option<String>,
    /// The PSA product to add.
    pub psa_product: String,
    /// The Mailprotector products behind it.
    pub products: Vec<String>,
    /// How many to bill.
    pub quantity: u64,
    /// What to do, in words.
    pub reason: String,
}

/// A plan for tests: one change per `(addition, from, to, mode)` on ConnectWise agreement 1,
/// account 250 ("Acme"), PSA product MP-CF, at 2.00 a unit.
#[cfg(test)]
pub(crate) fn sample_plan(id: PlanId, changes: &[(u64, f64, f64, WriteBackMode)]) -> Plan {
    use chrono::TimeZone;
    let at = Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap();
    Plan {
        id,
        created_at: at,
        reconciliation_at: at,
        vendor_run: Some(1),
        billing_run: Some(2),
        billing: "connectwise".into(),
        writable: true,
        max_changes_per_apply: 25,
        changes: changes
            .iter()
            .enumerate()
            .map(|(i, &(addition, from, to, mode))| {
                let line = LineRef::Connectwise { agreement: 1, addition };
                Change {
                    row: i as u32 + 1,
                    account: "250".into(),
                    account_name: Some("Acme".into()),
                    psa_product: "MP-CF".into(),
                    products: vec!["CloudFilter".into()],
                    status: Status::UnderBilled,
                    line_key: line.key(),
                    line,
                    from,
                    to,
                    vendor_quantity: to as u64,
                    unit_price: Some(2.0),
                    monthly_amount: Some((to - from) * 2.0),
                    reason: String::new(),
                    mode,
                    held: None,
                    vendor_run: Some(1),
                    billing_run: Some(2),
                }
            })
            .collect(),
        not_planned: Vec::new(),
        manual: Vec::new(),
        superseded_by: None,
    }
}
