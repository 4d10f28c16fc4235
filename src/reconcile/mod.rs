//! The reconciliation engine: latest vendor snapshot + billed snapshot + mapping + `now` →
//! one typed row per (account, PSA product) and per unmapped customer or product.
//!
//! PURE: no I/O and no clock. The caller passes the time, the inputs' freshness and the
//! previous result (which carries each row's `since` and debounce counters).

mod engine;
pub mod episode;
mod filter;
mod output;
mod suggest;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::config::Mapping;
use crate::model::{BilledSnapshot, CustomerId, RunId, UsageSnapshot};

pub use engine::{compute, compute_each};
pub use episode::Episode;
pub use filter::{Filter, UnknownStatus};
pub use output::{
    CSV_COLUMNS, JsonPage, NOT_YET, csv, csv_field, csv_header, csv_line, json_page, money, note,
    quantity, span_words, summary_text, table, write_json_stream,
};
pub use suggest::{normalize_name, suggestions};

pub use crate::model::status::Status;

/// What a row is about; its identity across reconciliations.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RowKey {
    /// A billed service: (PSA account, PSA product).
    Service {
        /// PSA account id.
        account: String,
        /// PSA product id.
        psa_product: String,
    },
    /// A customer with usage and no account mapping.
    UnmappedCustomer {
        /// Mailprotector customer id.
        customer: CustomerId,
    },
    /// A product with usage and no PSA product mapping.
    UnmappedProduct {
        /// Product name as reported.
        product: String,
    },
}

/// When a row's current status was first seen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Since {
    /// The computation that first showed it.
    pub at: DateTime<Utc>,
    /// The newest input run of that computation.
    pub run_id: Option<RunId>,
}

/// One customer's count of one product that went into a row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomerContribution {
    /// Mailprotector customer id.
    pub customer: CustomerId,
    /// Its name in the vendor run.
    pub name: String,
    /// Product name.
    pub product: String,
    /// Users counted.
    pub count: u64,
}

/// One billed line that belongs to a row (counted or kept as evidence).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LineEvidence {
    /// Where it came from, e.g. "agreement 12 addition 345".
    pub source_ref: String,
    /// Its identity in the PSA, when known (what a write-back addresses).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<crate::model::LineRef>,
    /// Units.
    pub quantity: f64,
    /// Price per unit per month, when known.
    pub unit_price: Option<f64>,
    /// Whether it counts toward the billed quantity.
    pub counted: bool,
    /// Why it does not count.
    pub note: Option<String>,
}

/// Where a row's numbers came from.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    /// The vendor run whose snapshot was used.
    pub vendor_run: Option<RunId>,
    /// The customers and products that contributed.
    pub customers: Vec<CustomerContribution>,
    /// The billing run whose snapshot was used.
    pub billing_run: Option<RunId>,
    /// The billed lines of this (account, PSA product).
    pub lines: Vec<LineEvidence>,
}

impl Evidence {
    /// Nothing recorded (not loaded, or no run at all).
    pub fn is_empty(&self) -> bool {
        self.vendor_run.is_none()
            && self.billing_run.is_none()
            && self.customers.is_empty()
            && self.lines.is_empty()
    }
}

/// The debounce memory of a row: the comparison's own result and how many consecutive
/// vendor runs produced it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Observation {
    /// What the comparison said, before stale/suppressed/pending were applied (`None` when
    /// it could not be made).
    pub status: Option<Status>,
    /// Consecutive vendor runs that produced `status`.
    pub seen_runs: u32,
    /// The last vendor run counted in `seen_runs`.
    pub vendor_run: Option<RunId>,
}

/// The suppression that covers a row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SuppressionRef {
    /// The operator's reason.
    pub reason: String,
    /// Its last day.
    pub until: NaiveDate,
    /// Its line in the mapping file.
    pub line: usize,
}

