//! The capture bundle on disk, written by `mpsync capture` and served by `mpsync sim --replay`:
//!
//! - `manifest.json`: format version, mpsync version, when, which upstreams (base path, file,
//!   requests, outcome), whether it was pseudonymized, and what it does and never contains;
//! - one file per upstream (`mailprotector.json`, `connectwise.json`, `gradient.json`):
//!   pretty-printed JSON, `{"upstream": ..., "exchanges": [...]}`, each exchange a `request`
//!   (method, path below the base path, query as an object) and a `response` (status, the
//!   headers that matter, and the body as JSON in `body`, else `body_text` or `body_base64`),
//!   in a stable order so two captures diff line by line.
//!
//! [`Bundle::load`] checks all of it; a problem names the file (and, for JSON, the line).

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use crate::exit::{Exit, ExitStatus};

/// The `format` every manifest carries.
pub const FORMAT: &str = "mpsync-capture";
/// The bundle format this mpsync writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// The manifest's file name.
pub const MANIFEST: &str = "manifest.json";

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

/// `manifest.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Always [`FORMAT`].
    pub format: String,
    /// [`FORMAT_VERSION`] when written.
    pub format_version: u32,
    /// The mpsync that captured it.
    pub mpsync_version: String,
    /// When the capture started.
    pub captured_at: DateTime<Utc>,
    /// Whether names, e-mail addresses and domain names were replaced by pseudonyms.
    pub pseudonymized: bool,
    /// The upstreams captured, in bundle order.
    pub upstreams: Vec<UpstreamEntry>,
    /// What the bundle holds, in words.
    pub contains: Vec<String>,
    /// What it never holds, in words.
    pub never_contains: Vec<String>,
}

/// One upstream of a manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UpstreamEntry {
    /// Which upstream.
    pub name: Upstream,
    /// Its base path (the simulator prefix the replay serves it under).
    pub base_path: String,
    /// Its file in the bundle.
    pub file: String,
    /// Distinct requests captured.
    pub requests: usize,
    /// `complete`, or why the collection stopped (secrets scrubbed).
    pub outcome: String,
    /// The Mailprotector reseller collected (for `--keys-dir`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reseller_id: Option<u64>,
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

/// Why a bundle could not be read. Every variant names the file; exit status 65.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BundleError {
    /// A file could not be read.
    #[error(
        "cannot read the capture bundle file {path}: {reason}; point --replay at the directory \
         `mpsync capture` wrote"
    )]
    Read {
        /// The file.
        path: String,
        /// The OS error.
        reason: String,
    },
    /// A file is not valid JSON, or not the bundle's shape.
    #[error(
        "the capture bundle file {path} does not parse: {detail}; fix that line, or capture again"
    )]
    Parse {
        /// The file.
        path: String,
        /// What is wrong, with its line and column.
        detail: String,
    },
    /// A file parses but does not make a usable bundle.
    #[error("the capture bundle file {path} is not usable: {reason}")]
    Invalid {
        /// The file.
        path: String,
        /// What is wrong and what to do.
        reason: String,
    },
}

impl ExitStatus for BundleError {
    fn exit(&self) -> Exit {
        Exit::DataErr
    }
}

/// A whole bundle, in memory.
#[derive(Debug, Clone, PartialEq)]
pub struct Bundle {
    /// The manifest.
    pub manifest: Manifest,
    /// One file per manifest entry, in the same order.
    pub files: Vec<ExchangeFile>,
}

impl Bundle {
    /// Reads and checks the bundle in `dir`.
    pub fn load(dir: &Path) -> Result<Bundle, BundleError> {
        let manifest_path = dir.join(MANIFEST);
        let manifest: Manifest = read_json(&manifest_path)?;
        let invalid = |reason: String| BundleError::Invalid {
            path: manifest_path.display().to_string(),
            reason,
        };
        if manifest.format != FORMAT {
            return Err(invalid(format!(
                "\"format\" is {:?}, not {FORMAT:?}: this is not a manifest `mpsync capture` wrote",
                manifest.format
            )));
        }
        if manifest.format_version != FORMAT_VERSION {
            return Err(invalid(format!(
                "it is format version {} (mpsync {}); this mpsync reads version {FORMAT_VERSION}: \
                 replay it with the mpsync that wrote it",
                manifest.format_version, manifest.mpsync_version
            )));
        }
        let mut seen = BTreeSet::new();
        let mut files = Vec::new();
        for entry in &manifest.upstreams {
            let u = entry.name;
            if !seen.insert(u) {
                return Err(invalid(format!("{} is listed twice under \"upstreams\"", u.name())));
            }
            if entry.file != u.file_name() || entry.base_path != u.base_path() {
                return Err(invalid(format!(
                    "{} must have \"file\": {:?} and \"base_path\": {:?}",
                    u.name(),
                    u.file_name(),
                    u.base_path()
                )));
            }
            let path = dir.join(u.file_name());
            let file: ExchangeFile = read_json(&path)?;
            let bad =
                |reason: String| BundleError::Invalid { path: path.display().to_string(), reason };
            if file.upstream != u {
                return Err(bad(format!(
                    "it says \"upstream\": {:?}, the manifest lists it for {}",
                    file.upstream.name(),
                    u.name()
                )));
            }
            let mut requests = BTreeSet::new();
            for (i, x) in file.exchanges.iter().enumerate() {
                if !requests.insert(&x.request) {
                    return Err(bad(format!(
                        "exchange {} repeats the request {}; keep one answer per request",
                        i + 1,
                        x.request.label()
                    )));
                }
            }
            files.push(file);
        }
        Ok(Bundle { manifest, files })
    }

