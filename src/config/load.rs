//! (placeholder: being built) Loading and layering.
use std::collections::HashMap;
use std::path::PathBuf;

use super::Config;

/// One problem found in the config, with the key path it concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    /// Dotted key path, e.g. `mailprotector.timeout`.
    pub key: String,
    /// What is wrong and what is expected.
    pub message: String,
}

/// Why the config could not be loaded: every problem found.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration")]
pub struct ConfigError {
    /// Every problem, in key order.
    pub problems: Vec<ConfigProblem>,
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

/// Loads and validates the config.
pub fn load(_opts: &LoadOptions) -> Result<Config, ConfigError> {
    Err(ConfigError { problems: vec![] })
}

/// The effective config as TOML with secrets redacted.
pub fn redacted_toml(_cfg: &Config) -> String {
    String::new()
}
