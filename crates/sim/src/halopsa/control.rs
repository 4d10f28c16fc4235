//! The simulated HaloPSA's control surface over HTTP, under `/_sim/halopsa` (JSON, no auth:
//! the simulator is for loopback use), for `mpsync sim` users and benchmarks; tests use the
//! same operations on [`HaloSim`] directly.
//!
//! | method and path | what |
//! |---|---|
//! | `GET /_sim/halopsa` | `base_path`, `tenant`, `client_id`, `client_secret`, `settings`, `live_tokens`, `plants` (the Halo-specific objects planted), `planted` (every reconciliation row the data must produce, with its status) |
//! | `POST /_sim/halopsa/settings` | change some settings: `{"rate_limit":300, "rate_window_secs":300, "retry_after":true, "expires_in":60, "granted_scopes":["all"], "list_shape":"bare_when_counted", "ignore_includelines":true, "tenant":null}` → the settings |
//! | `POST /_sim/halopsa/expire_tokens` | every token handed out ends now |
//! | `POST /_sim/halopsa/advance` | `{"secs":N}`: the simulator's clock moves on (tokens, rate window) |
//! | `POST /_sim/halopsa/tick` | the daily recalculation → `{"changed":[line ids]}` |
//! | `POST /_sim/halopsa/revoke`, `POST /_sim/halopsa/restore` | the client secret stops / starts working |
//! | `GET /_sim/halopsa/writes`, `DELETE /_sim/halopsa/writes` | the journal of accepted writes; clear it |

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{HaloSettings, HaloSim, ListShape, PREFIX};

fn settings_json(s: &HaloSettings) -> Value {
    json!({
        "granted_scopes": s.granted_scopes, "expires_in": s.expires_in,
        "rate_limit": s.rate_limit, "rate_window_secs": s.rate_window.as_secs(),
        "retry_after": s.retry_after, "list_shape": s.list_shape,
        "ignore_includelines": s.ignore_includelines,
    })
}

/// A partial settings change.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SettingsChange {
    granted_scopes: Option<Vec<String>>,
    expires_in: Option<u64>,
    rate_limit: Option<u64>,
    rate_window_secs: Option<u64>,
    retry_after: Option<bool>,
    list_shape: Option<ListShape>,
    ignore_includelines: Option<bool>,
    /// `null` switches the tenant check off (on-prem); absent leaves it.
    #[serde(default, deserialize_with = "some")]
    tenant: Option<Option<String>>,
}

fn some<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

fn bad(msg: impl Into<String>) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({"error": msg.into()}))).into_response()
}

/// The `/_sim/halopsa` routes.
pub fn router(sim: HaloSim) -> Router {
    Router::new()
        .route("/_sim/halopsa", get(info))
        .route("/_sim/halopsa/settings", post(settings))
        .route("/_sim/halopsa/expire_tokens", post(expire))
        .route("/_sim/halopsa/advance", post(advance))
        .route("/_sim/halopsa/tick", post(tick))
        .route("/_sim/halopsa/revoke", post(revoke))
        .route("/_sim/halopsa/restore", post(restore))
        .route("/_sim/halopsa/writes", get(writes).delete(clear_writes))
        .with_state(sim)
}

async fn info(State(h): State<HaloSim>) -> Response {
    let (creds, plants, planted) = {
        let d = h.read();
        (d.credentials.clone(), d.plants.clone(), d.planted.clone())
    };
    Json(json!({
        "base_path": PREFIX, "tenant": creds.tenant, "client_id": creds.client_id,
        "client_secret": creds.client_secret, "settings": settings_json(&h.settings()),
        "live_tokens": h.live_tokens(), "plants": plants, "planted": planted,
    }))
    .into_response()
}

async fn settings(State(h): State<HaloSim>, raw: Bytes) -> Response {
    let c: SettingsChange = match serde_json::from_slice(&raw) {
        Ok(c) => c,
        Err(e) => return bad(format!("bad settings body: {e}")),
    };
    if c.rate_limit == Some(0) || c.rate_window_secs == Some(0) {
        return bad("rate_limit and rate_window_secs must be at least 1");
    }
    if let Some(t) = c.tenant {
        h.set_tenant(t.as_deref());
    }
    h.update_settings(|s| {
        if let Some(v) = c.granted_scopes {
            s.granted_scopes = v;
        }
        if let Some(v) = c.expires_in {
            s.expires_in = v;
        }
        if let Some(v) = c.rate_limit {
            s.rate_limit = v;
        }
        if let Some(v) = c.rate_window_secs {
            s.rate_window = Duration::from_secs(v);
        }
        if let Some(v) = c.retry_after {
            s.retry_after = v;
        }
        if let Some(v) = c.list_shape {
            s.list_shape = v;
        }
        if let Some(v) = c.ignore_includelines {
            s.ignore_includelines = v;
        }
    });
    Json(settings_json(&h.settings())).into_response()
}

async fn expire(State(h): State<HaloSim>) -> Response {
    h.expire_tokens();
    Json(json!({})).into_response()
}

async fn advance(State(h): State<HaloSim>, raw: Bytes) -> Response {
    #[derive(Deserialize)]
    struct By {
        secs: u64,
    }
    match serde_json::from_slice::<By>(&raw) {
        Ok(b) => {
            h.advance(Duration::from_secs(b.secs));
            Json(json!({})).into_response()
        }
        Err(e) => bad(format!("bad body, expected {{\"secs\": N}}: {e}")),
    }
}

async fn tick(State(h): State<HaloSim>) -> Response {
    Json(json!({ "changed": h.tick() })).into_response()
}

async fn revoke(State(h): State<HaloSim>) -> Response {
    h.revoke();
    Json(json!({})).into_response()
}

async fn restore(State(h): State<HaloSim>) -> Response {
    h.restore();
    Json(json!({})).into_response()
}

async fn writes(State(h): State<HaloSim>) -> Response {
    Json(h.writes()).into_response()
}

async fn clear_writes(State(h): State<HaloSim>) -> Response {
    h.clear_writes();
    Json(json!({})).into_response()
}
