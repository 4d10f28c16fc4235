//! What an upstream's answer means, decided in one pure function: [`UpstreamClient::interpret`]
//! (which asks this module's reader) turns a status, headers and body into an [`Answer`] (a
//! usable body, a pause, a retry, or a typed error). `send` acts on it; the fuzz targets call
//! it too, so they test this code and not a copy. Nothing here does I/O or reads a clock:
//! "now" is passed in. Also the types of a call: its [`Endpoint`] and a 2xx
//! [`UpstreamResponse`].
//!
//! [`UpstreamClient::interpret`]: super::UpstreamClient::interpret

use std::borrow::Cow;
use std::time::{Duration, SystemTime};

use reqwest::Method;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use serde::de::DeserializeOwned;

use super::error::{UpstreamError, error_fields, error_message, excerpt};
use super::retry::{RetryPolicy, parse_retry_after, status_is_transient};
use super::scrub::Scrubber;

/// Secrets shorter than this are cut from error text but not from the data bodies a client
/// hands out (nor from log lines): there they would cut ordinary words and numbers out of
/// names and counts. No upstream issues keys this short.
pub const MIN_BODY_SECRET_LEN: usize = 8;

/// Which 5xx answers are permanent for an upstream (see
/// [`UpstreamClient::with_rule`](super::UpstreamClient::with_rule)): `true` fails the call at
/// once instead of retrying it.
pub type PermanentRule = fn(status: u16, body: &[u8]) -> bool;

/// One endpoint call: the concrete path and its route pattern for accounting and errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// HTTP method.
    pub method: Method,
    /// The path below the base URL, starting with `/`, never ending with `/`.
    pub path: String,
    /// The route pattern with ids replaced, e.g. `/domains/{id}/user_groups`.
    pub pattern: &'static str,
}

impl Endpoint {
    /// A GET of `path`, accounted under `pattern`.
    pub fn get(path: impl Into<String>, pattern: &'static str) -> Endpoint {
        Endpoint::new(Method::GET, path, pattern)
    }

    /// A call with `method` to `path`, accounted under `pattern`.
    pub fn new(method: Method, path: impl Into<String>, pattern: &'static str) -> Endpoint {
        Endpoint { method, path: path.into(), pattern }
    }

    /// `"GET /domains/{id}/user_groups"`: the accounting and error label.
    pub fn label(&self) -> String {
        format!("{} {}", self.method, self.pattern)
    }
}

/// A successful (2xx) answer, body fully read, every configured secret cut out of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamResponse {
    /// HTTP status.
    pub status: u16,
    /// Response headers.
    pub headers: HeaderMap,
    /// The body (empty for 204), with every form of every configured secret (of at least
    /// [`MIN_BODY_SECRET_LEN`] characters) replaced by `<redacted>`.
    pub body: bytes::Bytes,
    /// The endpoint label it answered.
    pub endpoint: String,
}

/// What one answer means for the call that received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// 2xx: the answer to hand to the caller.
    Success {
        /// The answer, every configured secret (of at least
        /// [`MIN_BODY_SECRET_LEN`] characters) cut from its body.
        response: UpstreamResponse,
        /// Whether the body repeated a configured secret (it was cut; worth a warning).
        secret_cut: bool,
    },
    /// 429: every call to this upstream pauses, then the call is tried again.
    RateLimited {
        /// The server's `Retry-After`, clamped to the policy's longest pause; `None` when it
        /// is missing or unreadable (the client then backs off on its own).
        retry_after: Option<Duration>,
    },
    /// 408 or 5xx: worth trying again after a backoff.
    Transient {
        /// The HTTP status.
        status: u16,
        /// The answer's own words, one line, redacted: reported if no attempt succeeds.
        message: String,
    },
    /// Anything else (401, 403, 404, another 4xx, an unexpected status): the call fails with
    /// this error; trying again cannot help.
    Fatal(UpstreamError),
}

/// How one upstream's answers are read: its name and credential text (named in errors), its
/// retry policy (which clamps `Retry-After`) and its secrets (cut from whatever is shown).
pub(super) struct Reader {
    /// The upstream's name, e.g. `mailprotector`.
    pub(super) name: String,
    /// How to name the credential in 401/403 errors.
    credential: String,
    /// The retry policy of the upstream's client.
    pub(super) retry: RetryPolicy,
    /// Every secret with its derived forms: errors and verbatim text.
    pub(super) scrubber: Scrubber,
    /// The secrets long enough to cut from data bodies (see [`MIN_BODY_SECRET_LEN`]).
    body_scrubber: Scrubber,
    /// Which 5xx answers fail at once instead of being retried (none by default).
    permanent: Option<PermanentRule>,
}

