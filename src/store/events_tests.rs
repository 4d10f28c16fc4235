//! The event log in the store: row events appended once per transition with the rows, the
//! causes of a resolution, ids that survive reopening and pruning, the low-water mark, and
//! the source state machine's events.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::super::reconciliation::tests::{MAPPING, at, billed, inputs, usage};
use super::*;
use crate::config::Mapping;
use crate::events::sources::Seen;
use crate::events::{Cause, EventKind};
use crate::model::{BilledSnapshot, UsageSnapshot};
use crate::reconcile::{Inputs, Status, compute_each};

fn mapping() -> Mapping {
    Mapping::parse(std::path::Path::new("mapping.toml"), MAPPING).unwrap()
}

/// Recomputes into `store` from `u` and `b` at `hour` (after a computation at `prev`).
async fn recompute(
    store: &Store,
    u: &UsageSnapshot,
    b: &BilledSnapshot,
    hour: u32,
    prev: Option<u32>,
) {
    let (u, b, m) = (u.clone(), b.clone(), mapping());
    let previous_at = prev.map(at);
    store
        .replace_reconciliation(Some(u.run_id), at(hour), move |prior, sink| {
            let inp = Inputs { previous_at, ..inputs(&u, &b, &m, hour, None) };
            compute_each(&inp, prior, sink)
        })
        .await
        .unwrap();
}

fn kinds(events: &[Event]) -> Vec<EventKind> {
    events.iter().map(|e| e.kind).collect()
}

/// Account A2's row: 12 in use, 10 billed at 2.00 (debounce 2 in `inputs`).
#[tokio::test]
async fn row_events_are_appended_once_per_transition_with_the_rows() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let mut prev = None;
    for (run, hour, a2) in [(1, 9, 12), (3, 10, 12), (3, 11, 12), (6, 12, 12), (7, 13, 16)] {
        let b = billed(2, hour);
        recompute(&store, &usage(run, hour, [10, a2, 10, 3]), &b, hour, prev).await;
        prev = Some(hour);
    }
    let events = store.events_after(0, 100).await.unwrap();
    assert_eq!(
        kinds(&events),
        [EventKind::UnmappedAppeared, EventKind::DiscrepancyOpened, EventKind::DiscrepancyChanged],
        "{events:#?}"
    );
    assert_eq!(events.iter().map(|e| e.id).collect::<Vec<_>>(), [1, 2, 3]);
    let opened = &events[1];
    assert_eq!((opened.at, opened.account.as_deref()), (at(10), Some("A2")));
    assert_eq!(
        (opened.status_from, opened.status_to),
        (Some(Status::Pending), Some(Status::UnderBilled))
    );
    assert_eq!((opened.monthly_impact, opened.since), (Some(4.0), Some(at(9))));
    assert!(
        opened.text.contains("under-billed: 12 in use, 10 billed; 4.00 a month missed"),
        "{}",
        opened.text
    );
    assert_eq!(events[2].monthly_impact, Some(12.0));

    // Back to 10 users: resolved, because usage changed, with what it cost: 4 h at 4.00 a
    // month (pending included), then 1 h at 12.00 a month.
    recompute(&store, &usage(8, 14, [10, 10, 10, 3]), &billed(2, 14), 14, prev).await;
    recompute(&store, &usage(9, 15, [10, 10, 10, 3]), &billed(2, 15), 15, Some(14)).await;
    let events = store.events_after(3, 100).await.unwrap();
    assert_eq!(kinds(&events), [EventKind::DiscrepancyResolved], "once, not at every computation");
    let r = &events[0];
    assert_eq!(
        (r.cause, r.status_to, r.since),
        (Some(Cause::UsageChanged), Some(Status::Match), Some(at(9)))
    );
    let want = (4.0 * 4.0 + 12.0) / 730.5;
    assert!((r.accrued.unwrap() - want).abs() < 1e-9, "{:?} vs {want}", r.accrued);
    assert!(r.text.contains("no longer under-billed (usage changed)"), "{}", r.text);
}

#[tokio::test]
async fn a_resolution_after_an_applied_write_back_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let b = billed(2, 9);
    recompute(&store, &usage(1, 9, [10, 12, 10, 3]), &b, 9, None).await;
    recompute(&store, &usage(3, 10, [10, 12, 10, 3]), &b, 10, Some(9)).await;
    let entry = crate::writeback::AuditEntry {
        seq: 0,
        plan: 1,
        row: 1,
        line: "cw:1/2".into(),
        account: "A2".into(),
        account_name: None,
        psa_product: "MP-CF".into(),
        from: 10.0,
        to: 12.0,
        result: crate::writeback::AuditResult::Applied,
        reason: None,
        kind: None,
        found: Some(10.0),
        monthly_amount: Some(4.0),
        at: at(10) + chrono::Duration::minutes(5),
        who: "daemon".into(),
    };
    store.record_apply_result(entry).await.unwrap();
    let mut b2 = billed(4, 11);
    b2.lines[1].quantity = 12.0;
    recompute(&store, &usage(3, 10, [10, 12, 10, 3]), &b2, 11, Some(10)).await;
    let events = store.events_after(0, 100).await.unwrap();
    let r = events.last().unwrap();
    assert_eq!((r.kind, r.cause), (EventKind::DiscrepancyResolved, Some(Cause::WriteBackApplied)));
}

