//! Which events a channel is sent ([`NotifyFilter`]): by kind, by the status a row enters
//! (or, when resolved, leaves), by monthly impact in either direction, and by account. A
//! filter on a field lets through the events that do not carry it, so a channel that asks
//! for `min_monthly_impact = 100` still hears that a source is failing.

use crate::config::NotifyFilter;
use crate::events::{Event, EventKind};

/// Whether `ev` passes `f`.
pub fn matches(f: &NotifyFilter, ev: &Event) -> bool {
    if !f.events.is_empty() && !f.events.contains(&ev.kind) {
        return false;
    }
    let status = match ev.kind {
        EventKind::DiscrepancyResolved => ev.status_from.or(ev.status_to),
        _ => ev.status_to,
    };
    let status_ok = f.statuses.is_empty() || status.is_none_or(|s| f.statuses.contains(&s));
    let money_ok = match (f.min_monthly_impact, ev.monthly_impact) {
        (Some(min), Some(m)) => m.abs() >= min,
        _ => true,
    };
    let account_ok =
        f.accounts.is_empty() || ev.account.as_ref().is_none_or(|a| f.accounts.contains(a));
    status_ok && money_ok && account_ok
}

/// The filter in words, for `mpsync check`: "events: all; statuses: under_billed; …".
pub fn describe(f: &NotifyFilter) -> String {
    let list = |v: Vec<&str>| if v.is_empty() { "all".to_owned() } else { v.join(", ") };
    let mut parts = vec![
        format!("events: {}", list(f.events.iter().map(|e| e.as_str()).collect())),
        format!("statuses: {}", list(f.statuses.iter().map(|s| s.as_str()).collect())),
    ];
    if let Some(m) = f.min_monthly_impact {
        parts.push(format!("min monthly impact: {}", crate::reconcile::money(m)));
    }
    parts.push(format!("accounts: {}", list(f.accounts.iter().map(String::as_str).collect())));
    parts.join("; ")
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;
    use crate::reconcile::Status;

    fn opened(account: &str, status: Status, impact: f64) -> Event {
        let mut ev = Event::new(EventKind::DiscrepancyOpened, Utc::now(), "x".into());
        ev.account = Some(account.into());
        ev.status_from = Some(Status::Pending);
        ev.status_to = Some(status);
        ev.monthly_impact = Some(impact);
        ev
    }

    #[test]
    fn an_empty_filter_lets_everything_through() {
        let f = NotifyFilter::default();
        assert!(matches(&f, &opened("1", Status::UnderBilled, 0.0)));
        assert!(matches(&f, &Event::new(EventKind::SourceFailing, Utc::now(), "x".into())));
    }

    #[test]
    fn each_field_filters_the_events_that_carry_it() {
        let f = NotifyFilter {
            events: vec![EventKind::DiscrepancyOpened, EventKind::SourceFailing],
            statuses: vec![Status::UnderBilled, Status::Unbilled],
            min_monthly_impact: Some(50.0),
            accounts: vec!["7".into()],
        };
        assert!(matches(&f, &opened("7", Status::UnderBilled, 60.0)));
        assert!(!matches(&f, &opened("8", Status::UnderBilled, 60.0)), "other account");
        assert!(!matches(&f, &opened("7", Status::OverBilled, -60.0)), "other status");
        assert!(!matches(&f, &opened("7", Status::UnderBilled, 49.99)), "too little money");
        assert!(matches(&f, &opened("7", Status::Unbilled, 50.0)), "the minimum itself passes");
        // A source event carries no account, status or money: only `events` applies.
        assert!(matches(&f, &Event::new(EventKind::SourceFailing, Utc::now(), "x".into())));
        assert!(!matches(&f, &Event::new(EventKind::SourceRecovered, Utc::now(), "x".into())));
    }

    #[test]
    fn overcharges_count_by_their_size_and_resolutions_by_the_status_they_leave() {
        let f = NotifyFilter {
            statuses: vec![Status::OverBilled],
            min_monthly_impact: Some(10.0),
            ..NotifyFilter::default()
        };
        assert!(matches(&f, &opened("1", Status::OverBilled, -12.0)));
        let mut resolved = opened("1", Status::Match, -12.0);
        resolved.kind = EventKind::DiscrepancyResolved;
        resolved.status_from = Some(Status::OverBilled);
        assert!(matches(&f, &resolved));
        resolved.status_from = Some(Status::UnderBilled);
        assert!(!matches(&f, &resolved));
    }
}
