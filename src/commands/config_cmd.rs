//! `mpsync config`: print the effective config, secrets redacted.
use super::Globals;
use crate::exit::Exit;

/// Prints the effective config.
pub async fn print(_g: &Globals) -> Exit {
    eprintln!("mpsync config: not built yet");
    Exit::Software
}
