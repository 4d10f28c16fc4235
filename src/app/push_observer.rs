//! Publishing push reports: the pair counts into health (`gradient:pushPairs` on
//! `/v1/health`) and two metric families — pushes by result and pairs by outcome. Runs that
//! fail before counting (keys, stale snapshot) are counted by `mpsync_sync_runs{job="push"}`.
//! Here, in the wiring, so that `gradient`, `health`, `metrics` and `sync` know none of the
//! others: the push job calls a [`ReportHook`] and this is the one the daemon attaches.

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

use crate::gradient::{PairOutcome, PushReport};
use crate::health::{Health, PushPairs};
use crate::metrics::Metrics;
use crate::sync::ReportHook;

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ResultLabel {
    result: String,
}

/// Publishes each push report to health and metrics. Cheap to clone.
#[derive(Clone)]
pub struct PushObserver {
    health: Health,
    pushes: Family<ResultLabel, Counter>,
    pairs: Family<ResultLabel, Counter>,
}

impl PushObserver {
    /// Registers `mpsync_gradient_pushes` (result = ok, failed, dry_run) and
    /// `mpsync_gradient_push_pairs` (result = accepted, unmapped, refused, failed, planned).
    pub fn register(metrics: &Metrics, health: Health) -> PushObserver {
        let o = PushObserver { health, pushes: Family::default(), pairs: Family::default() };
        // Every series exists from the start at 0, so an alert on `increase(...)` sees the
        // first failure (a series that appears at 1 has no increase to show).
        for result in ["ok", "failed", "dry_run"] {
            drop(o.pushes.get_or_create(&ResultLabel { result: result.into() }));
        }
        for result in ["accepted", "unmapped", "refused", "failed", "planned"] {
            drop(o.pairs.get_or_create(&ResultLabel { result: result.into() }));
        }
        metrics.register(
            "mpsync_gradient_pushes",
            "Gradient pushes that reached the counts, by result (ok, failed, dry_run)",
            o.pushes.clone(),
        );
        metrics.register(
            "mpsync_gradient_push_pairs",
            "(customer, product) counts pushed to Gradient, by result (accepted, unmapped, \
             refused, failed, planned)",
            o.pairs.clone(),
        );
        o
    }

    /// Records one report.
    pub fn observe(&self, report: &PushReport) {
        let s = report.summary();
        let result = match (report.dry_run, &report.error) {
            (true, _) => "dry_run",
            (false, None) => "ok",
            (false, Some(_)) => "failed",
        };
        self.pushes.get_or_create(&ResultLabel { result: result.into() }).inc();
        for (label, n) in [
            ("accepted", s.accepted),
            ("unmapped", s.unmapped),
            ("refused", s.refused),
            ("failed", s.failed),
            ("planned", s.planned),
        ] {
            self.pairs.get_or_create(&ResultLabel { result: label.into() }).inc_by(n);
        }
        self.health.set_push(report.into());
    }

    /// The hook form `sync::PushJob::with_report_hook` takes.
    pub fn hook(self) -> ReportHook {
        Arc::new(move |r: &PushReport| self.observe(r))
    }
}

impl From<&PushReport> for PushPairs {
    fn from(report: &PushReport) -> PushPairs {
        let s = report.summary();
        let first_refused =
            report.pairs.iter().find(|p| p.outcome == PairOutcome::Refused).map(|p| {
                format!(
                    "customer {} {} = {}: {}",
                    p.customer_id,
                    p.product,
                    p.unit_count,
                    p.detail.as_deref().unwrap_or("refused")
                )
            });
        PushPairs {
            run_id: report.run_id,
            at: report.finished_at,
            dry_run: report.dry_run,
            accepted: s.accepted,
            unmapped: s.unmapped,
            refused: s.refused,
            first_refused,
            failed: s.failed,
            planned: s.planned,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use chrono::Utc;

    use super::*;
    use crate::gradient::PairResult;
    use crate::health::{LoopStatus, Source};

    fn pair(c: u64, outcome: PairOutcome) -> PairResult {
        PairResult {
            customer_id: c,
            product: "CloudFilter".into(),
            unit_count: 1,
            outcome,
            detail: None,
        }
    }

    #[test]
    fn a_report_shows_in_health_and_metrics() {
        let health = Health::new(Utc::now());
        health.set_configured(Source::Gradient, true, None);
        let metrics = Metrics::new();
        let o = PushObserver::register(&metrics, health.clone());
        let pairs = vec![
            pair(1, PairOutcome::Accepted),
            pair(2, PairOutcome::Unmapped),
            pair(3, PairOutcome::Unmapped),
            pair(4, PairOutcome::Failed),
        ];
        let report = PushReport {
            error: Some("1 of 4 counts were not accepted".into()),
            ..PushReport::for_test(9, 8, pairs)
        };
        (o.clone().hook())(&report);
        let fresh = LoopStatus { age: Duration::ZERO, fresh: true };
        let r = health.report(Utc::now(), fresh);
        let c = &r.checks["gradient:pushPairs"][0];
        assert_eq!(c.run_id, Some(9));
        let v = c.observed_value.clone().unwrap();
        assert_eq!(
            (v["accepted"].as_u64(), v["unmapped"].as_u64(), v["failed"].as_u64()),
            (Some(1), Some(2), Some(1))
        );
        assert!(c.output.as_deref().unwrap().contains("1 of 4 counts"));
        let text = metrics.encode();
        assert!(text.contains("mpsync_gradient_pushes_total{result=\"failed\"} 1"), "{text}");
        assert!(text.contains("mpsync_gradient_push_pairs_total{result=\"unmapped\"} 2"), "{text}");
    }

    #[test]
    fn refused_counts_warn_with_gradients_words_and_are_counted() {
        let health = Health::new(Utc::now());
        health.set_configured(Source::Gradient, true, None);
        let metrics = Metrics::new();
        let o = PushObserver::register(&metrics, health.clone());
        let refused = PairResult {
            customer_id: 7,
            product: "XtraMail".into(),
            unit_count: 0,
            outcome: PairOutcome::Refused,
            detail: Some("400: unitCount must be greater than 0".into()),
        };
        let report =
            PushReport::for_test(5, 4, vec![pair(1, PairOutcome::Accepted), refused.clone()]);
        o.observe(&report);
        let fresh = LoopStatus { age: Duration::ZERO, fresh: true };
        let r = health.report(Utc::now(), fresh);
        let c = &r.checks["gradient:pushPairs"][0];
        assert_eq!(c.observed_value.as_ref().unwrap()["refused"], 1);
        let output = c.output.as_deref().unwrap();
        assert!(output.contains("1 of 2 counts were refused by Gradient"), "{output}");
        assert!(output.contains("customer 7 XtraMail = 0: 400: unitCount must be greater than 0"));
        assert_eq!(c.status, crate::health::CheckStatus::Warn);
        let text = metrics.encode();
        assert!(text.contains("mpsync_gradient_push_pairs_total{result=\"refused\"} 1"), "{text}");
        assert!(text.contains("mpsync_gradient_pushes_total{result=\"ok\"} 1"), "{text}");
    }
}
