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

use std::collections::BTreeSet;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use super::exchange::{Answer, Body, Exchange, ExchangeFile, Request, Upstream};
use crate::exit::{Exit, ExitStatus};

/// The `format` every manifest carries.
pub const FORMAT: &str = "mpsync-capture";
/// The bundle format this mpsync writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// The manifest's file name.
pub const MANIFEST: &str = "manifest.json";

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
#[path = "bundle_tests.rs"]
mod tests;
