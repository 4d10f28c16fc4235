//! The period report (`mpsync report`, `GET /v1/report`): per account, the discrepancies that
//! appeared in the period, were fixed (and how), and are still open, each with its money —
//! the monthly impact, and what it cost within the period — with totals per account and
//! overall. What an MSP reads at month-end close.
//!
//! Built from the event log and, when the period runs up to the latest reconciliation, the
//! current rows ([`build`] is pure; `load` reads the store). A discrepancy's money within the
//! period is interpolated between the points the log records for it (its start at 0, each
//! event's `accrued`, and the current row's).

mod load;
mod render;

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

pub use load::load;
pub use render::{csv, markdown};

use crate::events::{Cause, Event, EventKind};
use crate::reconcile::{Row, RowKey, Status};

/// A `--since`/`--until` (or `since=`/`until=`) value that is not a date.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{value:?} is not a date: use YYYY-MM-DD (midnight UTC at its start) or an RFC 3339 time \
     such as 2026-11-01T00:00:00Z"
)]
pub struct BadDate {
    /// The value given.
    pub value: String,
}

/// Reads a report bound: `YYYY-MM-DD` (its midnight UTC) or an RFC 3339 time.
pub fn parse_date(s: &str) -> Result<DateTime<Utc>, BadDate> {
    let t = s.trim();
    if let Ok(d) = NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        return Ok(d.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc());
    }
    DateTime::parse_from_rfc3339(t)
        .map(|d| d.with_timezone(&Utc))
        .map_err(|_| BadDate { value: t.chars().take(60).collect() })
}

/// The report's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Markdown, for people (the default).
    Md,
    /// CSV, one line per discrepancy and section.
    Csv,
    /// JSON, the [`Report`] itself.
    Json,
}

impl Format {
    /// Reads `md`, `csv` or `json`.
    pub fn parse(s: &str) -> Option<Format> {
        match s.trim() {
            "md" | "markdown" => Some(Format::Md),
            "csv" => Some(Format::Csv),
            "json" => Some(Format::Json),
            _ => None,
        }
    }
}

/// One discrepancy (one episode of one row) in the period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Item {
    /// The row.
    pub row: RowKey,
    /// Its PSA product.
    pub psa_product: String,
    /// Its Mailprotector products.
    pub products: Vec<String>,
    /// Its latest discrepancy status.
    pub status: Option<Status>,
    /// When the discrepancy began (first seen, debounce included).
    pub since: DateTime<Utc>,
    /// When it was raised, if the log still has it.
    pub opened_at: Option<DateTime<Utc>>,
    /// When it was resolved (before the period's end).
    pub resolved_at: Option<DateTime<Utc>>,
    /// How.
    pub cause: Option<Cause>,
    /// Its latest monthly impact (+ missed, − overcharged).
    pub monthly_impact: Option<f64>,
    /// What it cost within the period.
    pub accrued_in_period: f64,
    /// What it cost in all, up to its end or the period's.
    pub accrued_total: f64,
}

/// Counts and money of a set of items.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Totals {
    /// Discrepancies that appeared in the period.
    pub appeared: u64,
    /// Discrepancies fixed in the period.
    pub fixed: u64,
    /// Discrepancies still open at the period's end.
    pub open: u64,
    /// Money missed within the period (≥ 0).
    pub missed_in_period: f64,
    /// Money overcharged within the period (≥ 0).
    pub overcharged_in_period: f64,
    /// Monthly money still missed by the open ones (≥ 0).
    pub open_monthly_under: f64,
    /// Monthly money still overcharged by the open ones (≥ 0).
    pub open_monthly_over: f64,
}

/// One account's part.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccountReport {
    /// The PSA account.
    pub account: String,
    /// Its name, when known.
    pub account_name: Option<String>,
    /// Raised in the period.
    pub appeared: Vec<Item>,
    /// Resolved in the period.
    pub fixed: Vec<Item>,
    /// Open at the period's end.
    pub open: Vec<Item>,
    /// Over this account's discrepancies (each counted once in the money).
    pub totals: Totals,
}

