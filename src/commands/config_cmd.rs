//! `mpsync config`: print the effective config as TOML, secrets redacted, each key annotated
//! with where its value came from (default, file, `MPSYNC_*` variable, flag).
use super::{Globals, load_options};
use crate::exit::Exit;

/// Prints the effective config to stdout; on problems lists them on stderr and exits 78.
pub async fn print(g: &Globals) -> Exit {
    match crate::config::load_with_provenance(&load_options(g, Vec::new())) {
        Ok((cfg, provenance)) => {
            print!("{}", crate::config::redacted_toml_annotated(&cfg, &provenance));
            Exit::Ok
        }
        Err(e) => {
            eprintln!("mpsync: {e:#}");
            Exit::Config
        }
    }
}
