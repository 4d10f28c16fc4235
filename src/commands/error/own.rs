//! The failures of the commands' own steps, one enum per command that has any: `capture`'s
//! bundle directory, `sim`'s flags and simulator (and `sim --replay`'s bundle), `demo`'s
//! temporary directory, `backup`'s copy, `init`'s files and values. Each is a variant of
//! [`super::CommandError`] and knows its status.

use std::path::PathBuf;

use mpsync_sim::SimStartError;
use mpsync_sim::faults::FaultSpecError;
use mpsync_sim::replay::BundleError;

use crate::capture::{CaptureError, UpstreamFailure};
use crate::exit::{Exit, ExitStatus};

/// Why `capture` failed, or wrote a bundle that stops at a failure.
#[derive(Debug, thiserror::Error)]
pub enum CaptureCommandError {
    /// DIR cannot take a bundle.
    #[error(transparent)]
    Target(#[from] TargetError),
    /// No bundle could be produced at all.
    #[error(transparent)]
    Capture(#[from] CaptureError),
    /// Something appeared in DIR while the capture ran.
    #[error("{} is no longer empty; nothing was written", .dir.display())]
    NoLongerEmpty {
        /// The bundle directory.
        dir: PathBuf,
    },
    /// The bundle could not be written.
    #[error("cannot write the bundle into {}: {source}", .dir.display())]
    Write {
        /// The bundle directory.
        dir: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// One upstream's reads stopped at a failure (reported for each; the capture goes on).
    #[error("{upstream} failed: {failure}")]
    UpstreamFailed {
        /// The upstream's name.
        upstream: &'static str,
        /// Why, as the manifest says it (secrets scrubbed, names pseudonymized on request).
        failure: UpstreamFailure,
    },
    /// The bundle was written, but stops at the first upstream failure (whose status it has).
    #[error("the bundle holds the answers up to the failure; attach it to the bug report as it is")]
    Incomplete {
        /// The first failure's exit status.
        status: Exit,
    },
}

impl ExitStatus for CaptureCommandError {
    fn exit(&self) -> Exit {
        match self {
            CaptureCommandError::Target(_) | CaptureCommandError::NoLongerEmpty { .. } => {
                Exit::Usage
            }
            CaptureCommandError::Capture(e) => e.exit(),
            CaptureCommandError::Write { .. } => Exit::IoErr,
            CaptureCommandError::UpstreamFailed { failure, .. } => failure.exit(),
            CaptureCommandError::Incomplete { status } => *status,
        }
    }
}

/// DIR is neither missing nor an empty directory (exit 64: the command line names it).
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    /// It holds files.
    #[error(
        "{} is not empty; a capture never overwrites or mixes files: give a new or empty \
         directory",
        .0.display()
    )]
    NotEmpty(PathBuf),
    /// It is a file.
    #[error("{} is a file; give a new or empty directory", .0.display())]
    File(PathBuf),
    /// It cannot be read.
    #[error("cannot use {} for the bundle: {source}", .dir.display())]
    Unusable {
        /// The path given.
        dir: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

/// Why `sim` (or `sim --replay`) could not serve.
#[derive(Debug, thiserror::Error)]
pub enum SimCommandError {
    /// A `--fault` spec does not parse (the message lists every form).
    #[error(transparent)]
    Fault(#[from] FaultSpecError),
    /// `--rate-limit` is not a positive number.
    #[error("--rate-limit must be a number of requests per second above 0, got {0}")]
    RateLimit(f64),
    /// The simulator (or the replay) could not start; its message names the simulator.
    #[error(transparent)]
    Start(#[from] SimStartError),
    /// `--keys-dir` could not be written.
    #[error("cannot write the keys directory {}: {source}", .dir.display())]
    KeysDir {
        /// The directory given.
        dir: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The capture bundle cannot be read, does not parse or is not a capture.
    #[error(transparent)]
    Bundle(#[from] BundleError),
    /// `--keys-dir` asked for a config the bundle cannot support.
    #[error(
        "{} holds no Mailprotector answers with a reseller id, so no config can be written for \
         it; replay it without --keys-dir",
        .manifest.display()
    )]
    NoResellerId {
        /// The bundle's manifest.
        manifest: PathBuf,
    },
}

impl SimCommandError {
    /// Whether the message names what failed itself (`simulator: ...`), so the line reads
    /// `mpsync simulator: ...` rather than `mpsync sim: simulator: ...`.
    pub(super) fn names_itself(&self) -> bool {
        matches!(self, SimCommandError::Start(_))
    }
}

impl ExitStatus for SimCommandError {
    fn exit(&self) -> Exit {
        match self {
            SimCommandError::Fault(_) | SimCommandError::RateLimit(_) => Exit::Usage,
            SimCommandError::Start(_) | SimCommandError::KeysDir { .. } => Exit::IoErr,
            // The simulator's error names the file (and line); a bad bundle is bad input data.
            SimCommandError::Bundle(_) | SimCommandError::NoResellerId { .. } => Exit::DataErr,
        }
    }
}

/// Why the demo could not be set up, or cleaned up. Every one is local I/O (exit 74).
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// The temporary directory for config and state.
    #[error("cannot create a temporary directory: {0}")]
    TempDir(#[source] std::io::Error),
    /// The simulator could not start.
    #[error(transparent)]
    Simulator(SimStartError),
    /// The demo's config and keys could not be written.
    #[error("cannot write the demo config into {}: {source}", .dir.display())]
    Config {
        /// The temporary directory.
        dir: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The demo's billing keys and mapping could not be written.
    #[error("cannot write the demo billing files into {}: {source}", .dir.display())]
    Billing {
        /// The temporary directory.
        dir: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The temporary directory could not be removed once the demo stopped (reported; the
    /// demo's status stays the daemon's).
    #[error("stopped; could not remove {}: {source}", .dir.display())]
    Cleanup {
        /// The temporary directory.
        dir: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

impl ExitStatus for DemoError {
    fn exit(&self) -> Exit {
        Exit::IoErr
    }
}

/// `mpsync backup`'s own failures (the store's and the control socket's are theirs).
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// There is no store to back up.
    #[error(
        "there is no store at {}: nothing to back up. Check daemon.state_dir (or --state-dir)",
        .0.display()
    )]
    NoStore(std::path::PathBuf),
    /// The copy the daemon wrote could not be moved to where it was asked for.
    #[error("cannot write the backup {}: {source}", .path.display())]
    Write {
        /// The file asked for.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

impl ExitStatus for BackupError {
    fn exit(&self) -> Exit {
        match self {
            BackupError::NoStore(_) => Exit::IoErr,
            BackupError::Write { source, .. }
                if source.kind() == std::io::ErrorKind::AlreadyExists =>
            {
                Exit::CantCreate
            }
            BackupError::Write { .. } => Exit::IoErr,
        }
    }
}

/// Why `init` wrote nothing, or stopped.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// A file `init` would write exists.
    #[error(
        "{} already exist{}; mpsync init never overwrites. Edit the config (then `mpsync \
         check`), or move the files away to start over",
        list(.0), if .0.len() == 1 { "s" } else { "" }
    )]
    Exists(Vec<PathBuf>),
    /// A value is missing and there is no terminal to ask.
    #[error("{0} is needed: standard input is not a terminal to ask on, so pass {0}")]
    Missing(&'static str),
    /// A value given is not usable.
    #[error("{flag}: {reason}")]
    Bad {
        /// The flag (or prompt).
        flag: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// Reading a value or writing a file failed.
    #[error("cannot {action} {}: {source}", .path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

fn list(paths: &[PathBuf]) -> String {
    paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
}

impl ExitStatus for InitError {
    fn exit(&self) -> Exit {
        match self {
            InitError::Exists(_) => Exit::CantCreate,
            InitError::Missing(_) | InitError::Bad { .. } => Exit::Usage,
            InitError::Io { .. } => Exit::IoErr,
        }
    }
}
