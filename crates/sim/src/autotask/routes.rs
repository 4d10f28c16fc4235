//! The one handler behind every Autotask path: it splits the path itself (routes are
//! case-insensitive, C1), then counts, faults, authenticates, spends the threshold, takes a
//! thread slot, answers and damages (or, for `hang_after`, withholds) the answer as the
//! faults say.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::query::{Query, QueryError, after_id, token};
use super::{AutotaskSim, CONTRACT_ENTITIES, ZONE2_PREFIX};
use crate::connectwise::layer::finish;
use crate::faults::Pre;

fn errors(status: StatusCode, message: impl Into<String>) -> Response {
    (status, axum::Json(json!({ "errors": [message.into()] }))).into_response()
}

fn framework(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(json!({ "Message": message }))).into_response()
}

fn not_found() -> Response {
    framework(StatusCode::NOT_FOUND, "No HTTP resource was found that matches the request URI.")
}

fn too_many(message: &str, retry_after: u64) -> Response {
    let mut r = errors(StatusCode::TOO_MANY_REQUESTS, message);
    r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
    r
}

/// What a path asks for.
#[derive(Debug, Clone, PartialEq)]
enum Route {
    Version,
    Zone,
    Threshold,
    Query {
        entity: &'static str,
        next: bool,
    },
    Item {
        entity: &'static str,
        id: String,
    },
    /// `/ContractServiceAdjustments`, or `/Contracts/{id}/ServiceAdjustments` (the id).
    Adjust {
        contract: Option<String>,
    },
}

impl Route {
    fn entity(&self) -> &'static str {
        match self {
            Route::Version | Route::Zone => "",
            Route::Threshold => "ThresholdInformation",
            Route::Query { entity, .. } | Route::Item { entity, .. } => entity,
            Route::Adjust { .. } => "ContractServiceAdjustments",
        }
    }
}

fn route(sim: &AutotaskSim, rest: &str) -> Option<Route> {
    let segs: Vec<&str> = rest.trim_matches('/').split('/').collect();
    let version = |s: &str| ["v1.0", "1.0"].iter().any(|v| v.eq_ignore_ascii_case(s));
    let entity = |s: &str| sim.read().entity(s).map(|(name, _)| name);
    Some(match segs.as_slice() {
        [v] if v.eq_ignore_ascii_case("versioninformation") => Route::Version,
        [v, z] if version(v) && z.eq_ignore_ascii_case("zoneInformation") => Route::Zone,
        [v, t] if version(v) && t.eq_ignore_ascii_case("ThresholdInformation") => Route::Threshold,
        [v, a] if version(v) && a.eq_ignore_ascii_case("ContractServiceAdjustments") => {
            Route::Adjust { contract: None }
        }
        [v, c, id, a]
            if version(v)
                && c.eq_ignore_ascii_case("Contracts")
                && a.eq_ignore_ascii_case("ServiceAdjustments") =>
        {
            Route::Adjust { contract: Some((*id).to_owned()) }
        }
        [v, e, q] if version(v) && q.eq_ignore_ascii_case("query") => {
            Route::Query { entity: entity(e)?, next: false }
        }
        [v, e, q, n]
            if version(v) && q.eq_ignore_ascii_case("query") && n.eq_ignore_ascii_case("next") =>
        {
            Route::Query { entity: entity(e)?, next: true }
        }
        [v, e, id] if version(v) => Route::Item { entity: entity(e)?, id: (*id).to_owned() },
        _ => return None,
    })
}

/// The pattern a request is counted and faulted under (see `endpoints::AUTOTASK`).
fn pattern(method: &Method, r: &Route) -> String {
    let path = match r {
        Route::Version => "/versioninformation".to_owned(),
        Route::Zone => "/zoneInformation".to_owned(),
        Route::Threshold => "/ThresholdInformation".to_owned(),
        Route::Query { entity, next: false } => format!("/{entity}/query"),
        Route::Query { entity, next: true } => format!("/{entity}/query/next"),
        Route::Item { entity, .. } => format!("/{entity}/{{id}}"),
        Route::Adjust { contract: None } => "/ContractServiceAdjustments".to_owned(),
        Route::Adjust { contract: Some(_) } => "/Contracts/{id}/ServiceAdjustments".to_owned(),
    };
    format!("{method} {path}")
}

fn header<'h>(headers: &'h HeaderMap, name: &str) -> &'h str {
    headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("").trim()
}

/// The zone (1 or 2) a path is under, and the prefix it used.
fn zone_of(path: &str) -> (u8, &str) {
    if path.len() > ZONE2_PREFIX.len()
        && path[..ZONE2_PREFIX.len()].eq_ignore_ascii_case(ZONE2_PREFIX)
    {
        (2, &path[..ZONE2_PREFIX.len()])
    } else {
        (1, &path[..super::API_PREFIX.len().min(path.len())])
    }
}

