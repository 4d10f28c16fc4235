//! The typed error of every upstream call, classified by what the operator must do.
//!
//! Each variant names the upstream and the endpoint as a route pattern (ids, never secrets),
//! says whether a retry could help, and maps to one exit status.

use super::scrub::Scrubber;
use crate::exit::{Exit, ExitStatus};

/// Why a call to an upstream API failed, after any retries.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpstreamError {
    /// 401: the key is wrong or was revoked.
    #[error(
        "{upstream} rejected the credentials on {endpoint} (401: {message}); check {credential}: \
         the key is wrong, expired or was revoked"
    )]
    Unauthorized {
        /// The upstream's name, e.g. `mailprotector`.
        upstream: String,
        /// The route pattern, e.g. `GET /resellers/{id}`.
        endpoint: String,
        /// Which key or setting the operator should check.
        credential: String,
        /// The upstream's own words (redacted, truncated).
        message: String,
    },
    /// 403: the key is valid but lacks the permission or belongs to another scope.
    #[error(
        "{upstream} refused {endpoint} (403: {message}); the key in {credential} lacks the \
         permission or belongs to another scope"
    )]
    Forbidden {
        /// The upstream's name.
        upstream: String,
        /// The route pattern.
        endpoint: String,
        /// Which key or setting the operator should check.
        credential: String,
        /// The upstream's own words.
        message: String,
    },
    /// 404: the id (or the route) does not exist.
    #[error(
        "{upstream} has no such resource at {endpoint} (404: {message}); check the configured ids"
    )]
    NotFound {
        /// The upstream's name.
        upstream: String,
        /// The route pattern (the concrete id is in `path`).
        endpoint: String,
        /// The path that was requested (ids only, no secrets).
        path: String,
        /// The upstream's own words.
        message: String,
    },
    /// 429 on every attempt: the upstream kept refusing for rate reasons.
    #[error(
        "{upstream} kept answering 429 (rate limited) on {endpoint} after {attempts} attempts; \
         lower the configured rate_limit or try later"
    )]
    RateLimited {
        /// The upstream's name.
        upstream: String,
        /// The route pattern.
        endpoint: String,
        /// Attempts made.
        attempts: u32,
    },
    /// 5xx or transport failures on every attempt.
    #[error(
        "{upstream} is unavailable: {endpoint} failed after {attempts} attempts ({detail}); \
         check the base_url and the network, or try later"
    )]
    Unavailable {
        /// The upstream's name.
        upstream: String,
        /// The route pattern.
        endpoint: String,
        /// Attempts made.
        attempts: u32,
        /// The last failure (status or transport error).
        detail: String,
    },
    /// Every attempt timed out.
    #[error(
        "{upstream} did not answer {endpoint} in time after {attempts} attempts; check the \
         network or raise the timeout"
    )]
    Timeout {
        /// The upstream's name.
        upstream: String,
        /// The route pattern.
        endpoint: String,
        /// Attempts made.
        attempts: u32,
    },
    /// The answer could not be understood (malformed JSON, wrong types, missing fields).
    #[error(
        "{upstream} sent a malformed response on {endpoint}: {reason} (body starts: {excerpt:?}); \
         try again later, and if it persists report it: the API may have changed"
    )]
    BadResponse {
        /// The upstream's name.
        upstream: String,
        /// The route pattern.
        endpoint: String,
        /// What was wrong.
        reason: String,
        /// A short, redacted excerpt of the body.
        excerpt: String,
    },
    /// 400, 422 or another unexpected 4xx: the upstream refused the request itself.
    #[error(
        "{upstream} refused the request {endpoint} ({status}: {message}); this is a bug in mpsync or an API change"
    )]
    Rejected {
        /// The upstream's name.
        upstream: String,
        /// The route pattern.
        endpoint: String,
        /// The HTTP status.
        status: u16,
        /// The upstream's own words.
        message: String,
        /// The fields the upstream named as wrong (`errors[].field` of a ConnectWise §4
        /// body), in its order; empty when it named none.
        fields: Vec<String>,
    },
    /// The client could not be set up (e.g. a key that is not a valid header value).
    #[error("cannot set up the {upstream} client: {reason}")]
    Setup {
        /// The upstream's name.
        upstream: String,
        /// What is wrong and where to fix it.
        reason: String,
    },
}

