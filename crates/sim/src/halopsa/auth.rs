//! The token endpoint (`POST /auth/token`, reference F2–F10 and §3 "Token endpoint"), the
//! bearer tokens it hands out, the scopes each route needs, and the rolling-window rate
//! limit per client id (F39–F40, §3 "Rate limiting"). Time is the simulator's clock
//! ([`super::HaloSim::now`]): tokio's (pausable) clock plus an offset tests move forward.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tokio::time::Instant;

use super::HaloSim;

/// A token handed out.
#[derive(Debug, Clone)]
pub(crate) struct Token {
    pub(crate) client_id: String,
    pub(crate) scopes: Vec<String>,
    pub(crate) expires: Instant,
}

/// The scopes an application is granted unless told otherwise: the §3 sample response.
pub const DEFAULT_GRANT: [&str; 5] =
    ["read:customers", "read:contracts", "read:items", "read:invoices", "edit:invoices"];

/// Whether `have` covers `need` (`all` covers everything).
pub fn covers(have: &[String], need: &str) -> bool {
    have.iter().any(|s| s == "all" || s == need)
}

fn oauth(status: StatusCode, error: &str, description: Option<&str>) -> Response {
    let body = match description {
        Some(d) => json!({ "error": error, "error_description": d }),
        None => json!({ "error": error }),
    };
    (status, axum::Json(body)).into_response()
}

/// Answers `POST /auth/token` with `query` (the URL's query string) and the form `body`.
pub(crate) fn token_endpoint(sim: &HaloSim, query: Option<&str>, body: &[u8]) -> Response {
    let form: HashMap<String, String> = url::form_urlencoded::parse(body)
        .map(|(k, v)| (k.to_ascii_lowercase(), v.into_owned()))
        .collect();
    let query_tenant = query.and_then(|q| {
        url::form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k.eq_ignore_ascii_case("tenant"))
            .map(|(_, v)| v.into_owned())
    });
    let creds = sim.credentials();
    if let Some(tenant) = &creds.tenant {
        let given = query_tenant.or_else(|| form.get("tenant").cloned());
        if !given.is_some_and(|g| g.trim().eq_ignore_ascii_case(tenant)) {
            return oauth(StatusCode::BAD_REQUEST, "invalid_request", Some("unknown tenant"));
        }
    }
    if form.get("grant_type").map(String::as_str) != Some("client_credentials") {
        return oauth(StatusCode::BAD_REQUEST, "unsupported_grant_type", None);
    }
    let id_ok = form.get("client_id").is_some_and(|c| *c == creds.client_id);
    let secret_ok = form.get("client_secret").is_some_and(|s| *s == creds.client_secret);
    if !(id_ok && secret_ok) || sim.revoked() {
        return oauth(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            Some("Invalid client credentials"),
        );
    }
    let settings = sim.settings();
    let grant = &settings.granted_scopes;
    let requested: Vec<String> = form
        .get("scope")
        .map(|s| s.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default();
    let scopes = if requested.is_empty() {
        // No scope asked for: everything the application was granted (`all` if it has it).
        grant.clone()
    } else {
        if requested.iter().any(|s| !covers(grant, s)) {
            return oauth(StatusCode::BAD_REQUEST, "invalid_scope", None);
        }
        let mut r = requested;
        r.dedup();
        r
    };
    let token = format!("sim.{:032x}", rand::random::<u128>());
    let expires_in = settings.expires_in;
    sim.tokens_mut().insert(
        token.clone(),
        Token {
            client_id: creds.client_id.clone(),
            scopes: scopes.clone(),
            expires: sim.now() + Duration::from_secs(expires_in),
        },
    );
    let body = json!({
        "access_token": token, "token_type": "Bearer", "expires_in": expires_in,
        "scope": scopes.join(" "),
    });
    let mut r = axum::Json(body).into_response();
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// The live token a request carries, if any.
pub(crate) fn bearer(sim: &HaloSim, headers: &axum::http::HeaderMap) -> Option<Token> {
    let auth = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = auth.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let now = sim.now();
    let mut tokens = sim.tokens_mut();
    tokens.retain(|_, t| t.expires > now);
    tokens.get(token.trim()).cloned()
}

/// One client id's requests in the rolling window: (when, how many) oldest first.
#[derive(Debug, Default)]
pub(crate) struct Window {
    hits: VecDeque<(Instant, u64)>,
    total: u64,
}

impl Window {
    fn drain(&mut self, now: Instant, window: Duration) {
        while let Some(&(t, n)) = self.hits.front() {
            if now.duration_since(t) < window {
                break;
            }
            self.hits.pop_front();
            self.total -= n;
        }
    }

    /// Requests counted in the window ending `now`.
    pub(crate) fn used(&mut self, now: Instant, window: Duration) -> u64 {
        self.drain(now, window);
        self.total
    }

    /// Counts one request (refused ones too): `Err(seconds until the oldest leaves)` when the
    /// window already held `limit`.
    pub(crate) fn spend(&mut self, now: Instant, window: Duration, limit: u64) -> Result<(), u64> {
        self.drain(now, window);
        let used = self.total;
        match self.hits.back_mut() {
            Some((t, n)) if *t == now => *n += 1,
            _ => self.hits.push_back((now, 1)),
        }
        self.total += 1;
        if used < limit {
            return Ok(());
        }
        let oldest = self.hits.front().map_or(now, |h| h.0);
        let left = window.saturating_sub(now.duration_since(oldest));
        Err(left.as_secs() + u64::from(left.subsec_nanos() > 0))
    }
}

/// The 429 answer: text/plain, the note's sentence; `Retry-After` when switched on.
pub(crate) fn too_many(limit: u64, retry_after: Option<u64>) -> Response {
    let mut r = (
        StatusCode::TOO_MANY_REQUESTS,
        format!("Rate Limit Reached - {limit} Requests per rolling 5 minute window"),
    )
        .into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    if let Some(secs) = retry_after {
        r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_window_slides_and_refused_requests_count() {
        let (mut w, window) = (Window::default(), Duration::from_secs(300));
        for _ in 0..3 {
            assert_eq!(w.spend(Instant::now(), window, 3), Ok(()));
        }
        assert_eq!(w.spend(Instant::now(), window, 3), Err(300));
        tokio::time::advance(Duration::from_secs(200)).await;
        // Refused, and counted: the window now holds a request from t=200.
        assert_eq!(w.spend(Instant::now(), window, 3), Err(100));
        tokio::time::advance(Duration::from_secs(100)).await;
        // The first four left; the one refused at t=200 is still in.
        assert_eq!(w.used(Instant::now(), window), 1);
        assert_eq!(w.spend(Instant::now(), window, 3), Ok(()));
        assert!(covers(&["all".into()], "edit:items"));
        assert!(!covers(&["read:items".into()], "edit:items"));
    }
}
