//! Loading: merge the layers (see `raw`), validate them (see `validate`), and report every
//! problem at once as a [`ConfigError`].

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;

use super::Config;
use super::raw::{self, Provenance};
use super::section::Ctx;
use crate::exit::{Exit, ExitStatus};

/// One problem found in the config, with the key path it concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    /// Dotted key path, e.g. `mailprotector.timeout` (or the file, or `RUST_LOG`).
    pub key: String,
    /// What is wrong and what is expected.
    pub message: String,
}

/// Why the config could not be loaded: every problem found.
///
/// `{}` is a one-line summary; `{:#}` adds one line per problem (`  - key: message`).
#[derive(Debug, thiserror::Error)]
pub struct ConfigError {
    /// The config file that was being loaded.
    pub path: PathBuf,
    /// Every problem, in key order.
    pub problems: Vec<ConfigProblem>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.problems.len();
        write!(
            f,
            "invalid configuration from {} (with MPSYNC_* environment and flags): {n} problem{}; \
             fix each one, then check with `mpsync check`",
            self.path.display(),
            if n == 1 { "" } else { "s" }
        )?;
        if f.alternate() {
            for p in &self.problems {
                write!(f, "\n  - {}: {}", p.key, p.message)?;
            }
        }
        Ok(())
    }
}

impl ExitStatus for ConfigError {
    fn exit(&self) -> Exit {
        Exit::Config
    }
}

/// Where config comes from besides the file.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// The TOML file.
    pub path: PathBuf,
    /// The process environment (a snapshot; tests pass their own). Supplies `MPSYNC_*`
    /// overrides, `RUST_LOG`, `STATE_DIRECTORY` and `CREDENTIALS_DIRECTORY`.
    pub env: HashMap<String, String>,
    /// CLI flag overrides as (dotted key, value), e.g. ("daemon.listen", "127.0.0.1:9900").
    pub overrides: Vec<(String, String)>,
}

impl LoadOptions {
    /// Options for `path` with the real process environment and the given CLI overrides.
    pub fn from_process(path: PathBuf, overrides: Vec<(String, String)>) -> LoadOptions {
        LoadOptions { path, env: std::env::vars().collect(), overrides }
    }
}

/// Loads and validates the config: defaults < file < `MPSYNC_*` environment < overrides.
pub fn load(opts: &LoadOptions) -> Result<Config, ConfigError> {
    load_with_provenance(opts).map(|(cfg, _)| cfg)
}

/// Like [`load`], also saying which layer set each key (for `mpsync config`).
pub fn load_with_provenance(opts: &LoadOptions) -> Result<(Config, Provenance), ConfigError> {
    let tree =
        raw::merge(opts).map_err(|problems| ConfigError { path: opts.path.clone(), problems })?;
    finish(tree, opts)
}

/// Like [`load_with_provenance`] for config `text` already in memory (`opts.path` only
/// names it in problems): the same merge and validation, without reading the file.
pub fn load_text_with_provenance(
    text: &str,
    opts: &LoadOptions,
) -> Result<(Config, Provenance), ConfigError> {
    let tree = raw::merge_text(opts, text)
        .map_err(|problems| ConfigError { path: opts.path.clone(), problems })?;
    finish(tree, opts)
}

/// Validates the merged tree: the config, or every problem found.
fn finish(tree: raw::RawTree, opts: &LoadOptions) -> Result<(Config, Provenance), ConfigError> {
    let fail = |problems| ConfigError { path: opts.path.clone(), problems };
    let ctx = Ctx::new(tree.provenance, &opts.env);
    let cfg = super::validate::validate(tree.root, &ctx, opts.path.clone());
    let (problems, provenance) = ctx.into_parts();
    if problems.is_empty() { Ok((cfg, provenance)) } else { Err(fail(problems)) }
}

/// The effective config as TOML with secrets redacted.
pub fn redacted_toml(cfg: &Config) -> String {
    super::redact::render(cfg, None)
}

/// The effective config as TOML with secrets redacted and each key's origin as a comment.
pub fn redacted_toml_annotated(cfg: &Config, provenance: &Provenance) -> String {
    super::redact::render(cfg, Some(provenance))
}

#[cfg(test)]
#[path = "load_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "access_tests.rs"]
mod access_tests;
