//! Keeps the reconciliation current in the daemon: recomputed after every vendor or billing
//! run, when a reload brings a new mapping, and every few minutes (inputs age into `stale`
//! with time alone). Publishes the summary to health and metrics. After a recomputation that
//! followed a run or a reload, the write-back's auto mode applies what the current plan allows
//! (not after the timed refresh: a change that keeps failing is retried once per poll, not
//! every few minutes).

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::config::mapping::{Mapping, MappingError};
use crate::config::{BillingSource, Config};
use crate::health::{Health, ReconciliationSummary};
use crate::metrics::Metrics;
use crate::model::{RunKind, RunRecord};
use crate::store::Store;
use crate::sync::RunObserver;

/// How often the reconciliation is recomputed when nothing else triggers it.
const REFRESH: Duration = Duration::from_secs(300);

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct StatusLabel {
    status: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct DirectionLabel {
    direction: String,
}

/// Tells the reconciler that a vendor or billing run finished.
#[derive(Clone)]
pub struct ReconcileTrigger(mpsc::Sender<()>);

impl RunObserver for ReconcileTrigger {
    fn finished(&self, kind: RunKind, _record: &RunRecord, _duration: Duration) {
        if matches!(kind, RunKind::Vendor | RunKind::Billing) {
            // A full channel already holds a pending recomputation.
            let _ = self.0.try_send(());
        }
    }
}

/// The mapping file in force, or why it could not be loaded.
pub(super) fn load_mapping(config: &Config) -> Option<Result<Mapping, MappingError>> {
    if matches!(config.billing.source, BillingSource::None) {
        return None;
    }
    Some(Mapping::load(&config.reconcile.mapping_file))
}

/// The reconciler task's inputs.
pub(super) struct Reconciler {
    pub store: Store,
    pub health: Health,
    pub config: watch::Receiver<Arc<Config>>,
    pub mapping: Option<Mapping>,
    pub metrics: Metrics,
    pub writeback: Arc<super::writeback::Writeback>,
    pub events: super::event_observer::EventObserver,
}

impl Reconciler {
    /// A trigger for run observers and the receiving end for [`Reconciler::run`].
    pub fn channel() -> (ReconcileTrigger, mpsc::Receiver<()>) {
        let (tx, rx) = mpsc::channel(1);
        (ReconcileTrigger(tx), rx)
    }

    /// Recomputes on triggers, reloads and the refresh interval until `token` is cancelled.
    pub async fn run(mut self, mut triggers: mpsc::Receiver<()>, token: CancellationToken) {
        let rows: Family<StatusLabel, Gauge> = Family::default();
        let impact: Family<DirectionLabel, Gauge<f64, std::sync::atomic::AtomicU64>> =
            Family::default();
        self.metrics.register(
            "mpsync_reconciliation_rows",
            "Reconciliation rows per status",
            rows.clone(),
        );
        self.metrics.register(
            "mpsync_reconciliation_monthly_impact",
            "Monthly money at stake in discrepancies, by direction (under_billed, over_billed)",
            impact.clone(),
        );
        let accrued: Family<DirectionLabel, Gauge<f64, std::sync::atomic::AtomicU64>> =
            Family::default();
        self.metrics.register(
            "mpsync_discrepancy_accrued_money",
            "Money open discrepancies have cost since they began (spans with stale inputs \
             excluded), by direction (under_billed: missed, over_billed: overcharged)",
            accrued.clone(),
        );
        let mut refresh = tokio::time::interval(REFRESH);
        refresh.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            let after_news = tokio::select! {
                _ = token.cancelled() => return,
                _ = refresh.tick() => false,
                Some(()) = triggers.recv() => true,
                changed = self.config.changed() => {
                    if changed.is_err() { return; }
                    self.reload_mapping();
                    true
                }
            };
            if self.recompute(&rows, &impact, &accrued).await && after_news {
                self.writeback.auto_apply().await;
            }
            // A billing run an apply asked for while another was running starts now.
            self.writeback.refresh_billing().await;
        }
    }

    fn reload_mapping(&mut self) {
        let config = self.config.borrow_and_update().clone();
        match load_mapping(&config) {
            None => self.mapping = None,
            Some(Ok(m)) => {
                tracing::info!("mapping reloaded from {}", config.reconcile.mapping_file.display());
                self.mapping = Some(m);
            }
            Some(Err(e)) => {
                tracing::error!(
                    "the mapping file was not reloaded, the previous one stays in force: {e:#}"
                );
            }
        }
    }

    /// Recomputes and publishes; whether a reconciliation was saved.
    async fn recompute(
        &self,
        rows: &Family<StatusLabel, Gauge>,
        impact: &Family<DirectionLabel, Gauge<f64, std::sync::atomic::AtomicU64>>,
        accrued: &Family<DirectionLabel, Gauge<f64, std::sync::atomic::AtomicU64>>,
    ) -> bool {
        let Some(mapping) = &self.mapping else { return false };
        let (settings, plan) = {
            let config = self.config.borrow();
            (config.reconcile.clone(), crate::writeback::PlanSettings::from_config(&config))
        };
        let now = chrono::Utc::now();
        match crate::sync::recompute(&self.store, mapping, &settings, &plan, now).await {
            Ok(rec) => {
                self.events.reconciled(rec.clone());
                let s = &rec.summary;
                for (status, n) in &s.by_status {
                    rows.get_or_create(&StatusLabel { status: status.clone() }).set(*n as i64);
                }
                impact
                    .get_or_create(&DirectionLabel { direction: "under_billed".into() })
                    .set(s.impact_under_billed);
                impact
                    .get_or_create(&DirectionLabel { direction: "over_billed".into() })
                    .set(s.impact_over_billed);
                for (direction, v) in [
                    ("under_billed", s.accrued_under_billed),
                    ("over_billed", s.accrued_over_billed),
                ] {
                    accrued.get_or_create(&DirectionLabel { direction: direction.into() }).set(v);
                }
                let stale = s.by_status.get("stale").copied().unwrap_or(0);
                tracing::info!(
                    rows = s.rows,
                    discrepancies = s.discrepancies,
                    stale,
                    "reconciliation updated (vendor run {:?}, billing run {:?})",
                    rec.vendor_run,
                    rec.billing_run
                );
                self.health.set_reconciliation(ReconciliationSummary {
                    run_id: rec.vendor_run.unwrap_or(0),
                    at: rec.computed_at,
                    by_status: s.by_status.clone(),
                    discrepancies: s.discrepancies,
                    impact_under_billed: s.impact_under_billed,
                    impact_over_billed: s.impact_over_billed,
                    stale,
                    error: None,
                });
                true
            }
            Err(e) => {
                tracing::error!("cannot update the reconciliation: {e}");
                let mut summary =
                    self.health.snapshot().reconciliation.unwrap_or(ReconciliationSummary {
                        run_id: 0,
                        at: now,
                        by_status: Default::default(),
                        discrepancies: 0,
                        impact_under_billed: 0.0,
                        impact_over_billed: 0.0,
                        stale: 0,
                        error: None,
                    });
                summary.error = Some(format!("cannot update the reconciliation: {e}"));
                self.health.set_reconciliation(summary);
                false
            }
        }
    }
}