/// A line of the log that is not a discrepancy: an unmapped customer or product appearing, a
/// source failing or recovering, a push or write-back failing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notice {
    /// When.
    pub at: DateTime<Utc>,
    /// What.
    pub kind: EventKind,
    /// In words.
    pub text: String,
}

/// The period report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// The period's start (inclusive).
    pub since: DateTime<Utc>,
    /// Its end (exclusive).
    pub until: DateTime<Utc>,
    /// The reconciliation the open discrepancies are read from, when the period reaches it.
    pub reconciliation_at: Option<DateTime<Utc>>,
    /// The oldest event the log still keeps (older ones were pruned).
    pub events_since: Option<DateTime<Utc>>,
    /// Per account, by account id.
    pub accounts: Vec<AccountReport>,
    /// Over every account.
    pub totals: Totals,
    /// Other events of the period, in order.
    pub notices: Vec<Notice>,
}

/// What [`build`] reads.
pub struct Inputs<'a> {
    /// The period.
    pub since: DateTime<Utc>,
    /// Its end.
    pub until: DateTime<Utc>,
    /// Every event kept, in id order (later ones only help place the money).
    pub events: &'a [Event],
    /// The oldest event kept.
    pub events_since: Option<DateTime<Utc>>,
    /// The latest reconciliation's time and its rows with an open, raised discrepancy: the
    /// open list when the period reaches it (`until` at or after it), else points for the money.
    pub current: Option<(DateTime<Utc>, &'a [Row])>,
}

/// The points known of one episode, and what else is known of it.
struct Episode {
    row: RowKey,
    account_name: Option<String>,
    products: Vec<String>,
    since: DateTime<Utc>,
    opened_at: Option<DateTime<Utc>>,
    resolved: Option<(DateTime<Utc>, Option<Cause>)>,
    status: Option<Status>,
    monthly_impact: Option<f64>,
    points: Vec<(DateTime<Utc>, f64)>,
    current: bool,
}

impl Episode {
    fn new(row: RowKey, since: DateTime<Utc>) -> Episode {
        Episode {
            row,
            account_name: None,
            products: Vec::new(),
            since,
            opened_at: None,
            resolved: None,
            status: None,
            monthly_impact: None,
            points: Vec::new(),
            current: false,
        }
    }

    /// Money accrued by `t`, interpolated between the known points.
    fn accrued_at(&self, t: DateTime<Utc>) -> f64 {
        let mut prev = (self.since, 0.0);
        for &(at, v) in &self.points {
            if t <= at {
                let span = (at - prev.0).num_milliseconds() as f64;
                if span <= 0.0 {
                    return v;
                }
                let part = (t - prev.0).num_milliseconds().max(0) as f64 / span;
                return prev.1 + (v - prev.1) * part;
            }
            prev = (at, v);
        }
        prev.1
    }
}

