//! `mpsync sim`: the simulated upstreams, standalone.
use super::Globals;
use crate::cli::SimArgs;
use crate::exit::Exit;

/// Runs the simulator until Ctrl-C.
pub async fn run(_g: &Globals, _args: SimArgs) -> Exit {
    eprintln!("mpsync sim: not built yet");
    Exit::Software
}
