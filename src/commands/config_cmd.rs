//! `mpsync config`: print the effective config as TOML, secrets redacted, each key annotated
//! with where its value came from (default, file, `MPSYNC_*` variable, flag).
use super::{CommandError, Globals, load_options};

/// Prints the effective config to stdout; an invalid one is a [`CommandError::Config`]
/// (every problem listed on stderr, exit 78).
pub async fn print(g: &Globals) -> Result<(), CommandError> {
    let (cfg, provenance) = crate::config::load_with_provenance(&load_options(g, Vec::new()))?;
    print!("{}", crate::config::redacted_toml_annotated(&cfg, &provenance));
    Ok(())
}
