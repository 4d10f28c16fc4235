//! What the dashboard shows, computed from the same data the JSON endpoints serve: the
//! stored reconciliation (its summary and rows, filtered by [`Filter`]), the health state's
//! sources, and the store's runs and count history. Pure: no I/O, `now` is passed in.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::sparkline::Step;
use crate::health::{HealthState, Source};
use crate::model::{CustomerId, RunId, RunRecord};
use crate::reconcile::{
    CustomerMapping, Filter, MappingState, Reconciliation, Row, Status, UnknownStatus,
};

/// At most this many rows are drawn (the totals still cover every row); narrower filters
/// show the rest. Keeps the page and its history reads bounded at 10,000 customers.
pub const MAX_ROWS: usize = 300;

/// A row draws no chart when more (customer, product) pairs than this make it up (an
/// unmapped product used by hundreds of customers): the reads would cost more than it says.
pub const MAX_PAIRS_PER_ROW: usize = 50;

/// At most this many unmapped customers are listed (those with a suggestion first); the
/// ready-to-paste block still covers every one, and `/v1/customers` lists them all.
pub const MAX_UNMAPPED: usize = 200;

/// The order rows are listed in: money leaking first, then money possibly overcharged, then
/// missing mappings, then what cannot be judged yet, and what is fine last.
pub fn status_rank(s: Status) -> u8 {
    match s {
        Status::UnderBilled => 0,
        Status::Unbilled => 1,
        Status::OverBilled => 2,
        Status::BilledWithoutUsage => 3,
        Status::UnmappedCustomer => 4,
        Status::UnmappedProduct => 5,
        Status::Stale => 6,
        Status::Pending => 7,
        Status::WithinTolerance => 8,
        Status::Suppressed => 9,
        Status::Match => 10,
    }
}

/// Statuses in [`status_rank`] order (for the totals and the filter's options).
pub fn statuses_by_rank() -> Vec<Status> {
    let mut all = Status::ALL.to_vec();
    all.sort_by_key(|s| status_rank(*s));
    all
}

/// `rows` in display order: by [`status_rank`], then the most money at stake first, then
/// the reconciliation's own (key) order. Stable, so equal rows keep the engine's order.
pub fn order_rows(mut rows: Vec<&Row>) -> Vec<&Row> {
    rows.sort_by(|a, b| {
        let impact = |r: &Row| r.monthly_impact.map(f64::abs).unwrap_or(0.0);
        status_rank(a.status)
            .cmp(&status_rank(b.status))
            .then_with(|| impact(b).total_cmp(&impact(a)))
    });
    rows
}

/// The (customer, product) pairs whose count histories add up to the row's vendor quantity;
/// empty when there are too many to chart.
pub fn history_pairs(row: &Row) -> Vec<(CustomerId, String)> {
    let pairs: Vec<(CustomerId, String)> =
        row.evidence.customers.iter().map(|c| (c.customer, c.product.clone())).collect();
    if pairs.len() > MAX_PAIRS_PER_ROW { Vec::new() } else { pairs }
}

/// The filters from the query string (`?status=…&account=…`), as the form submits them.
#[derive(Debug, Clone, Default)]
pub struct Filters {
    /// The filter applied to the rows.
    pub filter: Filter,
    /// The status text as given (kept in the form even when invalid).
    pub status_text: String,
    /// Why the status was not understood (the page says so and shows every row).
    pub error: Option<UnknownStatus>,
}

impl Filters {
    /// Parses the query values; an empty value means "any".
    pub fn parse(status: Option<&str>, account: Option<&str>) -> Filters {
        let status_text = status.unwrap_or("").trim().to_owned();
        let (statuses, error) = match Filter::parse_statuses(&status_text) {
            Ok(s) => (s, None),
            Err(e) => (Vec::new(), Some(e)),
        };
        let account = account.map(str::trim).filter(|a| !a.is_empty()).map(str::to_owned);
        Filters { filter: Filter { statuses, account, product: None }, status_text, error }
    }
}

/// One data source's freshness as the page shows it.
#[derive(Debug, Clone)]
pub struct SourceView {
    /// "vendor", "billing" or "push".
    pub label: &'static str,
    /// Which implementation (mailprotector, connectwise, csv, gradient).
    pub component: Option<String>,
    /// Whether the config uses it.
    pub configured: bool,
    /// The last completed run and when it finished.
    pub last_success: Option<(RunId, DateTime<Utc>)>,
    /// Seconds since then.
    pub age_seconds: Option<i64>,
    /// Fresh, stale, failing, waiting, no run yet, or not configured.
    pub state: SourceState,
    /// The last failure's time and reason.
    pub last_error: Option<(DateTime<Utc>, String)>,
    /// Failed runs since the last success.
    pub consecutive_failures: u32,
    /// What it waits for before its first run (the push before the first vendor snapshot).
    pub waiting: Option<String>,
}

/// How a source is doing, by the same rules as `/v1/health`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceState {
    /// The last run succeeded within `reconcile.max_age`.
    Fresh,
    /// The last success is older than `reconcile.max_age`.
    Stale,
    /// Runs failed since the last success.
    Failing,
    /// No run yet because it waits for another source (not a failure).
    Waiting,
    /// No successful run yet.
    NoRunYet,
    /// Not used by the config.
    NotConfigured,
}

impl SourceState {
    /// The word shown (also the CSS class).
    pub fn as_str(self) -> &'static str {
        match self {
            SourceState::Fresh => "fresh",
            SourceState::Stale => "stale",
            SourceState::Failing => "failing",
            SourceState::Waiting => "waiting",
            SourceState::NoRunYet => "no run yet",
            SourceState::NotConfigured => "not configured",
        }
    }
}

