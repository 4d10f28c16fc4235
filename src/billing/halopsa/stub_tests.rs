//! A scripted axum server on 127.0.0.1 for the HaloPSA tests: the token endpoint issues
//! numbered tokens unless the script answers it, every other call is the script's.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, Method as HttpMethod, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::config::{HalopsaConfig, Secret, UpstreamLimits};
use crate::upstream::RetryPolicy;

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub query: String,
    pub auth: Option<String>,
    pub body: String,
}

type Script = Arc<dyn Fn(&Seen, usize) -> Response + Send + Sync>;

pub struct Stub {
    pub base: url::Url,
    pub seen: Arc<Mutex<Vec<Seen>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Stub {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Stub {
    /// The requests to `path` (API calls below `/api`, or `/auth/token`).
    pub fn to(&self, path: &str) -> Vec<Seen> {
        self.seen.lock().unwrap().iter().filter(|s| s.path == path).cloned().collect()
    }
}

/// A server answering the token endpoint with `sim.token-000N` (N counting from 1, an hour
/// each) unless `script` answers it, and every API call with `script(request, n)` where `n`
/// counts the calls to that path from 0.
pub async fn stub(script: impl Fn(&Seen, usize) -> Response + Send + Sync + 'static) -> Stub {
    let script: Script = Arc::new(script);
    let seen: Arc<Mutex<Vec<Seen>>> = Arc::new(Mutex::new(Vec::new()));
    let tokens = Arc::new(AtomicUsize::new(0));
    let s = seen.clone();
    let app = axum::Router::new().fallback(
        move |method: HttpMethod, uri: Uri, headers: HeaderMap, body: String| {
            let (script, seen, tokens) = (script.clone(), s.clone(), tokens.clone());
            async move {
                let req = Seen {
                    method: method.to_string(),
                    path: uri.path().to_owned(),
                    query: uri.query().unwrap_or("").to_owned(),
                    auth: headers
                        .get("authorization")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned),
                    body,
                };
                let n = {
                    let mut all = seen.lock().unwrap();
                    all.push(req.clone());
                    all.iter().filter(|r| r.path == req.path).count() - 1
                };
                let answer = script(&req, n);
                if req.path == "/auth/token" && answer.status() == StatusCode::IM_A_TEAPOT {
                    let k = tokens.fetch_add(1, Ordering::SeqCst) + 1;
                    return axum::Json(json!({"access_token": format!("sim.token-{k:04}"),
                        "token_type": "Bearer", "expires_in": 3600}))
                    .into_response();
                }
                answer
            }
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Stub { base: format!("http://{addr}").parse().unwrap(), seen, task }
}

/// "Let the stub issue a token" (for the token endpoint).
pub fn default_token() -> Response {
    StatusCode::IM_A_TEAPOT.into_response()
}

pub fn ok(v: Value) -> Response {
    axum::Json(v).into_response()
}

pub fn status(code: u16, body: &str) -> Response {
    (StatusCode::from_u16(code).unwrap(), body.to_owned()).into_response()
}

pub const SECRET: &str = "halo-client-secret-0042";

pub fn config(base: &url::Url) -> HalopsaConfig {
    HalopsaConfig {
        base_url: base.clone(),
        auth_url: base.join("auth").unwrap(),
        tenant: Some("acme".into()),
        client_id: "mpsync-app".into(),
        client_secret: Secret::new(SECRET, "/etc/mpsync/halopsa-client-secret"),
        scope: None,
        limits: UpstreamLimits {
            rate_limit: 1000.0,
            burst: 100,
            max_in_flight: 4,
            timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(5),
        },
    }
}

pub fn fast() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 3,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(5),
        default_rate_limit_pause: Duration::from_millis(5),
        max_rate_limit_pause: Duration::from_millis(50),
        ..RetryPolicy::default()
    }
}
