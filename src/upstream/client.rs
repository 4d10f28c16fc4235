//! [`UpstreamClient`]: one reqwest client per upstream with its shared [`Budget`], retries
//! for idempotent calls and request accounting. What each answer means is decided by
//! [`UpstreamClient::interpret`] (`answer.rs`); this file does the sending and the waiting.
//!
//! Clones share the connection pool, limiter, in-flight bound and pause gate; [`UpstreamClient::scoped`]
//! gives a clone with its own fresh accounting (one per run), [`UpstreamClient::recording`] one
//! that shows every answer to a [`Recorder`] and only reads.

use std::sync::{Arc, Once};
use std::time::{Duration, SystemTime};

use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use tokio::time::Instant;

use super::answer::{Answer, Endpoint, PermanentRule, Reader, UpstreamResponse};
use super::error::{UpstreamError, excerpt};
use super::limit::Budget;
use super::planned::PlannedRequest;
use super::record::{Exchange, Recorder};
use super::retry::RetryPolicy;
use super::scrub::Scrubber;
use super::stats::{RequestStats, StatsSnapshot};
use crate::config::{Secret, UpstreamLimits};

/// The `User-Agent` of every request.
const USER_AGENT: &str = concat!("mpsync/", env!("CARGO_PKG_VERSION"));

/// Installs rustls' ring crypto provider once per process (reqwest is built without one).
pub fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Another part of the process may have installed one already: that is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// Everything needed to build a client for one upstream.
#[derive(Debug, Clone)]
pub struct UpstreamSpec {
    /// Short name used in errors, logs and metrics, e.g. `mailprotector`.
    pub name: String,
    /// Base URL including the API prefix, e.g. `https://emailservice.io/api/v1`.
    pub base_url: url::Url,
    /// Rate limit, burst, concurrency and timeouts.
    pub limits: UpstreamLimits,
    /// Authentication headers, sent on every request, marked sensitive, never logged.
    pub auth_headers: Vec<(String, Secret)>,
    /// How to name the credential in 401/403 errors, e.g.
    /// `mailprotector.api_key_file (/etc/mpsync/mailprotector-api-key)`.
    pub credential: String,
    /// Retry behaviour for idempotent calls.
    pub retry: RetryPolicy,
    /// The configured secrets behind the auth headers (raw keys, and composites such as a
    /// `company+public:private` pair), scrubbed with their derived forms by
    /// [`UpstreamClient::scrubber`] together with the auth header values themselves.
    pub redact: Vec<Secret>,
}

/// The credentials of one upstream as its client derives them from the config: what it
/// sends, and what else must never be shown. Each client builds them in one place, which
/// both its [`UpstreamSpec`] and the process-wide log scrubber (`app::secret_scrubber`) use,
/// so the two hold the same derived values (Bearer header, Basic pair, Gradient token).
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    /// Authentication headers (see [`UpstreamSpec::auth_headers`]).
    pub auth_headers: Vec<(String, Secret)>,
    /// The secrets behind them (see [`UpstreamSpec::redact`]).
    pub redact: Vec<Secret>,
}

impl Credentials {
    /// Every secret: the auth header values, then the others.
    pub fn secrets(&self) -> impl Iterator<Item = &Secret> {
        self.auth_headers.iter().map(|(_, s)| s).chain(&self.redact)
    }
}

impl UpstreamSpec {
    /// Every secret of this upstream: the auth header values and [`UpstreamSpec::redact`].
    pub fn secrets(&self) -> impl Iterator<Item = &Secret> {
        self.auth_headers.iter().map(|(_, s)| s).chain(&self.redact)
    }
}

/// What every clone of one client shares.
struct Shared {
    /// How this upstream's answers are read (its name, credential text, policy, secrets).
    reader: Reader,
    /// The names of the credential headers, for [`UpstreamClient::describe`].
    auth_header_names: Vec<String>,
    http: reqwest::Client,
    budget: Budget,
}

