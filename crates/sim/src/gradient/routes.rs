//! The HTTP face of the simulated Synthesize: the request layer (count, rate limit, faults,
//! token check) and one thin handler per route over [`super::state::GradientState`], plus the
//! answers for wrong methods and unknown routes, all in the one error shape of §11 #9.

use axum::body::{Body, Bytes};
use axum::extract::{Extension, MatchedPath, Path, RawQuery, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::control::GradientSim;
use super::state::Refusal;
use crate::faults::{Plan, Post, Pre, Variant};

/// The token header (any case; `HeaderMap` lookups are case-insensitive).
pub const TOKEN_HEADER: &str = "gradient-token";

/// An error answer in the §11 #9 shape: `{"statusCode": N, "message": "..."}`.
pub(crate) fn error(status: u16, message: impl Into<String>) -> Response {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (code, axum::Json(json!({"statusCode": status, "message": message.into()}))).into_response()
}

fn refused(r: Refusal) -> Response {
    error(r.status, r.message)
}

fn answer(status: StatusCode, body: Value) -> Response {
    (status, axum::Json(body)).into_response()
}

/// The variants the fault plan chose for this request (handlers that change behaviour read
/// it; always present on routes behind the layer).
#[derive(Debug, Clone, Default)]
pub(crate) struct ActiveVariants(Vec<Variant>);

impl ActiveVariants {
    fn has(&self, v: Variant) -> bool {
        self.0.contains(&v)
    }
}

/// Parses a JSON body; a body that is not JSON is a 400 like the real validation pipe.
fn json_body(bytes: &Bytes) -> Result<Value, Refusal> {
    if bytes.is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_slice(bytes)
        .map_err(|_| Refusal { status: 400, message: "body must be valid JSON".into() })
}

pub(crate) async fn layer(
    State(sim): State<GradientSim>,
    matched: MatchedPath,
    req: Request,
    next: Next,
) -> Response {
    let pattern = format!("{} {}", req.method(), matched.as_str());
    sim.count_request(&pattern);
    let resp = if !sim.admit() {
        // §11 #8: 429 without Retry-After.
        error(429, "Request limit reached")
    } else {
        let plan = sim.plan(&pattern);
        run(&sim, plan, req, next).await
    };
    sim.count_status(resp.status().as_u16());
    resp
}

async fn run(sim: &GradientSim, plan: Plan, mut req: Request, next: Next) -> Response {
    if !plan.latency.is_zero() {
        tokio::time::sleep(plan.latency).await;
    }
    match plan.pre {
        // A hang is bounded by the client's timeout; the simulator's shutdown drops it.
        Some(Pre::Hang) => return std::future::pending::<Response>().await,
        Some(Pre::TooMany(_)) => return error(429, "Request limit reached"),
        Some(Pre::Status(code)) => return error(code, format!("simulated failure ({code})")),
        None => {}
    }
    let sent = req.headers().get(TOKEN_HEADER).and_then(|v| v.to_str().ok()).unwrap_or("");
    if !sim.state().accepts(sent) {
        return error(401, "Unauthorized");
    }
    if !plan.revoke.is_empty() {
        sim.revoke_partner_key();
        return error(401, "Unauthorized");
    }
    req.extensions_mut().insert(ActiveVariants(plan.variants.clone()));
    let resp = next.run(req).await;
    if plan.hang_after {
        // Handled (a push is taken); the answer never comes.
        return std::future::pending::<Response>().await;
    }
    if plan.post.is_empty() || !resp.status().is_success() {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
        return error(500, "simulator body error");
    };
    let mut bytes = bytes.to_vec();
    for p in &plan.post {
        bytes = match p {
            Post::Truncate => bytes[..bytes.len() / 2].to_vec(),
            Post::Malformed => b"{\"status\":200,\"data\":{\"skus\":[".to_vec(),
            Post::WrongTypes => mistype(&bytes),
            Post::Disconnect => bytes,
        };
    }
    parts.headers.remove(header::CONTENT_LENGTH);
    if plan.post.contains(&Post::Disconnect) {
        // Half the body, then a reset: the client sees a transport error, not a status.
        let half = bytes[..bytes.len() / 2].to_vec();
        let reset =
            std::io::Error::new(std::io::ErrorKind::ConnectionReset, "simulated disconnect");
        let chunks: Vec<Result<Vec<u8>, std::io::Error>> = vec![Ok(half), Err(reset)];
        return Response::from_parts(parts, Body::from_stream(futures_util::stream::iter(chunks)));
    }
    parts.headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Response::from_parts(parts, Body::from(bytes))
}

/// Ids become numbers and `skus` a string: well-formed JSON a strict client must refuse.
fn mistype(bytes: &[u8]) -> Vec<u8> {
    fn walk(v: &mut Value) {
        match v {
            Value::Array(a) => a.iter_mut().for_each(walk),
            Value::Object(m) => {
                if m.contains_key("skus") {
                    m.insert("skus".into(), Value::String("CloudFilter".into()));
                }
                for key in ["id", "_id"] {
                    if m.get(key).is_some_and(Value::is_string) {
                        m.insert(key.into(), Value::from(1));
                    }
                }
                m.values_mut().for_each(walk);
            }
            _ => {}
        }
    }
    match serde_json::from_slice::<Value>(bytes) {
        Ok(mut v) => {
            walk(&mut v);
            v.to_string().into_bytes()
        }
        Err(_) => bytes.to_vec(),
    }
}

pub(crate) async fn get_integration(State(sim): State<GradientSim>) -> Response {
    answer(StatusCode::OK, sim.state().integration())
}

pub(crate) async fn patch_status(
    State(sim): State<GradientSim>,
    Path(status): Path<String>,
) -> Response {
    let out = sim.state().set_status(&status);
    out.map_or_else(refused, |v| answer(StatusCode::OK, v))
}

pub(crate) async fn get_vendor(State(sim): State<GradientSim>) -> Response {
    let data = sim.state().vendor();
    answer(
        StatusCode::OK,
        json!({"status": 200, "data": data, "message": "Success - Retrieved Vendor"}),
    )
}

/// `PATCH /api/vendor-api` (§5.4): the envelope with the updated vendor.
pub(crate) async fn patch_vendor(State(sim): State<GradientSim>, body: Bytes) -> Response {
    let out = json_body(&body).and_then(|b| sim.state().update_vendor(&b));
    out.map_or_else(refused, |data| {
        answer(
            StatusCode::OK,
            json!({"status": 200, "data": data, "message": "Success - Updated Vendor"}),
        )
    })
}

/// `GET /organization/clients?search=&previousId=` (§5.8, §11 #14).
pub(crate) async fn get_clients(
    State(sim): State<GradientSim>,
    RawQuery(query): RawQuery,
) -> Response {
    let (mut search, mut previous) = (None, None);
    for (k, v) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        match k.as_ref() {
            "search" => search = Some(v.into_owned()),
            "previousId" => previous = Some(v.into_owned()),
            _ => {}
        }
    }
    let out = sim.state().list_clients(search.as_deref(), previous.as_deref());
    out.map_or_else(refused, |v| answer(StatusCode::OK, v))
}