impl UpstreamError {
    /// Whether trying the same call again later could succeed (rate limits, outages,
    /// timeouts), as opposed to needing the operator (keys, ids, malformed data).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            UpstreamError::RateLimited { .. }
                | UpstreamError::Unavailable { .. }
                | UpstreamError::Timeout { .. }
        )
    }

    /// The route pattern the error concerns, if any.
    pub fn endpoint(&self) -> Option<&str> {
        match self {
            UpstreamError::Unauthorized { endpoint, .. }
            | UpstreamError::Forbidden { endpoint, .. }
            | UpstreamError::NotFound { endpoint, .. }
            | UpstreamError::RateLimited { endpoint, .. }
            | UpstreamError::Unavailable { endpoint, .. }
            | UpstreamError::Timeout { endpoint, .. }
            | UpstreamError::BadResponse { endpoint, .. }
            | UpstreamError::Rejected { endpoint, .. } => Some(endpoint),
            UpstreamError::Setup { .. } => None,
        }
    }

    /// A short machine-readable kind, for JSON output and metrics labels.
    pub fn kind(&self) -> &'static str {
        match self {
            UpstreamError::Unauthorized { .. } => "unauthorized",
            UpstreamError::Forbidden { .. } => "forbidden",
            UpstreamError::NotFound { .. } => "not_found",
            UpstreamError::RateLimited { .. } => "rate_limited",
            UpstreamError::Unavailable { .. } => "unavailable",
            UpstreamError::Timeout { .. } => "timeout",
            UpstreamError::BadResponse { .. } => "bad_response",
            UpstreamError::Rejected { .. } => "rejected",
            UpstreamError::Setup { .. } => "setup",
        }
    }
}

impl UpstreamError {
    /// The same error with every form of every secret `scrub` holds cut out of its text: for
    /// a secret the client did not know when it was built (a HaloPSA access token).
    pub fn scrubbed(self, scrub: &Scrubber) -> UpstreamError {
        let s = |t: String| scrub.scrub(&t).into_owned();
        match self {
            UpstreamError::Unauthorized { upstream, endpoint, credential, message } => {
                UpstreamError::Unauthorized { upstream, endpoint, credential, message: s(message) }
            }
            UpstreamError::Forbidden { upstream, endpoint, credential, message } => {
                UpstreamError::Forbidden { upstream, endpoint, credential, message: s(message) }
            }
            UpstreamError::NotFound { upstream, endpoint, path, message } => {
                UpstreamError::NotFound { upstream, endpoint, path, message: s(message) }
            }
            UpstreamError::Unavailable { upstream, endpoint, attempts, detail } => {
                UpstreamError::Unavailable { upstream, endpoint, attempts, detail: s(detail) }
            }
            UpstreamError::BadResponse { upstream, endpoint, reason, excerpt } => {
                UpstreamError::BadResponse {
                    upstream,
                    endpoint,
                    reason: s(reason),
                    excerpt: s(excerpt),
                }
            }
            UpstreamError::Rejected { upstream, endpoint, status, message, fields } => {
                UpstreamError::Rejected { upstream, endpoint, status, message: s(message), fields }
            }
            UpstreamError::Setup { upstream, reason } => {
                UpstreamError::Setup { upstream, reason: s(reason) }
            }
            e @ (UpstreamError::RateLimited { .. } | UpstreamError::Timeout { .. }) => e,
        }
    }
}

impl ExitStatus for UpstreamError {
    fn exit(&self) -> Exit {
        match self {
            UpstreamError::Unauthorized { .. }
            | UpstreamError::Forbidden { .. }
            | UpstreamError::NotFound { .. }
            | UpstreamError::RateLimited { .. }
            | UpstreamError::Unavailable { .. }
            | UpstreamError::Timeout { .. } => Exit::Unavailable,
            UpstreamError::BadResponse { .. } => Exit::DataErr,
            UpstreamError::Rejected { .. } => Exit::Software,
            UpstreamError::Setup { .. } => Exit::Config,
        }
    }
}

/// Extracts a human message from an error body: a bare JSON string; JSON `error` (with its
/// OAuth `error_description`), then `message` (or .NET's `Message`), then `errors` (array or
/// object); a model-binding map of field → messages (`{"[0].qty":["Could not convert…"]}`);
/// else the raw text. Never fails; the result is collapsed to one line and truncated. Every
/// form of every secret `scrub` holds is replaced by `<redacted>`, after the JSON is decoded
/// (so an escaped echo is caught as well).
pub(super) fn error_message(body: &[u8], scrub: &Scrubber) -> String {
    let text = String::from_utf8_lossy(body);
    let from_json =
        serde_json::from_str::<serde_json::Value>(&text).ok().and_then(|v| json_message(&v));
    let msg = from_json.unwrap_or_else(|| text.into_owned());
    let msg = excerpt(msg.as_bytes(), scrub, 200);
    if msg.is_empty() { "no message".to_owned() } else { msg }
}

