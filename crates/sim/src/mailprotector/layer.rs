//! The per-request layer around every Mailprotector route: count the request under its route
//! pattern, decide its faults, delay it, short-circuit it (429, error status, hang), authenticate
//! it (401), run the handler, then reshape or damage the answer (variants, truncation, malformed
//! or wrongly typed JSON).

use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::auth::authenticate;
use super::{API_PREFIX, ApiError};
use crate::control::SimControl;
use crate::faults::{Plan, Post, Pre, Variant};

/// The variants active for this request (handlers that reshape output read it).
#[derive(Debug, Clone, Default)]
pub(crate) struct ActiveVariants(pub(crate) Vec<Variant>);

impl ActiveVariants {
    pub(crate) fn has(&self, v: Variant) -> bool {
        self.0.contains(&v)
    }
}

pub(crate) async fn layer(
    State(c): State<SimControl>,
    matched: MatchedPath,
    mut req: Request,
    next: Next,
) -> Response {
    let path = matched.as_str();
    let pattern = format!("{} {}", req.method(), path.strip_prefix(API_PREFIX).unwrap_or(path));
    c.count_request(&pattern);
    let plan = c.gate().plan(&pattern);
    if !plan.latency.is_zero() {
        tokio::select! {
            _ = tokio::time::sleep(plan.latency) => {}
            _ = c.gate().shutdown().cancelled() => {}
        }
    }
    let resp = match &plan.pre {
        Some(Pre::Hang) => {
            c.gate().shutdown().cancelled().await;
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "simulator shutting down")
                .into_response()
        }
        Some(Pre::TooMany(secs)) => {
            let mut r =
                ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate limit exceeded").into_response();
            r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(*secs));
            r
        }
        Some(Pre::Status(code)) => {
            let status = StatusCode::from_u16(*code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let msg = format!("simulated upstream failure ({code})");
            ApiError::new(status, msg).into_response()
        }
        None => {
            let auth = authenticate(&c.read(), req.headers());
            match auth {
                Err(e) => e.into_response(),
                Ok(caller) => {
                    for key in &plan.revoke {
                        c.revoke_key(key.as_deref().unwrap_or(&caller.key));
                    }
                    let again = authenticate(&c.read(), req.headers());
                    match again {
                        Err(e) => e.into_response(),
                        Ok(caller) => {
                            req.extensions_mut().insert(caller);
                            req.extensions_mut().insert(ActiveVariants(plan.variants.clone()));
                            next.run(req).await
                        }
                    }
                }
            }
        }
    };
    if plan.hang_after {
        // Handled; the answer never comes.
        c.gate().shutdown().cancelled().await;
        return ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "simulator shutting down")
            .into_response();
    }
    let resp = finish(resp, &plan).await;
    c.count_status(resp.status().as_u16());
    resp
}

/// Applies the generic variants and body damage.
async fn finish(resp: Response, plan: &Plan) -> Response {
    let variants = ActiveVariants(plan.variants.clone());
    let touches_body = !plan.post.is_empty()
        || (resp.status().is_client_error() || resp.status().is_server_error())
            && (variants.has(Variant::MessageError) || variants.has(Variant::TextError))
        || resp.status() == StatusCode::NO_CONTENT && variants.has(Variant::OkDelete);
    let (mut parts, body) = resp.into_parts();
    rewrite_pagination(&mut parts.headers, &variants);
    if !touches_body {
        return Response::from_parts(parts, body);
    }
    let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
        return ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "simulator body error")
            .into_response();
    };
    let mut bytes = bytes.to_vec();
    if parts.status.is_client_error() || parts.status.is_server_error() {
        let msg = serde_json::from_slice::<Value>(&bytes)
            .ok()
            .and_then(|v| v.get("error").and_then(Value::as_str).map(str::to_owned))
            .unwrap_or_default();
        if variants.has(Variant::TextError) {
            bytes = msg.into_bytes();
            parts.headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            );
        } else if variants.has(Variant::MessageError) {
            bytes = serde_json::json!({"message": msg}).to_string().into_bytes();
        }
    } else if parts.status.is_success() {
        if parts.status == StatusCode::NO_CONTENT && variants.has(Variant::OkDelete) {
            // The alternative §12 #7 lets the client meet: 200 with an empty body.
            parts.status = StatusCode::OK;
            bytes.clear();
        }
        for p in &plan.post {
            bytes = damage(*p, bytes);
        }
        if plan.post.contains(&Post::Disconnect) {
            return Response::from_parts(parts, cut_off(bytes));
        }
    }
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(bytes))
}

fn rewrite_pagination(headers: &mut axum::http::HeaderMap, v: &ActiveVariants) {
    let Some(raw) = headers.get("x-pagination").and_then(|h| h.to_str().ok()) else { return };
    if v.has(Variant::NoPagination) {
        headers.remove("x-pagination");
        return;
    }
    let Ok(Value::Object(mut m)) = serde_json::from_str::<Value>(raw) else { return };
    if v.has(Variant::PaginationAltKeys) {
        if let Some(p) = m.remove("page") {
            m.insert("current_page".into(), p);
        }
        if let Some(t) = m.remove("total") {
            m.insert("total_count".into(), t);
        }
    }
    if v.has(Variant::PaginationStrings) {
        for val in m.values_mut() {
            *val = Value::String(val.to_string());
        }
    }
    if let Ok(h) = HeaderValue::from_str(&Value::Object(m).to_string()) {
        headers.insert("x-pagination", h);
    }
}

/// Half the body, then a stream error: hyper aborts the connection mid-body while the
/// Content-Length header still promises the whole.
fn cut_off(bytes: Vec<u8>) -> Body {
    let half = bytes[..bytes.len() / 2].to_vec();
    let broken = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "simulated disconnect");
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = vec![Ok(half), Err(broken)];
    Body::from_stream(futures_util::stream::iter(chunks))
}

fn damage(p: Post, bytes: Vec<u8>) -> Vec<u8> {
    match p {
        Post::Disconnect => bytes,
        Post::Truncate => {
            let keep = bytes.len() / 2;
            bytes[..keep].to_vec()
        }
        Post::Malformed => b"[{\"id\":1,\"name\":\"broken\",]".to_vec(),
        Post::WrongTypes => match serde_json::from_slice::<Value>(&bytes) {
            Ok(mut v) => {
                match &mut v {
                    Value::Array(items) => items.iter_mut().for_each(mistype),
                    other => mistype(other),
                }
                v.to_string().into_bytes()
            }
            Err(_) => bytes,
        },
    }
}

/// `user_count` and `id` become strings, a service record's `service_type` a list, and
/// `service_types.addons` a string.
fn mistype(v: &mut Value) {
    let Value::Object(m) = v else { return };
    for key in ["user_count", "id"] {
        if let Some(n @ Value::Number(_)) = m.get_mut(key) {
            *n = Value::String(n.to_string());
        }
    }
    if let Some(st @ Value::String(_)) = m.get_mut("service_type") {
        *st = Value::Array(vec![st.take()]);
    }
    if let Some(Value::Object(st)) = m.get_mut("service_types")
        && let Some(Value::Array(a)) = st.get("addons")
    {
        let joined = a.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(",");
        st.insert("addons".into(), Value::String(joined));
    }
}
