//! The `/v1` API beyond health: runs, count history, customers' latest counts, and
//! `POST /v1/sync`. Reads go through the store (off the runtime); nothing calls an upstream.

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::json;

use super::ApiState;
use super::query::ApiQuery;
use crate::model::{RunKind, RunRecord};
use crate::sync::TriggerOutcome;

/// The `/v1` routes (health is served elsewhere).
pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/v1/runs", get(runs))
        .route("/v1/history", get(history))
        .route("/v1/customers", get(customers))
        .route("/v1/sync", post(sync_now))
        .merge(super::reconciliation::routes())
        .merge(super::plan::routes())
        .merge(super::audit::routes())
        .merge(super::report::routes())
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    super::errors::json_error(status, message)
}

fn store_error(e: crate::store::StoreError) -> Response {
    tracing::error!("store read failed: {e}");
    error(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
}

#[derive(Debug, Deserialize)]
struct RunsQuery {
    limit: Option<usize>,
    kind: Option<String>,
}

fn run_json(r: &RunRecord) -> serde_json::Value {
    let duration = r.finished_at.map(|f| (f - r.started_at).num_milliseconds() as f64 / 1000.0);
    let mut v = serde_json::to_value(r).unwrap_or_default();
    v["duration_seconds"] = json!(duration);
    v["requests_total"] = json!(r.requests.values().sum::<u64>());
    v
}

async fn runs(State(api): State<ApiState>, ApiQuery(q): ApiQuery<RunsQuery>) -> Response {
    let kind = match q.kind.as_deref() {
        None => None,
        Some("vendor") => Some(RunKind::Vendor),
        Some("billing") => Some(RunKind::Billing),
        Some("push") => Some(RunKind::Push),
        Some(other) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("unknown kind {other:?}: use vendor, billing or push"),
            );
        }
    };
    let limit = q.limit.unwrap_or(50).clamp(1, 1000);
    match api.store.recent_runs(limit, kind).await {
        Ok(runs) => {
            Json(json!({ "runs": runs.iter().map(run_json).collect::<Vec<_>>() })).into_response()
        }
        Err(e) => store_error(e),
    }
}

#[derive(Debug, Deserialize)]
struct HistoryQuery {
    customer: Option<String>,
    product: Option<String>,
}

async fn history(State(api): State<ApiState>, ApiQuery(q): ApiQuery<HistoryQuery>) -> Response {
    let Some(customer) = q.customer.as_deref().and_then(|c| c.trim().parse::<u64>().ok()) else {
        return error(
            StatusCode::BAD_REQUEST,
            "give the Mailprotector customer id as ?customer=<number>&product=<name>",
        );
    };
    let Some(product) = q.product.filter(|p| !p.trim().is_empty()) else {
        return error(
            StatusCode::BAD_REQUEST,
            "give the product as ?product=<name>, e.g. ?customer=329&product=CloudFilter",
        );
    };
    let points = match api.store.history(customer, &product).await {
        Ok(p) => p,
        Err(e) => return store_error(e),
    };
    let renames = match api.store.renames(customer).await {
        Ok(r) => r,
        Err(e) => return store_error(e),
    };
    Json(json!({
        "customer": customer,
        "product": product,
        "points": points,
        "renames": renames,
    }))
    .into_response()
}

async fn customers(State(api): State<ApiState>) -> Response {
    // The Gradient push's view of each customer, as of the last push (absent without one).
    let push: Option<crate::gradient::PushReport> =
        api.store.get_meta(crate::gradient::LAST_PUSH_KEY).await.ok().flatten();
    match api.store.latest_usage_snapshot().await {
        Ok(Some(snap)) => {
            // Mapping state and suggestions come from the latest reconciliation.
            let rec = super::reconciliation::for_customers(&api).await;
            // Assembling 10,000 customers is CPU work: off the single-threaded HTTP runtime,
            // a few at a time, so the probes keep answering meanwhile.
            let slot = match api.renders.enter("the customers").await {
                Ok(slot) => slot,
                Err(busy) => return busy,
            };
            let body = tokio::task::spawn_blocking(move || {
                let mappings = super::reconciliation::mappings_by_customer(&rec);
                let body = customers_body(&snap, &mappings, push.as_ref());
                let bytes = serde_json::to_vec(&body).unwrap_or_default();
                drop(slot);
                bytes
            })
            .await;
            match body {
                Ok(bytes) => ([(header::CONTENT_TYPE, "application/json")], bytes).into_response(),
                Err(e) => {
                    tracing::error!("rendering the customers failed: {e}");
                    let body = json!({ "error": "rendering the customers failed; see the log" });
                    (StatusCode::INTERNAL_SERVER_ERROR, Json(body)).into_response()
                }
            }
        }
        Ok(None) => Json(json!({
            "run_id": null,
            "observed_at": null,
            "customers": [],
            "note": "no vendor run has completed yet; POST /v1/sync to start one",
        }))
        .into_response(),
        Err(e) => store_error(e),
    }
}

