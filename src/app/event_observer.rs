//! The daemon's non-row events: run outcomes and the reconciliation's view of each input's
//! age go to the source state machine in the store (`source_failing` once a source has failed
//! or been stale for longer than `reconcile.max_age`, `source_recovered` at its next success),
//! and every failed Gradient push run is a `push_failed`. Row events need nothing here: the
//! store appends them with the rows; a failed write-back change is appended with its audit
//! entry.
//!
//! Run observers are called synchronously from the engine, so they only queue what they saw;
//! one task writes it to the store, in order, each in its own transaction.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::events::sources::Seen;
use crate::health::Source;
use crate::model::{RunKind, RunOutcome, RunRecord};
use crate::reconcile::{Freshness, ReconciliationHead};
use crate::store::Store;
use crate::sync::RunObserver;

/// What the recorder was told.
#[derive(Debug)]
enum Note {
    Run(RunKind, Box<RunRecord>),
    Head(Arc<ReconciliationHead>),
}

/// The run observer (and the reconciler's hook) that feeds the event log. Cheap to clone.
#[derive(Clone)]
pub struct EventObserver {
    tx: mpsc::UnboundedSender<Note>,
}

impl EventObserver {
    /// The observer and the task that writes what it sees into `store` until `token` is
    /// cancelled (spawn it on the app's tracker).
    pub fn new(
        store: Store,
        config: watch::Receiver<Arc<Config>>,
        token: CancellationToken,
    ) -> (EventObserver, impl std::future::Future<Output = ()> + Send) {
        let (tx, rx) = mpsc::unbounded_channel();
        (EventObserver { tx }, record(store, config, rx, token))
    }

    /// Tells the recorder about a new reconciliation (for inputs older than `max_age`).
    pub fn reconciled(&self, head: Arc<ReconciliationHead>) {
        let _ = self.tx.send(Note::Head(head));
    }
}

impl RunObserver for EventObserver {
    fn finished(&self, kind: RunKind, record: &RunRecord, _duration: Duration) {
        if matches!(record.outcome, RunOutcome::Ok | RunOutcome::Failed) {
            let _ = self.tx.send(Note::Run(kind, Box::new(record.clone())));
        }
    }
}

/// The task: applies each note in turn.
async fn record(
    store: Store,
    config: watch::Receiver<Arc<Config>>,
    mut rx: mpsc::UnboundedReceiver<Note>,
    token: CancellationToken,
) {
    loop {
        let note = tokio::select! {
            _ = token.cancelled() => return,
            note = rx.recv() => match note { Some(n) => n, None => return },
        };
        let threshold = config.borrow().reconcile.max_age;
        if let Err(e) = apply(&store, note, threshold).await {
            tracing::warn!("cannot record an event in the event log: {e}");
        }
    }
}

async fn apply(
    store: &Store,
    note: Note,
    threshold: Duration,
) -> Result<(), crate::store::StoreError> {
    match note {
        Note::Run(kind, record) => {
            let source = Source::from(kind).as_str();
            let at = record.finished_at.unwrap_or(record.started_at);
            let seen = match record.outcome {
                RunOutcome::Ok => Seen::Succeeded { run_id: record.id, at },
                _ => {
                    let error =
                        record.error.clone().unwrap_or_else(|| "no reason recorded".to_owned());
                    if kind == RunKind::Push {
                        store
                            .append_events(vec![crate::events::push_failed(record.id, at, &error)])
                            .await?;
                    }
                    Seen::Failed { run_id: record.id, at, error }
                }
            };
            log(store.observe_source(source, seen, threshold).await?);
        }
        Note::Head(head) => {
            let s = &head.summary;
            for (source, f) in [(Source::Mailprotector, &s.vendor), (Source::Billing, &s.billing)] {
                if let Some(reason) = aged(f) {
                    let seen = Seen::Stale { at: head.computed_at, reason };
                    log(store.observe_source(source.as_str(), seen, threshold).await?);
                }
            }
        }
    }
    Ok(())
}

/// The stale reason of an input that is stale only because of its age (a failed run is the
/// run observer's business; no run yet is not an outage).
fn aged(f: &Freshness) -> Option<String> {
    (!f.last_run_failed && f.observed_at.is_some()).then(|| f.stale_reason.clone()).flatten()
}

fn log(event: Option<crate::events::Event>) {
    match event {
        Some(ev) if ev.kind == crate::events::EventKind::SourceRecovered => {
            tracing::info!(event = ev.id, kind = %ev.kind, "{}", ev.text);
        }
        Some(ev) => tracing::warn!(event = ev.id, kind = %ev.kind, "{}", ev.text),
        None => {}
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::*;
    use crate::events::EventKind;

    fn run(id: u64, kind: RunKind, outcome: RunOutcome, hour: u32) -> Box<RunRecord> {
        let at = Utc.with_ymd_and_hms(2026, 11, 1, hour, 0, 0).unwrap();
        Box::new(RunRecord {
            id,
            kind,
            started_at: at,
            finished_at: Some(at),
            outcome,
            requests: Default::default(),
            error: (outcome == RunOutcome::Failed).then(|| "HTTP 503".to_owned()),
            snapshot: None,
            counting: None,
        })
    }

    #[tokio::test]
    async fn failed_pushes_and_sources_and_aged_inputs_become_events() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let hour = Duration::from_secs(3600);
        apply(&store, Note::Run(RunKind::Push, run(1, RunKind::Push, RunOutcome::Failed, 9)), hour)
            .await
            .unwrap();
        for (id, h) in [(2, 9), (3, 10)] {
            let r = run(id, RunKind::Billing, RunOutcome::Failed, h);
            apply(&store, Note::Run(RunKind::Billing, r), hour).await.unwrap();
        }
        let r = run(4, RunKind::Billing, RunOutcome::Ok, 11);
        apply(&store, Note::Run(RunKind::Billing, r), hour).await.unwrap();
        let kinds: Vec<(EventKind, Option<String>)> = store
            .events_after(0, 10)
            .await
            .unwrap()
            .into_iter()
            .map(|e| (e.kind, e.source))
            .collect();
        let billing = Some("billing".to_owned());
        assert_eq!(
            kinds,
            [
                (EventKind::PushFailed, Some("gradient".to_owned())),
                (EventKind::SourceFailing, billing.clone()),
                (EventKind::SourceRecovered, billing),
            ]
        );
    }

    #[test]
    fn only_an_input_stale_by_age_counts_as_aged() {
        let mut f = Freshness {
            run_id: Some(1),
            observed_at: Some(Utc::now()),
            age_seconds: Some(9000),
            last_run_failed: false,
            last_error: None,
            stale_reason: Some("the vendor data is 2h 30m old, more than max_age 2h".into()),
        };
        assert!(aged(&f).is_some());
        f.last_run_failed = true;
        assert!(aged(&f).is_none(), "a failing run is told by the run observer");
        f.last_run_failed = false;
        f.observed_at = None;
        assert!(aged(&f).is_none(), "no run yet is not an outage");
    }
}
