//! The local control socket: how the command line reaches a running daemon for what needs the
//! store, which the daemon holds locked (`mpsync apply`, `mpsync audit`, `mpsync backup`).
//!
//! A Unix domain socket `<state_dir>/mpsync.sock`, mode 0600 in the 0700 state directory, so
//! only the daemon's user and root reach it (under systemd, `sudo mpsync apply` works). It is
//! not HTTP and is never exposed on the network: the HTTP endpoint has no write. `mpsync plan`
//! reads the plan through it too.
//!
//! The protocol is newline-delimited JSON: the client sends one [`Request`] line; the daemon
//! answers with [`Reply`] lines — the progress events of an apply as they happen, then one
//! final reply (a report, the audit entries, or an error) — and closes the connection. Both
//! enums are externally tagged (`{"apply":{...}}`), so a new request is one more variant.

mod client;
mod server;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use client::{ControlError, request};
pub use server::{ControlListener, Handler, Replies, serve};

use crate::store::BackupReport;
use crate::writeback::{ApplyEvent, ApplyReport, AuditEntry, Plan, PlanId};

/// The socket's file name in the state directory.
pub const SOCKET_NAME: &str = "mpsync.sock";

/// The socket of the daemon whose state directory is `state_dir`.
pub fn socket_path(state_dir: &Path) -> PathBuf {
    state_dir.join(SOCKET_NAME)
}

/// A fresh name for the copy a backup request writes into the state directory (hidden, and
/// unique per request).
pub fn backup_file_name() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!(".mpsync-backup-{}-{nanos}.redb", std::process::id())
}

/// One request to the daemon.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Request {
    /// `mpsync apply`: apply a plan with the daemon's store and writer.
    Apply {
        /// The plan.
        plan: PlanId,
        /// Print the requests, send nothing.
        #[serde(default)]
        dry_run: bool,
        /// `--only`: rows or line keys.
        #[serde(default)]
        only: Vec<String>,
        /// Who applies (the caller's login).
        who: String,
    },
    /// `mpsync plan`: plan `id`, or the latest.
    Plan {
        /// The plan; `None` for the latest.
        #[serde(default)]
        id: Option<PlanId>,
    },
    /// `mpsync backup`: a consistent copy of the store, written into the state directory
    /// (the daemon may write nowhere else); the command moves it where it was asked to.
    Backup {},
    /// `mpsync report`: the period report of `since..until`.
    Report {
        /// The period's start.
        since: chrono::DateTime<chrono::Utc>,
        /// Its end.
        until: chrono::DateTime<chrono::Utc>,
    },
    /// `mpsync audit`: audit entries, newest first.
    Audit {
        /// At most this many.
        limit: usize,
        /// Only this plan's.
        #[serde(default)]
        plan: Option<PlanId>,
    },
}

/// One line of the daemon's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reply {
    /// Progress of an apply (zero or more, before its report).
    Event(ApplyEvent),
    /// The end of an apply.
    Report(ApplyReport),
    /// The answer to a plan request (`None`: no such plan, or none yet).
    Plan {
        /// The plan.
        plan: Option<Box<Plan>>,
    },
    /// The answer to an audit request.
    Audit {
        /// Newest first.
        entries: Vec<AuditEntry>,
    },
    /// The answer to a report request.
    PeriodReport {
        /// The report.
        report: Box<crate::report::Report>,
    },
    /// The answer to a backup request.
    Backup {
        /// The copy's file name in the state directory.
        file: String,
        /// What it holds.
        report: BackupReport,
    },
    /// The request failed: the message to print and the exit status it deserves.
    Error {
        /// What went wrong and what to do.
        message: String,
        /// The exit status.
        exit: u8,
    },
}

#[cfg(test)]
mod tests;