/// The `/v1/customers` body: every customer of `snap` with its mapping state and, after a
/// push, what Synthesize had mapped.
fn customers_body(
    snap: &crate::model::UsageSnapshot,
    mappings: &std::collections::HashMap<
        crate::model::CustomerId,
        &crate::reconcile::CustomerMapping,
    >,
    push: Option<&crate::gradient::PushReport>,
) -> serde_json::Value {
    let customers: Vec<serde_json::Value> = snap
        .customers
        .iter()
        .map(|c| {
            let v = serde_json::to_value(c).unwrap_or_default();
            super::reconciliation::with_mapping(v, mappings.get(&c.id).copied())
        })
        .collect();
    let unmapped =
        mappings.values().filter(|m| m.state == crate::reconcile::MappingState::Unmapped).count();
    let mut body = json!({
        "run_id": snap.run_id,
        "observed_at": snap.observed_at,
        "customers": customers,
        "totals": snap.totals(),
        "unmapped": unmapped,
    });
    if let Some(report) = push {
        with_synthesize(&mut body, report);
    }
    body
}

/// Adds `synthesize` (mapped as of the last push, and its pairs by outcome) to each customer,
/// and `synthesize_push` (which push that was, and which vendor snapshot it sent) at the top.
fn with_synthesize(body: &mut serde_json::Value, report: &crate::gradient::PushReport) {
    let by_customer = report.customers();
    if let Some(list) = body.get_mut("customers").and_then(|c| c.as_array_mut()) {
        for c in list {
            let id = c.get("id").and_then(serde_json::Value::as_u64);
            let m = id.and_then(|id| by_customer.get(&id)).copied().unwrap_or_default();
            c["synthesize"] = json!({
                "mapped": m.mapped,
                "accepted": m.pairs.accepted,
                "unmapped": m.pairs.unmapped,
                "refused": m.pairs.refused,
                "failed": m.pairs.failed,
            });
        }
    }
    body["synthesize_push"] = json!({
        "run_id": report.run_id,
        "finished_at": report.finished_at,
        "dry_run": report.dry_run,
        "snapshot_run": report.snapshot_run,
        "snapshot_observed_at": report.snapshot_observed_at,
        "integration_status": report.integration_status,
        "summary": report.summary(),
    });
}

async fn sync_now(State(api): State<ApiState>) -> Response {
    let mut started = Vec::new();
    let mut running = Vec::new();
    for (i, kind) in api.sync_kinds.iter().enumerate() {
        match api.engine.trigger_now(*kind).await {
            TriggerOutcome::Started => started.push(kind.as_str()),
            // A manual trigger ignores backoff and readiness is judged once the run starts,
            // so a skip here means the job is running.
            TriggerOutcome::Skipped(_) => {
                running.push(kind.as_str());
                if i == 0 {
                    return (
                        StatusCode::CONFLICT,
                        Json(json!({
                            "error": format!("a {kind} run is already running; try again when it finishes (see /v1/runs)"),
                            "running": running,
                        })),
                    )
                        .into_response();
                }
            }
            TriggerOutcome::NotConfigured => {}
            TriggerOutcome::ShuttingDown => {
                return error(StatusCode::SERVICE_UNAVAILABLE, "mpsync is shutting down");
            }
        }
    }
    (StatusCode::ACCEPTED, Json(json!({ "started": started, "already_running": running })))
        .into_response()
}

#[cfg(test)]
mod synthesize_tests {

    use super::*;
    use crate::gradient::{PairOutcome, PairResult, PushReport};

    #[test]
    fn customers_carry_their_synthesize_mapping_as_of_the_last_push() {
        let pair = |c: u64, outcome, detail: Option<&str>| PairResult {
            customer_id: c,
            product: "CloudFilter".into(),
            unit_count: 2,
            outcome,
            detail: detail.map(Into::into),
        };
        let report = PushReport::for_test(
            4,
            3,
            vec![
                pair(1, PairOutcome::Accepted, None),
                pair(2, PairOutcome::Unmapped, Some("No account map found with id: 2")),
            ],
        );
        let mut body = json!({"customers": [{"id": 1}, {"id": 2}, {"id": 3}]});
        with_synthesize(&mut body, &report);
        let c = &body["customers"];
        assert_eq!(c[0]["synthesize"]["mapped"], json!(true));
        assert_eq!(c[1]["synthesize"]["mapped"], json!(false));
        assert_eq!(c[1]["synthesize"]["unmapped"], json!(1));
        assert_eq!(c[2]["synthesize"]["mapped"], json!(null), "not in the push: unknown");
        assert_eq!(body["synthesize_push"]["run_id"], json!(4));
        assert_eq!(body["synthesize_push"]["snapshot_run"], json!(3), "which snapshot it sent");
    }
}
