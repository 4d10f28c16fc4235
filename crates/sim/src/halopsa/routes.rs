//! The one handler behind every Halo path: it splits the path itself (routes are
//! case-insensitive, F12), then counts, faults, authenticates, spends the rate window, checks
//! the scope, answers, and damages (or, for `hang_after`, withholds) the answer as the faults
//! say.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::auth::{bearer, covers, token_endpoint, too_many};
use super::data::Resource;
use super::lists::{Params, list};
use super::writes::{WriteRoute, apply, exception};
use super::{HaloSim, PREFIX};
use crate::connectwise::layer::finish;
use crate::faults::{Plan, Post, Pre};

/// What a path asks for.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Route {
    Token,
    List(Resource),
    One(Resource, Option<i64>),
    Write(WriteRoute),
}

fn route(method: &Method, rest: &str) -> Option<Route> {
    let segs: Vec<&str> = rest.trim_matches('/').split('/').collect();
    let is = |s: &str, w: &str| s.eq_ignore_ascii_case(w);
    Some(match segs.as_slice() {
        [a, t] if is(a, "auth") && is(t, "token") => Route::Token,
        [api, r] if is(api, "api") => {
            let r = Resource::parse(r)?;
            if *method == Method::POST { Route::Write(WriteRoute::Post(r)) } else { Route::List(r) }
        }
        [api, r, op] if is(api, "api") => {
            let r = Resource::parse(r)?;
            if r == Resource::RecurringInvoice {
                let sub = [
                    ("updatelines", WriteRoute::UpdateLines),
                    ("lines", WriteRoute::AddLines),
                    ("process", WriteRoute::Process),
                ];
                if let Some((_, w)) = sub.iter().find(|(n, _)| is(op, n)) {
                    return Some(Route::Write(*w));
                }
            }
            Route::One(r, op.trim().parse().ok())
        }
        _ => return None,
    })
}

/// The pattern a request is counted and faulted under (see `endpoints::HALOPSA`).
fn pattern(method: &Method, r: Route) -> String {
    let path = match r {
        Route::Token => "/auth/token".to_owned(),
        Route::List(r) | Route::Write(WriteRoute::Post(r)) => format!("/{}", r.name()),
        Route::One(r, _) => format!("/{}/{{id}}", r.name()),
        Route::Write(WriteRoute::UpdateLines) => "/RecurringInvoice/updatelines".to_owned(),
        Route::Write(WriteRoute::AddLines) => "/RecurringInvoice/Lines".to_owned(),
        Route::Write(WriteRoute::Process) => "/RecurringInvoice/process".to_owned(),
    };
    format!("{method} {path}")
}

fn status(s: StatusCode) -> Response {
    s.into_response()
}

fn record_not_found(code: StatusCode) -> Response {
    (code, axum::Json(Value::String("Record not found".into()))).into_response()
}

/// Every Halo request.
pub(crate) async fn handle(State(sim): State<HaloSim>, req: Request) -> Response {
    let method = req.method().clone();
    let rest = req.uri().path()[PREFIX.len()..].to_owned();
    let c = sim.gate().clone();
    let Some(r) = route(&method, &rest) else {
        c.count_request(&format!("{method} (unmatched)"));
        c.count_status(404);
        return status(StatusCode::NOT_FOUND);
    };
    let pat = pattern(&method, r);
    c.count_request(&pat);
    let mut plan = c.plan(&pat);
    let wrong_types = plan.post.contains(&Post::WrongTypes);
    plan.post.retain(|p| *p != Post::WrongTypes);
    let resp = answer(&sim, req, r, &pat, &plan).await;
    if plan.hang_after {
        // Handled (a write is made and journaled); the answer never comes.
        c.shutdown().cancelled().await;
        return status(StatusCode::SERVICE_UNAVAILABLE);
    }
    let resp = if wrong_types { mistype(resp).await } else { resp };
    let resp = finish(resp, &plan).await;
    c.count_status(resp.status().as_u16());
    resp
}