/// The message a JSON error body carries (see [`error_message`]), if it has one.
fn json_message(v: &serde_json::Value) -> Option<String> {
    use serde_json::Value;
    let text = |v: &Value| v.as_str().map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned);
    let obj = match v {
        Value::String(s) => return Some(s.clone()).filter(|s| !s.trim().is_empty()),
        Value::Object(o) => o,
        _ => return None,
    };
    if let Some(e) = obj.get("error").and_then(text) {
        return Some(match obj.get("error_description").and_then(text) {
            Some(d) => format!("{e}: {d}"),
            None => e,
        });
    }
    for key in ["error", "message", "Message"] {
        match obj.get(key) {
            Some(Value::String(s)) if !s.trim().is_empty() => return Some(s.clone()),
            Some(Value::Object(inner)) => {
                if let Some(Value::String(s)) = inner.get("message") {
                    return Some(s.clone());
                }
            }
            _ => {}
        }
    }
    let listed = |o: &serde_json::Map<String, Value>| {
        o.iter()
            .map(|(k, e)| match e {
                Value::Array(a) if a.iter().all(Value::is_string) => {
                    let msgs: Vec<&str> = a.iter().filter_map(Value::as_str).collect();
                    if k.is_empty() { msgs.join(", ") } else { format!("{k}: {}", msgs.join(", ")) }
                }
                e => format!("{k}: {e}"),
            })
            .collect::<Vec<_>>()
            .join("; ")
    };
    match obj.get("errors") {
        Some(Value::Array(a)) if !a.is_empty() => {
            return Some(
                a.iter()
                    .map(|e| e.as_str().map(str::to_owned).unwrap_or_else(|| e.to_string()))
                    .collect::<Vec<_>>()
                    .join("; "),
            );
        }
        Some(Value::Object(o)) if !o.is_empty() => return Some(listed(o)),
        _ => {}
    }
    // A model-binding map: every value a list of messages.
    let binding = !obj.is_empty()
        && obj.values().all(|e| matches!(e, Value::Array(a) if a.iter().all(Value::is_string)));
    binding.then(|| listed(obj))
}

/// The fields a validation error body names: `errors[].field` of a body shaped like
/// `{"errors":[{"field":"quantity",...}]}` (ConnectWise §4), de-duplicated, in order, each
/// cut to 60 characters. Empty for any other body.
pub(super) fn error_fields(body: &[u8]) -> Vec<String> {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) else { return Vec::new() };
    let mut fields: Vec<String> = Vec::new();
    for e in v.get("errors").and_then(serde_json::Value::as_array).into_iter().flatten() {
        if let Some(f) = e.get("field").and_then(serde_json::Value::as_str)
            && !f.trim().is_empty()
        {
            let f: String = f.trim().chars().take(60).collect();
            if !fields.contains(&f) {
                fields.push(f);
            }
        }
    }
    fields
}

/// A one-line, truncated (to `max` characters), redacted excerpt of a body. Secrets are cut
/// before the text is collapsed and truncated, so a cut never leaves part of one behind.
pub(super) fn excerpt(body: &[u8], scrub: &Scrubber, max: usize) -> String {
    let scrubbed = scrub.scrub_bytes(body);
    let text = String::from_utf8_lossy(&scrubbed);
    let one_line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut out: String = one_line.chars().take(max).collect();
    if one_line.chars().count() > max {
        out.push('…');
    }
    out
}

/// Why an answer that arrived cannot be used (a field missing, of the wrong type, a page
/// that repeats the last one): the reason of an [`UpstreamError::BadResponse`], in words an
/// operator can act on. Built by the per-upstream readers, turned into a `BadResponse` naming
/// the endpoint by the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Malformed(pub String);

impl From<String> for Malformed {
    fn from(reason: String) -> Malformed {
        Malformed(reason)
    }
}

impl From<Malformed> for String {
    fn from(m: Malformed) -> String {
        m.0
    }
}