    /// The bundle's files as they are written: each upstream's file, then the manifest.
    pub fn render(&self) -> Result<Vec<(String, Vec<u8>)>, serde_json::Error> {
        let mut out = Vec::new();
        for file in &self.files {
            out.push((file.upstream.file_name().to_owned(), pretty(file)?));
        }
        out.push((MANIFEST.to_owned(), pretty(&self.manifest)?));
        Ok(out)
    }

    /// The file of one upstream, when the bundle holds it.
    pub fn file(&self, upstream: Upstream) -> Option<&ExchangeFile> {
        self.files.iter().find(|f| f.upstream == upstream)
    }
}

/// Writes rendered files into `dir`, which must be missing or empty. Created files are 0600 and
/// a created directory 0700 (an unpseudonymized bundle holds customer data); nothing existing is
/// ever overwritten.
pub fn write_files(dir: &Path, files: &[(String, Vec<u8>)]) -> std::io::Result<PathBuf> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::AlreadyExists,
                    "the directory is not empty",
                ));
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
        }
        Err(e) => return Err(e),
    }
    for (name, bytes) in files {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(dir.join(name))?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::canonicalize(dir)
}

fn pretty<T: Serialize>(v: &T) -> Result<Vec<u8>, serde_json::Error> {
    let mut bytes = serde_json::to_vec_pretty(v)?;
    bytes.push(b'\n');
    Ok(bytes)
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, BundleError> {
    let shown = path.display().to_string();
    let text = std::fs::read(path)
        .map_err(|e| BundleError::Read { path: shown.clone(), reason: e.to_string() })?;
    serde_json::from_slice(&text)
        .map_err(|e| BundleError::Parse { path: shown, detail: e.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest() -> Manifest {
        Manifest {
            format: FORMAT.into(),
            format_version: FORMAT_VERSION,
            mpsync_version: "0.1.0".into(),
            captured_at: "2026-12-01T10:00:00Z".parse().unwrap(),
            pseudonymized: true,
            upstreams: vec![UpstreamEntry {
                name: Upstream::Mailprotector,
                base_path: "/api/v1".into(),
                file: "mailprotector.json".into(),
                requests: 1,
                outcome: "complete".into(),
                reseller_id: Some(188),
            }],
            contains: vec![],
            never_contains: vec![],
        }
    }

    fn exchange(path: &str, body: Body) -> Exchange {
        Exchange {
            request: Request {
                method: "GET".into(),
                path: path.into(),
                query: [("page".to_owned(), "1".to_owned())].into(),
            },
            response: Answer {
                status: 200,
                headers: [("content-type".to_owned(), "application/json".to_owned())].into(),
                body,
            },
        }
    }

    #[test]
    fn a_written_bundle_loads_back_identically() {
        let dir = tempfile::tempdir().unwrap();
        let bundle = Bundle {
            manifest: manifest(),
            files: vec![ExchangeFile {
                upstream: Upstream::Mailprotector,
                exchanges: vec![
                    exchange("/a", Body::Json(serde_json::json!([{"id": 1}]))),
                    exchange("/b", Body::Text("{cut".into())),
                    exchange("/c", Body::Bytes(vec![0xff, 0])),
                    exchange("/d", Body::Empty),
                    exchange("/e", Body::Json(Value::Null)),
                ],
            }],
        };
        let target = dir.path().join("new");
        write_files(&target, &bundle.render().unwrap()).unwrap();
        assert_eq!(Bundle::load(&target).unwrap(), bundle);
        let err = write_files(&target, &bundle.render().unwrap()).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::AlreadyExists, "never into a non-empty dir");
    }

    #[test]
    fn problems_name_the_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let bundle = Bundle {
            manifest: manifest(),
            files: vec![ExchangeFile {
                upstream: Upstream::Mailprotector,
                exchanges: vec![exchange("/a", Body::Empty)],
            }],
        };
        write_files(dir.path(), &bundle.render().unwrap()).unwrap();
        let file = dir.path().join("mailprotector.json");
        let text = std::fs::read_to_string(&file).unwrap();
        std::fs::write(&file, text.replace("\"status\": 200", "\"status\": 42")).unwrap();
        let e = Bundle::load(dir.path()).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains(&file.display().to_string()), "{msg}");
        assert!(
            msg.contains("status 42 is not an HTTP status") && msg.contains("line 18"),
            "{msg}"
        );
        assert_eq!(e.exit(), Exit::DataErr);

        std::fs::write(&file, text.replace("\"path\": \"/a\"", "\"path\": \"a?b=1\"")).unwrap();
        let msg = Bundle::load(dir.path()).unwrap_err().to_string();
        assert!(msg.contains("must be empty or start with /") && msg.contains("line 11"), "{msg}");

        let dup = text.replace("\"exchanges\": [", "\"exchanges\": [{\"request\":{\"method\":\"GET\",\"path\":\"/a\",\"query\":{\"page\":\"1\"}},\"response\":{\"status\":204}},");
        std::fs::write(&file, dup).unwrap();
        let msg = Bundle::load(dir.path()).unwrap_err().to_string();
        assert!(msg.contains("exchange 2 repeats the request GET /a?page=1"), "{msg}");

        std::fs::remove_file(&file).unwrap();
        let msg = Bundle::load(dir.path()).unwrap_err().to_string();
        assert!(
            msg.contains("cannot read the capture bundle file")
                && msg.contains("mailprotector.json"),
            "{msg}"
        );
    }
}
