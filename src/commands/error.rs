//! [`CommandError`]: why a command did not succeed. Every command returns it; each variant
//! keeps the boundary error it came from (config, store, upstream, the daemon's start-up),
//! which decides the exit status. [`report`] is the one place that prints one.

use std::io;

use crate::app::{DaemonError, JobsError};
use crate::config::{ConfigError, MappingError};
use crate::control::ControlError;
use crate::exit::{Exit, ExitStatus};
use crate::reconcile::UnknownStatus;
use crate::store::StoreError;
use crate::telemetry::TelemetryError;
use crate::writeback::ApplyError;

mod own;

pub use own::{
    BackupError, CaptureCommandError, DemoError, InitError, SimCommandError, TargetError,
};

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// The async runtime could not start.
    #[error("cannot start the async runtime: {0}")]
    Runtime(#[source] io::Error),
    /// SIGXFSZ could not be caught: a write past a file-size limit would kill mpsync. Not
    /// fatal (only a process under such a limit would ever see the signal): reported, and the
    /// command goes on.
    #[error(
        "cannot install the SIGXFSZ handler ({0}); a write past a file-size limit would stop \
         mpsync instead of failing"
    )]
    FileSizeSignal(#[source] io::Error),
    /// The config (file, `MPSYNC_*` environment, flags) is invalid; the alternate form lists
    /// every problem with its key path.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The mapping file is invalid; the alternate form lists every problem with its line.
    #[error(transparent)]
    Mapping(#[from] MappingError),
    /// Logging could not be set up.
    #[error(transparent)]
    Logging(#[from] TelemetryError),
    /// The store could not be opened or read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The task opening the store panicked.
    #[error("opening the store panicked: {0}")]
    StoreTask(#[source] tokio::task::JoinError),
    /// A job's client could not be built (`sync --once`).
    #[error(transparent)]
    Jobs(#[from] JobsError),
    /// The daemon did not start, or did not stop cleanly (`run`, `demo`).
    #[error(transparent)]
    Daemon(#[from] DaemonError),
    /// `sync --once` could not reconcile what its polls stored; the push still runs.
    #[error("cannot compute the reconciliation: {0}")]
    Reconcile(#[source] StoreError),
    /// `sync --once` could not record a run.
    #[error("cannot {action}: {source}")]
    Record {
        /// What was being recorded, e.g. "record the run start".
        action: &'static str,
        /// The store's error.
        #[source]
        source: StoreError,
    },
    /// `reconcile` could not write its output.
    #[error("cannot write the reconciliation to standard output: {0}")]
    Stdout(#[source] io::Error),
    /// `reconcile --status` names no status.
    #[error("--status: {0}")]
    Status(#[from] UnknownStatus),
    /// `plan --status` names no status.
    #[error("--status: {0}")]
    PlanStatus(#[source] UnknownStatus),
    /// `report --since`/`--until` is not a date.
    #[error("{flag}: {source}")]
    ReportDate {
        /// The flag.
        flag: &'static str,
        /// Why.
        #[source]
        source: crate::report::BadDate,
    },
    /// `report`: the period ends before it starts.
    #[error("--until {until} is not after --since {since}: the period would be empty")]
    ReportPeriod {
        /// The start.
        since: String,
        /// The end.
        until: String,
    },
    /// `plan --id N`: there is no plan N.
    #[error(
        "there is no plan {0}: plans are numbered from 1 as they are built; `mpsync plan` shows \
         the latest"
    )]
    NoSuchPlan(u64),
    /// A command that only reads found the store held by a running daemon, which serves the
    /// same answer over HTTP.
    #[error(
        "the store {path} is in use: a running daemon holds it. Ask the daemon instead: `curl \
         {url}` (the same answer), or stop the daemon and retry"
    )]
    StoreHeld {
        /// The database file.
        path: std::path::PathBuf,
        /// The daemon's URL that serves the same.
        url: String,
    },
    /// `capture`'s own failures.
    #[error(transparent)]
    Capture(#[from] CaptureCommandError),
    /// `sim`'s own failures (and `sim --replay`'s).
    #[error(transparent)]
    Sim(#[from] SimCommandError),
    /// `demo`'s own failures.
    #[error(transparent)]
    Demo(#[from] DemoError),
    /// `apply` refused the plan, or the store failed during it.
    #[error(transparent)]
    Apply(#[from] ApplyError),
    /// `init`'s own failures.
    #[error(transparent)]
    Init(#[from] InitError),
    /// `backup`'s own failures.
    #[error(transparent)]
    Backup(#[from] BackupError),
    /// The daemon holds the store and could not be asked through its control socket.
    #[error(transparent)]
    Control(#[from] ControlError),
    /// The daemon refused the request (through the control socket): its message and status.
    #[error("{message}")]
    Remote {
        /// What the daemon said.
        message: String,
        /// The exit status it gave.
        exit: Exit,
    },
    /// `notify test NAME`: no channel is called NAME.
    #[error("there is no [[notify]] channel named {name:?}; the configured ones are: {known}")]
    NoSuchChannel {
        /// The name asked for.
        name: String,
        /// The configured names.
        known: String,
    },
    /// `notify test`: the config has no `[[notify]]` section.
    #[error(
        "no notification channel is configured: add a [[notify]] section to the config (see \
         the README, \"Notifications\")"
    )]
    NoChannels,
    /// The command's output already says what failed (`check`'s table, `sync --once`'s run
    /// summaries); only its exit status is left to give.
    #[error("the output above says what failed (exit status {})", .0.code())]
    Reported(Exit),
}

impl ExitStatus for CommandError {
    fn exit(&self) -> Exit {
        match self {
            CommandError::Runtime(_)
            | CommandError::FileSizeSignal(_)
            | CommandError::Logging(_)
            | CommandError::StoreTask(_) => Exit::Software,
            CommandError::Config(e) => e.exit(),
            CommandError::Mapping(e) => e.exit(),
            CommandError::Store(e) | CommandError::Reconcile(e) => e.exit(),
            CommandError::Record { source, .. } => source.exit(),
            CommandError::Jobs(e) => e.exit(),
            CommandError::Daemon(e) => e.exit(),
            CommandError::Status(_) | CommandError::PlanStatus(_) => Exit::Usage,
            CommandError::NoSuchPlan(_) | CommandError::NoSuchChannel { .. } => Exit::Usage,
            CommandError::NoChannels => Exit::Config,
            CommandError::ReportDate { .. } | CommandError::ReportPeriod { .. } => Exit::Usage,
            CommandError::StoreHeld { .. } => Exit::TempFail,
            CommandError::Stdout(_) => Exit::IoErr,
            CommandError::Capture(e) => e.exit(),
            CommandError::Sim(e) => e.exit(),
            CommandError::Demo(e) => e.exit(),
            CommandError::Apply(e) => e.exit(),
            CommandError::Control(e) => e.exit(),
            CommandError::Backup(e) => e.exit(),
            CommandError::Init(e) => e.exit(),
            CommandError::Remote { exit, .. } => *exit,
            CommandError::Reported(status) => *status,
        }
    }
}

/// Who a printed error names after `mpsync`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Speaker {
    /// `mpsync: ...`
    Mpsync,
    /// `mpsync <command>: ...`, for a failure of the command's own step.
    Command(&'static str),
    /// `mpsync <error>`: the error names what failed itself (`simulator: cannot listen ...`).
    Itself,
}

impl CommandError {
    fn speaker(&self) -> Speaker {
        match self {
            CommandError::Status(_) => Speaker::Command("reconcile"),
            CommandError::PlanStatus(_) | CommandError::NoSuchPlan(_) => Speaker::Command("plan"),
            CommandError::Capture(_) => Speaker::Command("capture"),
            CommandError::Sim(e) if e.names_itself() => Speaker::Itself,
            CommandError::Sim(_) => Speaker::Command("sim"),
            CommandError::Demo(_) => Speaker::Command("demo"),
            CommandError::Apply(_) => Speaker::Command("apply"),
            CommandError::Backup(_) => Speaker::Command("backup"),
            CommandError::Init(_) => Speaker::Command("init"),
            _ => Speaker::Mpsync,
        }
    }

    /// The line(s) printed for the error, or `None` when it was already said (the daemon
    /// logs what stops it where it happens; a command's output may say what failed).
    pub fn message(&self) -> Option<String> {
        match self {
            CommandError::Reported(_) => None,
            CommandError::Daemon(e) if e.already_logged() => None,
            // `{:#}`: a config or mapping error lists every problem under its first line.
            e => Some(match e.speaker() {
                Speaker::Mpsync => format!("mpsync: {e:#}"),
                Speaker::Command(c) => format!("mpsync {c}: {e:#}"),
                Speaker::Itself => format!("mpsync {e:#}"),
            }),
        }
    }
}

/// Prints `e` for the operator: the one place an error is shown. On stderr, as
/// [`CommandError::message`]; the daemon's errors as a log event instead, since the daemon's
/// stderr is its log (plain or JSON, maybe read by journald).
///
/// Commands call it for a failure they survive (the run goes on); [`super::dispatch`] calls it
/// for the one that ends the command.
pub fn report(e: &CommandError) {
    match e {
        CommandError::Daemon(d) if d.already_logged() => {}
        // The targets the start-up steps always logged under (a filter may name them).
        CommandError::Daemon(
            d @ (DaemonError::Store(_) | DaemonError::StoreTask { .. } | DaemonError::Listen(_)),
        ) => tracing::error!(target: "mpsync::app::start", "{d}"),
        CommandError::Daemon(d) => tracing::error!(target: "mpsync::app", "{d}"),
        e => {
            if let Some(message) = e.message() {
                eprintln!("{message}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_error_names_who_speaks_and_keeps_its_exit_status() {
        let status = crate::reconcile::Filter::parse_statuses("match,bogus").unwrap_err();
        let e = CommandError::from(status);
        assert_eq!(
            e.message().as_deref(),
            Some(
                "mpsync reconcile: --status: unknown status \"bogus\"; use one or more of match, \
                 within_tolerance, under_billed, over_billed, unbilled, billed_without_usage, \
                 unmapped_customer, unmapped_product, stale, suppressed, pending"
            )
        );
        assert_eq!(e.exit(), Exit::Usage);

        let locked = StoreError::Locked { path: "/var/lib/mpsync/mpsync.redb".into() };
        let e = CommandError::Record { action: "record the run start", source: locked };
        let message = e.message().unwrap();
        assert!(
            message.starts_with(
                "mpsync: cannot record the run start: the store /var/lib/mpsync/mpsync.redb is in use"
            ),
            "{message}"
        );
        assert_eq!(e.exit(), Exit::TempFail, "the store's own status");

        let e = CommandError::Reported(Exit::Unavailable);
        assert_eq!(e.message(), None, "the output already said it");
        assert_eq!(e.exit(), Exit::Unavailable);
        assert_eq!(CommandError::Daemon(DaemonError::Fatal).message(), None);
        assert_eq!(CommandError::Daemon(DaemonError::Fatal).exit(), Exit::Software);
    }
}