#[tokio::test]
async fn a_row_that_disappears_is_resolved_as_gone_with_its_money_as_last_seen() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let b = billed(2, 9);
    recompute(&store, &usage(1, 9, [10, 12, 10, 3]), &b, 9, None).await;
    recompute(&store, &usage(3, 10, [10, 12, 10, 3]), &b, 10, Some(9)).await;
    // A2's line and usage are gone: no row at all.
    let mut b2 = billed(4, 11);
    b2.lines.retain(|l| l.account_id != "A2");
    recompute(&store, &usage(5, 11, [10, 0, 10, 3]), &b2, 11, Some(10)).await;
    let events = store.events_after(0, 100).await.unwrap();
    let r = events.last().unwrap();
    assert_eq!(
        (r.kind, r.cause, r.status_to),
        (EventKind::DiscrepancyResolved, Some(Cause::RowGone), None)
    );
    // 9..10 at 4.00 a month, settled at the last computation that saw the row.
    assert!((r.accrued.unwrap() - 4.0 / 730.5).abs() < 1e-9, "{:?}", r.accrued);
}

fn event(at: DateTime<Utc>) -> Event {
    Event::new(EventKind::PushFailed, at, "push failed".into())
}

#[tokio::test]
async fn ids_survive_reopening_and_pruning_and_the_low_water_mark_holds_undelivered_events() {
    let dir = tempfile::tempdir().unwrap();
    let old = at(0) - chrono::Duration::days(400);
    {
        let store = Store::open(dir.path()).unwrap();
        let mut rx = store.subscribe_events();
        let stored = store.append_events(vec![event(old), event(old), event(old)]).await.unwrap();
        assert_eq!(stored.iter().map(|e| e.id).collect::<Vec<_>>(), [1, 2, 3]);
        assert!(rx.has_changed().unwrap());
        assert_eq!(*rx.borrow_and_update(), 3);
        store.set_event_low_water(2).await.unwrap();
        store.set_event_low_water(1).await.unwrap();
        assert_eq!(store.event_low_water().await.unwrap(), Some(2), "it only moves forward");
    }
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(*store.subscribe_events().borrow(), 3);
    let stats = store.prune(at(0), Duration::from_secs(86_400), Duration::from_secs(86_400)).await;
    assert_eq!(stats.unwrap().events, 2, "event 3 is not delivered yet: kept");
    assert_eq!(
        store.events_after(0, 10).await.unwrap().iter().map(|e| e.id).collect::<Vec<_>>(),
        [3]
    );
    store.set_event_low_water(3).await.unwrap();
    store.prune(at(0), Duration::from_secs(86_400), Duration::from_secs(86_400)).await.unwrap();
    assert!(store.events_after(0, 10).await.unwrap().is_empty());
    let next = store.append_events(vec![event(at(0))]).await.unwrap();
    assert_eq!(next[0].id, 4, "an emptied log does not give an id out again");
    assert_eq!(store.last_event_id().await.unwrap(), 4);
}

#[tokio::test]
async fn a_failing_source_is_raised_once_after_the_threshold_and_recovers_once_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let threshold = Duration::from_secs(2 * 3600);
    let failed = |run, hour| Seen::Failed { run_id: run, at: at(hour), error: "HTTP 503".into() };
    {
        let store = Store::open(dir.path()).unwrap();
        assert!(store.observe_source("billing", failed(1, 9), threshold).await.unwrap().is_none());
        assert!(store.observe_source("billing", failed(2, 10), threshold).await.unwrap().is_none());
        let raised = store.observe_source("billing", failed(3, 11), threshold).await.unwrap();
        let raised = raised.expect("failing for 2 h");
        assert_eq!((raised.kind, raised.since), (EventKind::SourceFailing, Some(at(9))));
        assert!(
            raised.text.contains("billing has been failing for 2 hours: HTTP 503"),
            "{}",
            raised.text
        );
        assert!(store.observe_source("billing", failed(4, 12), threshold).await.unwrap().is_none());
    }
    let store = Store::open(dir.path()).unwrap();
    assert!(
        store.observe_source("billing", failed(5, 13), threshold).await.unwrap().is_none(),
        "not again after a restart"
    );
    let ok = Seen::Succeeded { run_id: 6, at: at(14) };
    let back = store.observe_source("billing", ok.clone(), threshold).await.unwrap().unwrap();
    assert_eq!(back.kind, EventKind::SourceRecovered);
    assert!(back.text.contains("for 5 hours"), "{}", back.text);
    assert!(store.observe_source("billing", ok, threshold).await.unwrap().is_none());
    let stale = Seen::Stale { at: at(20), reason: "the billing data is 6h old".into() };
    let raised = store.observe_source("billing", stale.clone(), threshold).await.unwrap();
    assert_eq!(raised.unwrap().kind, EventKind::SourceFailing);
    assert!(store.observe_source("billing", stale, threshold).await.unwrap().is_none());
    assert_eq!(store.last_event_id().await.unwrap(), 3);
}
