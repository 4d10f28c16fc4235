//! The billing poll: one read of the configured billing source per run. The engine records it
//! like a vendor run: the run record and billed snapshot in one transaction on success, only
//! a failed run record otherwise (the previous billed snapshot stays in use).

use std::sync::Arc;

use super::error::JobError;
use super::job::{BoxFuture, Job, JobOutput, JobResult, RunContext};
use super::vendor::prefixed;
use crate::billing::BilledSource;

/// Reads every account and billed line from a [`BilledSource`].
pub struct BillingJob {
    source: Arc<dyn BilledSource>,
}

impl BillingJob {
    /// A job reading `source` (whose rate budget, if any, it shares).
    pub fn new(source: Arc<dyn BilledSource>) -> BillingJob {
        BillingJob { source }
    }
}

impl Job for BillingJob {
    fn run(&self, ctx: RunContext) -> BoxFuture<'_, JobResult> {
        Box::pin(async move {
            let report = self.source.fetch(ctx.started_at, &ctx.cancel).await;
            let outcome = match report.outcome {
                Ok(b) => {
                    tracing::info!(
                        source = self.source.name(),
                        accounts = b.accounts.len(),
                        lines = b.lines.len(),
                        counted = b.lines.iter().filter(|l| l.counted).count(),
                        "billing: every billed line read"
                    );
                    Ok(JobOutput::Billing { accounts: b.accounts, lines: b.lines })
                }
                // Cancelled stays cancelled; every other failure keeps its error.
                Err(e) => Err(JobError::from(e)),
            };
            let mut requests = std::collections::BTreeMap::new();
            for s in &report.stats {
                requests.extend(prefixed(s));
            }
            JobResult { outcome, requests, stats: report.stats }
        })
    }
}
