//! The per-request layer around every ConnectWise route: count the request under its route
//! pattern, decide its faults (the simulator's shared fault engine), delay or short-circuit
//! it, authenticate it (401 / 400 / 403 with §4 bodies; a write also needs Edit rights), run
//! the handler, then reshape or damage the answer (no `Link` header, text errors, truncated,
//! malformed or mistyped JSON). Writes go through the same faults as reads.

use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde_json::Value;

use super::{API_PREFIX, ConnectwiseSim};
use crate::faults::{Plan, Post, Pre, Variant};

/// A §4 error answer: `{"code": "...", "message": "...", "errors": [...]}`.
pub(crate) fn cw_error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    let body = serde_json::json!({ "code": code, "message": message.into() });
    (status, axum::Json(body)).into_response()
}

/// A 400 for a bad query parameter, with the field-level `errors` entry.
pub(crate) fn invalid(field: &str, message: impl Into<String>) -> Response {
    let message = message.into();
    let body = serde_json::json!({
        "code": "InvalidObject",
        "message": format!("{field} is invalid: {message}"),
        "errors": [{"code": "InvalidField", "message": message, "resource": "query", "field": field}],
    });
    (StatusCode::BAD_REQUEST, axum::Json(body)).into_response()
}

/// Checks the Basic credentials, the clientId header and the member's rights for `method`
/// on `path`; `Some` is the refusal.
fn refusal(
    sim: &ConnectwiseSim,
    method: &Method,
    headers: &HeaderMap,
    path: &str,
) -> Option<Response> {
    authenticate(sim, method, headers, path).err().map(|r| *r)
}

fn authenticate(
    sim: &ConnectwiseSim,
    method: &Method,
    headers: &HeaderMap,
    path: &str,
) -> Result<(), Box<Response>> {
    let creds = sim.credentials();
    let unauthorized = |why: &str| {
        Box::new(cw_error(StatusCode::UNAUTHORIZED, "Unauthorized", format!("Unauthorized: {why}")))
    };
    let auth = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let Some(encoded) = auth.and_then(|a| a.strip_prefix("Basic ")) else {
        return Err(unauthorized("an Authorization: Basic header is required"));
    };
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| unauthorized("the Authorization header is not valid base64"))?;
    let (login, private) = decoded.split_once(':').unwrap_or((&decoded, ""));
    let (company, public) = login.split_once('+').unwrap_or(("", login));
    if !company.eq_ignore_ascii_case(&creds.company_id) {
        return Err(unauthorized("unknown company id"));
    }
    let main = public == creds.public_key && private == creds.private_key;
    let limited = public == creds.limited_keys.0 && private == creds.limited_keys.1;
    if !(main || limited) || (main && sim.revoked()) {
        return Err(unauthorized("the public/private key pair is not valid for this company"));
    }
    let client_id = headers.get("clientid").and_then(|v| v.to_str().ok()).unwrap_or("").trim();
    if client_id.is_empty() {
        let body = serde_json::json!({
            "code": "InvalidObject",
            "message": "clientId header is required; register your integration at developer.connectwise.com",
            "errors": [{"code": "MissingField", "message": "clientId is required", "resource": "header", "field": "clientId"}],
        });
        return Err(Box::new((StatusCode::BAD_REQUEST, axum::Json(body)).into_response()));
    }
    if limited && path.starts_with("/finance/") {
        return Err(Box::new(cw_error(
            StatusCode::FORBIDDEN,
            "Forbidden",
            "You do not have access to this resource: the member's security role lacks Inquire on Finance > Agreements",
        )));
    }
    if method != Method::GET && path.starts_with("/finance/") && sim.edits_denied() {
        return Err(Box::new(cw_error(
            StatusCode::FORBIDDEN,
            "Forbidden",
            "You do not have access to this resource: the member's security role lacks Edit on Finance > Agreements",
        )));
    }
    Ok(())
}

/// The route pattern a matched path is counted and faulted under: every `{name}` becomes
/// `{id}` (axum needs distinct names within one route; the patterns do not).
fn pattern_of(matched: &str) -> String {
    let mut out = String::with_capacity(matched.len());
    let mut rest = matched;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        match rest[open..].find('}') {
            Some(close) => {
                out.push_str("{id}");
                rest = &rest[open + close + 1..];
            }
            None => {
                rest = &rest[open..];
                break;
            }
        }
    }
    out.push_str(rest);
    out
}

