//! One function per CLI command. Each prints what the operator needs and returns `Ok` or a
//! [`CommandError`]; [`dispatch`] is where that error is printed ([`report`]) and becomes the
//! exit status. `main` only parses and calls it.

mod apply;
mod audit;
mod backup;
mod capture;
mod check;
mod config_cmd;
mod demo;
mod error;
mod init;
mod notify;
mod plan;
mod reconcile;
mod report;
mod run;
mod sim;
mod sync;

pub use sim::write_billing_files;

use crate::cli::{Cli, Command};
use crate::exit::{Exit, ExitStatus};
use crate::store::Store;

pub use error::{
    BackupError, CaptureCommandError, CommandError, DemoError, InitError, SimCommandError,
    TargetError, report,
};
pub use sim::{write_replay_config, write_sim_config, write_sim_config_for};

/// Runs the parsed command line and returns the process exit status: the one place where a
/// command's error is printed and becomes a status.
pub fn dispatch(cli: Cli) -> Exit {
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => return finish(Err(CommandError::Runtime(e))),
    };
    let Cli { config, log_format, log, command } = cli;
    let globals = Globals { config_path: config, log_format, log };
    runtime.block_on(async move {
        survive_file_size_limit();
        let done = match command {
            Command::Run(args) => run::run(&globals, args).await,
            Command::Check(args) => check::check(&globals, args).await,
            Command::Config => config_cmd::print(&globals).await,
            Command::Sync(args) => sync::once(&globals, args).await,
            Command::Sim(args) => sim::run(&globals, args).await,
            Command::Capture(args) => capture::run(&globals, args).await,
            Command::Demo(args) => demo::run(&globals, args).await,
            Command::Reconcile(args) => reconcile::print(&globals, args).await,
            Command::Plan(args) => plan::print(&globals, args).await,
            Command::Apply(args) => apply::run(&globals, args).await,
            Command::Audit(args) => audit::print(&globals, args).await,
            Command::Report(args) => report::print(&globals, args).await,
            Command::Backup(args) => backup::run(&globals, args).await,
            Command::Init(args) => init::run(&globals, *args).await,
            Command::Notify(args) => notify::run(&globals, args).await,
        };
        // Said inside the runtime: dropping it waits for blocking tasks, and one stuck on a
        // failing disk must not swallow the reason.
        finish(done)
    })
}

/// Prints the error that ended a command and gives its exit status.
fn finish(done: Result<(), CommandError>) -> Exit {
    match done {
        Ok(()) => Exit::Ok,
        Err(e) => {
            report(&e);
            e.exit()
        }
    }
}

/// Makes a write past the file-size limit (RLIMIT_FSIZE: `ulimit -f`, `prlimit --fsize`,
/// systemd's `LimitFSIZE=`) fail with EFBIG, reported like a full disk, instead of killing
/// the process: SIGXFSZ's default action terminates it mid-write, leaving runs `running`
/// and nothing said. Registering tokio's listener installs a handler that only notes the
/// signal, for the rest of the process (dropping the listener keeps it installed), without
/// unsafe code. Call inside the runtime, before any command writes.
fn survive_file_size_limit() {
    use tokio::signal::unix::{SignalKind, signal};
    if let Err(e) = signal(SignalKind::from_raw(libc::SIGXFSZ)) {
        // Not fatal: only a process under a file-size limit would ever see the signal.
        report(&CommandError::FileSizeSignal(e));
    }
}

/// The options every command shares.
#[derive(Debug, Clone)]
pub struct Globals {
    /// `-c/--config`.
    pub config_path: std::path::PathBuf,
    /// `--log-format`.
    pub log_format: Option<crate::cli::LogFormatArg>,
    /// `--log`.
    pub log: Option<String>,
}

/// The load options for a command: `-c` path, the process environment, the global
/// `--log`/`--log-format` flags and the command's own `overrides` (dotted key, value).
pub fn load_options(
    g: &Globals,
    mut overrides: Vec<(String, String)>,
) -> crate::config::LoadOptions {
    if let Some(log) = &g.log {
        overrides.push(("daemon.log".into(), log.clone()));
    }
    if let Some(fmt) = g.log_format {
        let v = match fmt {
            crate::cli::LogFormatArg::Text => "text",
            crate::cli::LogFormatArg::Json => "json",
        };
        overrides.push(("daemon.log_format".into(), v.into()));
    }
    crate::config::LoadOptions::from_process(g.config_path.clone(), overrides)
}

/// Opens the store in `dir` off the async runtime (redb blocks).
async fn open_store(dir: std::path::PathBuf) -> Result<Store, CommandError> {
    let opened = tokio::task::spawn_blocking(move || Store::open(&dir)).await;
    Ok(opened.map_err(CommandError::StoreTask)??)
}

/// The config, with `--state-dir` (when given) in place of daemon.state_dir.
fn load_with_state_dir(
    g: &Globals,
    state_dir: Option<&std::path::Path>,
) -> Result<crate::config::Config, CommandError> {
    let overrides = state_dir
        .map(|dir| vec![("daemon.state_dir".to_owned(), dir.display().to_string())])
        .unwrap_or_default();
    Ok(crate::config::load(&load_options(g, overrides))?)
}
