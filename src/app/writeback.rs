//! Write-back in the daemon: the control socket's handler (the command line's `apply`,
//! `plan`, `audit`, `report` and `backup` while the daemon holds the store), the auto mode after a reconciliation, and
//! `mpsync_writeback_changes_total`. Every apply here goes through one lock, so the auto mode
//! and an operator's apply never work on the same plan at once, and uses the writer and
//! secrets of the config in force at that moment.
//!
//! After an apply that changed something, a billing run is requested, so the next
//! reconciliation shows the corrected rows as `match`; when a billing run is already going
//! (it may have read the lines before the write), another is requested once it ends.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures_util::future::BoxFuture;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::control::{Handler, Replies, Reply, Request};
use crate::exit::ExitStatus;
use crate::metrics::Metrics;
use crate::model::RunKind;
use crate::store::Store;
use crate::sync::{EngineHandle, TriggerOutcome};
use crate::writeback::{
    self, ApplyError, ApplyEvent, ApplyOptions, ApplyReport, AuditQuery, AuditResult, PlanId,
};

/// Who the audit log names for the auto mode.
pub const DAEMON: &str = "daemon";

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ResultLabel {
    result: String,
}

/// The daemon's write-back: applies (socket and auto), their metrics, the billing refresh.
pub struct Writeback {
    store: Store,
    config: watch::Receiver<Arc<Config>>,
    engine: EngineHandle,
    changes: Family<ResultLabel, Counter>,
    /// One apply at a time.
    lock: tokio::sync::Mutex<()>,
    /// A billing run is wanted (an apply changed lines while one was running).
    billing_wanted: AtomicBool,
    shutdown: CancellationToken,
}

impl Writeback {
    /// Registers `mpsync_writeback_changes_total` (result = applied, skipped, failed; each
    /// present from the start at 0).
    pub fn new(
        store: Store,
        config: watch::Receiver<Arc<Config>>,
        engine: EngineHandle,
        metrics: &Metrics,
        shutdown: CancellationToken,
    ) -> Arc<Writeback> {
        let changes: Family<ResultLabel, Counter> = Family::default();
        for r in AuditResult::ALL {
            drop(changes.get_or_create(&ResultLabel { result: r.as_str().into() }));
        }
        metrics.register(
            "mpsync_writeback_changes",
            "Write-back changes attempted by the daemon (auto mode and applies through the \
             control socket), by result (applied, skipped, failed)",
            changes.clone(),
        );
        Arc::new(Writeback {
            store,
            config,
            engine,
            changes,
            lock: tokio::sync::Mutex::new(()),
            billing_wanted: AtomicBool::new(false),
            shutdown,
        })
    }

    /// Applies plan `plan` with the config in force: counts the results and asks for a billing
    /// run when something was applied.
    async fn run_apply(
        &self,
        plan: PlanId,
        mut opts: ApplyOptions,
        progress: &mut (dyn FnMut(&ApplyEvent) + Send),
    ) -> Result<ApplyReport, ApplyError> {
        let _one_at_a_time = self.lock.lock().await;
        let config = self.config.borrow().clone();
        let writer = crate::billing::configured_writer(&config.billing);
        opts.scrub = super::secret_scrubber(&config);
        let report = writeback::apply(&self.store, &*writer, plan, &opts, progress).await?;
        let s = &report.summary;
        for (result, n) in [
            (AuditResult::Applied, s.applied),
            (AuditResult::Skipped, s.skipped),
            (AuditResult::Failed, s.failed),
        ] {
            self.changes
                .get_or_create(&ResultLabel { result: result.as_str().into() })
                .inc_by(n as u64);
        }
        if s.applied > 0 {
            self.billing_wanted.store(true, Ordering::SeqCst);
            self.refresh_billing().await;
        }
        Ok(report)
    }

    /// Starts the billing run an apply asked for, unless one is running (then the next
    /// reconciliation, which follows that run, calls this again).
    pub async fn refresh_billing(&self) {
        if !self.billing_wanted.load(Ordering::SeqCst) {
            return;
        }
        match self.engine.trigger_now(RunKind::Billing).await {
            TriggerOutcome::Started | TriggerOutcome::NotConfigured => {
                self.billing_wanted.store(false, Ordering::SeqCst);
            }
            TriggerOutcome::Skipped(why) => {
                tracing::debug!(?why, "billing run after a write-back deferred");
            }
            TriggerOutcome::ShuttingDown => {}
        }
    }