/// The caller's integration code, and whether it sees contracts; or the refusal (C3).
fn authenticate(
    sim: &AutotaskSim,
    headers: &HeaderMap,
    zone: u8,
) -> Result<(String, bool), Box<Response>> {
    let creds = sim.credentials();
    let (code, user, secret) = (
        header(headers, "apiintegrationcode"),
        header(headers, "username"),
        header(headers, "secret"),
    );
    let failed = || {
        errors(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Authentication failed for the supplied API credentials.",
        )
    };
    if code != creds.integration_code {
        return Err(Box::new(failed()));
    }
    let main = user.eq_ignore_ascii_case(&creds.username);
    let limited = user.eq_ignore_ascii_case(&creds.no_contracts.0);
    if !(main || limited) {
        return Err(Box::new(failed()));
    }
    let right = if main {
        secret == creds.secret && !sim.revoked()
    } else {
        secret == creds.no_contracts.1
    };
    if !right || zone != sim.zone() {
        return Err(Box::new(StatusCode::UNAUTHORIZED.into_response()));
    }
    Ok((code.to_owned(), main))
}

/// Every Autotask request.
pub(crate) async fn handle(State(sim): State<AutotaskSim>, req: Request) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let (zone, prefix) = zone_of(&path);
    let rest = path[prefix.len()..].to_owned();
    let c = sim.gate().clone();
    let Some(r) = route(&sim, &rest) else {
        c.count_request(&format!("{method} (unmatched)"));
        c.count_status(404);
        return not_found();
    };
    let pat = pattern(&method, &r);
    c.count_request(&pat);
    let plan = c.plan(&pat);
    let resp = answer(&sim, req, r, zone, prefix, &plan).await;
    if plan.hang_after {
        // Handled (an adjustment is made and journalled); the answer never comes.
        c.shutdown().cancelled().await;
        return framework(StatusCode::SERVICE_UNAVAILABLE, "simulator shutting down");
    }
    let resp = finish(resp, &plan).await;
    c.count_status(resp.status().as_u16());
    resp
}

async fn answer(
    sim: &AutotaskSim,
    req: Request,
    r: Route,
    zone: u8,
    prefix: &str,
    plan: &crate::faults::Plan,
) -> Response {
    let c = sim.gate();
    match &plan.pre {
        Some(Pre::Hang) => {
            c.shutdown().cancelled().await;
            return framework(StatusCode::SERVICE_UNAVAILABLE, "simulator shutting down");
        }
        Some(Pre::TooMany(secs)) => return too_many("API request threshold exceeded.", *secs),
        Some(Pre::Status(code)) => {
            let status = StatusCode::from_u16(*code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return framework(status, "An error has occurred.");
        }
        None => {}
    }
    let host = header(req.headers(), "host").to_owned();
    let root = format!("http://{host}{prefix}/");
    // Version and zone lookups need no credentials and count against nothing (F1.3, F5.4).
    match &r {
        Route::Version => return axum::Json(json!({ "apiVersions": ["1.0"] })).into_response(),
        Route::Zone => return zone_answer(sim, &req, &host),
        _ => {}
    }
    let mut auth = authenticate(sim, req.headers(), zone);
    if auth.is_ok() && !plan.revoke.is_empty() {
        sim.revoke();
        auth = authenticate(sim, req.headers(), zone);
    }
    let (code, sees_contracts) = match auth {
        Ok(a) => a,
        Err(refusal) => return *refusal,
    };
    let Some(_slot) = sim.slot(&code, r.entity()) else {
        return too_many("Thread threshold of 3 exceeded (Itgenatr005).", 1);
    };
    let Ok(tier) = sim.spend() else {
        return too_many("API request threshold exceeded.", 60);
    };
    let delay = tier + plan.latency;
    if !delay.is_zero() {
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = c.shutdown().cancelled() => {}
        }
    }
    let method = req.method().clone();
    let search = req.uri().query().and_then(|q| {
        url::form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k.eq_ignore_ascii_case("search"))
            .map(|(_, v)| v.into_owned())
    });
    let paging = req.uri().query().and_then(|q| {
        url::form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k.eq_ignore_ascii_case("paging"))
            .map(|(_, v)| v.into_owned())
    });
    let body = axum::body::to_bytes(req.into_body(), 4 << 20).await.unwrap_or_default();
    match r {
        Route::Threshold => {
            let (used, limit) = sim.threshold_use();
            axum::Json(json!({
                "externalRequestThreshold": limit, "requestThresholdTimeframe": 60,
                "currentTimeframeRequestCount": used,
            }))
            .into_response()
        }
        Route::Item { entity, id } => {
            if method != Method::GET {
                return method_not_allowed(&method);
            }
            let Ok(id) = id.parse::<u64>() else { return not_found() };
            let data = sim.read();
            let row = data.entity(entity).and_then(|(_, rows)| rows.iter().find(|r| r["id"] == id));
            let visible = sees_contracts || !CONTRACT_ENTITIES.contains(&entity);
            match row.filter(|_| visible) {
                Some(row) => axum::Json(json!({ "item": row })).into_response(),
                None if sim.missing_is_404() => not_found(),
                None => axum::Json(json!({ "item": null })).into_response(),
            }
        }
        Route::Query { entity, next } => {
            let text = if method == Method::POST {
                String::from_utf8_lossy(&body).into_owned()
            } else if method == Method::GET {
                if next && search.is_none() {
                    return method_not_allowed(&method);
                }
                search.clone().unwrap_or_else(|| "{}".to_owned())
            } else {
                return method_not_allowed(&method);
            };
            if next && text.trim().is_empty() {
                return errors(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "The paging request must repeat the original query in its body.",
                );
            }
            let after = if next {
                match paging.as_deref().and_then(after_id) {
                    Some(a) => Some(a),
                    None => {
                        return errors(StatusCode::INTERNAL_SERVER_ERROR, "Invalid paging token.");
                    }
                }
            } else {
                None
            };
            let get_search = (method == Method::GET).then_some(text.as_str());
            query_page(sim, entity, &text, after, sees_contracts, &root, get_search)
        }
        Route::Adjust { contract } => {
            if method != Method::POST {
                return method_not_allowed(&method);
            }
            if !sees_contracts {
                return errors(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "The logged in Resource does not have the adequate permissions",
                );
            }
            let path_contract = match contract.map(|c| c.parse::<u64>()) {
                None => None,
                Some(Ok(c)) => Some(c),
                Some(Err(_)) => return not_found(),
            };
            match sim.mutate(|d| super::adjust::apply(d, &body, path_contract)) {
                Ok(id) => axum::Json(json!({ "itemId": id })).into_response(),
                Err(m) => errors(StatusCode::INTERNAL_SERVER_ERROR, m),
            }
        }
        Route::Version | Route::Zone => not_found(),
    }
}

