//! Money over time: a row's discrepancy episode and what it has cost so far.
//!
//! An episode starts at the first computation whose comparison shows a discrepancy (while it
//! is still `pending`: the debounce delays the alert, not the cost), survives `stale`
//! interruptions and changes between discrepancy statuses, and ends when the row matches, is
//! within tolerance, is suppressed or disappears. Its money is Σ monthly impact × span /
//! [`MONTH`] over the spans between consecutive computations while the row was a fresh
//! discrepancy; a span is excluded (and counted in `excluded_seconds`) when the row shows
//! `stale` at its end or the gap between the two computations exceeds `max_age` (the daemon
//! was down, or nothing recomputed).
//!
//! The accumulator is compact so that an unchanged row is not rewritten at every computation:
//! it holds the money and excluded time up to `mark` and the mode since (`accruing` at a rate,
//! or excluded); a reader computes the value at the reconciliation's `computed_at`. A row is
//! rewritten only when its rate or mode changes, or a gap has to be excluded. Pure.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::Status;

/// A month in seconds: 365.25 / 12 days.
pub const MONTH: f64 = 365.25 / 12.0 * 86_400.0;

/// Relative change of the monthly impact that counts as material (a `discrepancy_changed`).
pub const MATERIAL_CHANGE: f64 = 0.10;

/// One discrepancy episode of a row: the current one, or the last one (ended) while the row
/// stays resolved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Episode {
    /// The computation that first showed the discrepancy (pending included).
    pub started_at: DateTime<Utc>,
    /// When it was raised (left `pending`); `None` while still pending.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raised_at: Option<DateTime<Utc>>,
    /// When it ended (match, within tolerance, suppressed); `None` while open.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<DateTime<Utc>>,
    /// The status last reported (raised, or changed materially).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reported_status: Option<Status>,
    /// The monthly impact last reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reported_impact: Option<f64>,
    /// The vendor quantity of the last fresh computation in the episode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vendor_quantity: Option<u64>,
    /// The billed quantity of the last fresh computation in the episode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub billed_quantity: Option<f64>,
    /// Money accrued up to `mark` (+ missed, − overcharged).
    pub accrued: f64,
    /// Seconds excluded up to `mark` (stale inputs, gaps longer than `max_age`).
    pub excluded_seconds: i64,
    /// Since when the mode below holds.
    pub mark: DateTime<Utc>,
    /// `Some(rate)`: a fresh discrepancy accruing `rate` (monthly impact, 0 when unpriced)
    /// since `mark`; `None`: excluded since `mark` (the row shows `stale`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accruing: Option<f64>,
}

/// Money at `rate` a month over `from..to`.
fn money(rate: f64, from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
    rate * secs(from, to) as f64 / MONTH
}

/// Seconds from `from` to `to` (0 when `to` is earlier).
fn secs(from: DateTime<Utc>, to: DateTime<Utc>) -> i64 {
    (to - from).num_seconds().max(0)
}

impl Episode {
    /// Whether the episode is still going.
    pub fn is_open(&self) -> bool {
        self.ended_at.is_none()
    }

    /// Money accrued up to `t` (a computation at or after `mark`; an ended episode's total).
    pub fn accrued_at(&self, t: DateTime<Utc>) -> f64 {
        match (self.ended_at, self.accruing) {
            (None, Some(rate)) => self.accrued + money(rate, self.mark, t),
            _ => self.accrued,
        }
    }

    /// Seconds excluded up to `t`.
    pub fn excluded_at(&self, t: DateTime<Utc>) -> i64 {
        match (self.ended_at, self.accruing) {
            (None, None) => self.excluded_seconds + secs(self.mark, t),
            _ => self.excluded_seconds,
        }
    }
}

/// What [`advance`] needs of the row just computed.
#[derive(Debug, Clone, Copy)]
pub struct Step {
    /// Its status.
    pub status: Status,
    /// Its monthly impact.
    pub monthly_impact: Option<f64>,
    /// Its vendor quantity.
    pub vendor_quantity: Option<u64>,
    /// Its billed quantity.
    pub billed_quantity: Option<f64>,
    /// This computation's time.
    pub now: DateTime<Utc>,
    /// The previous computation's time (`None`: none known).
    pub previous_at: Option<DateTime<Utc>>,
    /// `[reconcile] max_age`: a longer gap between computations is excluded.
    pub max_age: std::time::Duration,
}