async fn answer(sim: &HaloSim, req: Request, r: Route, pat: &str, plan: &Plan) -> Response {
    let c = sim.gate();
    match &plan.pre {
        Some(Pre::Hang) => {
            c.shutdown().cancelled().await;
            return status(StatusCode::SERVICE_UNAVAILABLE);
        }
        Some(Pre::TooMany(secs)) => return too_many(sim.settings().rate_limit, Some(*secs)),
        Some(Pre::Status(code)) => {
            let s = StatusCode::from_u16(*code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return (s, axum::Json(exception("An error has occurred."))).into_response();
        }
        None => {}
    }
    if !plan.latency.is_zero() {
        tokio::select! {
            _ = tokio::time::sleep(plan.latency) => {}
            _ = c.shutdown().cancelled() => {}
        }
    }
    if !plan.revoke.is_empty() {
        sim.revoke();
    }
    let method = req.method().clone();
    let query = req.uri().query().map(str::to_owned);
    if r == Route::Token {
        if method != Method::POST {
            return status(StatusCode::METHOD_NOT_ALLOWED);
        }
        let body = axum::body::to_bytes(req.into_body(), 1 << 20).await.unwrap_or_default();
        return token_endpoint(sim, query.as_deref(), &body);
    }
    if ![Method::GET, Method::POST, Method::DELETE].contains(&method) {
        return status(StatusCode::METHOD_NOT_ALLOWED);
    }
    let Some(token) = bearer(sim, req.headers()) else {
        return status(StatusCode::UNAUTHORIZED);
    };
    if let Err(secs) = sim.spend(&token.client_id) {
        let s = sim.settings();
        return too_many(s.rate_limit, s.retry_after.then_some(secs));
    }
    let (resource, verb) = match r {
        Route::List(r) | Route::One(r, _) | Route::Write(WriteRoute::Post(r)) => {
            (r, if method == Method::GET { "read" } else { "edit" })
        }
        Route::Write(_) => (Resource::RecurringInvoice, "edit"),
        Route::Token => unreachable!("answered above"),
    };
    if !covers(&token.scopes, &format!("{verb}:{}", resource.scope_noun())) {
        return status(StatusCode::FORBIDDEN);
    }
    let body = axum::body::to_bytes(req.into_body(), 16 << 20).await.unwrap_or_default();
    match (r, &method) {
        (Route::List(res), &Method::GET) => {
            let s = sim.settings();
            let data = sim.read();
            match list(
                &data,
                res,
                &Params::parse(query.as_deref()),
                s.list_shape,
                s.ignore_includelines,
            ) {
                Ok(v) => json(v),
                Err(bad) => bad.into_response(),
            }
        }
        (Route::One(res, id), &Method::GET) => {
            let data = sim.read();
            match id.and_then(|id| data.row(res, id)) {
                Some(row) => json(row.clone()),
                None => record_not_found(StatusCode::NOT_FOUND),
            }
        }
        (Route::One(res, id), &Method::DELETE) => {
            let removed = sim.mutate(|d| {
                let rows = d.rows.entry(res).or_default();
                let i = id.and_then(|id| rows.iter().position(|x| x["id"] == id))?;
                Some(rows.remove(i))
            });
            match removed {
                Some(_) => status(StatusCode::OK),
                None => record_not_found(StatusCode::NOT_FOUND),
            }
        }
        (Route::Write(w), &Method::POST) => {
            let result = sim.mutate(|d| apply(d, w, &body, &plan.side_effects));
            match result {
                Ok((answer, mut write)) => {
                    write.route = pat.to_owned();
                    sim.journal(write);
                    json(answer)
                }
                Err(e) => e.into_response(),
            }
        }
        _ => status(StatusCode::METHOD_NOT_ALLOWED),
    }
}

fn json(v: Value) -> Response {
    let mut resp = Response::new(Body::from(v.to_string()));
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

/// `id` and `qty_order` become strings, at any depth.
async fn mistype(resp: Response) -> Response {
    let (mut parts, body) = resp.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
        return status(StatusCode::INTERNAL_SERVER_ERROR);
    };
    let Ok(mut v) = serde_json::from_slice::<Value>(&bytes) else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    fn walk(v: &mut Value) {
        match v {
            Value::Object(m) => {
                for (k, x) in m.iter_mut() {
                    if (k == "id" || k == "qty_order") && x.is_number() {
                        *x = Value::String(x.to_string());
                    } else {
                        walk(x);
                    }
                }
            }
            Value::Array(a) => a.iter_mut().for_each(walk),
            _ => {}
        }
    }
    walk(&mut v);
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(v.to_string()))
}
