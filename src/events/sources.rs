//! Source events: a small state machine per source (mailprotector, billing, gradient) fed
//! with run outcomes and the reconciliation's view of the data's age. It raises
//! `source_failing` once when a source has failed for longer than the threshold (every run
//! since the first failure failed) or its data is older than `max_age`, and
//! `source_recovered` once at the next successful run. Its state is kept in the store with
//! the events it raises, so a restart neither repeats nor forgets an alert. Pure.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Event, EventKind, span_words};
use crate::model::RunId;

/// What is known about one source.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SourceState {
    /// The first failure since the last success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failing_since: Option<DateTime<Utc>>,
    /// The last failure's error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// When `source_failing` was raised (cleared by `source_recovered`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raised_at: Option<DateTime<Utc>>,
}

/// Every source's state, by source name.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SourcesState {
    /// By `mailprotector`, `billing`, `gradient`.
    #[serde(default)]
    pub sources: BTreeMap<String, SourceState>,
}

/// What was seen of a source.
#[derive(Debug, Clone, PartialEq)]
pub enum Seen {
    /// A run completed.
    Succeeded {
        /// The run.
        run_id: RunId,
        /// When it finished.
        at: DateTime<Utc>,
    },
    /// A run failed.
    Failed {
        /// The run.
        run_id: RunId,
        /// When it finished.
        at: DateTime<Utc>,
        /// Why (secrets cut out).
        error: String,
    },
    /// The reconciliation at `at` found the source's data older than `max_age` (`reason` is
    /// its stale reason).
    Stale {
        /// The computation.
        at: DateTime<Utc>,
        /// In words.
        reason: String,
    },
}

impl SourcesState {
    /// Applies what was seen of `source`; the event it raises, if any. `threshold` is how
    /// long a source must have been failing before `source_failing`.
    pub fn observe(&mut self, source: &str, seen: Seen, threshold: Duration) -> Option<Event> {
        let st = self.sources.entry(source.to_owned()).or_default();
        match seen {
            Seen::Succeeded { run_id, at } => {
                let since = st.failing_since.take();
                st.last_error = None;
                let raised = st.raised_at.take()?;
                let text = format!(
                    "{source} is working again (run {run_id}); it had been failing or stale \
                     for {}.",
                    span_words((at - since.unwrap_or(raised).min(raised)).num_seconds())
                );
                let mut ev = Event::new(EventKind::SourceRecovered, at, text);
                ev.source = Some(source.to_owned());
                ev.run_id = Some(run_id);
                ev.since = since;
                Some(ev)
            }
            Seen::Failed { run_id, at, error } => {
                let since = *st.failing_since.get_or_insert(at);
                st.last_error = Some(error.clone());
                let threshold = chrono::Duration::from_std(threshold).ok()?;
                if st.raised_at.is_some() || at - since < threshold {
                    return None;
                }
                st.raised_at = Some(at);
                let text = format!(
                    "{source} has been failing for {}: {error}",
                    span_words((at - since).num_seconds())
                );
                let mut ev = Event::new(EventKind::SourceFailing, at, text);
                ev.source = Some(source.to_owned());
                ev.run_id = Some(run_id);
                ev.detail = Some(error);
                ev.since = Some(since);
                Some(ev)
            }
            Seen::Stale { at, reason } => {
                if st.raised_at.is_some() {
                    return None;
                }
                st.raised_at = Some(at);
                let text = format!("{source} data is stale: {reason}.");
                let mut ev = Event::new(EventKind::SourceFailing, at, text);
                ev.source = Some(source.to_owned());
                ev.detail = Some(reason);
                ev.since = st.failing_since;
                Some(ev)
            }
        }
    }
}