    /// The auto mode: when the latest plan is current and has auto changes not yet done,
    /// applies those (within the plan's cap) as `daemon`. Held changes wait for a person.
    pub async fn auto_apply(&self) {
        let plan = match self.store.latest_plan().await {
            Ok(Some(plan)) if plan.superseded_by.is_none() && plan.writable => plan,
            Ok(_) => return,
            Err(e) => {
                tracing::warn!("write-back auto mode: cannot read the latest plan: {e}");
                return;
            }
        };
        let journal = match self.store.apply_journal(plan.id).await {
            Ok(j) => j,
            Err(e) => {
                tracing::warn!("write-back auto mode: cannot read the apply journal: {e}");
                return;
            }
        };
        if writeback::apply::pending_auto(&plan, &journal) == 0 {
            return;
        }
        let opts = ApplyOptions {
            who: DAEMON.into(),
            auto_only: true,
            stop: self.shutdown.child_token(),
            ..ApplyOptions::default()
        };
        let mut log = |e: &ApplyEvent| {
            if let ApplyEvent::Change(c) = e {
                tracing::info!(plan = plan.id, row = c.row, "write-back (auto): {}", c.text());
            }
        };
        match self.run_apply(plan.id, opts, &mut log).await {
            Ok(report) => tracing::info!(
                plan = plan.id,
                "write-back (auto): {}",
                report.summary_text().replace('\n', "; ")
            ),
            Err(e) => tracing::error!(plan = plan.id, "write-back (auto) did not run: {e}"),
        }
    }
}

impl Handler for Writeback {
    fn handle(&self, req: Request, out: Replies) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let reply = match req {
                Request::Apply { plan, dry_run, only, who } => {
                    let opts = ApplyOptions {
                        dry_run,
                        only,
                        who: who.clone(),
                        auto_only: false,
                        stop: out.gone(),
                        ..ApplyOptions::default()
                    };
                    let mut stream = |e: &ApplyEvent| out.send(Reply::Event(e.clone()));
                    match self.run_apply(plan, opts, &mut stream).await {
                        Ok(report) => {
                            tracing::info!(
                                plan,
                                who,
                                "write-back applied through the control socket: {}",
                                report.summary_text().replace('\n', "; ")
                            );
                            Reply::Report(report)
                        }
                        Err(e) => Reply::Error { message: e.to_string(), exit: e.exit().code() },
                    }
                }
                Request::Plan { id } => {
                    let read = match id {
                        Some(id) => self.store.plan(id).await,
                        None => self.store.latest_plan().await,
                    };
                    match read {
                        Ok(plan) => Reply::Plan { plan: plan.map(Box::new) },
                        Err(e) => Reply::Error { message: e.to_string(), exit: e.exit().code() },
                    }
                }
                Request::Backup {} => {
                    // The copy goes into the state directory, the one place the service may
                    // write; the command moves it out and removes it.
                    let file = crate::control::backup_file_name();
                    let dir = self.store.path().parent().unwrap_or(std::path::Path::new("."));
                    match self.store.backup_to(dir.join(&file)).await {
                        Ok(report) => {
                            tracing::info!(
                                runs = report.runs,
                                "store backed up through the control socket ({} bytes)",
                                report.bytes
                            );
                            Reply::Backup { file, report }
                        }
                        Err(e) => Reply::Error { message: e.to_string(), exit: e.exit().code() },
                    }
                }
                Request::Report { since, until } => {
                    match crate::report::load(&self.store, since, until).await {
                        Ok(report) => Reply::PeriodReport { report: Box::new(report) },
                        Err(e) => Reply::Error { message: e.to_string(), exit: e.exit().code() },
                    }
                }
                Request::Audit { limit, plan } => {
                    match self.store.audit(AuditQuery { limit, plan }).await {
                        Ok(entries) => Reply::Audit { entries },
                        Err(e) => Reply::Error { message: e.to_string(), exit: e.exit().code() },
                    }
                }
            };
            out.send(reply);
        })
    }
}