/// One reconciliation row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Row {
    /// What the row is about (`kind` plus its ids).
    #[serde(flatten)]
    pub key: RowKey,
    /// The PSA account's name (service rows, when the billed snapshot knows it).
    pub account_name: Option<String>,
    /// The customer's name (unmapped-customer rows).
    pub customer_name: Option<String>,
    /// Mailprotector product names that map to the row (or the unmapped customer's products).
    pub products: Vec<String>,
    /// Users per the vendor (`None` when there is no vendor data to say).
    pub vendor_quantity: Option<u64>,
    /// Units billed over counted lines (`None` when no counted line or no billed data).
    pub billed_quantity: Option<f64>,
    /// vendor − billed, when both are known and the inputs are fresh.
    pub delta: Option<f64>,
    /// Price per unit per month (quantity-weighted over counted lines), when known.
    pub unit_price: Option<f64>,
    /// delta × unit price: positive = revenue missed, negative = overcharged.
    pub monthly_impact: Option<f64>,
    /// The status shown.
    pub status: Status,
    /// Since when `status` has been shown.
    pub since: Since,
    /// For `pending`: the discrepancy waiting to be raised.
    pub pending_status: Option<Status>,
    /// Consecutive vendor runs the comparison result has been seen in.
    pub seen_runs: u32,
    /// Vendor runs needed before a discrepancy is raised.
    pub debounce_runs: u32,
    /// For `stale`: which input, and why.
    pub stale_reason: Option<String>,
    /// For `suppressed`: the suppression.
    pub suppression: Option<SuppressionRef>,
    /// The debounce memory (carried to the next computation).
    pub observed: Observation,
    /// The discrepancy episode: the current one, or the last one while the row stays
    /// resolved (see [`episode`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub episode: Option<Episode>,
    /// What the open episode has cost so far, as of the reconciliation's `computed_at`:
    /// positive = revenue missed, negative = overcharged (`None` without an open episode or
    /// without a unit price). Derived from `episode`; not stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accrued: Option<f64>,
    /// Seconds of the open episode left out of `accrued` (an input was stale, or the daemon
    /// did not compute for longer than `max_age`). Derived from `episode`; not stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub excluded_seconds: Option<i64>,
    /// Where the numbers came from (left out when not loaded: `?evidence=true` asks for it).
    #[serde(default, skip_serializing_if = "Evidence::is_empty")]
    pub evidence: Evidence,
}

/// How fresh one input is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Freshness {
    /// The run whose snapshot was used.
    pub run_id: Option<RunId>,
    /// When that snapshot was observed.
    pub observed_at: Option<DateTime<Utc>>,
    /// Its age at computation time, in seconds.
    pub age_seconds: Option<i64>,
    /// Whether the source's most recent run failed.
    pub last_run_failed: bool,
    /// That failure, in words.
    pub last_error: Option<String>,
    /// `None` when usable; otherwise why rows using it are stale.
    pub stale_reason: Option<String>,
}

impl Freshness {
    /// Whether rows using this input are stale.
    pub fn is_stale(&self) -> bool {
        self.stale_reason.is_some()
    }
}

/// Totals over the rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Number of rows.
    pub rows: u64,
    /// Rows per status name; every status is present (0 when none).
    pub by_status: BTreeMap<String, u64>,
    /// Monthly money missed: Σ impact of `under_billed` and `unbilled` rows (≥ 0).
    pub impact_under_billed: f64,
    /// Monthly money overcharged: Σ |impact| of `over_billed` and `billed_without_usage` (≥ 0).
    pub impact_over_billed: f64,
    /// Money missed so far: Σ positive `accrued` of rows with an open episode (≥ 0).
    #[serde(default)]
    pub accrued_under_billed: f64,
    /// Money overcharged so far: Σ |negative `accrued`| of rows with an open episode (≥ 0).
    #[serde(default)]
    pub accrued_over_billed: f64,
    /// Rows with a raised discrepancy (under/over billed, unbilled, billed without usage).
    pub discrepancies: u64,
    /// Discrepancies whose money is unknown (no unit price).
    pub unpriced_discrepancies: u64,
    /// Rows needing attention: discrepancies plus unmapped customers and products.
    pub attention: u64,
    /// The vendor input.
    pub vendor: Freshness,
    /// The billing input.
    pub billing: Freshness,
}

/// A customer's mapping state, for `/v1/customers` and `mpsync check`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomerMapping {
    /// Mailprotector customer id.
    pub customer: CustomerId,
    /// Its name in the vendor run.
    pub name: String,
    /// `mapped`, `unmapped` or `excluded`.
    pub state: MappingState,
    /// The account it maps to.
    pub account: Option<String>,
    /// That account's name, when the billed snapshot knows it.
    pub account_name: Option<String>,
    /// For unmapped customers: accounts whose normalized name matches.
    pub suggestions: Vec<Suggestion>,
}

