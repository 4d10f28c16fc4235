//! Row events: a row's previous state ([`Prior`]) and its new one → at most one event. Once
//! per transition: an episode is raised once, resolved once, and a change is reported when
//! the episode's reported status or impact moved (the engine keeps those in the episode, so a
//! stale interruption or a recomputation with the same numbers says nothing new).

use chrono::{DateTime, Utc};

use super::{Cause, Event, EventKind, money_words, span_words};
use crate::reconcile::{Episode, Prior, Row, RowKey, Status};

/// The event of `row`'s transition from `prior` (its previous state; `None` for a new row)
/// in the computation at `now`. `applied(key, since)` tells whether a write-back change to the row's line was applied
/// since `since` (a resolution then names the write-back as its cause).
pub fn transition(
    prior: Option<&Prior>,
    row: &Row,
    now: DateTime<Utc>,
    applied: &mut dyn FnMut(&RowKey, DateTime<Utc>) -> bool,
) -> Option<Event> {
    if matches!(row.status, Status::UnmappedCustomer | Status::UnmappedProduct) {
        // A stale interruption keeps the debounce memory, so it does not count as new.
        let was = prior.and_then(|p| p.observed.status);
        return (was != Some(row.status)).then(|| unmapped(row, now));
    }
    let old = prior.and_then(|p| p.episode.as_ref());
    let new = row.episode.as_ref()?;
    let same = old.filter(|o| o.started_at == new.started_at);
    let was_raised = same.is_some_and(|o| o.raised_at.is_some());
    let was_open = same.is_some_and(Episode::is_open);
    if new.raised_at.is_some() && !was_raised && new.is_open() {
        return Some(opened(prior, row, new));
    }
    if !new.is_open() && was_open && new.raised_at.is_some() {
        let cause = cause(same, row, applied);
        return Some(resolved(row, new, Some(row.status), cause));
    }
    let old = same?;
    if new.is_open()
        && was_raised
        && (old.reported_status, old.reported_impact) != (new.reported_status, new.reported_impact)
    {
        return Some(changed(row, old, new, now));
    }
    None
}

/// The `discrepancy_resolved` event of a row that is gone, from its last stored state; its
/// money is settled at `previous_at`, the last computation that saw it. `None` when it had
/// no raised episode open.
pub fn gone(old: &Row, previous_at: DateTime<Utc>, now: DateTime<Utc>) -> Option<Event> {
    let e = old.episode.as_ref().filter(|e| e.is_open() && e.raised_at.is_some())?;
    let at = previous_at.max(e.mark);
    let settled = Episode {
        ended_at: Some(now),
        accrued: e.accrued_at(at),
        excluded_seconds: e.excluded_at(at),
        mark: at,
        accruing: None,
        ..e.clone()
    };
    let mut ev = resolved(old, &settled, None, Cause::RowGone);
    ev.at = now;
    Some(ev)
}

/// "Acme Inc (250) MP-CF".
fn subject(row: &Row) -> String {
    match &row.key {
        RowKey::Service { account, psa_product } => match &row.account_name {
            Some(name) => format!("{name} ({account}) {psa_product}"),
            None => format!("account {account} {psa_product}"),
        },
        RowKey::UnmappedCustomer { customer } => match &row.customer_name {
            Some(name) => format!("Mailprotector customer {customer} {name}"),
            None => format!("Mailprotector customer {customer}"),
        },
        RowKey::UnmappedProduct { product } => format!("product {product}"),
    }
}

fn status_words(s: Status) -> String {
    s.as_str().replace('_', "-")
}

/// The event fields every row event shares.
fn base(kind: EventKind, at: DateTime<Utc>, row: &Row, text: String) -> Event {
    let mut ev = Event::new(kind, at, text);
    if let RowKey::Service { account, .. } = &row.key {
        ev.account = Some(account.clone());
        ev.account_name = row.account_name.clone();
    }
    ev.row = Some(row.key.clone());
    ev.products = row.products.clone();
    ev
}

fn quantities(row: &Row) -> String {
    let v = row.vendor_quantity.map_or("?".to_string(), |v| v.to_string());
    let b = row.billed_quantity.map_or("none".to_string(), crate::reconcile::quantity);
    format!("{v} in use, {b} billed")
}

