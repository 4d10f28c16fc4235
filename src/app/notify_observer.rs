//! Publishing notification deliveries: each channel's state into health (`notify:<name>` on
//! `/v1/health`) and two metric families — attempts by channel and result, and the events
//! each channel has still to deliver. Here, in the wiring, so that `notify`, `health` and
//! `metrics` know none of the others.

use std::collections::BTreeMap;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;

use crate::health::{Health, NotifyHealth};
use crate::metrics::Metrics;
use crate::notify::{ChannelReport, NotifyObserver, Outcome};

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct Attempt {
    channel: String,
    result: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ChannelLabel {
    channel: String,
}

/// The observer the daemon gives the notifier.
pub struct NotifyPublisher {
    health: Health,
    deliveries: Family<Attempt, Counter>,
    pending: Family<ChannelLabel, Gauge>,
}

impl NotifyPublisher {
    /// Registers `mpsync_notify_deliveries_total{channel,result}` (result = ok, retry,
    /// refused) and `mpsync_notify_pending{channel}`.
    pub fn register(metrics: &Metrics, health: Health) -> NotifyPublisher {
        let p =
            NotifyPublisher { health, deliveries: Family::default(), pending: Family::default() };
        metrics.register(
            "mpsync_notify_deliveries",
            "Notification delivery attempts by channel and result (ok; retry: failed, tried \
             again later; refused: the receiver refused it for good, skipped)",
            p.deliveries.clone(),
        );
        metrics.register(
            "mpsync_notify_pending",
            "Events a notification channel has still to deliver",
            p.pending.clone(),
        );
        p
    }
}

impl NotifyObserver for NotifyPublisher {
    fn attempted(&self, channel: &str, outcome: Outcome) {
        let labels = Attempt { channel: channel.to_owned(), result: outcome.as_str().to_owned() };
        self.deliveries.get_or_create(&labels).inc();
    }

    fn channels(&self, reports: &[ChannelReport]) {
        self.pending.clear();
        let mut all = BTreeMap::new();
        for r in reports {
            let label = ChannelLabel { channel: r.name.clone() };
            self.pending.get_or_create(&label).set(i64::try_from(r.pending).unwrap_or(i64::MAX));
            let s = &r.state;
            all.insert(
                r.name.clone(),
                NotifyHealth {
                    kind: r.kind.to_owned(),
                    pending: r.pending,
                    failures: s.attempts,
                    failing_since: s.failing_since,
                    last_error: s.last_error.clone(),
                    next_attempt: s.next_attempt,
                    last_ok: s.last_ok,
                    refused: s.rejected,
                    last_refused: s.last_rejected.clone(),
                    broken: r.broken.clone(),
                },
            );
        }
        self.health.set_notify(all);
    }
}
