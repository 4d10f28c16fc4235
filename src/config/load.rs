//! Loading: merge the layers (`layers`), read them into the schema (`de`, `raw`), validate
//! (`validate`), and report every problem at once as a [`ConfigError`].

use super::de;
use super::error::{ConfigError, ConfigProblem};
use super::layers::{self, LoadOptions, Merged, Provenance};
use super::raw::RawConfig;
#[cfg(test)]
use super::render::{redacted_toml, redacted_toml_annotated};
use super::types::Config;
use super::validate::{Check, validate};

/// Loads and validates the config: defaults < file < `MPSYNC_*` environment < overrides.
pub fn load(opts: &LoadOptions) -> Result<Config, ConfigError> {
    load_with_provenance(opts).map(|(cfg, _)| cfg)
}

/// Like [`load`], also saying which layer set each key (for `mpsync config`).
pub fn load_with_provenance(opts: &LoadOptions) -> Result<(Config, Provenance), ConfigError> {
    finish(layers::merge(opts), opts)
}

/// Like [`load_with_provenance`] for config `text` already in memory (`opts.path` only names
/// it in problems; secret files named in the text are read). The fuzz target `config` and the
/// parser property tests load through this.
pub fn load_text(text: &str, opts: &LoadOptions) -> Result<(Config, Provenance), ConfigError> {
    finish(layers::merge_text(opts, text), opts)
}

/// Reads and validates the merged tree: the config, or every problem found, in key order.
fn finish(
    merged: Result<Merged, Vec<ConfigProblem>>,
    opts: &LoadOptions,
) -> Result<(Config, Provenance), ConfigError> {
    let fail = |problems| ConfigError { path: opts.path.clone(), problems };
    let (root, prov) = merged.map_err(fail)?;
    let (raw, problems) = de::read::<RawConfig>(root, &prov);
    let mut check = Check {
        problems,
        prov,
        env: &opts.env,
        credentials_dir: super::secret::credentials_dir_for(&opts.path),
    };
    let cfg = validate(raw, &mut check, opts.path.clone());
    let Check { mut problems, prov, .. } = check;
    // Stable: one key's problems keep their order.
    problems.sort_by(|a, b| a.key.cmp(&b.key));
    if problems.is_empty() { Ok((cfg, prov)) } else { Err(fail(problems)) }
}

#[cfg(test)]
#[path = "load_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "access_tests.rs"]
mod access_tests;
