//! Row filters shared by `/v1/reconciliation?status=&account=&product=` and
//! `mpsync reconcile --status`.

use super::{Row, RowKey, Status};

/// A status filter named a status that does not exist.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown status {given:?}; use one or more of {}", valid_statuses())]
pub struct UnknownStatus {
    /// The value given.
    pub given: String,
}

fn valid_statuses() -> String {
    Status::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
}

/// Which rows to keep; an empty filter keeps all.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filter {
    /// Keep rows with any of these statuses (all when empty).
    pub statuses: Vec<Status>,
    /// Keep rows of this PSA account (id, or name ignoring case).
    pub account: Option<String>,
    /// Keep rows of this product: PSA product id or Mailprotector product name.
    pub product: Option<String>,
}

impl Filter {
    /// Parses a comma-separated status list such as `under_billed,over_billed`. The error
    /// names the bad value and lists the valid ones.
    pub fn parse_statuses(list: &str) -> Result<Vec<Status>, UnknownStatus> {
        list.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| Status::parse(s).ok_or_else(|| UnknownStatus { given: s.to_owned() }))
            .collect()
    }

    /// Whether `row` passes.
    pub fn matches(&self, row: &Row) -> bool {
        let status_ok = self.statuses.is_empty() || self.statuses.contains(&row.status);
        let account_ok = self.account.as_deref().is_none_or(|a| match &row.key {
            RowKey::Service { account, .. } => {
                account == a
                    || row.account_name.as_deref().is_some_and(|n| n.eq_ignore_ascii_case(a))
            }
            _ => false,
        });
        let product_ok = self.product.as_deref().is_none_or(|p| {
            row.products.iter().any(|name| name == p)
                || match &row.key {
                    RowKey::Service { psa_product, .. } => psa_product == p,
                    RowKey::UnmappedProduct { product } => product == p,
                    RowKey::UnmappedCustomer { .. } => false,
                }
        });
        status_ok && account_ok && product_ok
    }

    /// The rows that pass, in order.
    pub fn apply<'r>(&self, rows: &'r [Row]) -> Vec<&'r Row> {
        rows.iter().filter(|r| self.matches(r)).collect()
    }
}