pub(crate) async fn post_service(State(sim): State<GradientSim>, body: Bytes) -> Response {
    let out = json_body(&body).and_then(|b| sim.state().create_service(&b));
    out.map_or_else(refused, |v| answer(StatusCode::CREATED, v))
}

pub(crate) async fn get_service(
    State(sim): State<GradientSim>,
    Path(id): Path<String>,
) -> Response {
    let out = sim.state().sku(&id);
    out.map_or_else(refused, |data| {
        answer(
            StatusCode::OK,
            json!({"status": 200, "data": data, "message": "Success - Retrieved Service"}),
        )
    })
}

/// `PATCH /service/{serviceId}` (§5.7, §11 #13).
pub(crate) async fn patch_service(
    State(sim): State<GradientSim>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let out = json_body(&body).and_then(|b| sim.state().update_service(&id, &b));
    out.map_or_else(refused, |v| answer(StatusCode::OK, v))
}

pub(crate) async fn get_accounts(
    State(sim): State<GradientSim>,
    RawQuery(query): RawQuery,
) -> Response {
    let mut ids = Vec::new();
    let mut return_unmapped = true;
    for (k, v) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        match k.as_ref() {
            "accountIds" | "accountIds[]" => ids.extend(v.split(',').map(str::to_owned)),
            "returnUnmapped" => return_unmapped = v != "false",
            _ => {}
        }
    }
    answer(StatusCode::OK, sim.state().list_accounts(&ids, return_unmapped))
}

pub(crate) async fn post_accounts(State(sim): State<GradientSim>, body: Bytes) -> Response {
    let out = json_body(&body).and_then(|b| sim.state().create_accounts(&b));
    out.map_or_else(refused, |v| answer(StatusCode::CREATED, v))
}

pub(crate) async fn patch_account(
    State(sim): State<GradientSim>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let out = json_body(&body).and_then(|b| sim.state().update_account(&id, &b));
    out.map_or_else(refused, |v| answer(StatusCode::OK, v))
}

pub(crate) async fn post_count(
    State(sim): State<GradientSim>,
    Path(service): Path<String>,
    Extension(variants): Extension<ActiveVariants>,
    body: Bytes,
) -> Response {
    let now = crate::dataset::format_ts(chrono::Utc::now().timestamp_millis());
    let refuse_zero = variants.has(Variant::RefuseZeroCounts);
    let out = json_body(&body).and_then(|b| sim.state().set_count(&service, &b, &now, refuse_zero));
    out.map_or_else(refused, |v| answer(StatusCode::CREATED, v))
}

/// Organization-scoped services and alerting are not simulated (§11 #17).
pub(crate) async fn not_simulated() -> Response {
    error(404, "Vendor Profile Not Found")
}

/// A method a route does not have: 405, counted like any request to the simulator.
pub(crate) async fn wrong_method(State(sim): State<GradientSim>, req: Request) -> Response {
    sim.count_request(&format!("{} (wrong method)", req.method()));
    sim.count_status(405);
    error(405, format!("Cannot {} {}", req.method(), req.uri().path()))
}

/// A path under the prefix that matches no route: 404 in the same shape.
pub(crate) async fn unknown_route(State(sim): State<GradientSim>, req: Request) -> Response {
    sim.count_request(&format!("{} (unmatched)", req.method()));
    sim.count_status(404);
    error(404, format!("Cannot {} {}", req.method(), req.uri().path()))
}
