//! The reconciliation step: read the latest complete snapshots and the runs' outcomes from the
//! store, compute (pure, in `crate::reconcile`), and keep the result; then build the
//! write-back plan from it (pure, in `crate::writeback::plan`) and keep that. Run after every
//! vendor or billing run, by the daemon and by `sync --once`.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::config::ReconcileConfig;
use crate::config::mapping::Mapping;
use crate::model::{RunKind, RunOutcome};
use crate::reconcile::{self, Filter, Inputs, ReconciliationHead, Settings, SourceStatus};
use crate::store::{PlanSaved, Store, StoreError};
use crate::writeback::{self, PlanSettings};

/// Computes the reconciliation as of `now` from what the store holds and saves it, then the
/// plan built from it (`plan`: the config's billing source and `[write_back]` cap); the result
/// is the reconciliation the store now serves.
pub async fn recompute(
    store: &Store,
    mapping: &Mapping,
    settings: &ReconcileConfig,
    plan: &PlanSettings,
    now: DateTime<Utc>,
) -> Result<Arc<ReconciliationHead>, StoreError> {
    let usage = store.latest_usage_snapshot().await?;
    let billed = store.latest_billed_snapshot().await?;
    let vendor = source_status(store, RunKind::Vendor).await?;
    let billing = source_status(store, RunKind::Billing).await?;
    let settings = Settings { max_age: settings.max_age, debounce_runs: settings.debounce_runs };
    let owned_mapping = mapping.clone();
    let vendor_run = usage.as_ref().map(|u| u.run_id);
    // The previous computation's time: the money of open discrepancies accrues over the span
    // since, unless it is longer than max_age (the daemon was down).
    let previous_at = store.reconciliation_head().await?.map(|h| h.computed_at);
    // Row by row into one write transaction: each row's previous state is read from the
    // table as its key comes up, and nothing holds the whole result (at 10,000 customers,
    // tens of thousands of rows with megabytes of evidence).
    let head = store
        .replace_reconciliation(vendor_run, now, move |prior, sink| {
            let inputs = Inputs {
                usage: usage.as_ref(),
                vendor,
                billed: billed.as_ref(),
                billing,
                mapping: &owned_mapping,
                settings,
                now,
                previous_at,
                previous: None,
            };
            reconcile::compute_each(&inputs, prior, sink)
        })
        .await?;
    // The planner reads only the rows it may act on, with their evidence.
    let statuses = writeback::plan::PLANNED_STATUSES.to_vec();
    let rows = store.reconciliation_rows(Filter { statuses, ..Filter::default() }, true).await?;
    let built = writeback::plan::build_from(
        &head,
        &rows,
        mapping,
        plan.billing,
        plan.writable,
        plan.max_changes_per_apply,
        now,
    );
    drop(rows);
    match store.save_plan(built).await? {
        PlanSaved::New { plan, superseded: Some(old) } => tracing::info!(
            "plan {} replaces plan {old}: {} (a newer reconciliation changed what to do)",
            plan.id,
            counts(&plan)
        ),
        PlanSaved::New { plan, superseded: None } => {
            tracing::info!("plan {} built: {}", plan.id, counts(&plan));
        }
        PlanSaved::Same { plan } => {
            tracing::debug!("plan {} still current: the same {}", plan.id, counts(&plan));
        }
    }
    Ok(head)
}

/// "3 changes, 1 not planned, 0 manual steps".
fn counts(plan: &writeback::Plan) -> String {
    format!(
        "{} changes, {} not planned, {} manual steps",
        plan.changes.len(),
        plan.not_planned.len(),
        plan.manual.len()
    )
}

/// Whether the latest finished run of `kind` failed, and why. A run still going says nothing
/// yet, so the one before it counts.
async fn source_status(store: &Store, kind: RunKind) -> Result<SourceStatus, StoreError> {
    let runs = store.recent_runs(8, Some(kind)).await?;
    let Some(last) = runs.iter().find(|r| r.outcome != RunOutcome::Running) else {
        return Ok(SourceStatus::default());
    };
    let failed = matches!(last.outcome, RunOutcome::Failed | RunOutcome::Aborted);
    let error = match last.outcome {
        RunOutcome::Aborted => {
            Some(format!("run {} was aborted (the process stopped during it)", last.id))
        }
        _ => last.error.clone(),
    };
    Ok(SourceStatus { last_run_failed: failed, last_error: if failed { error } else { None } })
}