/// A rate-limited, retrying client for one upstream. Cheap to clone.
#[derive(Clone)]
pub struct UpstreamClient {
    shared: Arc<Shared>,
    /// The base URL (with the API prefix, no trailing `/`); [`UpstreamClient::rebased`]
    /// changes it for one clone (an upstream whose host is discovered, e.g. Autotask's zone).
    base: Arc<str>,
    stats: Arc<RequestStats>,
    recorder: Option<Arc<dyn Recorder>>,
}

impl std::fmt::Debug for UpstreamClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamClient")
            .field("upstream", &self.shared.reader.name)
            .field("base", &self.base)
            .field("recording", &self.recorder.is_some())
            .finish()
    }
}

/// The body of one call.
#[derive(Clone, Copy)]
enum Body<'a> {
    None,
    Json(&'a serde_json::Value),
    Form(&'a [(&'a str, &'a str)]),
}

enum Failure {
    Status(u16, String),
    Timeout,
    Transport(String),
}

impl UpstreamClient {
    /// Builds the client: crypto provider, timeouts, sensitive auth headers, the budget.
    pub fn new(spec: UpstreamSpec) -> Result<UpstreamClient, UpstreamError> {
        Self::with_rule(spec, None)
    }

    /// [`UpstreamClient::new`] with a rule that marks some 5xx answers permanent: `rule(status,
    /// body)` returning `true` makes that answer fail at once as [`UpstreamError::Rejected`]
    /// instead of being retried (an API that answers 500 for permission and validation
    /// problems, e.g. Autotask's `{"errors": [...]}`).
    pub fn with_rule(
        spec: UpstreamSpec,
        rule: Option<PermanentRule>,
    ) -> Result<UpstreamClient, UpstreamError> {
        install_crypto_provider();
        let setup = |reason: String| UpstreamError::Setup { upstream: spec.name.clone(), reason };
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        for (name, secret) in &spec.auth_headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| setup(format!("invalid header name {name:?}")))?;
            let mut value = HeaderValue::from_str(secret.expose()).map_err(|_| {
                setup(format!(
                    "the secret from {} contains characters not allowed in an HTTP header",
                    secret.origin()
                ))
            })?;
            value.set_sensitive(true);
            headers.insert(name, value);
        }
        let http = reqwest::Client::builder()
            .connect_timeout(spec.limits.connect_timeout)
            .timeout(spec.limits.timeout)
            .default_headers(headers)
            .user_agent(USER_AGENT)
            .build()
            .map_err(|e| setup(format!("HTTP client: {e}")))?;
        let base: Arc<str> = spec.base_url.as_str().trim_end_matches('/').into();
        let stats = Arc::new(RequestStats::new(spec.name.clone()));
        let shared = Shared {
            budget: Budget::new(&spec.limits),
            auth_header_names: spec.auth_headers.iter().map(|(n, _)| n.clone()).collect(),
            http,
            reader: Reader::new(
                spec.name.clone(),
                spec.credential.clone(),
                spec.retry.clone(),
                &spec.secrets().map(Secret::expose).collect::<Vec<_>>(),
            )
            .with_rule(rule),
        };
        Ok(UpstreamClient { shared: Arc::new(shared), base, stats, recorder: None })
    }

    /// A clone (same pool, budget, accounting and secrets) that sends to `base` instead:
    /// for an upstream whose host is discovered at run time.
    pub fn rebased(&self, base: &url::Url) -> UpstreamClient {
        UpstreamClient { base: base.as_str().trim_end_matches('/').into(), ..self.clone() }
    }

    /// The base URL calls are sent below (no trailing `/`).
    pub fn base(&self) -> &str {
        &self.base
    }

    /// A clone sharing the pool and budget but counting into fresh accounting (one per run).
    pub fn scoped(&self) -> UpstreamClient {
        UpstreamClient {
            shared: self.shared.clone(),
            base: self.base.clone(),
            stats: Arc::new(RequestStats::new(self.shared.reader.name.clone())),
            recorder: self.recorder.clone(),
        }
    }

    /// A clone (same pool, budget and accounting) that shows every answer it receives to
    /// `recorder` and only reads: any other method than GET is refused before it is sent.
    pub fn recording(&self, recorder: Arc<dyn Recorder>) -> UpstreamClient {
        UpstreamClient { recorder: Some(recorder), ..self.clone() }
    }

    /// Every configured secret of this client with its derived forms (see [`Scrubber`]).
    pub fn scrubber(&self) -> &Scrubber {
        &self.shared.reader.scrubber
    }

    /// The upstream's name.
    pub fn name(&self) -> &str {
        &self.shared.reader.name
    }

    /// The request accounting of this scope so far.
    pub fn stats(&self) -> StatsSnapshot {
        self.stats.snapshot()
    }

    /// GETs `endpoint` with `query`; retried on transient failures.
    pub async fn get(
        &self,
        endpoint: &Endpoint,
        query: &[(&str, String)],
    ) -> Result<UpstreamResponse, UpstreamError> {
        self.send(endpoint, query, None, true).await
    }

    /// The request [`UpstreamClient::send`] would make for the same arguments, credential
    /// header values redacted: the same URL, the headers this client sets (`Accept`, the
    /// credential headers, `Content-Type` with a JSON body, `User-Agent`) and the body.
    pub fn describe(
        &self,
        endpoint: &Endpoint,
        query: &[(&str, String)],
        json: Option<&serde_json::Value>,
    ) -> PlannedRequest {
        let mut url = format!("{}{}", self.base, endpoint.path);
        if !query.is_empty() {
            // The encoding reqwest's `.query()` uses (application/x-www-form-urlencoded).
            let mut q = url::form_urlencoded::Serializer::new(String::new());
            for (k, v) in query {
                q.append_pair(k, v);
            }
            url = format!("{url}?{}", q.finish());
        }
        let mut headers = vec![("Accept".to_owned(), "application/json".to_owned())];
        for name in &self.shared.auth_header_names {
            headers.push((name.clone(), super::REDACTED.to_owned()));
        }
        if json.is_some() {
            headers.push(("Content-Type".to_owned(), "application/json".to_owned()));
        }
        headers.push(("User-Agent".to_owned(), USER_AGENT.to_owned()));
        PlannedRequest { method: endpoint.method.to_string(), url, headers, body: json.cloned() }
    }

    /// Sends one call. Only `idempotent` calls are retried (429 included); others fail on
    /// the first transient failure.
    pub async fn send(
        &self,
        endpoint: &Endpoint,
        query: &[(&str, String)],
        json: Option<&serde_json::Value>,
        idempotent: bool,
    ) -> Result<UpstreamResponse, UpstreamError> {
        let body = json.map_or(Body::None, Body::Json);
        self.dispatch(endpoint, query, body, None, idempotent).await
    }

    /// [`UpstreamClient::send`] with `Authorization: Bearer <token>` (marked sensitive, never
    /// logged) for an upstream whose credential is a short-lived token fetched at run time
    /// (HaloPSA): the header cannot be one of the client's fixed auth headers. The caller cuts
    /// the token out of errors (see [`UpstreamError::scrubbed`]).
    pub async fn send_bearer(
        &self,
        endpoint: &Endpoint,
        query: &[(&str, String)],
        json: Option<&serde_json::Value>,
        token: &Secret,
        idempotent: bool,
    ) -> Result<UpstreamResponse, UpstreamError> {
        let body = json.map_or(Body::None, Body::Json);
        self.dispatch(endpoint, query, body, Some(token), idempotent).await
    }

    /// POSTs `form` as `application/x-www-form-urlencoded` (an OAuth token request) with
    /// `query`; retried like any call when `idempotent`. The form's values are never logged.
    pub async fn post_form(
        &self,
        endpoint: &Endpoint,
        query: &[(&str, String)],
        form: &[(&str, &str)],
        idempotent: bool,
    ) -> Result<UpstreamResponse, UpstreamError> {
        self.dispatch(endpoint, query, Body::Form(form), None, idempotent).await
    }

    async fn dispatch(
        &self,
        endpoint: &Endpoint,
        query: &[(&str, String)],
        body: Body<'_>,
        bearer: Option<&Secret>,
        idempotent: bool,
    ) -> Result<UpstreamResponse, UpstreamError> {
        let sh = &self.shared;
        let (name, policy) = (&sh.reader.name, &sh.reader.retry);
        let label = endpoint.label();
        if self.recorder.is_some() && endpoint.method != Method::GET {
            // A capture is read-only by construction, whatever the caller asks.
            return Err(UpstreamError::Setup {
                upstream: name.clone(),
                reason: format!(
                    "this client records a capture and only reads: {label} was refused before \
                     it was sent"
                ),
            });
        }
        let deadline = Instant::now() + policy.deadline;
        let (mut attempts, mut failures, mut limited) = (0u32, 0u32, 0u32);
        loop {
            let (permit, waited) = sh.budget.acquire().await;
            self.stats.record_wait(waited);
            attempts += 1;
            self.stats.record_request(&label, attempts > 1);
            let outcome = self.attempt(endpoint, query, body, bearer).await;
            drop(permit);
            if let (Some(recorder), Ok((status, headers, body))) = (&self.recorder, &outcome) {
                recorder.record(&Exchange {
                    upstream: name,
                    method: &endpoint.method,
                    path: &endpoint.path,
                    query,
                    status: *status,
                    headers,
                    body,
                });
            }
            let failure = match outcome {
                Err(f) => f,
                Ok((status, headers, body)) => {
                    match self.interpret(endpoint, status, headers, body, SystemTime::now()) {
                        Answer::Success { response, secret_cut } => {
                            sh.budget.gate().note_success();
                            if secret_cut {
                                tracing::warn!(upstream = %name, endpoint = %label,
                                    "the answer repeated a configured secret; it was cut out");
                            }
                            return Ok(response);
                        }
                        Answer::RateLimited { retry_after } => {
                            self.stats.record_rate_limited();
                            limited += 1;
                            let n = sh.budget.gate().note_rate_limited();
                            let pause = retry_after
                                .unwrap_or_else(|| policy.rate_limit_pause(n, rand::random()));
                            sh.budget.gate().pause_for(pause);
                            tracing::warn!(upstream = %name, endpoint = %label, pause_ms = pause.as_millis() as u64,
                                "rate limited (429); pausing every call to this upstream");
                            if !idempotent
                                || limited >= policy.max_rate_limited_attempts
                                || Instant::now() + pause > deadline
                            {
                                return Err(UpstreamError::RateLimited {
                                    upstream: name.clone(),
                                    endpoint: label,
                                    attempts,
                                });
                            }
                            continue;
                        }
                        Answer::Transient { status, message } => Failure::Status(status, message),
                        Answer::Fatal(e) => return Err(e),
                    }
                }
            };
            failures += 1;
            let delay = policy.backoff(failures, rand::random());
            if !idempotent || failures >= policy.max_attempts || Instant::now() + delay > deadline {
                return Err(self.exhausted(label, attempts, failure));
            }
            tracing::debug!(upstream = %name, endpoint = %label, attempt = attempts, delay_ms = delay.as_millis() as u64,
                "transient failure; retrying");
            tokio::time::sleep(delay).await;
        }
    }

    async fn attempt(
        &self,
        endpoint: &Endpoint,
        query: &[(&str, String)],
        body: Body<'_>,
        bearer: Option<&Secret>,
    ) -> Result<(u16, HeaderMap, bytes::Bytes), Failure> {
        let url = format!("{}{}", self.base, endpoint.path);
        let mut req = self.shared.http.request(endpoint.method.clone(), url);
        if !query.is_empty() {
            req = req.query(query);
        }
        match body {
            Body::None => {}
            Body::Json(v) => req = req.json(v),
            Body::Form(pairs) => {
                let mut f = url::form_urlencoded::Serializer::new(String::new());
                for (k, v) in pairs {
                    f.append_pair(k, v);
                }
                req =
                    req.header(CONTENT_TYPE, "application/x-www-form-urlencoded").body(f.finish());
            }
        }
        if let Some(token) = bearer {
            let mut value = HeaderValue::from_str(&format!("Bearer {}", token.expose()))
                .map_err(|_| Failure::Transport("the access token is not a valid header".into()))?;
            value.set_sensitive(true);
            req = req.header(AUTHORIZATION, value);
        }
        let resp = req.send().await.map_err(|e| self.transport(e))?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.bytes().await.map_err(|e| self.transport(e))?;
        Ok((status, headers, body))
    }

    fn transport(&self, e: reqwest::Error) -> Failure {
        let timeout = e.is_timeout();
        let e = e.without_url();
        let mut detail = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            detail.push_str(": ");
            detail.push_str(&s.to_string());
            source = s.source();
        }
        let detail = excerpt(detail.as_bytes(), &self.shared.reader.scrubber, 300);
        if timeout { Failure::Timeout } else { Failure::Transport(detail) }
    }

    fn exhausted(&self, endpoint: String, attempts: u32, last: Failure) -> UpstreamError {
        let upstream = self.shared.reader.name.clone();
        match last {
            Failure::Timeout => UpstreamError::Timeout { upstream, endpoint, attempts },
            Failure::Status(status, msg) => {
                let reason = StatusCode::from_u16(status)
                    .ok()
                    .and_then(|s| s.canonical_reason())
                    .unwrap_or("");
                UpstreamError::Unavailable {
                    upstream,
                    endpoint,
                    attempts,
                    detail: format!("last answer {status} {reason}: {msg}"),
                }
            }
            Failure::Transport(detail) => {
                UpstreamError::Unavailable { upstream, endpoint, attempts, detail }
            }
        }
    }

    /// What one answer to `endpoint` means (see [`Answer`]): the one reading of status,
    /// headers and body that [`UpstreamClient::send`] acts on. Pure: `Retry-After` is read
    /// relative to `now`; the caller does any waiting and logging.
    pub fn interpret(
        &self,
        endpoint: &Endpoint,
        status: u16,
        headers: HeaderMap,
        body: bytes::Bytes,
        now: SystemTime,
    ) -> Answer {
        self.shared.reader.interpret(endpoint, status, headers, body, now)
    }

    /// `text` from this upstream with every form of every configured secret replaced by
    /// `<redacted>`: use it on any upstream string kept or shown verbatim. (Bodies are cut
    /// already; this also catches an echo hidden by escapes that parsing decoded.)
    pub fn scrub(&self, text: &str) -> String {
        self.shared.reader.scrub(text)
    }

    /// A [`UpstreamError::BadResponse`] for `endpoint` with a short, redacted body excerpt.
    pub fn bad_response(
        &self,
        endpoint: &str,
        reason: impl Into<String>,
        body: &[u8],
    ) -> UpstreamError {
        self.shared.reader.bad_response(endpoint, reason.into(), body)
    }

    /// Parses a response body as JSON into `T`; a parse failure is a `BadResponse`.
    pub fn parse_json<T: DeserializeOwned>(
        &self,
        resp: &UpstreamResponse,
    ) -> Result<T, UpstreamError> {
        self.shared.reader.parse_json(resp)
    }

    /// How long the pause gate stays closed from now (zero when open); for tests and health.
    pub fn paused_for(&self) -> Duration {
        self.shared
            .budget
            .gate()
            .closed_until()
            .map(|u| u - Instant::now())
            .unwrap_or(Duration::ZERO)
    }
}