impl Reader {
    /// The reader of an upstream called `name` whose client holds `secrets`.
    pub(super) fn new(
        name: String,
        credential: String,
        retry: RetryPolicy,
        secrets: &[&str],
    ) -> Reader {
        let scrubber = Scrubber::new(secrets.iter().copied());
        let body_scrubber = Scrubber::new(
            secrets.iter().copied().filter(|s| s.trim().len() >= MIN_BODY_SECRET_LEN),
        );
        Reader { name, credential, retry, scrubber, body_scrubber, permanent: None }
    }

    /// The same reader with a rule marking some 5xx answers permanent.
    pub(super) fn with_rule(self, permanent: Option<PermanentRule>) -> Reader {
        Reader { permanent, ..self }
    }

    /// See [`UpstreamClient::interpret`](super::UpstreamClient::interpret): the status
    /// decides the path, `Retry-After` is read relative to `now` and clamped, error bodies
    /// become redacted one-line messages, and a 2xx body loses every configured secret.
    pub(super) fn interpret(
        &self,
        endpoint: &Endpoint,
        status: u16,
        headers: HeaderMap,
        body: bytes::Bytes,
        now: SystemTime,
    ) -> Answer {
        match status {
            200..=299 => {
                // Whatever a caller keeps or shows of the answer (names, unknown statuses, a
                // serde error quoting a value) can then never carry an echoed secret.
                let (body, secret_cut) = match self.body_scrubber.scrub_bytes(&body) {
                    Cow::Borrowed(_) => (body, false),
                    Cow::Owned(cut) => (bytes::Bytes::from(cut), true),
                };
                let response =
                    UpstreamResponse { status, headers, body, endpoint: endpoint.label() };
                Answer::Success { response, secret_cut }
            }
            429 => {
                let retry_after = headers
                    .get(RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| parse_retry_after(v, now))
                    .map(|d| self.retry.clamp_retry_after(d));
                Answer::RateLimited { retry_after }
            }
            s if status_is_transient(s) && !self.permanent.is_some_and(|p| p(s, &body)) => {
                Answer::Transient { status, message: error_message(&body, &self.scrubber) }
            }
            _ => Answer::Fatal(self.classify(endpoint, status, &body)),
        }
    }

    /// The error of a final (not retried) non-2xx answer.
    fn classify(&self, endpoint: &Endpoint, status: u16, body: &[u8]) -> UpstreamError {
        let (upstream, label) = (self.name.clone(), endpoint.label());
        let message = error_message(body, &self.scrubber);
        match status {
            401 => UpstreamError::Unauthorized {
                upstream,
                endpoint: label,
                credential: self.credential.clone(),
                message,
            },
            403 => UpstreamError::Forbidden {
                upstream,
                endpoint: label,
                credential: self.credential.clone(),
                message,
            },
            404 => UpstreamError::NotFound {
                upstream,
                endpoint: label,
                path: endpoint.path.clone(),
                message,
            },
            // 5xx only reach here when the upstream's rule made them permanent.
            400..=599 => UpstreamError::Rejected {
                upstream,
                endpoint: label,
                status,
                message,
                fields: error_fields(body),
            },
            _ => self.bad_response(&label, format!("unexpected HTTP status {status}"), body),
        }
    }

    /// `text` with every form of every configured secret replaced by `<redacted>`.
    pub(super) fn scrub(&self, text: &str) -> String {
        self.scrubber.scrub(text).into_owned()
    }

    /// A [`UpstreamError::BadResponse`] for `endpoint` with a short, redacted body excerpt.
    pub(super) fn bad_response(
        &self,
        endpoint: &str,
        reason: String,
        body: &[u8],
    ) -> UpstreamError {
        // The reason may quote the body (serde names the value it could not read), and a
        // server can echo a credential back: redact it like the excerpt.
        UpstreamError::BadResponse {
            upstream: self.name.clone(),
            endpoint: endpoint.to_owned(),
            reason: self.scrub(&reason),
            excerpt: excerpt(body, &self.scrubber, 120),
        }
    }

    /// Parses a response body as JSON into `T`; a parse failure is a `BadResponse`.
    pub(super) fn parse_json<T: DeserializeOwned>(
        &self,
        resp: &UpstreamResponse,
    ) -> Result<T, UpstreamError> {
        serde_json::from_slice(&resp.body).map_err(|e| {
            let reason = format!("cannot parse the JSON body: {e}");
            self.bad_response(&resp.endpoint, reason, &resp.body)
        })
    }
}

#[cfg(test)]
#[path = "answer_tests.rs"]
mod tests;