impl From<&str> for Malformed {
    fn from(reason: &str) -> Malformed {
        Malformed(reason.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_body_prefers_error_then_message_then_text() {
        let none = &Scrubber::default();
        assert_eq!(error_message(br#"{"error":"bad key","message":"x"}"#, none), "bad key");
        assert_eq!(error_message(br#"{"message":"Not allowed"}"#, none), "Not allowed");
        assert_eq!(error_message(br#"{"errors":["name is blank","x"]}"#, none), "name is blank; x");
        assert_eq!(
            error_message(b"<html><body>Bad  Gateway</body></html>", none),
            "<html><body>Bad Gateway</body></html>"
        );
        assert_eq!(error_message(b"", none), "no message");
        assert_eq!(error_message(&[0xff, 0xfe, b'x'], none), "\u{fffd}\u{fffd}x");
    }

    #[test]
    fn oauth_and_dotnet_bodies_read_as_sentences() {
        let none = &Scrubber::default();
        assert_eq!(
            error_message(
                br#"{"error":"invalid_request","error_description":"unknown tenant"}"#,
                none
            ),
            "invalid_request: unknown tenant"
        );
        assert_eq!(error_message(br#"{"error":"invalid_scope"}"#, none), "invalid_scope");
        // The three 400 shapes HaloPSA answers with (reference F41).
        assert_eq!(
            error_message(
                br#"{"[0].qty_order":["Could not convert string to double: ten. Path '[0].qty_order'."]}"#,
                none
            ),
            "[0].qty_order: Could not convert string to double: ten. Path '[0].qty_order'."
        );
        assert_eq!(
            error_message(
                br#"{"ClassName":"System.Exception","Message":"Quantity cannot be negative","Data":null,"HResult":-2146233088}"#,
                none
            ),
            "Quantity cannot be negative"
        );
        assert_eq!(
            error_message(br#""No matching custom table""#, none),
            "No matching custom table"
        );
        assert_eq!(
            error_message(br#"{"":["A non-empty request body is required."]}"#, none),
            "A non-empty request body is required."
        );
        assert_eq!(error_message(br#"{"a":1}"#, none), r#"{"a":1}"#, "no message: the text");
    }

    #[test]
    fn validation_bodies_name_their_fields() {
        let body = br#"{"code":"InvalidObject","message":"x","errors":[
            {"code":"InvalidField","field":"quantity"},{"field":"op"},{"field":"quantity"},
            {"message":"no field"},{"field":"  "}]}"#;
        assert_eq!(error_fields(body), vec!["quantity", "op"]);
        assert!(error_fields(br#"{"errors":["name is blank"]}"#).is_empty());
        assert!(error_fields(br#"{"message":"Not allowed"}"#).is_empty());
        assert!(error_fields(b"<html>").is_empty());
    }

    #[test]
    fn excerpts_are_redacted_and_truncated() {
        let scrub = Scrubber::new(["sk-secret-123"]);
        let body = format!("token sk-secret-123 {}", "a".repeat(500));
        let e = excerpt(body.as_bytes(), &scrub, 40);
        assert!(!e.contains("sk-secret-123"), "{e}");
        assert!(e.starts_with("token <redacted> aaa"), "{e}");
        assert_eq!(e.chars().count(), 41);
        let m = error_message(br#"{"error":"key sk-secret-123 revoked"}"#, &scrub);
        assert_eq!(m, "key <redacted> revoked");
        // Escapes are decoded before the cut: a \u-escaped echo is caught too.
        let m = error_message(br#"{"message":"key \u0073k-secret-123 revoked"}"#, &scrub);
        assert_eq!(m, "key <redacted> revoked");
        // A secret that straddles the truncation point is cut whole, never halved.
        let body = format!("{} c2stc2VjcmV0LTEyMw== tail", "a".repeat(30));
        assert_eq!(excerpt(body.as_bytes(), &scrub, 35), format!("{} <red…", "a".repeat(30)));
    }

    #[test]
    fn classification_drives_retry_and_exit() {
        let unavailable = UpstreamError::Unavailable {
            upstream: "mailprotector".into(),
            endpoint: "GET /resellers/{id}".into(),
            attempts: 5,
            detail: "503".into(),
        };
        assert!(unavailable.is_retryable());
        assert_eq!(unavailable.exit(), Exit::Unavailable);
        let bad = UpstreamError::BadResponse {
            upstream: "mailprotector".into(),
            endpoint: "GET /domains/{id}/user_groups".into(),
            reason: "user_count missing".into(),
            excerpt: "[]".into(),
        };
        assert!(!bad.is_retryable());
        assert_eq!(bad.exit(), Exit::DataErr);
        assert!(bad.to_string().contains("GET /domains/{id}/user_groups"));
        let unauthorized = UpstreamError::Unauthorized {
            upstream: "mailprotector".into(),
            endpoint: "GET /resellers/{id}".into(),
            credential: "mailprotector.api_key_file (/etc/k)".into(),
            message: "invalid key".into(),
        };
        assert!(!unauthorized.is_retryable());
        assert_eq!(unauthorized.exit(), Exit::Unavailable);
        assert!(unauthorized.to_string().contains("mailprotector.api_key_file"));
    }
}
