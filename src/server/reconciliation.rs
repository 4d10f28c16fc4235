//! `GET /v1/reconciliation`: the latest stored reconciliation as JSON (rows + summary) or CSV
//! (`?format=csv`), filtered by `?status=` (comma-separated), `?account=` and `?product=`.
//! Also the mapping state that `/v1/customers` adds to each customer.

use std::collections::HashMap;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use serde_json::json;

use super::ApiState;
use super::errors::json_error;
use super::query::ApiQuery;
use crate::model::CustomerId;
use crate::reconcile::{self, CustomerMapping, Filter, Reconciliation};

/// The reconciliation routes, merged into the `/v1` API.
pub fn routes() -> Router<ApiState> {
    Router::new().route("/v1/reconciliation", get(reconciliation))
}

#[derive(Debug, Deserialize)]
struct ReconQuery {
    status: Option<String>,
    account: Option<String>,
    product: Option<String>,
    format: Option<String>,
}

fn bad_request(message: String) -> Response {
    json_error(StatusCode::BAD_REQUEST, message)
}

async fn reconciliation(
    State(api): State<ApiState>,
    ApiQuery(q): ApiQuery<ReconQuery>,
) -> Response {
    let statuses = match q.status.as_deref().map(Filter::parse_statuses).transpose() {
        Ok(s) => s.unwrap_or_default(),
        Err(e) => return bad_request(e.to_string()),
    };
    let csv = match q.format.as_deref().map(str::trim) {
        None | Some("") | Some("json") => false,
        Some("csv") => true,
        Some(other) => return bad_request(format!("unknown format {other:?}: use json or csv")),
    };
    let nonempty = |s: Option<String>| s.map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
    let filter = Filter { statuses, account: nonempty(q.account), product: nonempty(q.product) };
    let rec = match api.store.latest_reconciliation_shared().await {
        Ok(rec) => rec,
        Err(e) => {
            tracing::error!("store read failed: {e}");
            let body = Json(json!({ "error": e.to_string() }));
            return (StatusCode::SERVICE_UNAVAILABLE, body).into_response();
        }
    };
    // Filtering and rendering 10,000 rows is CPU work of tens of milliseconds: it runs on the
    // blocking pool so the single-threaded HTTP runtime keeps answering the probes meanwhile,
    // a few at a time (the gate), and JSON streams out in chunks instead of a buffer of
    // megabytes.
    let slot = match api.renders.enter("the reconciliation").await {
        Ok(slot) => slot,
        Err(busy) => return busy,
    };
    if !csv {
        let body = super::stream::blocking_body("the reconciliation", slot, move |w| {
            let report = reconcile::json_report(rec.as_deref(), &filter);
            super::stream::write_json(w, &report)
        });
        return ([(header::CONTENT_TYPE, "application/json")], body).into_response();
    }
    let rendered = tokio::task::spawn_blocking(move || {
        let rows = rec.as_ref().map(|r| filter.apply(&r.rows)).unwrap_or_default();
        let csv = reconcile::csv(rows.iter().copied());
        drop(slot);
        csv
    })
    .await;
    match rendered {
        Ok(body) => ([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], body).into_response(),
        Err(e) => {
            tracing::error!("rendering the reconciliation failed: {e}");
            let body = Json(json!({ "error": "rendering the reconciliation failed; see the log" }));
            (StatusCode::INTERNAL_SERVER_ERROR, body).into_response()
        }
    }
}

/// The latest reconciliation, for the mapping state `/v1/customers` adds to each customer;
/// `None` when none is stored or it cannot be read (the counts are still worth serving).
pub(super) async fn for_customers(api: &ApiState) -> Option<std::sync::Arc<Reconciliation>> {
    api.store.latest_reconciliation_shared().await.unwrap_or_else(|e| {
        tracing::warn!("cannot read the reconciliation for /v1/customers: {e}");
        None
    })
}

/// Each customer's mapping in `rec`, by customer id (borrowed, not copied).
pub(super) fn mappings_by_customer(
    rec: Option<&Reconciliation>,
) -> HashMap<CustomerId, &CustomerMapping> {
    rec.map(|r| r.customers.iter().map(|c| (c.customer, c)).collect()).unwrap_or_default()
}

/// Adds `mapping` (state, account) and `suggestions` to one customer's JSON.
pub(super) fn with_mapping(
    mut customer: serde_json::Value,
    mapping: Option<&CustomerMapping>,
) -> serde_json::Value {
    customer["mapping"] = match mapping {
        Some(m) => {
            json!({ "state": m.state, "account": m.account, "account_name": m.account_name })
        }
        None => serde_json::Value::Null,
    };
    customer["suggestions"] = json!(mapping.map(|m| m.suggestions.as_slice()).unwrap_or_default());
    customer
}