pub(crate) async fn layer(
    State(sim): State<ConnectwiseSim>,
    matched: MatchedPath,
    req: Request,
    next: Next,
) -> Response {
    let c = sim.gate().clone();
    let full = matched.as_str();
    let path = pattern_of(full.strip_prefix(API_PREFIX).unwrap_or(full));
    let pattern = format!("{} {path}", req.method());
    let method = req.method().clone();
    c.count_request(&pattern);
    let plan = c.plan(&pattern);
    if !plan.latency.is_zero() {
        tokio::select! {
            _ = tokio::time::sleep(plan.latency) => {}
            _ = c.shutdown().cancelled() => {}
        }
    }
    let resp = match &plan.pre {
        Some(Pre::Hang) => {
            c.shutdown().cancelled().await;
            cw_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "ServiceUnavailable",
                "simulator shutting down",
            )
        }
        Some(Pre::TooMany(secs)) => {
            let mut r =
                cw_error(StatusCode::TOO_MANY_REQUESTS, "TooManyRequests", "rate limit exceeded");
            r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(*secs));
            r
        }
        Some(Pre::Status(code)) => {
            let status = StatusCode::from_u16(*code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            cw_error(status, "SimulatedFailure", format!("simulated upstream failure ({code})"))
        }
        None => match refusal(&sim, &method, req.headers(), &path) {
            Some(r) => r,
            None if !plan.revoke.is_empty() => {
                // Revocation fires on this request: the keys stop working from now on.
                sim.revoke();
                match refusal(&sim, &method, req.headers(), &path) {
                    Some(r) => r,
                    None => next.run(req).await,
                }
            }
            None => next.run(req).await,
        },
    };
    if plan.hang_after {
        // Handled (a write is made and journalled); the answer never comes.
        c.shutdown().cancelled().await;
        return cw_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailable",
            "simulator shutting down",
        );
    }
    let resp = finish(resp, &plan).await;
    c.count_status(resp.status().as_u16());
    resp
}

/// Applies the variants and body damage.
pub(crate) async fn finish(resp: Response, plan: &Plan) -> Response {
    let (mut parts, body) = resp.into_parts();
    if plan.variants.contains(&Variant::NoPagination) {
        parts.headers.remove(header::LINK);
    }
    let failed = parts.status.is_client_error() || parts.status.is_server_error();
    let text_error = failed && plan.variants.contains(&Variant::TextError);
    let damage = !failed && !plan.post.is_empty();
    if !text_error && !damage {
        return Response::from_parts(parts, body);
    }
    let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
        return cw_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "SimulatorError",
            "simulator body error",
        );
    };
    let mut bytes = bytes.to_vec();
    if text_error {
        let msg = serde_json::from_slice::<Value>(&bytes)
            .ok()
            .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_owned))
            .unwrap_or_default();
        bytes = msg.into_bytes();
        parts
            .headers
            .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    }
    if damage {
        for p in &plan.post {
            bytes = match p {
                Post::Disconnect => bytes,
                Post::Truncate => bytes[..bytes.len() / 2].to_vec(),
                Post::Malformed => b"[{\"id\":1,\"name\":\"broken\",]".to_vec(),
                Post::WrongTypes => mistype(bytes),
            };
        }
        if plan.post.contains(&Post::Disconnect) {
            // Half the body, then the connection drops: a transport error for the client.
            let half = bytes[..bytes.len() / 2].to_vec();
            let broken =
                std::io::Error::new(std::io::ErrorKind::ConnectionReset, "simulated disconnect");
            let chunks: Vec<Result<Vec<u8>, std::io::Error>> = vec![Ok(half), Err(broken)];
            return Response::from_parts(
                parts,
                Body::from_stream(futures_util::stream::iter(chunks)),
            );
        }
    }
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(bytes))
}

/// `id` and `quantity` become strings.
fn mistype(bytes: Vec<u8>) -> Vec<u8> {
    let Ok(mut v) = serde_json::from_slice::<Value>(&bytes) else { return bytes };
    let one = |v: &mut Value| {
        if let Value::Object(m) = v {
            for key in ["id", "quantity"] {
                if let Some(n @ Value::Number(_)) = m.get_mut(key) {
                    *n = Value::String(n.to_string());
                }
            }
        }
    };
    match &mut v {
        Value::Array(items) => items.iter_mut().for_each(one),
        other => one(other),
    }
    v.to_string().into_bytes()
}

#[cfg(test)]
mod tests {
    use super::pattern_of;

    #[test]
    fn every_path_parameter_counts_as_id() {
        assert_eq!(
            pattern_of("/finance/agreements/{id}/additions/{addition}"),
            "/finance/agreements/{id}/additions/{id}"
        );
        assert_eq!(pattern_of("/system/info"), "/system/info");
        assert_eq!(pattern_of("/company/companies/{id}"), "/company/companies/{id}");
    }
}
