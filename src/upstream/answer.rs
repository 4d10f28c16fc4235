//! What an upstream's answer means, decided in one pure function: [`UpstreamClient::interpret`]
//! turns a status, headers and body into an [`Answer`] (a usable body, a pause, a retry, or a
//! typed error). `send` acts on it; the fuzz targets call it too, so they test this code and
//! not a copy. Nothing here does I/O or reads a clock: "now" is passed in.

use std::borrow::Cow;
use std::time::{Duration, SystemTime};

use reqwest::header::{HeaderMap, RETRY_AFTER};
use serde::de::DeserializeOwned;

use super::client::{Endpoint, UpstreamClient, UpstreamResponse};
use super::error::{UpstreamError, error_message, excerpt};
use super::retry::{parse_retry_after, status_is_transient};

/// What one answer means for the call that received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// 2xx: the answer to hand to the caller.
    Success {
        /// The answer, every configured secret (of at least
        /// [`MIN_BODY_SECRET_LEN`](super::MIN_BODY_SECRET_LEN) characters) cut from its body.
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

impl UpstreamClient {
    /// Reads one answer to `endpoint`: the status decides the path, `Retry-After` is read
    /// relative to `now` and clamped, error bodies become redacted one-line messages, and a
    /// 2xx body loses every configured secret. Pure: the caller does the waiting and logging.
    pub fn interpret(
        &self,
        endpoint: &Endpoint,
        status: u16,
        headers: HeaderMap,
        body: bytes::Bytes,
        now: SystemTime,
    ) -> Answer {
        let sh = &self.shared;
        match status {
            200..=299 => {
                // Whatever a caller keeps or shows of the answer (names, unknown statuses, a
                // serde error quoting a value) can then never carry an echoed secret.
                let (body, secret_cut) = match sh.body_scrubber.scrub_bytes(&body) {
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
                    .map(|d| sh.retry.clamp_retry_after(d));
                Answer::RateLimited { retry_after }
            }
            s if status_is_transient(s) => {
                Answer::Transient { status, message: error_message(&body, &sh.scrubber) }
            }
            _ => Answer::Fatal(self.classify(endpoint, status, &body)),
        }
    }

    /// The error of a final (not retried) non-2xx answer.
    fn classify(&self, endpoint: &Endpoint, status: u16, body: &[u8]) -> UpstreamError {
        let sh = &self.shared;
        let (upstream, label) = (sh.name.clone(), endpoint.label());
        let message = error_message(body, &sh.scrubber);
        match status {
            401 => UpstreamError::Unauthorized {
                upstream,
                endpoint: label,
                credential: sh.credential.clone(),
                message,
            },
            403 => UpstreamError::Forbidden {
                upstream,
                endpoint: label,
                credential: sh.credential.clone(),
                message,
            },
            404 => UpstreamError::NotFound {
                upstream,
                endpoint: label,
                path: endpoint.path.clone(),
                message,
            },
            400..=499 => UpstreamError::Rejected { upstream, endpoint: label, status, message },
            _ => self.bad_response(&label, format!("unexpected HTTP status {status}"), body),
        }
    }

    /// `text` from this upstream with every form of every configured secret replaced by
    /// `<redacted>`: use it on any upstream string kept or shown verbatim. (Bodies are cut
    /// already; this also catches an echo hidden by escapes that parsing decoded.)
    pub fn scrub(&self, text: &str) -> String {
        self.shared.scrubber.scrub(text).into_owned()
    }

    /// A [`UpstreamError::BadResponse`] for `endpoint` with a short, redacted body excerpt.
    pub fn bad_response(
        &self,
        endpoint: &str,
        reason: impl Into<String>,
        body: &[u8],
    ) -> UpstreamError {
        // The reason may quote the body (serde names the value it could not read), and a
        // server can echo a credential back: redact it like the excerpt.
        let reason = self.scrub(&reason.into());
        UpstreamError::BadResponse {
            upstream: self.shared.name.clone(),
            endpoint: endpoint.to_owned(),
            reason,
            excerpt: excerpt(body, &self.shared.scrubber, 120),
        }
    }

    /// Parses a response body as JSON into `T`; a parse failure is a `BadResponse`.
    pub fn parse_json<T: DeserializeOwned>(
        &self,
        resp: &UpstreamResponse,
    ) -> Result<T, UpstreamError> {
        serde_json::from_slice(&resp.body).map_err(|e| {
            self.bad_response(
                &resp.endpoint,
                format!("cannot parse the JSON body: {e}"),
                &resp.body,
            )
        })
    }
}

#[cfg(test)]
#[path = "answer_tests.rs"]
mod tests;
