//! `GET /v1/audit`: the write-back audit log, newest first (`?limit=`, default 50, at most
//! 1000; `?plan=` for one plan's). Read only: changes are applied from the command line, never
//! over HTTP.

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;

use super::ApiState;
use super::query::ApiQuery;
use crate::writeback::{AuditQuery, audit};

/// The audit route.
pub fn routes() -> Router<ApiState> {
    Router::new().route("/v1/audit", get(list))
}

#[derive(Debug, Deserialize)]
struct Query {
    limit: Option<usize>,
    plan: Option<u64>,
}

async fn list(State(api): State<ApiState>, ApiQuery(q): ApiQuery<Query>) -> Response {
    let query = AuditQuery { limit: q.limit.unwrap_or(50).clamp(1, 1000), plan: q.plan };
    match api.store.audit(query).await {
        Ok(entries) => Json(audit::json(&entries)).into_response(),
        Err(e) => {
            tracing::error!("store read failed: {e}");
            super::errors::json_error(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
        }
    }
}
