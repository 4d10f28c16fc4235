//! `mpsync sync --once`: one poll without the daemon.
use super::Globals;
use crate::cli::SyncArgs;
use crate::exit::Exit;

/// Runs one collection and prints the summary.
pub async fn once(_g: &Globals, _args: SyncArgs) -> Exit {
    eprintln!("mpsync sync: not built yet");
    Exit::Software
}
