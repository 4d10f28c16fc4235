//! The Gradient push: on its own schedule, send the latest complete vendor snapshot — never a
//! stale one, whatever became of later vendor runs — to Synthesize: status `pending` while the
//! integration is not set up (Gradient turns it `active` itself when counts arrive), missing
//! services and accounts created, renames propagated, then one absolute count per (customer,
//! product). Every pair's outcome is kept in the store ([`LAST_PUSH_KEY`]); a dry run records
//! the plan. Before the first vendor snapshot exists the job is not ready: the engine records
//! a skip, not a failure.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;

use super::error::{JobError, NotReady, PushError};
use super::job::{BoxFuture, Job, JobOutput, JobResult, RunContext};
use super::push_counts::post_counts;
use super::vendor::prefixed;
use crate::gradient::{
    GradientClient, GradientError, IntegrationStatus, LAST_PUSH_KEY, NewService, PairOutcome,
    PairResult, PushReport, SENT_PAIRS_KEY, default_service, plan_push,
};
use crate::model::{CustomerId, RunKind, RunOutcome, UsageSnapshot};
use crate::store::Store;

/// Called with every push report (the daemon publishes it to health and metrics).
pub type ReportHook = Arc<dyn Fn(&PushReport) + Send + Sync>;

/// Pushes the latest complete usage snapshot to Gradient Synthesize.
pub struct PushJob {
    client: GradientClient,
    store: Store,
    max_age: Duration,
    dry_run: bool,
    service_for: Arc<dyn Fn(&str) -> NewService + Send + Sync>,
    hook: Option<ReportHook>,
}

type Sent = BTreeMap<CustomerId, BTreeSet<String>>;

impl PushJob {
    /// A push with `client`; snapshots older than `max_age` (`[reconcile] max_age`) are
    /// refused; `dry_run` only records the plan.
    pub fn new(client: GradientClient, store: Store, max_age: Duration, dry_run: bool) -> PushJob {
        PushJob {
            client,
            store,
            max_age,
            dry_run,
            service_for: Arc::new(default_service),
            hook: None,
        }
    }

    /// The push as `[gradient]` and `[reconcile] max_age` configure it (the daemon schedules
    /// it when `[gradient] enabled`); whoever schedules it attaches the report hook. Fails only
    /// when the client cannot be built.
    pub fn from_config(
        config: &crate::config::Config,
        store: &Store,
    ) -> Result<PushJob, crate::upstream::UpstreamError> {
        let client = GradientClient::new(&config.gradient)?;
        let services = config.gradient.services.clone();
        let job =
            PushJob::new(client, store.clone(), config.reconcile.max_age, config.gradient.dry_run)
                .with_services(Arc::new(move |name| {
                    crate::gradient::configured_service(&services, name)
                }));
        Ok(job)
    }

    /// Names the category of services it creates (default [`default_service`]).
    pub fn with_services(mut self, f: Arc<dyn Fn(&str) -> NewService + Send + Sync>) -> PushJob {
        self.service_for = f;
        self
    }

    /// Calls `hook` with each report after it is stored.
    pub fn with_report_hook(mut self, hook: ReportHook) -> PushJob {
        self.hook = Some(hook);
        self
    }

    /// The latest complete vendor snapshot, or why it must not be pushed. Later vendor runs
    /// that did not complete (a crash, a shutdown, an outage) leave it the latest complete
    /// one: it is pushed while it is younger than `max_age`, and the log says which it is.
    async fn snapshot(&self, ctx: &RunContext) -> Result<UsageSnapshot, JobError> {
        let store_err = JobError::store("read the store to push");
        let snap = self.store.latest_usage_snapshot().await.map_err(store_err)?;
        let Some(snap) = snap else {
            return Err(PushError::NotReady(NotReady::NoVendorSnapshot).into());
        };
        let age = (ctx.started_at - snap.observed_at).to_std().unwrap_or(Duration::ZERO);
        if age > self.max_age {
            return Err(PushError::Stale {
                run: snap.run_id,
                observed_at: snap.observed_at,
                age,
                max_age: self.max_age,
            }
            .into());
        }
        let runs = self
            .store
            .recent_runs(20, Some(RunKind::Vendor))
            .await
            .map_err(JobError::store("read the store to push"))?;
        let later: Vec<String> = runs
            .iter()
            .filter(|r| r.id > snap.run_id && r.outcome != RunOutcome::Running)
            .map(|r| format!("#{} {}", r.id, r.outcome.as_str()))
            .collect();
        let note = if later.is_empty() {
            String::new()
        } else {
            format!(" (later vendor runs did not complete: {})", later.join(", "))
        };
        tracing::info!(
            snapshot_run = snap.run_id,
            observed_at = %snap.observed_at.to_rfc3339(),
            "gradient: pushing the latest complete vendor snapshot, run #{} observed {}{note}",
            snap.run_id,
            snap.observed_at.to_rfc3339()
        );
        Ok(snap)
    }

