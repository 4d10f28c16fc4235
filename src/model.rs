//! The domain words shared by every module: customer, product, usage count, run, snapshot.
//!
//! These types are the contract between the collectors (which produce them), the store (which
//! keeps them) and the readers (server, reconcile). They carry no behaviour beyond ordering.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A Mailprotector customer id.
pub type CustomerId = u64;

/// A run id: strictly increasing across every job kind in one store.
pub type RunId = u64;

/// The kind of job a run executed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunKind {
    /// A Mailprotector poll that produces a usage snapshot.
    Vendor,
    /// A PSA poll that produces a billed snapshot.
    Billing,
    /// A push of counts to Gradient Synthesize.
    Push,
}

impl RunKind {
    /// The lower-case name used in logs, metrics and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            RunKind::Vendor => "vendor",
            RunKind::Billing => "billing",
            RunKind::Push => "push",
        }
    }
}

impl fmt::Display for RunKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a run ended (or that it has not yet).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunOutcome {
    /// Still going.
    Running,
    /// Completed; its snapshot (if any) was committed with it.
    Ok,
    /// Ended with an error; no snapshot was written.
    Failed,
    /// Found still "running" at start-up: the process died during it.
    Aborted,
    /// Stopped by shutdown before it completed; nothing was written.
    Cancelled,
}

impl RunOutcome {
    /// The lower-case name used in logs, metrics and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            RunOutcome::Running => "running",
            RunOutcome::Ok => "ok",
            RunOutcome::Failed => "failed",
            RunOutcome::Aborted => "aborted",
            RunOutcome::Cancelled => "cancelled",
        }
    }
}

/// One execution of a job, as recorded in the store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// Strictly increasing id.
    pub id: RunId,
    /// Which job ran.
    pub kind: RunKind,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// When it ended; `None` while running.
    pub finished_at: Option<DateTime<Utc>>,
    /// How it ended.
    pub outcome: RunOutcome,
    /// Requests made, per upstream endpoint (e.g. `mailprotector GET /domains/{id}/user_groups`).
    pub requests: BTreeMap<String, u64>,
    /// Why it failed, in words an operator can act on.
    pub error: Option<String>,
    /// The snapshot this run produced or confirmed unchanged (the run id that first stored
    /// that content); `None` for runs that produce no snapshot or did not succeed.
    pub snapshot: Option<RunId>,
}

/// Users of one customer per product (or count definition) name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerUsage {
    /// Mailprotector customer id.
    pub id: CustomerId,
    /// The customer's name as seen in this run.
    pub name: String,
    /// Usage count per product or count-definition name. A product absent here has 0 users.
    pub counts: BTreeMap<String, u64>,
}

/// The complete output of one successful vendor run: every customer, counted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageSnapshot {
    /// The run that produced it.
    pub run_id: RunId,
    /// When the counts were observed (the end of the collection).
    pub observed_at: DateTime<Utc>,
    /// Every customer of the reseller, ordered by id.
    pub customers: Vec<CustomerUsage>,
}

impl UsageSnapshot {
    /// Total users per product over all customers.
    pub fn totals(&self) -> BTreeMap<String, u64> {
        let mut totals = BTreeMap::new();
        for c in &self.customers {
            for (product, n) in &c.counts {
                *totals.entry(product.clone()).or_insert(0) += n;
            }
        }
        totals
    }
}

/// The products enabled on one user group, as last read from Mailprotector.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachedServices {
    /// Canonical product names (see `mailprotector::products`), sorted, de-duplicated.
    pub products: Vec<String>,
    /// When the list was read.
    pub fetched_at: DateTime<Utc>,
}

/// A billing account: a PSA company (ConnectWise) or an account in a CSV export.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Account {
    /// The source's id for it, as a string (ConnectWise company id, CSV `account_id`).
    pub id: String,
    /// Its name as the PSA shows it.
    pub name: String,
}

/// One billed line: a ConnectWise agreement addition or a CSV row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BilledLine {
    /// The account billed.
    pub account_id: String,
    /// The PSA product (ConnectWise product identifier, CSV `product_id`).
    pub product_id: String,
    /// Units billed.
    pub quantity: f64,
    /// Price per unit per month, when the source gives one.
    pub unit_price: Option<f64>,
    /// Whether the line counts toward the billed quantity (agreement active, not cancelled,
    /// in effect, billable). Lines that do not count are kept as evidence.
    pub counted: bool,
    /// Why the line does not count, when it does not.
    pub note: Option<String>,
    /// Where the line came from, e.g. "agreement 12 addition 345" or "billed.csv line 7".
    pub source_ref: String,
}

/// The complete output of one successful billing run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BilledSnapshot {
    /// The run that produced it.
    pub run_id: RunId,
    /// When it was read.
    pub observed_at: DateTime<Utc>,
    /// Every account the source knows (used for names and mapping suggestions).
    pub accounts: Vec<Account>,
    /// Every line read, counted or not.
    pub lines: Vec<BilledLine>,
}
