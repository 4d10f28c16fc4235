//! Health as the sync engine's run observer: every finished run updates its source's status;
//! a job skipped as not ready is shown waiting, not failing. Here, in the wiring, so that
//! neither `health` nor `sync` knows the other.

use std::time::Duration;

use crate::health::Health;
use crate::model::{RunKind, RunOutcome, RunRecord};
use crate::sync::{RunObserver, SkipReason};

impl RunObserver for Health {
    fn finished(&self, kind: RunKind, record: &RunRecord, _duration: Duration) {
        let at = record.finished_at.unwrap_or_else(chrono::Utc::now);
        match record.outcome {
            RunOutcome::Ok => {
                self.record_success(kind.into(), record.id, at);
                if let Some(counting) = &record.counting {
                    self.set_counting(record.id, at, counting.clone());
                }
            }
            RunOutcome::Failed => {
                let reason = record.error.clone().unwrap_or_else(|| "the run failed".to_owned());
                self.record_failure(kind.into(), at, reason);
            }
            // Shutdown or a crash says nothing about the upstream.
            RunOutcome::Cancelled | RunOutcome::Aborted | RunOutcome::Running => {}
        }
    }

    fn skipped(&self, kind: RunKind, why: &SkipReason) {
        // Overlap and backoff skips say nothing new about the source.
        if let SkipReason::NotReady(why) = why {
            self.record_waiting(kind.into(), chrono::Utc::now(), why.to_string());
        }
    }

    fn unrecorded(&self, kind: RunKind, reason: &str) {
        let now = chrono::Utc::now();
        self.record_failure(kind.into(), now, format!("the run could not be recorded: {reason}"));
        // Only the store fails this way: without it no run is recorded at all.
        self.record_store_error(now, reason);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::Source;

    fn record(id: u64, outcome: RunOutcome, error: Option<&str>) -> RunRecord {
        let at = "2026-01-01T00:00:00Z".parse().unwrap();
        RunRecord {
            id,
            kind: RunKind::Vendor,
            started_at: at,
            finished_at: Some(at),
            outcome,
            requests: Default::default(),
            error: error.map(str::to_owned),
            snapshot: None,
            counting: None,
        }
    }

    #[test]
    fn finished_runs_update_the_source() {
        let h = Health::new(chrono::Utc::now());
        h.finished(
            RunKind::Vendor,
            &record(3, RunOutcome::Failed, Some("HTTP 401: key revoked")),
            Duration::ZERO,
        );
        h.finished(RunKind::Vendor, &record(4, RunOutcome::Cancelled, None), Duration::ZERO);
        let st = h.snapshot();
        let mp = &st.sources[&Source::Mailprotector];
        assert_eq!(mp.consecutive_failures, 1);
        assert_eq!(mp.last_failure.as_ref().unwrap().1, "HTTP 401: key revoked");
        h.finished(RunKind::Vendor, &record(5, RunOutcome::Ok, None), Duration::ZERO);
        let mp = h.snapshot().sources[&Source::Mailprotector].clone();
        assert_eq!((mp.last_success.unwrap().0, mp.consecutive_failures), (5, 0));
    }
}