    async fn push(
        &self,
        ctx: &RunContext,
        client: &GradientClient,
        report: &mut Option<PushReport>,
    ) -> Result<(), JobError> {
        let snap = self.snapshot(ctx).await?;
        let integration = client.integration().await?;
        let status = integration.status;
        // From here on a 403 names the status read now (§11 #6 gates counts on it).
        let fail = |e: GradientError| JobError::from(e.with_status(&status));
        if status.blocks_push() {
            return Err(PushError::Blocked { status: status.clone() }.into());
        }
        if let IntegrationStatus::Other(raw) = &status {
            tracing::warn!(
                "gradient: the integration status is {raw:?}, which Gradient does not document; \
                 pushing without changing it"
            );
        }
        // Only ever `pending`, and only while not set up: Gradient turns the integration
        // `active` itself once it receives usage (§5.2, Revised 2026-12).
        let statuses: Vec<IntegrationStatus> = if status == IntegrationStatus::Inactive {
            vec![IntegrationStatus::Pending]
        } else {
            Vec::new()
        };
        let before: Sent =
            self.store.get_meta(SENT_PAIRS_KEY).await.ok().flatten().unwrap_or_default();
        let mut skus = client.skus().await.map_err(fail)?;
        // Disconnects delete accounts: always read them first (§2 key lifecycle).
        let mut accounts = client.accounts().await.map_err(fail)?;
        let plan = plan_push(&snap, &skus, &accounts, &before, self.service_for.as_ref());
        let r = report.insert(PushReport {
            run_id: ctx.run_id,
            started_at: ctx.started_at,
            finished_at: ctx.started_at,
            dry_run: self.dry_run,
            snapshot_run: Some(snap.run_id),
            snapshot_observed_at: Some(snap.observed_at),
            integration_status: Some(status.as_str().to_owned()),
            statuses_set: statuses.iter().map(|s| s.as_str().to_owned()).collect(),
            services_created: plan.services_to_create.iter().map(|s| s.name.clone()).collect(),
            accounts_created: plan.accounts_to_create.iter().map(|a| a.id.clone()).collect(),
            accounts_renamed: plan.renames.iter().map(|(id, _)| id.clone()).collect(),
            account_mapped: BTreeMap::new(),
            pairs: plan
                .counts
                .iter()
                .map(|c| PairResult {
                    customer_id: c.customer_id,
                    product: c.product.clone(),
                    unit_count: c.unit_count,
                    outcome: PairOutcome::Planned,
                    detail: None,
                })
                .collect(),
            error: None,
        });
        r.account_mapped = mapped_by_id(&accounts);
        if self.dry_run {
            tracing::info!(
                pairs = plan.counts.len(),
                services = plan.services_to_create.len(),
                accounts = plan.accounts_to_create.len(),
                "gradient: dry run, nothing sent"
            );
            return Ok(());
        }
        for s in &statuses {
            client.set_status(s).await.map_err(fail)?;
        }
        for new in &plan.services_to_create {
            skus = client.create_service(new).await.map_err(fail)?;
        }
        if !plan.accounts_to_create.is_empty() {
            accounts =
                client.ensure_accounts(accounts, &plan.accounts_to_create).await.map_err(fail)?;
            r.account_mapped = mapped_by_id(&accounts);
        }
        for (id, name) in &plan.renames {
            client.rename_account(id, name).await.map_err(fail)?;
        }
        let ids: BTreeMap<&str, &str> =
            skus.iter().map(|s| (s.name.as_str(), s.id.as_str())).collect();
        post_counts(ctx, client, &status, &plan.counts, &ids, &mut r.pairs).await
    }

    async fn keep(&self, report: &PushReport) {
        if let Err(e) = self.store.put_meta(LAST_PUSH_KEY, report).await {
            tracing::warn!("cannot keep the Gradient push report: {e}");
        }
        if !report.dry_run {
            let before: Sent =
                self.store.get_meta(SENT_PAIRS_KEY).await.ok().flatten().unwrap_or_default();
            if let Err(e) = self.store.put_meta(SENT_PAIRS_KEY, &report.sent_pairs(&before)).await {
                tracing::warn!(
                    "cannot keep the pairs sent to Gradient (a product dropped later may not be zeroed): {e}"
                );
            }
        }
        if let Some(hook) = &self.hook {
            hook(report);
        }
    }
}

fn mapped_by_id(accounts: &[crate::gradient::GradientAccount]) -> BTreeMap<CustomerId, bool> {
    accounts.iter().filter_map(|a| Some((a.id.parse::<CustomerId>().ok()?, a.is_mapped?))).collect()
}

impl Job for PushJob {
    fn run(&self, ctx: RunContext) -> BoxFuture<'_, JobResult> {
        Box::pin(async move {
            let client = self.client.scoped();
            let mut report = None;
            let outcome = self.push(&ctx, &client, &mut report).await;
            if let Some(mut r) = report
                && !matches!(outcome, Err(JobError::Cancelled))
            {
                r.finished_at = Utc::now();
                r.error = outcome.as_ref().err().map(ToString::to_string);
                let s = r.summary();
                tracing::info!(
                    snapshot_run = r.snapshot_run,
                    accepted = s.accepted,
                    unmapped = s.unmapped,
                    refused = s.refused,
                    failed = s.failed,
                    planned = s.planned,
                    "gradient: push finished"
                );
                self.keep(&r).await;
            }
            let stats = client.stats();
            JobResult {
                outcome: outcome.map(|()| JobOutput::Plain),
                requests: prefixed(&stats),
                stats: vec![stats],
            }
        })
    }

    /// Ready once a vendor run has completed; a store that cannot say lets the run go ahead
    /// (and record the store's error).
    fn ready(&self) -> BoxFuture<'_, Result<(), NotReady>> {
        Box::pin(async move {
            match self.store.last_success(RunKind::Vendor).await {
                Ok(None) => Err(NotReady::NoVendorSnapshot),
                Ok(Some(_)) | Err(_) => Ok(()),
            }
        })
    }
}
