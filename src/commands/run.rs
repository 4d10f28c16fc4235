//! `mpsync run`: the daemon.
use super::Globals;
use crate::cli::RunArgs;
use crate::exit::Exit;

/// Runs the daemon until SIGTERM/SIGINT.
pub async fn run(_g: &Globals, _args: RunArgs) -> Exit {
    eprintln!("mpsync run: not built yet");
    Exit::Software
}
