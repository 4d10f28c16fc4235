//! The period report on a scripted event history (times given, no clock).

use chrono::TimeZone;

use super::*;

fn day(d: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap() + chrono::Duration::days(d)
}

fn key(account: &str) -> RowKey {
    RowKey::Service { account: account.into(), psa_product: "MP-CF".into() }
}

fn row_event(kind: EventKind, d: i64, account: &str, since: i64, accrued: f64) -> Event {
    let mut e = Event::new(kind, day(d), format!("{kind} {account}"));
    e.account = Some(account.into());
    e.account_name = Some(format!("Account {account}"));
    e.row = Some(key(account));
    e.since = Some(day(since));
    e.accrued = Some(accrued);
    e.status_to = Some(Status::UnderBilled);
    e.monthly_impact = Some(30.4375);
    e
}

fn resolved(d: i64, account: &str, since: i64, accrued: f64, cause: Cause) -> Event {
    let mut e = row_event(EventKind::DiscrepancyResolved, d, account, since, accrued);
    (e.status_from, e.status_to, e.cause) =
        (Some(Status::UnderBilled), Some(Status::Match), Some(cause));
    e
}

/// A1: began day 0, raised day 1, fixed day 10 (billing changed), 1.00 a day.
/// A2: began and raised day 6, changed day 8, still open.
/// A3: began day 0, fixed day 3: before the period.
/// A4: over-billed from day 12, still open, −0.50 a day.
fn history() -> Vec<Event> {
    let mut over = row_event(EventKind::DiscrepancyOpened, 12, "A4", 12, 0.0);
    (over.status_to, over.monthly_impact) = (Some(Status::OverBilled), Some(-15.0));
    let mut later = row_event(EventKind::DiscrepancyChanged, 16, "A4", 12, -2.0);
    (later.status_to, later.monthly_impact) = (Some(Status::OverBilled), Some(-15.0));
    let mut failing =
        Event::new(EventKind::SourceFailing, day(7), "billing has been failing".into());
    failing.source = Some("billing".into());
    vec![
        row_event(EventKind::DiscrepancyOpened, 0, "A3", 0, 0.0),
        row_event(EventKind::DiscrepancyOpened, 1, "A1", 0, 1.0),
        resolved(3, "A3", 0, 3.0, Cause::UsageChanged),
        row_event(EventKind::DiscrepancyOpened, 6, "A2", 6, 0.0),
        failing,
        row_event(EventKind::DiscrepancyChanged, 8, "A2", 6, 2.0),
        resolved(10, "A1", 0, 10.0, Cause::BillingChanged),
        over,
        later,
        Event::new(EventKind::PushFailed, day(25), "push failed after the period".into()),
    ]
}

fn report(since: i64, until: i64, events: &[Event]) -> Report {
    build(&Inputs {
        since: day(since),
        until: day(until),
        events,
        events_since: events.first().map(|e| e.at),
        current: None,
    })
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

#[test]
fn a_period_lists_what_appeared_was_fixed_and_is_still_open_per_account_with_money() {
    let events = history();
    let r = report(5, 20, &events);
    let names: Vec<&str> = r.accounts.iter().map(|a| a.account.as_str()).collect();
    assert_eq!(names, ["A1", "A2", "A4"], "A3 was fixed before the period");

    let a1 = &r.accounts[0];
    assert_eq!((a1.appeared.len(), a1.fixed.len(), a1.open.len()), (0, 1, 0));
    let fixed = &a1.fixed[0];
    assert_eq!((fixed.cause, fixed.resolved_at), (Some(Cause::BillingChanged), Some(day(10))));
    // 10.00 in all; 5.00 of it from day 5 on (interpolated between day 1 and day 10).
    assert!(close(fixed.accrued_total, 10.0) && close(fixed.accrued_in_period, 5.0), "{fixed:?}");

    let a2 = &r.accounts[1];
    assert_eq!((a2.appeared.len(), a2.fixed.len(), a2.open.len()), (1, 0, 1));
    assert!(close(a2.open[0].accrued_in_period, 2.0));
    assert_eq!(a2.account_name.as_deref(), Some("Account A2"));

    let t = &r.totals;
    assert_eq!((t.appeared, t.fixed, t.open), (2, 1, 2));
    assert!(close(t.missed_in_period, 7.0), "{t:?}");
    assert!(close(t.overcharged_in_period, 2.0), "{t:?}");
    assert!(close(t.open_monthly_under, 30.4375) && close(t.open_monthly_over, 15.0), "{t:?}");
    let notices: Vec<EventKind> = r.notices.iter().map(|n| n.kind).collect();
    assert_eq!(notices, [EventKind::SourceFailing], "the push failure is after the period");
}

#[test]
fn a_past_period_reads_the_state_at_its_end_not_today() {
    let events = history();
    // Up to day 9: A1 still open (fixed on day 10), with 9.00 so far, 4.00 of it since day 5.
    let r = report(5, 9, &events);
    let a1 = &r.accounts[0];
    assert_eq!((a1.fixed.len(), a1.open.len()), (0, 1));
    assert!(close(a1.open[0].accrued_in_period, 4.0), "{:?}", a1.open[0]);
    assert!(r.accounts.iter().all(|a| a.account != "A4"), "A4 began after the period");
}

#[test]
fn renders_as_markdown_and_csv() {
    let events = history();
    let r = report(5, 20, &events);
    let md = markdown(&r);
    assert!(md.starts_with("# mpsync report 2026-11-06T00:00:00Z – 2026-11-21T00:00:00Z"), "{md}");
    assert!(md.contains("## Account A1 (A1)"), "{md}");
    assert!(md.contains("| MP-CF | under_billed | 2026-11-01T00:00:00Z | 2026-11-11T00:00:00Z | billing changed | 30.44 | 5.00 | 10.00 |"), "{md}");
    assert!(md.contains("**Total:** 2 appeared, 1 fixed, 2 still open; in the period 7.00 missed and 2.00 overcharged"), "{md}");
    assert!(md.contains("`source_failing` billing has been failing"), "{md}");
    let csv = csv(&r);
    let lines: Vec<&str> = csv.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(lines[0], render::CSV_COLUMNS.join(","));
    // A1 fixed; A2 appeared and open; A4 appeared and open.
    assert_eq!(lines.len(), 1 + 5, "{csv}");
    assert!(lines[1].starts_with("fixed,A1,Account A1,MP-CF,"), "{}", lines[1]);
    assert!(lines[1].ends_with(",billing_changed,30.44,5.00,10.00"), "{}", lines[1]);
}

#[test]
fn an_empty_log_says_so() {
    let r = report(5, 20, &[]);
    let md = markdown(&r);
    assert!(md.contains("The event log is empty"), "{md}");
    assert!(md.contains("No discrepancy appeared"), "{md}");
}

#[test]
fn dates_are_days_or_rfc3339_and_anything_else_is_refused() {
    assert_eq!(parse_date("2026-11-06").unwrap(), day(5));
    assert_eq!(parse_date("2026-11-06T02:00:00+02:00").unwrap(), day(5));
    let e = parse_date("2026-13-01").unwrap_err();
    assert!(e.to_string().contains("\"2026-13-01\" is not a date: use YYYY-MM-DD"), "{e}");
    assert!(parse_date("yesterday").is_err());
}
