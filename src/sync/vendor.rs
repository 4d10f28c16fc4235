//! The vendor poll: one Mailprotector collection per run, with the service-list cache and the
//! walk sizes (and the `user_count` comparison) kept in the store between runs (so a restart, or a second `sync --once`, is warm).

use std::collections::BTreeMap;
use std::sync::Arc;

use super::error::JobError;
use super::job::{BoxFuture, Job, JobOutput, JobResult, RunContext};
use crate::config::MailprotectorConfig;
use crate::mailprotector::{CollectInput, MailprotectorClient, WalkStats, collect_usage};
use crate::store::Store;
use crate::upstream::StatsSnapshot;

/// The store key under which the last run's walk sizes are kept.
pub const WALK_STATS_KEY: &str = "mailprotector.walk_stats";

/// Polls Mailprotector and returns every customer's counts.
pub struct VendorJob {
    client: MailprotectorClient,
    config: Arc<MailprotectorConfig>,
    store: Store,
}

impl VendorJob {
    /// A job using `client` (whose rate budget it shares) and the count definitions in `config`.
    pub fn new(
        client: MailprotectorClient,
        config: Arc<MailprotectorConfig>,
        store: Store,
    ) -> VendorJob {
        VendorJob { client, config, store }
    }

    async fn collect(
        &self,
        ctx: &RunContext,
        client: &MailprotectorClient,
    ) -> Result<JobOutput, JobError> {
        let cache = self
            .store
            .load_service_cache()
            .await
            .map_err(JobError::store("read the service-list cache"))?;
        // A missing or unreadable hint only costs a slower walk.
        let walk_stats = self.store.get_meta::<WalkStats>(WALK_STATS_KEY).await.ok().flatten();
        let input = CollectInput {
            config: &self.config,
            cache: &cache,
            walk_stats,
            now: ctx.started_at,
            cancel: ctx.cancel.clone(),
        };
        let out = collect_usage(client, input).await?;
        // The new cache replaces the old one: not both held while it is written.
        drop(cache);
        // The cache and hints are advisory: a failure to keep them is logged, not fatal.
        if let Err(e) = self.store.save_service_cache(out.cache).await {
            tracing::warn!(
                "cannot keep the service-list cache (the next run will re-read lists): {e}"
            );
        }
        if let Err(e) = self.store.put_meta(WALK_STATS_KEY, &out.walk_stats).await {
            tracing::warn!("cannot keep the walk sizes: {e}");
        }
        tracing::info!(
            customers = out.customers.len(),
            requests = out.requests.total_requests(),
            services_fetched = out.services_fetched,
            walk = out.walk.as_str(),
            "mailprotector: every customer counted"
        );
        Ok(JobOutput::Vendor { customers: out.customers, counting: Some(out.counting) })
    }
}

impl Job for VendorJob {
    fn run(&self, ctx: RunContext) -> BoxFuture<'_, JobResult> {
        Box::pin(async move {
            let client = self.client.scoped();
            let outcome = self.collect(&ctx, &client).await;
            let stats = client.stats();
            JobResult { outcome, requests: prefixed(&stats), stats: vec![stats] }
        })
    }
}

/// Request counts keyed "<upstream> <endpoint>", e.g. "mailprotector GET /resellers/{id}/domains".
pub fn prefixed(stats: &StatsSnapshot) -> BTreeMap<String, u64> {
    stats.requests.iter().map(|(ep, n)| (format!("{} {ep}", stats.upstream), *n)).collect()
}
