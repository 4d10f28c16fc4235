//! The daemon's router in process, over a test store: what the API and dashboard tests send
//! requests to (no listener, no sync engine running).

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use chrono::Utc;
use mpsync::health::Health;
use mpsync::metrics::Metrics;
use mpsync::server::{Access, ApiState, RenderGate, ServerState, router};
use mpsync::store::Store;
use mpsync::sync::{Engine, EngineOptions, NoopObserver};
use mpsync::systemd::Heartbeat;
use tower::ServiceExt;

/// The router over `store` and `health`, open to loopback names, one render at a time.
pub fn app(store: &Store, health: &Health) -> axum::Router {
    app_with(store, health, Access::default(), RenderGate::new(1, Duration::from_secs(8)))
}

/// The router over `store` and `health` with the given access rules and render gate.
pub fn app_with(
    store: &Store,
    health: &Health,
    access: Access,
    renders: RenderGate,
) -> axum::Router {
    let opts = EngineOptions {
        tick: Duration::from_secs(1),
        catch_up: false,
        now: Arc::new(Utc::now),
        beat: Arc::new(|| {}),
        seed: 1,
        stop: Default::default(),
    };
    // The engine itself is not run: these tests never trigger a sync.
    let (_engine, handle) =
        Engine::new(vec![], Arc::new(store.clone()), Arc::new(NoopObserver), opts);
    router(ServerState {
        health: health.clone(),
        heartbeat: Heartbeat::new(Duration::from_secs(1), Duration::from_secs(3600)),
        metrics: Metrics::new(),
        api: Some(ApiState { store: store.clone(), engine: handle, sync_kinds: vec![], renders }),
        access: Arc::new(access),
    })
}

/// One answer, read whole.
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Reply {
    /// The `Content-Type` header ("" when absent).
    pub fn content_type(&self) -> &str {
        self.headers.get("content-type").map(|v| v.to_str().unwrap()).unwrap_or_default()
    }
}

/// `GET uri` on `app`, answered within 10 s.
pub async fn get(app: &axum::Router, uri: &str) -> Reply {
    send(app, Request::builder().uri(uri).body(Body::empty()).unwrap()).await
}

/// `req` on `app`, answered and read within 10 s.
pub async fn send(app: &axum::Router, req: Request<Body>) -> Reply {
    let resp = tokio::time::timeout(Duration::from_secs(10), app.clone().oneshot(req))
        .await
        .expect("answered in time")
        .unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 24).await.unwrap();
    Reply { status, headers, body: String::from_utf8(bytes.to_vec()).unwrap() }
}

/// A new store in a temporary directory (kept alive by the returned guard).
pub fn open() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("state")).unwrap();
    (dir, store)
}
