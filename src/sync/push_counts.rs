//! Posting the counts of one push, `max_in_flight` at a time, and recording each pair's
//! outcome: accepted, unmapped (404, normal), refused (another 4xx for that one count: the
//! rest goes on) or failed. A fatal answer — 401, or a 403, which Gradient documents as its
//! anomaly detection — stops the push at once without retrying, and the run fails so the
//! engine's failure backoff spaces out the next attempt.

use std::collections::BTreeMap;

use futures_util::{StreamExt, stream};

use super::error::{CountFailure, JobError, PushError};
use super::job::RunContext;
use crate::gradient::{
    CountOutcome, GradientClient, IntegrationStatus, PairOutcome, PairResult, PlannedCount,
};

/// Consecutive failed count posts after which the push stops (Gradient is down).
const MAX_CONSECUTIVE_FAILURES: u32 = 25;

/// Posts `counts` (service ids by name in `ids`) and records each outcome in `pairs` (same
/// order). `status` is the integration status read at the start, named in a 403's message.
pub(super) async fn post_counts(
    ctx: &RunContext,
    client: &GradientClient,
    status: &IntegrationStatus,
    counts: &[PlannedCount],
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
        .map(|p| post_one(client.clone(), p, status.clone()))
        .buffer_unordered(client.concurrency());
    let mut consecutive = 0u32;
    let mut stop: Option<CountFailure> = None;
    while let Some((i, res)) = tokio::select! {
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
            Ok(CountOutcome::Refused { status, message }) => {
                p.outcome = PairOutcome::Refused;
                p.detail = Some(format!("{status}: {message}"));
                consecutive = 0;
            }
            Err(why) => {
                p.outcome = PairOutcome::Failed;
                p.detail = Some(why.to_string());
                consecutive += 1;
                if why.is_fatal() || consecutive >= MAX_CONSECUTIVE_FAILURES {
                    stop = Some(why);
                    break;
                }
            }
        }
    }
    // Dropping the stream abandons the posts still in flight: nothing more is sent.
    drop(results);
    if let Some(why) = stop {
        for p in pairs.iter_mut().filter(|p| p.outcome == PairOutcome::Planned) {
            p.outcome = PairOutcome::Failed;
            p.detail = Some("not sent: the push stopped".into());
        }
        return Err(PushError::Stopped(why).into());
    }
    let refused: Vec<&PairResult> =
        pairs.iter().filter(|p| p.outcome == PairOutcome::Refused).collect();
    if let Some(first) = refused.first() {
        tracing::warn!(
            "gradient: {} of {} counts were refused by Gradient and the others sent; first: \
             customer {} {} = {}: {}",
            refused.len(),
            pairs.len(),
            first.customer_id,
            first.product,
            first.unit_count,
            first.detail.as_deref().unwrap_or("refused")
        );
    }
    let failed: Vec<&PairResult> =
        pairs.iter().filter(|p| p.outcome == PairOutcome::Failed).collect();
    if let Some(first) = failed.first() {
        return Err(PushError::NotAccepted {
            failed: failed.len(),
            total: pairs.len(),
            customer: first.customer_id,
            product: first.product.clone(),
            detail: first.detail.clone().unwrap_or_else(|| "failed".to_owned()),
        }
        .into());
    }
    Ok(())
}

/// One count to post, owned (the futures outlive the borrow of the plan).
struct Post {
    index: usize,
    service: Option<String>,
    product: String,
    account: String,
    units: u64,
}

/// Posts one count: its index, and the outcome or why it failed.
async fn post_one(
    client: GradientClient,
    p: Post,
    status: IntegrationStatus,
) -> (usize, Result<CountOutcome, CountFailure>) {
    let Some(service) = p.service else {
        return (p.index, Err(CountFailure::MissingService { product: p.product }));
    };
    let posted = client.post_count(&service, &p.account, p.units).await;
    (p.index, posted.map_err(|e| e.with_status(&status).into()))
}