/// Vendor, billing and push freshness from the health state at `now`.
pub fn sources(health: &HealthState, now: DateTime<Utc>) -> Vec<SourceView> {
    let max_age = i64::try_from(health.max_age.as_secs()).unwrap_or(i64::MAX);
    [(Source::Mailprotector, "vendor"), (Source::Billing, "billing"), (Source::Gradient, "push")]
        .into_iter()
        .map(|(source, label)| {
            let sh = health.sources.get(&source).cloned().unwrap_or_default();
            let age_seconds = sh.last_success.map(|(_, at)| (now - at).num_seconds().max(0));
            let state = if !sh.configured {
                SourceState::NotConfigured
            } else if sh.last_success.is_none() && sh.waiting.is_some() {
                SourceState::Waiting
            } else if sh.last_success.is_none() {
                SourceState::NoRunYet
            } else if sh.consecutive_failures > 0 {
                SourceState::Failing
            } else if age_seconds.is_some_and(|a| a > max_age) {
                SourceState::Stale
            } else {
                SourceState::Fresh
            };
            SourceView {
                label,
                component: sh.component_id,
                configured: sh.configured,
                last_success: sh.last_success,
                age_seconds,
                state,
                last_error: sh.last_failure,
                consecutive_failures: sh.consecutive_failures,
                waiting: sh.waiting.map(|(_, why)| why),
            }
        })
        .collect()
}

/// At most this many accounts are offered as choices in the account filter (a datalist of
/// 10,000 accounts would make the page heavy); typing any other id or name still works.
pub const MAX_ACCOUNT_CHOICES: usize = 500;

/// How many rows pass `filter`, from the summary's counts; `None` when an account or product
/// filter makes the summary unable to tell.
pub fn matching(summary: &crate::reconcile::Summary, filter: &Filter) -> Option<u64> {
    if filter.account.is_some() || filter.product.is_some() {
        return None;
    }
    if filter.statuses.is_empty() {
        return Some(summary.rows);
    }
    Some(filter.statuses.iter().filter_map(|s| summary.by_status.get(s.as_str())).sum())
}

/// Billing accounts that appear in the rows, id → name, for the account filter's choices:
/// those with a row needing attention first, at most [`MAX_ACCOUNT_CHOICES`]. The page holds
/// one page of rows, so these are the page's accounts.
pub fn accounts(rec: &Reconciliation) -> BTreeMap<String, Option<String>> {
    // id → (needs attention, name)
    let mut all: BTreeMap<&str, (bool, Option<&str>)> = BTreeMap::new();
    for r in &rec.rows {
        if let crate::reconcile::RowKey::Service { account, .. } = &r.key {
            let entry = all.entry(account.as_str()).or_insert((false, None));
            entry.0 |= r.status.needs_attention();
            entry.1 = entry.1.or(r.account_name.as_deref());
        }
    }
    let mut list: Vec<(&str, (bool, Option<&str>))> = all.into_iter().collect();
    list.sort_by_key(|(id, (attention, _))| (!attention, *id));
    list.truncate(MAX_ACCOUNT_CHOICES);
    list.into_iter().map(|(id, (_, name))| (id.to_owned(), name.map(str::to_owned))).collect()
}

/// Customers that are neither mapped nor excluded, those with a suggestion first.
pub fn unmapped(rec: &Reconciliation) -> Vec<&CustomerMapping> {
    let mut list: Vec<&CustomerMapping> =
        rec.customers.iter().filter(|c| c.state == MappingState::Unmapped).collect();
    list.sort_by_key(|c| (c.suggestions.is_empty(), c.customer));
    list
}

/// The `[customers]` lines for every unmapped customer with exactly one suggestion, ready to
/// paste into the mapping file; `None` when there is none. Customers with several candidate
/// accounts are left to the operator (a wrong mapping bills the wrong company).
pub fn toml_block(unmapped: &[&CustomerMapping]) -> Option<String> {
    let lines: Vec<&str> = unmapped
        .iter()
        .filter(|c| c.suggestions.len() == 1)
        .map(|c| c.suggestions[0].stanza.as_str())
        .collect();
    if lines.is_empty() {
        return None;
    }
    Some(format!("[customers]\n{}\n", lines.join("\n")))
}

/// Everything the page renders.
#[derive(Debug)]
pub struct View<'a> {
    /// When the page was built.
    pub now: DateTime<Utc>,
    /// The filters in effect.
    pub filters: &'a Filters,
    /// The latest reconciliation, if any.
    pub rec: Option<&'a Reconciliation>,
    /// The rows that pass the filters, in display order, with their history (at most
    /// [`MAX_ROWS`]).
    pub rows: Vec<(&'a Row, Vec<Step>)>,
    /// How many rows pass the filters in all, when the summary tells (filters by status
    /// only).
    pub matching: Option<u64>,
    /// The cursor of the next page of rows, if there is one.
    pub next_cursor: Option<String>,
    /// Vendor, billing and push freshness.
    pub sources: Vec<SourceView>,
    /// The most recent runs, newest first.
    pub runs: &'a [RunRecord],
    /// The latest write-back plan, if any.
    pub plan: Option<&'a crate::writeback::Plan>,
    /// The latest audit entries, newest first.
    pub audit: &'a [crate::writeback::AuditEntry],
    /// A store read that failed (the page says so).
    pub error: Option<String>,
}

/// A duration in seconds for people: `42s`, `5m 3s`, `2h 10m`, `3d 4h`.
pub fn age(seconds: i64) -> String {
    let s = seconds.max(0);
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m {}s", s / 60, s % 60),
        3600..86_400 => format!("{}h {}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d {}h", s / 86_400, s % 86_400 / 3600),
    }
}
