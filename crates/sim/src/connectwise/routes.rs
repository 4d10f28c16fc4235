//! The ConnectWise handlers: listings with `conditions`, `page`/`pageSize` and `Link`
//! navigation; single records with a §4 404; the connection test.

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::Value;

use super::conditions::Conditions;
use super::layer::{cw_error, invalid};
use super::{API_PREFIX, ConnectwiseSim, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE};

const COMPANY_FIELDS: &[&str] = &["id", "identifier", "name", "status", "deletedFlag"];
const AGREEMENT_FIELDS: &[&str] = &[
    "id",
    "name",
    "company",
    "type",
    "cancelledFlag",
    "agreementStatus",
    "startDate",
    "noEndingDateFlag",
    "billCycleId",
];
const ADDITION_FIELDS: &[&str] = &[
    "id",
    "agreementId",
    "product",
    "quantity",
    "lessIncluded",
    "unitPrice",
    "unitCost",
    "billCustomer",
    "effectiveDate",
    "cancelledDate",
    "description",
];

pub(crate) async fn system_info() -> Response {
    axum::Json(serde_json::json!({
        "version": "v2025.1.98765",
        "isCloud": false,
        "serverTimeZone": "Eastern Standard Time",
        "licenseBits": [],
    }))
    .into_response()
}

pub(crate) async fn companies(
    State(sim): State<ConnectwiseSim>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    let items = values(&sim.read().companies);
    list(items, COMPANY_FIELDS, "/company/companies", &headers, q.as_deref())
}

pub(crate) async fn company(State(sim): State<ConnectwiseSim>, Path(id): Path<String>) -> Response {
    let data = sim.read();
    match id.parse::<u64>().ok().and_then(|id| data.companies.iter().find(|c| c.id == id)) {
        Some(c) => axum::Json(c).into_response(),
        None => cw_error(StatusCode::NOT_FOUND, "NotFound", format!("Company ID {id} not found")),
    }
}

pub(crate) async fn agreements(
    State(sim): State<ConnectwiseSim>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    let items = values(&sim.read().agreements);
    list(items, AGREEMENT_FIELDS, "/finance/agreements", &headers, q.as_deref())
}

pub(crate) async fn agreement(
    State(sim): State<ConnectwiseSim>,
    Path(id): Path<String>,
) -> Response {
    let data = sim.read();
    match id.parse::<u64>().ok().and_then(|id| data.agreements.iter().find(|a| a.id == id)) {
        Some(a) => axum::Json(a).into_response(),
        None => cw_error(StatusCode::NOT_FOUND, "NotFound", format!("Agreement ID {id} not found")),
    }
}

pub(crate) async fn additions(
    State(sim): State<ConnectwiseSim>,
    Path(id): Path<String>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    let items = {
        let data = sim.read();
        let Some(id) =
            id.parse::<u64>().ok().filter(|id| data.agreements.iter().any(|a| a.id == *id))
        else {
            return cw_error(
                StatusCode::NOT_FOUND,
                "NotFound",
                format!("Agreement ID {id} not found"),
            );
        };
        values(&data.additions_of(id).collect::<Vec<_>>())
    };
    let path = format!("/finance/agreements/{id}/additions");
    list(items, ADDITION_FIELDS, &path, &headers, q.as_deref())
}

fn values<T: Serialize>(items: &[T]) -> Vec<Value> {
    items.iter().filter_map(|i| serde_json::to_value(i).ok()).collect()
}

/// Filters by `conditions`, cuts one page and adds the `Link` header.
fn list(
    items: Vec<Value>,
    fields: &[&str],
    path: &str,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Response {
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let param = |name: &str| {
        pairs.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    };
    let page = match param("page").map(str::parse::<usize>) {
        None => 1,
        Some(Ok(p)) if p >= 1 => p,
        Some(_) => return invalid("page", "page must be a whole number of at least 1"),
    };
    let size = match param("pageSize").map(str::parse::<usize>) {
        None => DEFAULT_PAGE_SIZE,
        Some(Ok(s)) if s >= 1 => s.min(MAX_PAGE_SIZE),
        Some(_) => return invalid("pageSize", "pageSize must be a whole number of at least 1"),
    };
    let conditions = match Conditions::parse(param("conditions").unwrap_or(""), fields) {
        Ok(c) => c,
        Err(e) => return invalid("conditions", e),
    };
    let matching: Vec<Value> = items.into_iter().filter(|i| conditions.matches(i)).collect();
    let last = matching.len().div_ceil(size).max(1);
    let body: Vec<Value> =
        matching.into_iter().skip((page - 1).saturating_mul(size)).take(size).collect();
    let mut resp = axum::Json(body).into_response();
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("localhost");
    let url = |p: usize| {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in pairs
            .iter()
            .filter(|(k, _)| !k.eq_ignore_ascii_case("page") && !k.eq_ignore_ascii_case("pageSize"))
        {
            q.append_pair(k, v);
        }
        q.append_pair("pageSize", &size.to_string()).append_pair("page", &p.to_string());
        format!("<http://{host}{API_PREFIX}{path}?{}>", q.finish())
    };
    let mut links = Vec::new();
    if page > 1 {
        links.push(format!("{}; rel=\"first\"", url(1)));
        links.push(format!("{}; rel=\"prev\"", url((page - 1).min(last))));
    }
    if page < last {
        links.push(format!("{}; rel=\"next\"", url(page + 1)));
    }
    links.push(format!("{}; rel=\"last\"", url(last)));
    if let Ok(v) = HeaderValue::from_str(&links.join(", ")) {
        resp.headers_mut().insert(header::LINK, v);
    }
    resp
}