fn method_not_allowed(method: &Method) -> Response {
    framework(
        StatusCode::METHOD_NOT_ALLOWED,
        &format!("The requested resource does not support http method '{method}'."),
    )
}

fn zone_answer(sim: &AutotaskSim, req: &Request, host: &str) -> Response {
    let user = req
        .uri()
        .query()
        .and_then(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .find(|(k, _)| k.eq_ignore_ascii_case("user"))
                .map(|(_, v)| v.into_owned())
        })
        .unwrap_or_default();
    let creds = sim.credentials();
    let known = [&creds.username, &creds.no_contracts.0]
        .iter()
        .any(|u| u.eq_ignore_ascii_case(user.trim()));
    if !known {
        return errors(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Zone information could not be determined for the supplied user.",
        );
    }
    let prefix = if sim.zone() == 2 { ZONE2_PREFIX } else { super::API_PREFIX };
    axum::Json(json!({
        "zoneName": format!("Simulated Zone {}", 4 + sim.zone()),
        "url": format!("http://{host}{prefix}/"),
        "webUrl": format!("http://{host}/"),
        "ci": sim.zone(),
    }))
    .into_response()
}

fn query_page(
    sim: &AutotaskSim,
    entity: &'static str,
    text: &str,
    after: Option<u64>,
    sees_contracts: bool,
    root: &str,
    get_search: Option<&str>,
) -> Response {
    let data = sim.read();
    let Some((_, rows)) = data.entity(entity) else { return not_found() };
    let fields = fields_of(entity, rows);
    let q = match Query::parse(text, &fields) {
        Ok(q) => q,
        Err(QueryError::Syntax) => return errors(StatusCode::BAD_REQUEST, "Invalid query syntax."),
        Err(QueryError::Refused(m)) => return errors(StatusCode::INTERNAL_SERVER_ERROR, m),
    };
    let visible = sees_contracts || !CONTRACT_ENTITIES.contains(&entity);
    let mut matching = rows
        .iter()
        .filter(|_| visible)
        .filter(|r| after.is_none_or(|a| r["id"].as_u64().unwrap_or(0) > a))
        .filter(|r| q.matches(r));
    let page: Vec<&Value> = matching.by_ref().take(q.max_records).collect();
    let more = matching.next().is_some();
    let next = match (more, page.first(), page.last()) {
        (true, Some(first), Some(last)) => {
            let t = token(
                q.max_records,
                first["id"].as_u64().unwrap_or(0),
                last["id"].as_u64().unwrap_or(0),
            );
            let mut ser = url::form_urlencoded::Serializer::new(String::new());
            ser.append_pair("paging", &t);
            if let Some(s) = get_search {
                ser.append_pair("search", s);
            }
            Value::String(format!("{root}V1.0/{entity}/query/next?{}", ser.finish()))
        }
        _ => Value::Null,
    };
    let body = json!({
        "items": page,
        "pageDetails": { "count": page.len(), "requestCount": q.max_records, "prevPageUrl": null, "nextPageUrl": next },
    });
    let mut resp = Response::new(Body::from(body.to_string()));
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

/// The fields of an entity: those of its rows (every row of an entity has the same keys).
fn fields_of(entity: &str, rows: &[Value]) -> Vec<String> {
    match rows.first().and_then(Value::as_object) {
        Some(o) => o.keys().cloned().collect(),
        None if entity == "ContractServiceBundles" => [
            "id",
            "contractID",
            "serviceBundleID",
            "unitPrice",
            "adjustedPrice",
            "unitDiscount",
            "userDefinedFields",
        ]
        .map(String::from)
        .to_vec(),
        None => vec!["id".to_owned()],
    }
}
