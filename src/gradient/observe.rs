//! Publishing push reports: the pair counts into health (`gradient:pushPairs` on
//! `/v1/health`) and two metric families — pushes by result and pairs by outcome. Runs that
//! fail before counting (keys, stale snapshot) are counted by `mpsync_sync_runs{job="push"}`.

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

use super::report::PushReport;
use crate::health::{Health, PushPairs};
use crate::metrics::Metrics;

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
    /// `mpsync_gradient_push_pairs` (result = accepted, unmapped, failed, planned).
    pub fn register(metrics: &Metrics, health: Health) -> PushObserver {
        let o = PushObserver { health, pushes: Family::default(), pairs: Family::default() };
        metrics.register(
            "mpsync_gradient_pushes",
            "Gradient pushes that reached the counts, by result (ok, failed, dry_run)",
            o.pushes.clone(),
        );
        metrics.register(
            "mpsync_gradient_push_pairs",
            "(customer, product) counts pushed to Gradient, by result (accepted, unmapped, \
             failed, planned)",
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
            ("failed", s.failed),
            ("planned", s.planned),
        ] {
            self.pairs.get_or_create(&ResultLabel { result: label.into() }).inc_by(n);
        }
        self.health.set_push(PushPairs {
            run_id: report.run_id,
            at: report.finished_at,
            dry_run: report.dry_run,
            accepted: s.accepted,
            unmapped: s.unmapped,
            failed: s.failed,
            planned: s.planned,
        });
    }

    /// The hook form `sync::PushJob::with_report_hook` takes.
    pub fn hook(self) -> crate::sync::ReportHook {
        Arc::new(move |r: &PushReport| self.observe(r))
    }
}