fn opened(prior: Option<&Prior>, row: &Row, e: &Episode) -> Event {
    let at = e.raised_at.unwrap_or(e.started_at);
    let money =
        row.monthly_impact.map(|m| format!("; {}", money_words(m, true))).unwrap_or_default();
    let text =
        format!("{} is {}: {}{money}.", subject(row), status_words(row.status), quantities(row));
    let mut ev = base(EventKind::DiscrepancyOpened, at, row, text);
    ev.status_from = prior.map(|p| p.status);
    ev.status_to = Some(row.status);
    ev.monthly_impact = row.monthly_impact;
    ev.accrued = row.monthly_impact.map(|_| e.accrued_at(at));
    ev.excluded_seconds = Some(e.excluded_at(at));
    ev.since = Some(e.started_at);
    ev
}

fn changed(row: &Row, old: &Episode, new: &Episode, at: DateTime<Utc>) -> Event {
    let now = new.reported_status.unwrap_or(row.status);
    let money =
        new.reported_impact.map(|m| format!(", {}", money_words(m, true))).unwrap_or_default();
    let was = old.reported_status.map(status_words).unwrap_or_default();
    let was_money =
        old.reported_impact.map(|m| format!(", {}", money_words(m, true))).unwrap_or_default();
    let accrued = new.accrued_at(at);
    let text = format!(
        "{} is now {}: {}{money} (was {was}{was_money}); {} so far.",
        subject(row),
        status_words(now),
        quantities(row),
        money_words(accrued, false)
    );
    let mut ev = base(EventKind::DiscrepancyChanged, at, row, text);
    ev.status_from = old.reported_status;
    ev.status_to = Some(now);
    ev.monthly_impact = new.reported_impact;
    ev.accrued = Some(accrued);
    ev.excluded_seconds = Some(new.excluded_at(at));
    ev.since = Some(new.started_at);
    ev
}

fn resolved(row: &Row, e: &Episode, to: Option<Status>, cause: Cause) -> Event {
    let at = e.ended_at.unwrap_or(e.mark);
    let was = e.reported_status.map(status_words).unwrap_or_else(|| "a discrepancy".into());
    let lasted = span_words((at - e.started_at).num_seconds());
    let excluded = if e.excluded_seconds > 0 {
        format!(" ({} excluded: inputs stale or the daemon down)", span_words(e.excluded_seconds))
    } else {
        String::new()
    };
    let text = format!(
        "{} is no longer {was} ({}): it lasted {lasted} and cost {}{excluded}.",
        subject(row),
        cause.words(),
        money_words(e.accrued, false).replace(" missed", "").replace(" overcharged", ""),
    );
    let mut ev = base(EventKind::DiscrepancyResolved, at, row, text);
    ev.status_from = e.reported_status;
    ev.status_to = to;
    ev.monthly_impact = e.reported_impact;
    ev.accrued = Some(e.accrued);
    ev.excluded_seconds = Some(e.excluded_seconds);
    ev.since = Some(e.started_at);
    ev.cause = Some(cause);
    ev
}

/// Why the episode `old` (as last stored, open) ended with `row`.
fn cause(
    old: Option<&Episode>,
    row: &Row,
    applied: &mut dyn FnMut(&RowKey, DateTime<Utc>) -> bool,
) -> Cause {
    if row.status == Status::Suppressed {
        return Cause::Suppressed;
    }
    let Some(old) = old else { return Cause::MappingChanged };
    if applied(&row.key, old.started_at) {
        return Cause::WriteBackApplied;
    }
    let billing = !same_quantity(old.billed_quantity, row.billed_quantity);
    let usage = old.vendor_quantity != row.vendor_quantity;
    match (billing, usage) {
        (true, true) => Cause::BillingAndUsageChanged,
        (true, false) => Cause::BillingChanged,
        (false, true) => Cause::UsageChanged,
        (false, false) => Cause::MappingChanged,
    }
}

fn same_quantity(a: Option<f64>, b: Option<f64>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => (a - b).abs() < 1e-9,
        (None, None) => true,
        _ => false,
    }
}

fn unmapped(row: &Row, now: DateTime<Utc>) -> Event {
    let products = if row.products.is_empty() {
        String::new()
    } else {
        format!(" ({})", row.products.join(", "))
    };
    let text = match &row.key {
        RowKey::UnmappedProduct { .. } => format!(
            "{} has usage{} but no PSA product mapping.",
            subject(row),
            row.vendor_quantity.map(|v| format!(" ({v} users)")).unwrap_or_default()
        ),
        _ => format!("{} has usage{products} but no account mapping.", subject(row)),
    };
    let mut ev = base(EventKind::UnmappedAppeared, now, row, text);
    ev.status_to = Some(row.status);
    ev
}
