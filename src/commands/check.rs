//! `mpsync check`: validate the config and test upstreams.
use super::Globals;
use crate::cli::CheckArgs;
use crate::exit::Exit;

/// Validates the config and tests each configured upstream.
pub async fn check(_g: &Globals, _args: CheckArgs) -> Exit {
    eprintln!("mpsync check: not built yet");
    Exit::Software
}
