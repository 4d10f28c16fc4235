//! The replay simulator: serves a capture bundle ([`bundle`]) on the usual simulator prefixes
//! (Mailprotector under `/api/v1`, ConnectWise under `/v4_6_release/apis/3.0`, Gradient
//! under `/api/vendor-api`), so a user's account becomes a test.
//!
//! A request matches on method, path and query (parameters compared regardless of order);
//! any credentials are accepted, since a bundle holds none. A request the bundle does not hold
//! gets 404 with a JSON body that says so, and is counted (`GET /_sim/requests`).

pub mod bundle;
mod exchange;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body as HttpBody;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use bundle::{Bundle, BundleError, Manifest, Upstream};

use super::server::SimStartError;

/// How long shutdown waits for open connections before dropping them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Requests not held by the bundle that [`ReplayCounts::missing`] lists (the rest are counted).
const MISSING_LISTED: usize = 100;

/// What the replay has been asked so far.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ReplayCounts {
    /// Every request (control requests excluded).
    pub total: u64,
    /// Requests answered from the bundle.
    pub answered: u64,
    /// Requests the bundle does not hold (answered 404).
    pub not_captured: u64,
    /// Answered requests by `METHOD /prefix/path?query`.
    pub by_request: BTreeMap<String, u64>,
    /// The first requests the bundle did not hold, as `METHOD /prefix/path?query`.
    pub missing: Vec<String>,
}

/// A captured answer, ready to serve.
struct Prepared {
    status: StatusCode,
    headers: HeaderMap,
    body: bytes::Bytes,
}

type Key = (Upstream, String, String, BTreeMap<String, String>);

struct ReplayState {
    answers: HashMap<Key, Prepared>,
    upstreams: Vec<Upstream>,
    counts: Mutex<ReplayCounts>,
}

impl ReplayState {
    fn new(bundle: &Bundle) -> ReplayState {
        let mut answers = HashMap::new();
        for file in &bundle.files {
            for x in &file.exchanges {
                let r = &x.response;
                let mut headers = HeaderMap::new();
                for (name, value) in &r.headers {
                    // Both were checked when the bundle was loaded.
                    if let (Ok(n), Ok(v)) =
                        (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_str(value))
                    {
                        headers.append(n, v);
                    }
                }
                let prepared = Prepared {
                    status: StatusCode::from_u16(r.status).unwrap_or(StatusCode::OK),
                    headers,
                    body: r.body.to_bytes().into(),
                };
                let q = &x.request;
                answers.insert(
                    (file.upstream, q.method.clone(), q.path.clone(), q.query.clone()),
                    prepared,
                );
            }
        }
        ReplayState {
            answers,
            upstreams: bundle.files.iter().map(|f| f.upstream).collect(),
            counts: Mutex::new(ReplayCounts::default()),
        }
    }

    fn counts(&self) -> std::sync::MutexGuard<'_, ReplayCounts> {
        self.counts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The bundle's answer to `method path?query`, if it holds one.
    fn lookup(&self, method: &str, path: &str, query: Option<&str>) -> Option<&Prepared> {
        let (upstream, rest) = self.upstreams.iter().find_map(|u| {
            let rest = path.strip_prefix(u.base_path())?;
            (rest.is_empty() || rest.starts_with('/')).then_some((*u, rest))
        })?;
        let mut params = BTreeMap::new();
        for (k, v) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            // A repeated name cannot be told apart from another order of the same names.
            if params.insert(k.into_owned(), v.into_owned()).is_some() {
                return None;
            }
        }
        self.answers.get(&(upstream, method.to_owned(), rest.to_owned(), params))
    }
}

/// Starts replay servers.
#[derive(Debug)]
pub struct ReplayServer;

impl ReplayServer {
    /// Binds `listen` and serves `bundle` until the handle stops.
    pub async fn start(bundle: &Bundle, listen: SocketAddr) -> Result<ReplayHandle, SimStartError> {
        let state = Arc::new(ReplayState::new(bundle));
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|source| SimStartError::Bind { addr: listen, source })?;
        let addr =
            listener.local_addr().map_err(|source| SimStartError::Bind { addr: listen, source })?;
        let app = Router::new()
            .route("/_sim/requests", get(requests))
            .fallback(answer)
            .with_state(state.clone());
        let token = CancellationToken::new();
        let tracker = TaskTracker::new();
        let stop = token.clone();
        tracker.spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(stop.clone().cancelled_owned());
            tokio::select! {
                r = serve => if let Err(e) = r { tracing::warn!(error = %e, "replay server ended with an error") },
                () = async { stop.cancelled().await; tokio::time::sleep(SHUTDOWN_GRACE).await } => {
                    tracing::warn!("replay: connections still open after the grace period; dropped");
                }
            }
        });
        tracker.close();
        Ok(ReplayHandle { addr, state, token, tracker })
    }
}

/// A running replay. Dropping it stops the server (without waiting).
pub struct ReplayHandle {
    addr: SocketAddr,
    state: Arc<ReplayState>,
    token: CancellationToken,
    tracker: TaskTracker,
}

impl std::fmt::Debug for ReplayHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplayHandle").field("addr", &self.addr).finish_non_exhaustive()
    }
}

impl ReplayHandle {
    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`: the host every client appends its prefix to.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// What has been asked so far.
    pub fn requests(&self) -> ReplayCounts {
        self.state.counts().clone()
    }

    /// Stops the server and waits for it to finish.
    pub async fn shutdown(self) {
        self.token.cancel();
        self.tracker.wait().await;
    }
}

impl Drop for ReplayHandle {
    fn drop(&mut self) {
        self.token.cancel();
    }
}

async fn requests(State(state): State<Arc<ReplayState>>) -> Response {
    axum::Json(state.counts().clone()).into_response()
}

async fn answer(State(state): State<Arc<ReplayState>>, req: Request) -> Response {
    let method = req.method().as_str().to_owned();
    let path = req.uri().path().to_owned();
    let query = req.uri().query().map(str::to_owned);
    let label = match &query {
        Some(q) => format!("{method} {path}?{q}"),
        None => format!("{method} {path}"),
    };
    let found = state.lookup(&method, &path, query.as_deref());
    let mut counts = state.counts();
    counts.total += 1;
    match found {
        Some(p) => {
            counts.answered += 1;
            *counts.by_request.entry(label).or_insert(0) += 1;
            drop(counts);
            let mut resp = Response::new(HttpBody::from(p.body.clone()));
            *resp.status_mut() = p.status;
            resp.headers_mut().extend(p.headers.clone());
            resp
        }
        None => {
            counts.not_captured += 1;
            if counts.missing.len() < MISSING_LISTED {
                counts.missing.push(label.clone());
            }
            drop(counts);
            not_captured(&method, &path, query.as_deref().unwrap_or(""))
        }
    }
}

/// The 404 for a request the bundle does not hold. It carries the message under `error` and
/// `message` so every client's error reader finds it.
fn not_captured(method: &str, path: &str, query: &str) -> Response {
    let shown = if query.is_empty() { path.to_owned() } else { format!("{path}?{query}") };
    let message = format!(
        "not captured: the capture bundle does not contain {method} {shown}; the replay serves \
         only captured requests (method, path and query must match; query order does not matter)"
    );
    let body = serde_json::json!({
        "error": message,
        "message": message,
        "statusCode": 404,
        "code": "NotCaptured",
        "method": method,
        "path": path,
        "query": query,
    });
    (StatusCode::NOT_FOUND, axum::Json(body)).into_response()
}