/// Builds the report. Pure.
pub fn build(inp: &Inputs<'_>) -> Report {
    let use_current = inp.current.filter(|(at, _)| inp.until >= *at);
    let mut episodes: BTreeMap<(RowKey, DateTime<Utc>), Episode> = BTreeMap::new();
    let mut notices = Vec::new();
    for ev in inp.events {
        let row_event = matches!(
            ev.kind,
            EventKind::DiscrepancyOpened
                | EventKind::DiscrepancyChanged
                | EventKind::DiscrepancyResolved
        );
        if !row_event {
            if ev.at >= inp.since && ev.at < inp.until {
                notices.push(Notice { at: ev.at, kind: ev.kind, text: ev.text.clone() });
            }
            continue;
        }
        let (Some(row), Some(since)) = (ev.row.clone(), ev.since) else { continue };
        let e = episodes.entry((row.clone(), since)).or_insert_with(|| Episode::new(row, since));
        // Every point helps the interpolation; only what happened before the end counts.
        if let Some(a) = ev.accrued {
            e.points.push((ev.at, a));
        }
        if ev.at >= inp.until {
            continue;
        }
        e.account_name = ev.account_name.clone().or(e.account_name.take());
        e.products = ev.products.clone();
        match ev.kind {
            EventKind::DiscrepancyOpened => {
                e.opened_at = Some(ev.at);
                e.status = ev.status_to;
                e.monthly_impact = ev.monthly_impact;
            }
            EventKind::DiscrepancyChanged => {
                e.status = ev.status_to;
                e.monthly_impact = ev.monthly_impact;
            }
            _ => {
                e.resolved = Some((ev.at, ev.cause));
                e.status = ev.status_from;
                e.monthly_impact = ev.monthly_impact;
            }
        }
    }
    if let Some((at, rows)) = inp.current {
        for r in rows {
            let Some(ep) = r.episode.as_ref().filter(|e| e.is_open() && e.raised_at.is_some())
            else {
                continue;
            };
            let key = (r.key.clone(), ep.started_at);
            let e =
                episodes.entry(key).or_insert_with(|| Episode::new(r.key.clone(), ep.started_at));
            e.points.push((at, ep.accrued_at(at)));
            e.current = true;
            if use_current.is_some() {
                e.account_name = r.account_name.clone().or(e.account_name.take());
                e.products = r.products.clone();
                e.status = ep.reported_status.or(e.status);
                e.monthly_impact = r.monthly_impact.or(e.monthly_impact);
            } else if e.account_name.is_none() {
                e.account_name = r.account_name.clone();
            }
        }
    }
    let mut accounts: BTreeMap<String, AccountReport> = BTreeMap::new();
    let mut totals = Totals::default();
    for e in episodes.values_mut() {
        e.points.sort_by_key(|p| p.0);
        let RowKey::Service { account, psa_product } = &e.row else { continue };
        let resolved_before = e.resolved.filter(|(at, _)| *at < inp.until);
        if resolved_before.is_some_and(|(at, _)| at < inp.since) {
            continue;
        }
        // Without the current rows, an episode is open when the log has not resolved it; with
        // them, only the ones they hold are (a row gone unseen cannot be vouched for).
        let open = resolved_before.is_none()
            && e.since < inp.until
            && (if use_current.is_some() { e.current } else { e.opened_at.is_some() || e.current });
        let appeared = e.opened_at.is_some_and(|at| at >= inp.since);
        let fixed = resolved_before.is_some();
        if !(open || appeared || fixed) {
            continue;
        }
        let end = resolved_before.map_or(inp.until, |(at, _)| at);
        let accrued_total = e.accrued_at(end);
        let accrued_in_period = accrued_total - e.accrued_at(inp.since.max(e.since));
        let item = Item {
            row: e.row.clone(),
            psa_product: psa_product.clone(),
            products: e.products.clone(),
            status: e.status,
            since: e.since,
            opened_at: e.opened_at,
            resolved_at: resolved_before.map(|r| r.0),
            cause: resolved_before.and_then(|r| r.1),
            monthly_impact: e.monthly_impact,
            accrued_in_period,
            accrued_total,
        };
        let a = accounts.entry(account.clone()).or_insert_with(|| AccountReport {
            account: account.clone(),
            account_name: None,
            appeared: Vec::new(),
            fixed: Vec::new(),
            open: Vec::new(),
            totals: Totals::default(),
        });
        a.account_name = e.account_name.clone().or(a.account_name.take());
        for t in [&mut a.totals, &mut totals] {
            t.appeared += u64::from(appeared);
            t.fixed += u64::from(fixed);
            t.open += u64::from(open);
            if accrued_in_period >= 0.0 {
                t.missed_in_period += accrued_in_period;
            } else {
                t.overcharged_in_period -= accrued_in_period;
            }
            if open {
                match item.monthly_impact {
                    Some(m) if m > 0.0 => t.open_monthly_under += m,
                    Some(m) => t.open_monthly_over -= m,
                    None => {}
                }
            }
        }
        if appeared {
            a.appeared.push(item.clone());
        }
        if fixed {
            a.fixed.push(item.clone());
        }
        if open {
            a.open.push(item);
        }
    }
    Report {
        since: inp.since,
        until: inp.until,
        reconciliation_at: use_current.map(|c| c.0),
        events_since: inp.events_since,
        accounts: accounts.into_values().collect(),
        totals,
        notices,
    }
}

#[cfg(test)]
mod tests;
