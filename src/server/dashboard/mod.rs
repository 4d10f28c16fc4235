//! `GET /`: the HTML dashboard for people. Server-rendered, no external assets (inline CSS
//! under a per-response CSP nonce, inline SVG, no script), refreshes itself every minute.
//!
//! It reads what the JSON endpoints serve — the stored reconciliation and its summary, the
//! health state, the runs and the count history — and never computes anything differently.

mod html;
mod model;
mod render;
mod sections;
mod sparkline;
mod writeback;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use chrono::Utc;
use futures_util::StreamExt as _;
use serde::Deserialize;

use super::ServerState;
use crate::model::CustomerId;
use crate::reconcile::Reconciliation;
use crate::store::{HistoryPoint, Store};

/// How many recent runs the page lists.
const RUNS_SHOWN: usize = 10;

/// History reads in flight at once (each is a short read transaction off the runtime).
const HISTORY_READS_IN_FLIGHT: usize = 4;

/// The query string the filter form submits.
#[derive(Debug, Deserialize)]
pub struct DashboardQuery {
    /// A status name (or a comma-separated list, as `/v1/reconciliation` takes); empty = all.
    pub status: Option<String>,
    /// A PSA account id or name (ignoring case); empty = all.
    pub account: Option<String>,
}

/// The Content-Security-Policy of the page: nothing may load from anywhere, the one inline
/// stylesheet is allowed by its nonce, the form may only submit to this server.
pub fn content_security_policy(nonce: &str) -> String {
    format!(
        "default-src 'none'; style-src 'nonce-{nonce}'; img-src data:; form-action 'self'; \
         base-uri 'none'; frame-ancestors 'none'"
    )
}

/// The handler of `GET /`.
pub async fn page(
    State(state): State<ServerState>,
    super::query::ApiQuery(q): super::query::ApiQuery<DashboardQuery>,
) -> Response {
    let now = Utc::now();
    let filters = model::Filters::parse(q.status.as_deref(), q.account.as_deref());
    let sources = model::sources(&state.health.snapshot(), now);
    let mut error = None;
    let mut plan = None;
    let mut audit = Vec::new();
    let (rec, runs): (Option<Arc<Reconciliation>>, Vec<crate::model::RunRecord>) = match &state.api
    {
        None => {
            error = Some("this server has no store, so there is no reconciliation to show".into());
            (None, Vec::new())
        }
        Some(api) => {
            // Shared, not copied: at 10,000 customers the reconciliation is tens of megabytes.
            let rec = api.store.latest_reconciliation_shared().await.unwrap_or_else(|e| {
                tracing::error!("dashboard: cannot read the reconciliation: {e}");
                error = Some(e.to_string());
                None
            });
            let runs = api.store.recent_runs(RUNS_SHOWN, None).await.unwrap_or_else(|e| {
                tracing::warn!("dashboard: cannot read the recent runs: {e}");
                Vec::new()
            });
            plan = api.store.latest_plan().await.unwrap_or_else(|e| {
                tracing::warn!("dashboard: cannot read the latest write-back plan: {e}");
                None
            });
            let q = crate::writeback::AuditQuery { limit: writeback::AUDIT_SHOWN, plan: None };
            audit = api.store.audit(q).await.unwrap_or_else(|e| {
                tracing::warn!("dashboard: cannot read the audit log: {e}");
                Vec::new()
            });
            (rec, runs)
        }
    };

    let (shown, matching) = match &rec {
        Some(r) => {
            let passing = filters.filter.apply(&r.rows);
            let matching = passing.len();
            let mut ordered = model::order_rows(passing);
            ordered.truncate(model::MAX_ROWS);
            (ordered, matching)
        }
        None => (Vec::new(), 0),
    };
    let histories = match &state.api {
        Some(api) => {
            let pairs = shown.iter().flat_map(|r| model::history_pairs(r)).collect();
            read_histories(&api.store, pairs).await
        }
        None => BTreeMap::new(),
    };
    let rows = shown
        .into_iter()
        .map(|r| {
            let series: Vec<Vec<HistoryPoint>> =
                model::history_pairs(r).iter().filter_map(|p| histories.get(p).cloned()).collect();
            (r, sparkline::sum_histories(&series))
        })
        .collect();
    let view = model::View {
        now,
        filters: &filters,
        rec: rec.as_deref(),
        rows,
        matching,
        sources,
        runs: &runs,
        plan: plan.as_ref(),
        audit: &audit,
        error: error.clone(),
    };
    let nonce = base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 16]>());
    let body = render::page(&view, &nonce);
    let code = if error.is_some() {
        StatusCode::SERVICE_UNAVAILABLE
    } else if filters.error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let csp = HeaderValue::from_str(&content_security_policy(&nonce))
        .unwrap_or_else(|_| HeaderValue::from_static("default-src 'none'"));
    let headers = [
        (header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8")),
        (header::CONTENT_SECURITY_POLICY, csp),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
        (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
        (HeaderName::from_static("referrer-policy"), HeaderValue::from_static("no-referrer")),
    ];
    (code, headers, body).into_response()
}

/// The count history of each distinct pair; a pair whose read fails is left out (its row
/// draws "no count history" rather than failing the whole page).
async fn read_histories(
    store: &Store,
    mut pairs: Vec<(CustomerId, String)>,
) -> BTreeMap<(CustomerId, String), Vec<HistoryPoint>> {
    pairs.sort();
    pairs.dedup();
    futures_util::stream::iter(pairs)
        .map(|(customer, product)| async move {
            match store.history(customer, &product).await {
                Ok(points) => Some(((customer, product), points)),
                Err(e) => {
                    tracing::warn!(
                        "dashboard: cannot read the history of {customer}/{product}: {e}"
                    );
                    None
                }
            }
        })
        .buffer_unordered(HISTORY_READS_IN_FLIGHT)
        .filter_map(std::future::ready)
        .collect()
        .await
}
