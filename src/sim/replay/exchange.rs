//! One upstream's file of a capture bundle: its exchanges, each a [`Request`] (method, path
//! below the base path, query) and the [`Answer`] it got (status, the headers that matter, the
//! body as JSON, text or bytes). Parsing checks every field, so a problem is reported with
//! the file's line by serde.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

/// An upstream a bundle can hold answers of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Upstream {
    /// Mailprotector, under `/api/v1`.
    Mailprotector,
    /// ConnectWise Manage, under `/v4_6_release/apis/3.0`.
    Connectwise,
    /// Gradient Synthesize's vendor API, under `/api/vendor-api`.
    Gradient,
}

impl Upstream {
    /// Every upstream, in bundle order.
    pub const ALL: [Upstream; 3] =
        [Upstream::Mailprotector, Upstream::Connectwise, Upstream::Gradient];

    /// Its name, as in errors and file names.
    pub fn name(self) -> &'static str {
        match self {
            Upstream::Mailprotector => "mailprotector",
            Upstream::Connectwise => "connectwise",
            Upstream::Gradient => "gradient",
        }
    }

    /// The API path the client appends to the configured host (and the simulator serves).
    pub fn base_path(self) -> &'static str {
        match self {
            Upstream::Mailprotector => crate::sim::mailprotector::API_PREFIX,
            Upstream::Connectwise => crate::sim::connectwise::API_PREFIX,
            Upstream::Gradient => crate::sim::gradient::API_PREFIX,
        }
    }

    /// Its file in the bundle.
    pub fn file_name(self) -> &'static str {
        match self {
            Upstream::Mailprotector => "mailprotector.json",
            Upstream::Connectwise => "connectwise.json",
            Upstream::Gradient => "gradient.json",
        }
    }
}

/// One upstream's file: its exchanges in bundle order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExchangeFile {
    /// Which upstream answered.
    pub upstream: Upstream,
    /// Every captured request with its (last) answer.
    pub exchanges: Vec<Exchange>,
}

/// A request and the answer it got.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Exchange {
    /// What was asked.
    pub request: Request,
    /// What came back.
    pub response: Answer,
}

/// A request: method, path below the base path (`""` is the base path itself), query.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "RawRequest")]
pub struct Request {
    /// Upper-case method, e.g. `GET`.
    pub method: String,
    /// Path below the base path: empty or starting with `/`, without the query.
    pub path: String,
    /// Query parameters (decoded); their order never matters.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub query: BTreeMap<String, String>,
}

impl Request {
    /// `GET /resellers/188/customers?page=1&per_page=100` (query in name order, encoded).
    pub fn label(&self) -> String {
        let mut s = format!("{} {}", self.method, self.path);
        if !self.query.is_empty() {
            let q: String = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(self.query.iter())
                .finish();
            s.push('?');
            s.push_str(&q);
        }
        s
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRequest {
    method: String,
    path: String,
    #[serde(default)]
    query: BTreeMap<String, String>,
}

impl TryFrom<RawRequest> for Request {
    type Error = String;

    fn try_from(r: RawRequest) -> Result<Request, String> {
        if r.method.is_empty() || !r.method.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(format!("the method {:?} is not an upper-case HTTP method", r.method));
        }
        if !(r.path.is_empty() || r.path.starts_with('/')) || r.path.contains(['?', '#']) {
            return Err(format!(
                "the path {:?} must be empty or start with /, with the query in \"query\"",
                r.path
            ));
        }
        Ok(Request { method: r.method, path: r.path, query: r.query })
    }
}

/// An answer as captured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawAnswer", into = "RawAnswer")]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// The headers that matter (lower-case names), e.g. `content-type`, `x-pagination`, `link`.
    pub headers: BTreeMap<String, String>,
    /// The body.
    pub body: Body,
}

/// A captured body.
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    /// No body.
    Empty,
    /// A JSON document (stored as JSON, served compactly).
    Json(Value),
    /// Text that is not JSON, served verbatim.
    Text(String),
    /// Bytes that are not UTF-8.
    Bytes(Vec<u8>),
}

impl Body {
    /// Classifies raw bytes: JSON when they parse, else text, else bytes.
    pub fn from_bytes(bytes: &[u8]) -> Body {
        if bytes.is_empty() {
            return Body::Empty;
        }
        if let Ok(v) = serde_json::from_slice::<Value>(bytes) {
            return Body::Json(v);
        }
        match std::str::from_utf8(bytes) {
            Ok(t) => Body::Text(t.to_owned()),
            Err(_) => Body::Bytes(bytes.to_vec()),
        }
    }

    /// The bytes to serve.
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            Body::Empty => Vec::new(),
            Body::Json(v) => serde_json::to_vec(v).unwrap_or_default(),
            Body::Text(t) => t.clone().into_bytes(),
            Body::Bytes(b) => b.clone(),
        }
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAnswer {
    status: u16,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    headers: BTreeMap<String, String>,
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    body: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    body_text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    body_base64: Option<String>,
}

/// `"body": null` is a JSON body `null`, not an absent one.
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

impl TryFrom<RawAnswer> for Answer {
    type Error = String;

    fn try_from(r: RawAnswer) -> Result<Answer, String> {
        if !(100..=599).contains(&r.status) {
            return Err(format!("the status {} is not an HTTP status (100-599)", r.status));
        }
        for (name, value) in &r.headers {
            let ok_name = axum::http::HeaderName::from_bytes(name.as_bytes()).is_ok()
                && !name.bytes().any(|b| b.is_ascii_uppercase());
            if !ok_name || axum::http::HeaderValue::from_str(value).is_err() {
                return Err(format!(
                    "the header {name:?}: {value:?} is not a valid header (lower-case name)"
                ));
            }
        }
        let body = match (r.body, r.body_text, r.body_base64) {
            (None, None, None) => Body::Empty,
            (Some(v), None, None) => Body::Json(v),
            (None, Some(t), None) => Body::Text(t),
            (None, None, Some(b)) => Body::Bytes(
                base64::engine::general_purpose::STANDARD
                    .decode(b.trim())
                    .map_err(|e| format!("body_base64 is not standard Base64: {e}"))?,
            ),
            _ => return Err("give at most one of body, body_text and body_base64".into()),
        };
        Ok(Answer { status: r.status, headers: r.headers, body })
    }
}

impl From<Answer> for RawAnswer {
    fn from(a: Answer) -> RawAnswer {
        let mut raw = RawAnswer {
            status: a.status,
            headers: a.headers,
            body: None,
            body_text: None,
            body_base64: None,
        };
        match a.body {
            Body::Empty => {}
            Body::Json(v) => raw.body = Some(v),
            Body::Text(t) => raw.body_text = Some(t),
            Body::Bytes(b) => {
                raw.body_base64 = Some(base64::engine::general_purpose::STANDARD.encode(b))
            }
        }
        raw
    }
}