/// Whether the monthly impact moved materially from `old` to `new`.
fn material(old: Option<f64>, new: Option<f64>) -> bool {
    match (old, new) {
        (Some(a), Some(b)) if a.abs() < 1e-9 => b.abs() >= 1e-9,
        (Some(a), Some(b)) => (b - a).abs() >= MATERIAL_CHANGE * a.abs(),
        (None, None) => false,
        _ => true,
    }
}

/// The row's episode after this computation, from the one it had (`prev`, current or last
/// ended). `None` when there is none to keep (no discrepancy yet, or a pending one that went
/// away before it was raised).
pub fn advance(prev: Option<&Episode>, s: &Step) -> Option<Episode> {
    let fresh_open = s.status.is_discrepancy() || s.status == Status::Pending;
    let Some(e) = prev.filter(|e| e.is_open()) else {
        if fresh_open {
            return Some(start(s));
        }
        // The last raised episode stays with the resolved row (what it cost, when it ended).
        return prev.filter(|e| e.raised_at.is_some()).cloned();
    };
    let max_age = chrono::Duration::from_std(s.max_age).unwrap_or(chrono::Duration::MAX);
    let prev_t = s.previous_at.filter(|p| *p >= e.mark && *p <= s.now).unwrap_or(e.mark);
    let gap_ok = s.previous_at.is_some() && s.now - prev_t <= max_age;
    let fresh_now = s.status != Status::Stale;
    // Settle up to now: the span since the previous computation counts only when the row is
    // fresh at both ends and the computations were close enough.
    let (accrued, excluded) = match e.accruing {
        Some(rate) if fresh_now && gap_ok => {
            (e.accrued + money(rate, e.mark, s.now), e.excluded_seconds)
        }
        Some(rate) => {
            (e.accrued + money(rate, e.mark, prev_t), e.excluded_seconds + secs(prev_t, s.now))
        }
        None => (e.accrued, e.excluded_seconds + secs(e.mark, s.now)),
    };
    if !fresh_open && fresh_now {
        // Matched, within tolerance, or suppressed: the episode ends (a pending one that never
        // was raised is forgotten).
        e.raised_at?;
        return Some(Episode {
            ended_at: Some(s.now),
            accrued,
            excluded_seconds: excluded,
            mark: s.now,
            accruing: None,
            ..e.clone()
        });
    }
    let mut next = e.clone();
    if s.status.is_discrepancy() {
        let reported = (Some(s.status), s.monthly_impact);
        if next.raised_at.is_none() {
            next.raised_at = Some(s.now);
            (next.reported_status, next.reported_impact) = reported;
        } else if next.reported_status != Some(s.status)
            || material(next.reported_impact, s.monthly_impact)
        {
            (next.reported_status, next.reported_impact) = reported;
        }
    }
    if fresh_now {
        next.vendor_quantity = s.vendor_quantity;
        next.billed_quantity = s.billed_quantity;
    }
    let mode = fresh_now.then(|| s.monthly_impact.unwrap_or(0.0));
    let unchanged = match (e.accruing, mode) {
        (Some(a), Some(b)) => a == b && gap_ok,
        (None, None) => true,
        _ => false,
    };
    if !unchanged {
        next.accrued = accrued;
        next.excluded_seconds = excluded;
        next.mark = s.now;
        next.accruing = mode;
    }
    Some(next)
}

/// What a row shows of its episode at `at` (its reconciliation's `computed_at`): the money
/// accrued and the seconds excluded, for an open episode; `(None, None)` otherwise. A fresh
/// row without a unit price shows no money (its rate is unknown), but its excluded time.
pub fn shown(
    status: Status,
    monthly_impact: Option<f64>,
    episode: Option<&Episode>,
    at: DateTime<Utc>,
) -> (Option<f64>, Option<i64>) {
    let Some(e) = episode.filter(|e| e.is_open()) else { return (None, None) };
    let unpriced = status != Status::Stale && monthly_impact.is_none();
    let accrued = (!unpriced).then(|| e.accrued_at(at));
    (accrued, Some(e.excluded_at(at)))
}

/// A new episode at this computation.
fn start(s: &Step) -> Episode {
    let raised = s.status.is_discrepancy();
    Episode {
        started_at: s.now,
        raised_at: raised.then_some(s.now),
        ended_at: None,
        reported_status: raised.then_some(s.status),
        reported_impact: if raised { s.monthly_impact } else { None },
        vendor_quantity: s.vendor_quantity,
        billed_quantity: s.billed_quantity,
        accrued: 0.0,
        excluded_seconds: 0,
        mark: s.now,
        accruing: Some(s.monthly_impact.unwrap_or(0.0)),
    }
}

#[cfg(test)]
#[path = "episode_tests.rs"]
mod tests;
