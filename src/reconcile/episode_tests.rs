//! The accrual arithmetic: spans between computations, stale spans and daemon-down gaps
//! excluded, debounce counted, episodes ending and restarting, and the laziness that keeps
//! unchanged rows from being rewritten.

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};

use super::*;

/// 730.5 a month is 1.00 an hour (a month is 730.5 hours).
const HOURLY: f64 = 730.5;

fn at(hour: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap() + chrono::Duration::hours(hour)
}

/// A computation at `hour` after one at `prev` (max_age 2 h), the row showing `status`.
fn step(status: Status, impact: Option<f64>, hour: i64, prev: Option<i64>) -> Step {
    Step {
        status,
        monthly_impact: impact,
        vendor_quantity: Some(12),
        billed_quantity: Some(10.0),
        now: at(hour),
        previous_at: prev.map(at),
        max_age: Duration::from_secs(2 * 3600),
    }
}

/// Runs `steps` (status, impact, hour) one after the other from no episode.
fn run(steps: &[(Status, Option<f64>, i64)]) -> Vec<Option<Episode>> {
    let mut out: Vec<Option<Episode>> = Vec::new();
    let mut prev_hour = None;
    for (status, impact, hour) in steps {
        let prev = out.last().cloned().flatten();
        out.push(advance(prev.as_ref(), &step(*status, *impact, *hour, prev_hour)));
        prev_hour = Some(*hour);
    }
    out
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

#[test]
fn a_fresh_discrepancy_accrues_its_monthly_impact_over_time() {
    let u = Status::UnderBilled;
    let eps = run(&[(u, Some(HOURLY), 0), (u, Some(HOURLY), 1), (u, Some(HOURLY), 2)]);
    let e = eps[2].as_ref().unwrap();
    assert!(close(e.accrued_at(at(2)), 2.0), "{}", e.accrued_at(at(2)));
    assert_eq!(e.excluded_at(at(2)), 0);
    assert_eq!((e.started_at, e.raised_at), (at(0), Some(at(0))));
    // A month at 24.00 a month is 24.00.
    let month = run(&[(u, Some(24.0), 0)]);
    let later = at(0) + chrono::Duration::seconds(MONTH as i64);
    assert!(close(month[0].as_ref().unwrap().accrued_at(later), 24.0));
}

#[test]
fn an_unchanged_discrepancy_keeps_the_same_stored_episode() {
    let u = Status::UnderBilled;
    let eps = run(&[(u, Some(HOURLY), 0), (u, Some(HOURLY), 1), (u, Some(HOURLY), 2)]);
    // Same rate, no gap: nothing to rewrite; the reader computes the money at its time.
    assert_eq!(eps[0], eps[1]);
    assert_eq!(eps[1], eps[2]);
}

#[test]
fn overcharges_accrue_negative() {
    let o = Status::OverBilled;
    let eps = run(&[(o, Some(-HOURLY), 0), (o, Some(-HOURLY), 1)]);
    assert!(close(eps[1].as_ref().unwrap().accrued_at(at(1)), -1.0));
}

#[test]
fn stale_spans_are_excluded_and_counted() {
    let (u, s) = (Status::UnderBilled, Status::Stale);
    let eps = run(&[
        (u, Some(HOURLY), 0),
        (u, Some(HOURLY), 1),
        (s, None, 2),         // (1, 2] ends stale: excluded
        (s, None, 3),         // (2, 3] stale
        (u, Some(HOURLY), 4), // (3, 4] began stale: excluded
        (u, Some(HOURLY), 5), // (4, 5] fresh
    ]);
    let stale = eps[3].as_ref().unwrap();
    assert!(stale.is_open(), "the episode survives the stale interruption");
    assert!(close(stale.accrued_at(at(3)), 1.0));
    assert_eq!(stale.excluded_at(at(3)), 2 * 3600);
    // The two stale computations write the episode once (entering stale), not twice.
    assert_eq!(eps[2], eps[3]);
    let e = eps[5].as_ref().unwrap();
    assert!(close(e.accrued_at(at(5)), 2.0), "{}", e.accrued_at(at(5)));
    assert_eq!(e.excluded_at(at(5)), 3 * 3600);
    assert_eq!(e.started_at, at(0));
}

#[test]
fn a_gap_longer_than_max_age_is_excluded_as_the_daemon_was_down() {
    let u = Status::UnderBilled;
    let eps = run(&[
        (u, Some(HOURLY), 0),
        (u, Some(HOURLY), 1),
        (u, Some(HOURLY), 6),
        (u, Some(HOURLY), 7),
    ]);
    let e = eps[3].as_ref().unwrap();
    // (0, 1] and (6, 7] count; the 5 h between 1 and 6 are excluded.
    assert!(close(e.accrued_at(at(7)), 2.0), "{}", e.accrued_at(at(7)));
    assert_eq!(e.excluded_at(at(7)), 5 * 3600);
}

#[test]
fn debounce_delays_the_raise_not_the_money() {
    let (p, u) = (Status::Pending, Status::UnderBilled);
    let eps = run(&[(p, Some(HOURLY), 0), (p, Some(HOURLY), 1), (u, Some(HOURLY), 2)]);
    assert_eq!(eps[1].as_ref().unwrap().raised_at, None);
    let e = eps[2].as_ref().unwrap();
    assert_eq!((e.started_at, e.raised_at), (at(0), Some(at(2))));
    assert_eq!(e.reported_status, Some(u));
    assert!(close(e.accrued_at(at(2)), 2.0));
}

#[test]
fn a_pending_blip_that_goes_away_leaves_nothing() {
    let eps = run(&[(Status::Pending, Some(HOURLY), 0), (Status::Match, None, 1)]);
    assert_eq!(eps[1], None);
}

#[test]
fn a_resolved_episode_keeps_its_total_until_a_new_one_starts() {
    let (u, m) = (Status::UnderBilled, Status::Match);
    let eps = run(&[
        (u, Some(HOURLY), 0),
        (u, Some(HOURLY), 1),
        (u, Some(2.0 * HOURLY), 2), // (1, 2] at the old rate, then twice as fast
        (m, None, 3),
        (m, None, 4),
        (u, Some(HOURLY), 5),
    ]);
    let ended = eps[3].as_ref().unwrap();
    assert_eq!(ended.ended_at, Some(at(3)));
    assert!(close(ended.accrued, 4.0), "{}", ended.accrued);
    assert!(close(ended.accrued_at(at(100)), 4.0), "an ended episode no longer grows");
    assert_eq!(eps[3], eps[4], "a resolved row stays unchanged");
    let new = eps[5].as_ref().unwrap();
    assert_eq!((new.started_at, new.ended_at, new.accrued), (at(5), None, 0.0));
}

#[test]
fn suppression_ends_the_episode_and_stale_does_not() {
    let u = Status::UnderBilled;
    let eps = run(&[(u, Some(HOURLY), 0), (Status::Stale, None, 1), (Status::Suppressed, None, 2)]);
    assert!(eps[1].as_ref().unwrap().is_open());
    let e = eps[2].as_ref().unwrap();
    assert_eq!(e.ended_at, Some(at(2)));
    assert_eq!(e.excluded_seconds, 2 * 3600);
}

#[test]
fn a_material_change_of_impact_or_status_is_reported_and_a_small_one_is_not() {
    let u = Status::UnderBilled;
    let eps = run(&[
        (u, Some(100.0), 0),
        (u, Some(105.0), 1), // 5 %: not reported
        (u, Some(111.0), 2), // 11 % from the reported 100: reported
        (Status::OverBilled, Some(-20.0), 3),
    ]);
    let reported = |i: usize| {
        let e = eps[i].as_ref().unwrap();
        (e.reported_status, e.reported_impact)
    };
    assert_eq!(reported(1), (Some(u), Some(100.0)));
    assert_eq!(reported(2), (Some(u), Some(111.0)));
    assert_eq!(reported(3), (Some(Status::OverBilled), Some(-20.0)));
}

#[test]
fn shown_money_is_none_without_a_price_or_an_open_episode() {
    let u = Status::UnderBilled;
    let eps = run(&[(u, None, 0), (u, None, 1)]);
    let e = eps[1].as_ref();
    assert_eq!(shown(u, None, e, at(1)), (None, Some(0)));
    let priced = run(&[(u, Some(HOURLY), 0)]);
    assert_eq!(shown(u, Some(HOURLY), priced[0].as_ref(), at(1)).0.map(|x| x.round()), Some(1.0));
    assert_eq!(shown(Status::Match, None, None, at(1)), (None, None));
}