/// Whether a customer is mapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MappingState {
    /// In `[customers]`.
    Mapped,
    /// Neither mapped nor excluded.
    Unmapped,
    /// In `[exclude] customers`.
    Excluded,
}

/// A proposed mapping for an unmapped customer. Never applied automatically.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Suggestion {
    /// The PSA account id.
    pub account: String,
    /// The account's name.
    pub account_name: String,
    /// The customer's name.
    pub customer_name: String,
    /// The normalized form both names share.
    pub normalized: String,
    /// A line to paste under `[customers]`, e.g. `329 = "250"  # Acme, Inc. ↔ ACME Inc`.
    pub stanza: String,
}

/// A complete reconciliation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reconciliation {
    /// When it was computed.
    pub computed_at: DateTime<Utc>,
    /// The vendor run it used.
    pub vendor_run: Option<RunId>,
    /// The billing run it used.
    pub billing_run: Option<RunId>,
    /// Rows, ordered by key (services, then unmapped customers, then unmapped products).
    pub rows: Vec<Row>,
    /// Totals and input freshness.
    pub summary: Summary,
    /// Every customer of the vendor snapshot with its mapping state and suggestions.
    pub customers: Vec<CustomerMapping>,
}

/// A reconciliation without its rows: when, from which runs, and the totals over every row.
/// What health, metrics and the planner need, kept apart from the rows in the store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReconciliationHead {
    /// When it was computed.
    pub computed_at: DateTime<Utc>,
    /// The vendor run it used.
    pub vendor_run: Option<RunId>,
    /// The billing run it used.
    pub billing_run: Option<RunId>,
    /// Totals and input freshness.
    pub summary: Summary,
}

impl Reconciliation {
    /// Its head (a copy of the summary; the rows stay).
    pub fn head(&self) -> ReconciliationHead {
        ReconciliationHead {
            computed_at: self.computed_at,
            vendor_run: self.vendor_run,
            billing_run: self.billing_run,
            summary: self.summary.clone(),
        }
    }
}

/// What the next computation carries over from a row of the previous one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prior {
    /// The status it showed.
    pub status: Status,
    /// Since when.
    pub since: Since,
    /// Its debounce memory.
    pub observed: Observation,
    /// Its discrepancy episode.
    #[serde(default)]
    pub episode: Option<Episode>,
}

impl Prior {
    /// The prior of `row`.
    pub fn of(row: &Row) -> Prior {
        Prior {
            status: row.status,
            since: row.since.clone(),
            observed: row.observed.clone(),
            episode: row.episode.clone(),
        }
    }
}

/// Whether the last run of a source failed (its last good snapshot is passed separately).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SourceStatus {
    /// The most recent run of the source failed (or was aborted).
    pub last_run_failed: bool,
    /// Why, for the stale reason.
    pub last_error: Option<String>,
}

/// Knobs from `[reconcile]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Inputs older than this make rows stale.
    pub max_age: Duration,
    /// Default consecutive vendor runs before a discrepancy is raised (at least 1).
    pub debounce_runs: u32,
}

/// Everything [`compute`] needs.
#[derive(Debug, Clone)]
pub struct Inputs<'a> {
    /// The latest complete vendor snapshot.
    pub usage: Option<&'a UsageSnapshot>,
    /// The vendor source's last run.
    pub vendor: SourceStatus,
    /// The latest billed snapshot.
    pub billed: Option<&'a BilledSnapshot>,
    /// The billing source's last run.
    pub billing: SourceStatus,
    /// The mapping.
    pub mapping: &'a Mapping,
    /// `[reconcile]` settings.
    pub settings: Settings,
    /// The current time.
    pub now: DateTime<Utc>,
    /// When the previous reconciliation was computed (for the money accrued since: a longer
    /// gap than `max_age` is excluded); `previous`'s own time wins when it is given.
    pub previous_at: Option<DateTime<Utc>>,
    /// The previous result (for `since` and debounce).
    pub previous: Option<&'a Reconciliation>,
}
