//! The mpsync binary: parse the command line and hand it to the library.

use std::process::ExitCode;

use clap::Parser;
use mpsync::exit::Exit;

fn main() -> ExitCode {
    let cli = match mpsync::cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            // --help and --version print to stdout and succeed; real usage errors are EX_USAGE.
            return if e.use_stderr() { Exit::Usage.into() } else { Exit::Ok.into() };
        }
    };
    mpsync::commands::dispatch(cli).into()
}
