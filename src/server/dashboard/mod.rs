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
    /// Where the page of rows starts: the "next page" link's cursor; empty = the first page.
    pub cursor: Option<String>,
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
    let mut next_cursor = None;
    let (rec, runs): (Option<(Reconciliation, usize)>, Vec<crate::model::RunRecord>) = match &state
        .api
    {
        None => {
            error = Some("this server has no store, so there is no reconciliation to show".into());
            (None, Vec::new())
        }
        Some(api) => {
            // One page of rows (with evidence, for the history charts), the unmapped
            // customers' rows and the customers' mapping states: never the whole set.
            let cursor = q.cursor.as_deref().map(str::trim).filter(|c| !c.is_empty());
            let cursor = match cursor.map(PageCursor::parse).transpose() {
                Ok(c) => c,
                Err(e) => {
                    error = Some(e.to_string());
                    None
                }
            };
            let rec =
                page_of(api, &filters.filter, cursor, &mut next_cursor).await.unwrap_or_else(|e| {
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
        Some((r, on_page)) => {
            let ordered = model::order_rows(r.rows[..*on_page].iter().collect());
            (ordered, model::matching(&r.summary, &filters.filter))
        }
        None => (Vec::new(), None),
    };
    let rec = rec.as_ref().map(|(r, _)| r);
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
        rec,
        rows,
        matching,
        next_cursor,
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

/// Where a page of the dashboard's rows starts: rows are shown by status rank (those needing
/// action first), then by key, so the cursor names the status and the last key shown.
#[derive(Debug, Clone, PartialEq)]
struct PageCursor {
    status: crate::reconcile::Status,
    after: crate::store::Cursor,
}

impl PageCursor {
    fn parse(s: &str) -> Result<PageCursor, crate::store::BadCursor> {
        let bad = || crate::store::BadCursor { given: s.chars().take(80).collect() };
        let (status, key) = s.split_once('.').ok_or_else(bad)?;
        let status = crate::reconcile::Status::parse(status).ok_or_else(bad)?;
        Ok(PageCursor { status, after: crate::store::Cursor::parse(key)? })
    }

    fn encode(&self) -> String {
        format!("{}.{}", self.status, self.after.encode())
    }
}

/// The latest reconciliation as the page needs it: its head, one page of the rows passing
/// `filter` (from `cursor`; the first of the returned rows, counted by the `usize`), then the
/// unmapped customers' rows, and the customers; `next` gets the next page's cursor. The page
/// reads status by status in rank order, so the rows needing action come first.
async fn page_of(
    api: &crate::server::ApiState,
    filter: &crate::reconcile::Filter,
    cursor: Option<PageCursor>,
    next: &mut Option<String>,
) -> Result<Option<(Reconciliation, usize)>, crate::store::StoreError> {
    let Some(head) = api.store.reconciliation_head().await? else { return Ok(None) };
    let mut rows = Vec::new();
    let ranked = model::statuses_by_rank();
    let start = cursor.as_ref().and_then(|c| ranked.iter().position(|s| *s == c.status));
    for (i, status) in ranked.iter().enumerate().skip(start.unwrap_or(0)) {
        if !filter.statuses.is_empty() && !filter.statuses.contains(status) {
            continue;
        }
        if head.summary.by_status.get(status.as_str()).copied().unwrap_or(0) == 0 {
            continue;
        }
        let after = match (&cursor, start) {
            (Some(c), Some(s)) if s == i => Some(c.after.clone()),
            _ => None,
        };
        let want = model::MAX_ROWS - rows.len();
        let only = crate::reconcile::Filter { statuses: vec![*status], ..filter.clone() };
        let page = api.store.reconciliation_page(only, after, want, true).await?;
        rows.extend(page.rows);
        if let Some(after) = page.next {
            *next = Some(PageCursor { status: *status, after }.encode());
            break;
        }
        if rows.len() == model::MAX_ROWS {
            // Full exactly at the end of this status: the next page starts after it.
            if let Some(last) = rows.last() {
                let after = crate::store::Cursor::after_row(last);
                *next = Some(PageCursor { status: *status, after }.encode());
            }
            break;
        }
    }
    let on_page = rows.len();
    let unmapped = crate::reconcile::Filter {
        statuses: vec![crate::reconcile::Status::UnmappedCustomer],
        ..Default::default()
    };
    rows.extend(api.store.reconciliation_rows(unmapped, true).await?);
    let customers = api.store.reconciliation_customers().await?;
    let head = crate::reconcile::ReconciliationHead::clone(&head);
    let rec = Reconciliation {
        computed_at: head.computed_at,
        vendor_run: head.vendor_run,
        billing_run: head.billing_run,
        rows,
        summary: head.summary,
        customers,
    };
    Ok(Some((rec, on_page)))
}
