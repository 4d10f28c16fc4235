//! A reconciliation row's status (DESIGN.md's table, plus `pending`): a word every module
//! uses — the reconcile engine computes it, the config's notification filters and the
//! mapping's suppressions name it — so it lives with the other shared words.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A row's status (DESIGN.md's table, plus `pending`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Vendor quantity equals billed quantity.
    Match,
    /// Differs by no more than the product's tolerance.
    WithinTolerance,
    /// Vendor > billed: revenue leak.
    UnderBilled,
    /// 0 < vendor < billed: the customer may be overcharged.
    OverBilled,
    /// Mapped vendor usage with no counted billed line at all ("new revenue").
    Unbilled,
    /// Billed, but the fresh vendor data shows no usage.
    BilledWithoutUsage,
    /// A customer with usage and no account mapping.
    UnmappedCustomer,
    /// A product with usage and no PSA product mapping.
    UnmappedProduct,
    /// An input is missing, older than `max_age`, or its last run failed.
    Stale,
    /// An active operator suppression covers the row.
    Suppressed,
    /// A discrepancy seen in fewer than `debounce_runs` consecutive vendor runs.
    Pending,
}

impl Status {
    /// Every status, in display order.
    pub const ALL: [Status; 11] = [
        Status::Match,
        Status::WithinTolerance,
        Status::UnderBilled,
        Status::OverBilled,
        Status::Unbilled,
        Status::BilledWithoutUsage,
        Status::UnmappedCustomer,
        Status::UnmappedProduct,
        Status::Stale,
        Status::Suppressed,
        Status::Pending,
    ];

    /// The snake_case name used in JSON, CSV, filters and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Match => "match",
            Status::WithinTolerance => "within_tolerance",
            Status::UnderBilled => "under_billed",
            Status::OverBilled => "over_billed",
            Status::Unbilled => "unbilled",
            Status::BilledWithoutUsage => "billed_without_usage",
            Status::UnmappedCustomer => "unmapped_customer",
            Status::UnmappedProduct => "unmapped_product",
            Status::Stale => "stale",
            Status::Suppressed => "suppressed",
            Status::Pending => "pending",
        }
    }

    /// Parses a snake_case name.
    pub fn parse(s: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|st| st.as_str() == s.trim())
    }

    /// A quantity disagreement that costs money: under/over billed, unbilled, billed without
    /// usage. Only these are debounced and counted in the money totals.
    pub fn is_discrepancy(self) -> bool {
        matches!(
            self,
            Status::UnderBilled
                | Status::OverBilled
                | Status::Unbilled
                | Status::BilledWithoutUsage
        )
    }

    /// Something an operator should look at: a discrepancy or a missing mapping.
    pub fn needs_attention(self) -> bool {
        self.is_discrepancy() || matches!(self, Status::UnmappedCustomer | Status::UnmappedProduct)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
