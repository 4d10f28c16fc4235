//! `GET /v1/reconciliation`: the latest stored reconciliation as JSON, one page at a time
//! (`?limit=`, default 500, and `?cursor=` from the previous answer's `next_cursor`; rows
//! without their evidence unless `?evidence=true`), or as CSV of every matching row streamed
//! from the store (`?format=csv`); filtered by `?status=` (comma-separated), `?account=` and
//! `?product=`.
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
use crate::reconcile::{self, CustomerMapping, Filter};
use crate::store::{Cursor, RowPage};

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
    limit: Option<String>,
    cursor: Option<String>,
    evidence: Option<String>,
}

/// Rows per page when `limit` is not given.
pub const DEFAULT_LIMIT: usize = 500;
/// The largest `limit` accepted.
pub const MAX_LIMIT: usize = 5000;

fn bad_request(message: String) -> Response {
    json_error(StatusCode::BAD_REQUEST, message)
}

fn store_failed(e: crate::store::StoreError) -> Response {
    tracing::error!("store read failed: {e}");
    let body = Json(json!({ "error": e.to_string() }));
    (StatusCode::SERVICE_UNAVAILABLE, body).into_response()
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
    let limit = match q.limit.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => DEFAULT_LIMIT,
        Some(l) => match l.parse::<usize>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
            _ => {
                return bad_request(format!(
                    "limit {l:?} is not a number of rows from 1 to {MAX_LIMIT}"
                ));
            }
        },
    };
    let cursor = match q.cursor.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => None,
        Some(c) => match Cursor::parse(c) {
            Ok(c) => Some(c),
            Err(e) => return bad_request(e.to_string()),
        },
    };
    let evidence = match q.evidence.as_deref().map(str::trim) {
        None | Some("") | Some("false") | Some("0") => false,
        Some("true") | Some("1") => true,
        Some(other) => return bad_request(format!("evidence {other:?}: use true or false")),
    };
    let nonempty = |s: Option<String>| s.map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
    let filter = Filter { statuses, account: nonempty(q.account), product: nonempty(q.product) };
    let head = match api.store.reconciliation_head().await {
        Ok(head) => head,
        Err(e) => return store_failed(e),
    };
    if csv {
        // Every matching row, read and written one at a time on the blocking pool (behind
        // a render slot): the answer is megabytes at 10,000 customers, the memory one row.
        let slot = match api.renders.enter("the reconciliation").await {
            Ok(slot) => slot,
            Err(busy) => return busy,
        };
        let store = api.store.clone();
        let vendor_run = head.as_ref().and_then(|h| h.vendor_run);
        let body = super::stream::blocking_body("the reconciliation as CSV", slot, move |w| {
            w.write_all(reconcile::csv_header().as_bytes())?;
            let mut failed = None;
            store
                .each_reconciliation_row(&filter, cursor.as_ref(), false, &mut |row| match w
                    .write_all(reconcile::csv_line(&row, vendor_run).as_bytes())
                {
                    Ok(()) => true,
                    Err(e) => {
                        failed = Some(e);
                        false
                    }
                })
                .map_err(std::io::Error::other)?;
            failed.map_or(Ok(()), Err)
        });
        return ([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], body).into_response();
    }
    // A page is at most `limit` rows, read from the store by key on the blocking pool.
    let page = match &head {
        None => RowPage { rows: Vec::new(), next: None },
        Some(_) => {
            match api.store.reconciliation_page(filter.clone(), cursor, limit, evidence).await {
                Ok(page) => page,
                Err(e) => return store_failed(e),
            }
        }
    };
    let next = page.next.as_ref().map(Cursor::encode);
    let report = reconcile::json_page(head.as_deref(), &filter, &page.rows, limit, next);
    match serde_json::to_vec(&report) {
        Ok(body) => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
        Err(e) => {
            tracing::error!("rendering the reconciliation failed: {e}");
            let body = Json(json!({ "error": "rendering the reconciliation failed; see the log" }));
            (StatusCode::INTERNAL_SERVER_ERROR, body).into_response()
        }
    }
}

/// The customers' mapping states of the latest reconciliation, for `/v1/customers`; empty
/// when none is stored or it cannot be read (the counts are still worth serving).
pub(super) async fn for_customers(api: &ApiState) -> Vec<CustomerMapping> {
    api.store.reconciliation_customers().await.unwrap_or_else(|e| {
        tracing::warn!("cannot read the reconciliation for /v1/customers: {e}");
        Vec::new()
    })
}

/// Each customer's mapping in `list`, by customer id (borrowed, not copied).
pub(super) fn mappings_by_customer(
    list: &[CustomerMapping],
) -> HashMap<CustomerId, &CustomerMapping> {
    list.iter().map(|c| (c.customer, c)).collect()
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
