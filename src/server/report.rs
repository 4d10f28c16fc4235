//! `GET /v1/report?since=&until=&format=`: the period report (see [`crate::report`]) as JSON
//! (default), Markdown (`format=md`) or CSV (`format=csv`). `since` is required; `until`
//! defaults to now; both take YYYY-MM-DD or an RFC 3339 time.

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;

use super::ApiState;
use super::errors::json_error;
use super::query::ApiQuery;
use crate::report::{self, Format};

/// The report route.
pub fn routes() -> Router<ApiState> {
    Router::new().route("/v1/report", get(period))
}

#[derive(Debug, Deserialize)]
struct Query {
    since: Option<String>,
    until: Option<String>,
    format: Option<String>,
}

async fn period(State(api): State<ApiState>, ApiQuery(q): ApiQuery<Query>) -> Response {
    let bad = |m: String| json_error(StatusCode::BAD_REQUEST, m);
    let Some(since) = q.since.as_deref().filter(|s| !s.trim().is_empty()) else {
        return bad("since is required: the period's start, e.g. since=2026-11-01".into());
    };
    let since = match report::parse_date(since) {
        Ok(t) => t,
        Err(e) => return bad(format!("since: {e}")),
    };
    let until = match q.until.as_deref().filter(|s| !s.trim().is_empty()) {
        None => chrono::Utc::now(),
        Some(u) => match report::parse_date(u) {
            Ok(t) => t,
            Err(e) => return bad(format!("until: {e}")),
        },
    };
    if until <= since {
        return bad("until is not after since: the period would be empty".into());
    }
    let format = match q.format.as_deref().filter(|s| !s.trim().is_empty()) {
        None => Format::Json,
        Some(f) => match Format::parse(f) {
            Some(f) => f,
            None => return bad(format!("unknown format {f:?}: use json, md or csv")),
        },
    };
    let r = match report::load(&api.store, since, until).await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!("store read failed: {e}");
            return json_error(StatusCode::SERVICE_UNAVAILABLE, e.to_string());
        }
    };
    match format {
        Format::Json => axum::Json(r).into_response(),
        Format::Md => {
            ([(header::CONTENT_TYPE, "text/markdown; charset=utf-8")], report::markdown(&r))
                .into_response()
        }
        Format::Csv => {
            ([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], report::csv(&r)).into_response()
        }
    }
}
