//! Run observers the daemon installs: health (`health_observer`) and the run and upstream
//! metric families here, fanned out from the engine's one observer seam.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;

use crate::metrics::Metrics;
use crate::model::{RunKind, RunOutcome, RunRecord};
use crate::sync::{RunObserver, SkipReason};
use crate::upstream::StatsSnapshot;

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct JobOutcome {
    job: String,
    outcome: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct JobLabel {
    job: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct UpstreamEndpoint {
    upstream: String,
    endpoint: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct UpstreamLabel {
    upstream: String,
}

fn duration_histogram() -> Histogram {
    // 0.5 s .. ~4.5 h: a small reseller's poll to a 10,000-customer one at a low rate.
    Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(0.5, 2.0, 16))
}

fn wait_histogram() -> Histogram {
    Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(0.01, 4.0, 10))
}

/// Run and upstream metric families, registered in the daemon's [`Metrics`].
#[derive(Clone)]
pub struct RunMetrics {
    runs: Family<JobOutcome, Counter>,
    durations: Family<JobLabel, Histogram, fn() -> Histogram>,
    last_success: Family<JobLabel, Gauge<f64, std::sync::atomic::AtomicU64>>,
    requests: Family<UpstreamEndpoint, Counter>,
    retries: Family<UpstreamLabel, Counter>,
    rate_limited: Family<UpstreamLabel, Counter>,
    waited: Family<UpstreamLabel, Histogram, fn() -> Histogram>,
}

impl RunMetrics {
    /// Creates the families and registers them in `metrics`.
    pub fn register(metrics: &Metrics) -> RunMetrics {
        let m = RunMetrics {
            runs: Family::default(),
            durations: Family::new_with_constructor(duration_histogram),
            last_success: Family::default(),
            requests: Family::default(),
            retries: Family::default(),
            rate_limited: Family::default(),
            waited: Family::new_with_constructor(wait_histogram),
        };
        metrics.register(
            "mpsync_sync_runs",
            "Runs by job and outcome (ok, failed, cancelled, skipped_overlap, skipped_backoff, \
             skipped_not_ready)",
            m.runs.clone(),
        );
        metrics.register(
            "mpsync_sync_duration_seconds",
            "Wall time of finished runs",
            m.durations.clone(),
        );
        metrics.register(
            "mpsync_sync_last_success_timestamp_seconds",
            "Unix time the last successful run of each job finished",
            m.last_success.clone(),
        );
        metrics.register(
            "mpsync_upstream_requests",
            "HTTP requests sent to each upstream endpoint (retries included)",
            m.requests.clone(),
        );
        metrics.register(
            "mpsync_upstream_retries",
            "Requests that were retries",
            m.retries.clone(),
        );
        metrics.register(
            "mpsync_upstream_rate_limited",
            "429 answers received",
            m.rate_limited.clone(),
        );
        metrics.register(
            "mpsync_ratelimit_wait_seconds",
            "Time a run spent waiting on the rate limiter and 429 pauses, per upstream",
            m.waited.clone(),
        );
        m
    }

    /// Sets the last-success gauge from a stored run (at start-up, so restarts keep it).
    pub fn seed_last_success(&self, kind: RunKind, record: &RunRecord) {
        if let Some(at) = record.finished_at {
            self.last_success.get_or_create(&job(kind)).set(at.timestamp_millis() as f64 / 1000.0);
        }
    }
}

fn job(kind: RunKind) -> JobLabel {
    JobLabel { job: kind.as_str().to_owned() }
}

impl RunObserver for RunMetrics {
    fn finished(&self, kind: RunKind, record: &RunRecord, duration: Duration) {
        let outcome = record.outcome.as_str().to_owned();
        self.runs.get_or_create(&JobOutcome { job: kind.as_str().to_owned(), outcome }).inc();
        self.durations.get_or_create(&job(kind)).observe(duration.as_secs_f64());
        if record.outcome == RunOutcome::Ok {
            self.seed_last_success(kind, record);
        }
    }

    fn unrecorded(&self, kind: RunKind, _reason: &str) {
        let outcome = "unrecorded".to_owned();
        self.runs.get_or_create(&JobOutcome { job: kind.as_str().to_owned(), outcome }).inc();
    }

    fn skipped(&self, kind: RunKind, why: &SkipReason) {
        let outcome = why.as_str().to_owned();
        self.runs.get_or_create(&JobOutcome { job: kind.as_str().to_owned(), outcome }).inc();
    }

    fn upstream_stats(&self, _kind: RunKind, stats: &[StatsSnapshot]) {
        for s in stats {
            for (endpoint, n) in &s.requests {
                let labels =
                    UpstreamEndpoint { upstream: s.upstream.clone(), endpoint: endpoint.clone() };
                self.requests.get_or_create(&labels).inc_by(*n);
            }
            let up = UpstreamLabel { upstream: s.upstream.clone() };
            self.retries.get_or_create(&up).inc_by(s.retries);
            self.rate_limited.get_or_create(&up).inc_by(s.rate_limited);
            self.waited.get_or_create(&up).observe(s.waited.as_secs_f64());
        }
    }
}

/// Passes every event to each observer in turn.
pub struct Fanout(pub Vec<Arc<dyn RunObserver>>);

impl RunObserver for Fanout {
    fn started(&self, kind: RunKind, run_id: crate::model::RunId) {
        self.0.iter().for_each(|o| o.started(kind, run_id));
    }
    fn finished(&self, kind: RunKind, record: &RunRecord, duration: Duration) {
        self.0.iter().for_each(|o| o.finished(kind, record, duration));
    }
    fn unrecorded(&self, kind: RunKind, reason: &str) {
        self.0.iter().for_each(|o| o.unrecorded(kind, reason));
    }
    fn upstream_stats(&self, kind: RunKind, stats: &[StatsSnapshot]) {
        self.0.iter().for_each(|o| o.upstream_stats(kind, stats));
    }
    fn skipped(&self, kind: RunKind, why: &SkipReason) {
        self.0.iter().for_each(|o| o.skipped(kind, why));
    }
    fn backing_off(&self, kind: RunKind, failures: u32, wait: Duration) {
        self.0.iter().for_each(|o| o.backing_off(kind, failures, wait));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn runs_and_upstream_stats_show_up_in_the_exposition() {
        let metrics = Metrics::new();
        let rm = RunMetrics::register(&metrics);
        let at = "2026-01-01T00:00:10Z".parse().unwrap();
        let record = RunRecord {
            id: 1,
            kind: RunKind::Vendor,
            started_at: at,
            finished_at: Some(at),
            outcome: RunOutcome::Ok,
            requests: BTreeMap::new(),
            error: None,
            snapshot: Some(1),
            counting: None,
        };
        rm.finished(RunKind::Vendor, &record, Duration::from_secs(3));
        rm.skipped(RunKind::Vendor, &SkipReason::Overlap);
        rm.skipped(RunKind::Push, &SkipReason::NotReady(crate::sync::NotReady::NoVendorSnapshot));
        let stats = StatsSnapshot {
            upstream: "mailprotector".into(),
            requests: [("GET /resellers/{id}/customers".to_string(), 4u64)].into_iter().collect(),
            retries: 2,
            rate_limited: 1,
            waited: Duration::from_millis(1500),
        };
        rm.upstream_stats(RunKind::Vendor, &[stats]);
        let text = metrics.encode();
        for needle in [
            r#"mpsync_sync_runs_total{job="vendor",outcome="ok"} 1"#,
            r#"mpsync_sync_runs_total{job="vendor",outcome="skipped_overlap"} 1"#,
            r#"mpsync_sync_runs_total{job="push",outcome="skipped_not_ready"} 1"#,
            r#"mpsync_sync_last_success_timestamp_seconds{job="vendor"} 1767225610.0"#,
            r#"mpsync_upstream_requests_total{upstream="mailprotector",endpoint="GET /resellers/{id}/customers"} 4"#,
            r#"mpsync_upstream_retries_total{upstream="mailprotector"} 2"#,
            r#"mpsync_ratelimit_wait_seconds_sum{upstream="mailprotector"} 1.5"#,
            r#"mpsync_sync_duration_seconds_count{job="vendor"} 1"#,
        ] {
            assert!(text.contains(needle), "missing {needle} in\n{text}");
        }
    }
}
