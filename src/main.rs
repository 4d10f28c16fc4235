//! The mpsync binary: parse the command line and hand it to the library.

use std::process::ExitCode;

use clap::Parser;
use mpsync::exit::Exit;

/// jemalloc instead of glibc malloc: the daemon's threads (the runtime's workers and its
/// blocking pool, which runs every store transaction) each got a glibc arena that kept what a
/// large run had freed, so the peak RSS at 10,000 customers was about twice the peak of live
/// heap (BENCHMARKS.md, "Peak memory"). Its settings (two arenas, freed pages returned after a
/// second) are compiled in from `.cargo/config.toml`.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

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
