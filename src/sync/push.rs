//! The Gradient push: on its own schedule, send the latest complete vendor snapshot — never a
//! failed or stale one — to Synthesize: status `pending` then `active`, missing services and
//! accounts created, renames propagated, then one absolute count per (customer, product).
//! Every pair's outcome is kept in the store ([`LAST_PUSH_KEY`]); a dry run records the plan.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use futures_util::{StreamExt, stream};

use super::job::{BoxFuture, Job, JobError, JobOutput, JobResult, RunContext};
use super::vendor::prefixed;
use crate::exit::{Exit, ExitStatus};
use crate::gradient::{
    CountOutcome, GradientClient, GradientError, IntegrationStatus, LAST_PUSH_KEY, NewService,
    PairOutcome, PairResult, PushReport, SENT_PAIRS_KEY, default_service, plan_push,
};
use crate::model::{CustomerId, RunKind, RunOutcome, UsageSnapshot};
use crate::store::Store;

/// Consecutive failed count posts after which the push stops (Gradient is down).
const MAX_CONSECUTIVE_FAILURES: u32 = 25;

/// Called with every push report (health and metrics use it).
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

    /// The latest complete vendor snapshot, or why it must not be pushed.
    async fn snapshot(&self, ctx: &RunContext) -> Result<UsageSnapshot, JobError> {
        let store_err = |e: crate::store::StoreError| {
            JobError::failed(format!("cannot read the store to push: {e}"), e.exit())
        };
        let runs = self.store.recent_runs(20, Some(RunKind::Vendor)).await.map_err(store_err)?;
        let refuse = |why: String| {
            JobError::failed(format!("nothing pushed to Gradient: {why}"), Exit::TempFail)
        };
        let last = runs.iter().find(|r| r.outcome != RunOutcome::Running);
        let Some(last) = last else {
            return Err(refuse("no vendor run has completed yet".into()));
        };
        if last.outcome != RunOutcome::Ok {
            return Err(refuse(format!(
                "the last vendor run (#{}) {}{}; its counts are incomplete and the one before \
                 it is superseded: fix the vendor poll, then push again",
                last.id,
                last.outcome.as_str(),
                last.error.as_deref().map(|e| format!(" ({e})")).unwrap_or_default()
            )));
        }
        let snap = self.store.latest_usage_snapshot().await.map_err(store_err)?;
        let Some(snap) = snap.filter(|s| s.run_id == last.id) else {
            return Err(refuse(format!("the snapshot of vendor run #{} is missing", last.id)));
        };
        let age = (ctx.started_at - snap.observed_at).to_std().unwrap_or(Duration::ZERO);
        if age > self.max_age {
            return Err(refuse(format!(
                "the latest vendor snapshot (run #{}, observed {}) is {} old, older than \
                 [reconcile] max_age ({}); let a vendor poll complete first",
                snap.run_id,
                snap.observed_at.to_rfc3339(),
                humantime::format_duration(Duration::from_secs(age.as_secs())),
                humantime::format_duration(self.max_age)
            )));
        }
        Ok(snap)
    }

    async fn push(
        &self,
        ctx: &RunContext,
        client: &GradientClient,
        report: &mut Option<PushReport>,
    ) -> Result<(), JobError> {
        let snap = self.snapshot(ctx).await?;
        let fail = |e: GradientError| JobError::failed(e.to_string(), e.exit());
        let integration = client.integration().await.map_err(fail)?;
        let before: Sent =
            self.store.get_meta(SENT_PAIRS_KEY).await.ok().flatten().unwrap_or_default();
        let mut statuses = Vec::new();
        if integration.status == IntegrationStatus::Inactive {
            statuses.push(IntegrationStatus::Pending);
        }
        if integration.status != IntegrationStatus::Active {
            statuses.push(IntegrationStatus::Active);
        }
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
            integration_status: Some(integration.status.as_str().to_owned()),
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
            client.set_status(*s).await.map_err(fail)?;
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
        self.post_counts(ctx, client, &plan.counts, &ids, &mut r.pairs).await
    }

    async fn post_counts(
        &self,
        ctx: &RunContext,
        client: &GradientClient,
        counts: &[crate::gradient::PlannedCount],
        ids: &BTreeMap<&str, &str>,
        pairs: &mut [PairResult],
    ) -> Result<(), JobError> {
        let work: Vec<Post> = counts
            .iter()
            .enumerate()
            .map(|(i, c)| Post {
                index: i,
                service: ids.get(c.product.as_str()).map(|s| (*s).to_owned()),
                product: c.product.clone(),
                account: c.account_id.clone(),
                units: c.unit_count,
            })
            .collect();
        let mut results = stream::iter(work)
            .map(|p| post_one(client.clone(), p))
            .buffer_unordered(client.concurrency());
        let mut consecutive = 0u32;
        let mut stop: Option<String> = None;
        while let Some((i, res, fatal)) = tokio::select! {
            r = results.next() => r,
            () = ctx.cancel.cancelled() => return Err(JobError::Cancelled),
        } {
            let p = &mut pairs[i];
            match res {
                Ok(CountOutcome::Accepted) => {
                    p.outcome = PairOutcome::Accepted;
                    consecutive = 0;
                }
                Ok(CountOutcome::Unmapped(msg)) => {
                    p.outcome = PairOutcome::Unmapped;
                    p.detail = Some(msg);
                    consecutive = 0;
                }
                Err(why) => {
                    p.outcome = PairOutcome::Failed;
                    p.detail = Some(why.clone());
                    consecutive += 1;
                    if fatal || consecutive >= MAX_CONSECUTIVE_FAILURES {
                        stop = Some(why);
                        break;
                    }
                }
            }
        }
        drop(results);
        if let Some(why) = stop {
            for p in pairs.iter_mut().filter(|p| p.outcome == PairOutcome::Planned) {
                p.outcome = PairOutcome::Failed;
                p.detail = Some("not sent: the push stopped".into());
            }
            return Err(JobError::failed(
                format!("the Gradient push stopped: {why}"),
                Exit::Unavailable,
            ));
        }
        let failed: Vec<&PairResult> =
            pairs.iter().filter(|p| p.outcome == PairOutcome::Failed).collect();
        if let Some(first) = failed.first() {
            return Err(JobError::failed(
                format!(
                    "{} of {} counts were not accepted by Gradient; first: customer {} {}: {}",
                    failed.len(),
                    pairs.len(),
                    first.customer_id,
                    first.product,
                    first.detail.as_deref().unwrap_or("failed")
                ),
                Exit::Unavailable,
            ));
        }
        Ok(())
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

/// One count to post, owned (the futures outlive the borrow of the plan).
struct Post {
    index: usize,
    service: Option<String>,
    product: String,
    account: String,
    units: u64,
}

/// Posts one count: (its index, the outcome or why it failed, whether the push must stop).
async fn post_one(client: GradientClient, p: Post) -> (usize, Result<CountOutcome, String>, bool) {
    let Some(service) = p.service else {
        let why = format!("the service {:?} is missing from the Gradient catalogue", p.product);
        return (p.index, Err(why), false);
    };
    match client.post_count(&service, &p.account, p.units).await {
        Ok(o) => (p.index, Ok(o), false),
        Err(e) => (p.index, Err(e.to_string()), e.is_fatal()),
    }
}

/// The push job as the daemon schedules it (when `[gradient] enabled`), publishing each
/// report to health and metrics.
pub fn push_job_spec(
    config: &crate::config::Config,
    store: &Store,
    health: &crate::health::Health,
    metrics: &crate::metrics::Metrics,
) -> Result<super::JobSpec, crate::upstream::UpstreamError> {
    let client = GradientClient::new(&config.gradient)?;
    let observer = crate::gradient::PushObserver::register(metrics, health.clone());
    let services = config.gradient.services.clone();
    let job =
        PushJob::new(client, store.clone(), config.reconcile.max_age, config.gradient.dry_run)
            .with_report_hook(observer.hook())
            .with_services(Arc::new(move |name| {
                crate::gradient::configured_service(&services, name)
            }));
    Ok(super::JobSpec {
        kind: RunKind::Push,
        schedule: config.gradient.schedule.clone(),
        job: Arc::new(job),
    })
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
                && outcome != Err(JobError::Cancelled)
            {
                r.finished_at = Utc::now();
                r.error = outcome.as_ref().err().map(ToString::to_string);
                let s = r.summary();
                tracing::info!(
                    accepted = s.accepted,
                    unmapped = s.unmapped,
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
}
