//! The HTTP server (axum): probes (`/livez`, `/readyz`), `/v1/health`, `/metrics`, the `/v1`
//! API and the HTML dashboard (`/`).
//!
//! [`router`] and [`serve`] take their state, listener and shutdown signal as arguments, so
//! tests run them on `127.0.0.1:0`. Every answer comes from memory; none touches an upstream.
//! Every request passes [`access`] first (foreign `Host`/`Origin`, the access token); every
//! refusal is the JSON error body of [`errors`], bad query strings included ([`query`]).

mod access;
mod audit;
mod dashboard;
mod errors;
mod plan;
mod probes;
mod query;
mod reconciliation;
mod report;
mod stream;
mod v1;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::net::TcpListener;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;

use crate::health::Health;
use crate::metrics::Metrics;
use crate::model::RunKind;
use crate::store::Store;
use crate::sync::EngineHandle;
use crate::systemd::Heartbeat;

pub use access::{Access, session_value};
pub use stream::RenderGate;

/// A handler that takes longer than this gets a 503, so a stuck handler cannot hold a
/// connection (and shutdown) open. Well below the shutdown grace period.
pub const HANDLER_TIMEOUT: Duration = Duration::from_secs(10);

/// What the handlers read. Cloned per request (every field is a shared handle).
#[derive(Debug, Clone)]
pub struct ServerState {
    /// Readiness latch, store and source status.
    pub health: Health,
    /// The main loop's heartbeat (liveness).
    pub heartbeat: Heartbeat,
    /// The metric families rendered on `/metrics`.
    pub metrics: Metrics,
    /// The store-backed `/v1` API (runs, history, customers, sync); `None` serves only
    /// probes, health and metrics.
    pub api: Option<ApiState>,
    /// The host names served and the token required.
    pub access: Arc<Access>,
}

/// What the `/v1` handlers need (`/v1/reconciliation` included).
#[derive(Clone)]
pub struct ApiState {
    /// The store (runs, snapshots, history).
    pub store: Store,
    /// Starts runs on demand.
    pub engine: EngineHandle,
    /// The jobs `POST /v1/sync` starts, vendor first.
    pub sync_kinds: Vec<RunKind>,
    /// Limits large renders (reconciliation, customers) running at once.
    pub renders: RenderGate,
}

impl std::fmt::Debug for ApiState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiState")
            .field("sync_kinds", &self.sync_kinds)
            .field("renders", &self.renders)
            .finish_non_exhaustive()
    }
}

/// All routes, behind the access guard, with `Cache-Control: no-store` on every response, a
/// per-request timeout, and a JSON 404 for unknown paths. New routes go into [`routes`].
pub fn router(state: ServerState) -> Router {
    let api: Router<ServerState> = match state.api.clone() {
        Some(api) => v1::routes().with_state(api),
        None => Router::new(),
    };
    let login: Router<ServerState> = Router::new()
        .route(access::login::PATH, get(access::login::page).post(access::login::submit))
        .with_state(state.access.clone());
    // The guard goes on after the fallback, so unknown paths are guarded too.
    let guarded = routes()
        .merge(api)
        .merge(login)
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(state.access.clone(), access::guard));
    with_common_layers(guarded).with_state(state)
}

/// The routes themselves (add new ones here; the store-backed `/v1` API is in `v1`).
fn routes() -> Router<ServerState> {
    Router::new()
        .route("/", get(dashboard::page))
        .route("/livez", get(probes::livez))
        .route("/readyz", get(probes::readyz))
        .route("/v1/health", get(probes::health))
        .route("/metrics", get(probes::metrics))
}

/// What every route gets: the handler timeout and `Cache-Control: no-store` (outermost, so
/// timeouts, refusals and 404s carry it too).
fn with_common_layers(routes: Router<ServerState>) -> Router<ServerState> {
    routes
        .layer(TimeoutLayer::with_status_code(StatusCode::SERVICE_UNAVAILABLE, HANDLER_TIMEOUT))
        .layer(SetResponseHeaderLayer::overriding(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
}

async fn not_found(uri: Uri) -> Response {
    let body = serde_json::json!({
        "error": "not found",
        "path": uri.path(),
        "hint": "try / (the dashboard), /v1/health, /livez, /readyz or /metrics",
    });
    (StatusCode::NOT_FOUND, axum::Json(body)).into_response()
}

/// Serves `router(state)` on `listener` until `shutdown` completes, then stops accepting and
/// waits for in-flight requests (idle keep-alive connections are closed at once). The caller
/// bounds that wait with its grace period.
pub async fn serve(
    listener: TcpListener,
    state: ServerState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state)).with_graceful_shutdown(shutdown).await
}

#[cfg(test)]
mod tests;
