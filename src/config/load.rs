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
    /// The process environment (a snapshot; tests pass their own).
    pub env: HashMap<String, String>,
    /// CLI flag overrides as (dotted key, value).
    pub overrides: Vec<(String, String)>,
}

/// Loads and validates the config.
pub fn load(_opts: &LoadOptions) -> Result<Config, ConfigError> {
    Err(ConfigError { problems: vec![] })
}

/// The effective config as TOML with secrets redacted.
pub fn redacted_toml(_cfg: &Config) -> String {
    String::new()
}
