//! `GET /v1/plan`: the write-back plan, read-only — the latest, or `?id=N` — as JSON (the plan
//! with its `state`) or CSV of its changes (`?format=csv`), filtered by `?status=`
//! (comma-separated) and `?account=`. Nothing is ever applied over HTTP.

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;

use super::ApiState;
use super::errors::{json_error, json_error_hint};
use super::query::ApiQuery;
use crate::reconcile::Filter;
use crate::writeback::view::{self, PlanFilter};

/// The plan route, merged into the `/v1` API.
pub fn routes() -> Router<ApiState> {
    Router::new().route("/v1/plan", get(plan))
}

#[derive(Debug, Deserialize)]
struct PlanQuery {
    status: Option<String>,
    account: Option<String>,
    id: Option<u64>,
    format: Option<String>,
}

async fn plan(State(api): State<ApiState>, ApiQuery(q): ApiQuery<PlanQuery>) -> Response {
    let statuses = match q.status.as_deref().map(Filter::parse_statuses).transpose() {
        Ok(s) => s.unwrap_or_default(),
        Err(e) => return json_error(StatusCode::BAD_REQUEST, e.to_string()),
    };
    let csv = match q.format.as_deref().map(str::trim) {
        None | Some("") | Some("json") => false,
        Some("csv") => true,
        Some(other) => {
            let message = format!("unknown format {other:?}: use json or csv");
            return json_error(StatusCode::BAD_REQUEST, message);
        }
    };
    let account = q.account.map(|a| a.trim().to_string()).filter(|a| !a.is_empty());
    let filter = PlanFilter { statuses, account };
    let read = match q.id {
        Some(id) => api.store.plan(id).await,
        None => api.store.latest_plan().await,
    };
    let plan = match read {
        Ok(plan) => plan,
        Err(e) => {
            tracing::error!("store read failed: {e}");
            return json_error(StatusCode::SERVICE_UNAVAILABLE, e.to_string());
        }
    };
    if let (Some(id), None) = (q.id, &plan) {
        return json_error_hint(
            StatusCode::NOT_FOUND,
            format!("there is no plan {id}"),
            "plans are numbered from 1 as they are built; GET /v1/plan without id shows the latest",
        );
    }
    if csv {
        let body = view::csv(plan.as_ref(), &filter);
        return ([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], body).into_response();
    }
    axum::Json(view::json(plan.as_ref(), &filter)).into_response()
}
