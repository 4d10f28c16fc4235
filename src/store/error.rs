//! [`StoreError`]: everything that can go wrong opening or using the store, each message
//! naming the file and what the operator should do, and its exit status.

use std::io;
use std::path::PathBuf;

use crate::exit::{Exit, ExitStatus};
use crate::model::{RunId, RunKind, RunOutcome};

/// An error from the redb store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another process (normally the daemon) holds the store's exclusive lock.
    #[error(
        "the store {path} is in use: another mpsync process (a running daemon) already holds it. \
         Talk to the daemon through its HTTP API instead (e.g. `curl -X POST \
         http://127.0.0.1:9847/v1/sync` to start a sync), or stop the daemon and retry"
    )]
    Locked {
        /// The database file.
        path: PathBuf,
    },

    /// The file was written by a newer mpsync whose schema this build does not understand.
    #[error(
        "the store {path} has schema version {found}, but this mpsync understands only up to \
         version {supported}: it was written by a newer mpsync. Install that newer mpsync, or \
         point daemon.state_dir at another directory (this build will not modify the file)"
    )]
    NewerSchema {
        /// The database file.
        path: PathBuf,
        /// The schema version in the file.
        found: u32,
        /// The highest schema version this build can read and write.
        supported: u32,
    },

    /// A step upgrading the store from an older schema failed; the file was left as it was.
    #[error(
        "cannot upgrade the store {path} from schema version {from} ({what}): {source}. The \
         file was not changed: the upgrade runs in one transaction. Keep a copy of the file and \
         report this, or go back to the previous mpsync"
    )]
    Migration {
        /// The database file.
        path: PathBuf,
        /// The version the failed step starts from.
        from: u32,
        /// What the step does.
        what: &'static str,
        /// Why it failed.
        #[source]
        source: Box<StoreError>,
    },

    /// No step upgrades this schema version (a build error: every old version needs one).
    #[error(
        "cannot upgrade the store {path} from schema version {from} to {to}: this mpsync has \
         no upgrade step from version {from}. The file was not changed; report this"
    )]
    MigrationMissing {
        /// The database file.
        path: PathBuf,
        /// The version with no step.
        from: u32,
        /// The version this build writes.
        to: u32,
    },

    /// `mpsync backup` never replaces a file.
    #[error(
        "{path} exists; a backup never replaces a file: choose a new name, or move the old \
         file away first"
    )]
    BackupExists {
        /// The file asked for.
        path: PathBuf,
    },

    /// The store holds a table the backup does not know how to copy (a build error: every
    /// table must be listed in `store/backup.rs`).
    #[error(
        "cannot back up {path}: it holds the table {table}, which this mpsync does not know how \
         to copy; nothing was written. Stop the daemon and copy the file instead, and report this"
    )]
    BackupUnknownTable {
        /// The database file.
        path: PathBuf,
        /// The table.
        table: String,
    },

    /// Local I/O failed: creating the state directory, opening or writing the file.
    #[error("cannot {action} {path}: {source}. {}", io_advice(source))]
    Io {
        /// What was being done, e.g. "create the state directory".
        action: &'static str,
        /// The file or directory concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },

    /// The store file may be read or written by group or others, and mpsync may not change
    /// its mode (the file belongs to another user).
    #[error(
        "the store {path} may be read or written by users other than its owner (mode {mode:o}) \
         and mpsync cannot restrict it: {source}. Run `chmod 600 {path}` as the file's owner, or \
         `chown` it to the user running mpsync"
    )]
    Exposed {
        /// The database file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
        /// Why the mode could not be changed.
        #[source]
        source: io::Error,
    },

    /// An earlier write failed at the I/O level (disk full, I/O error): redb refuses every
    /// further write through this handle until the store is opened again.
    #[error(
        "the store {path} refused to {action}: an earlier write to it failed (disk full or an \
         I/O error), and it takes no more writes until mpsync restarts. Free space on (or \
         repair) that disk, then restart mpsync; what was committed before is kept"
    )]
    WritesStopped {
        /// What was being done.
        action: &'static str,
        /// The database file.
        path: PathBuf,
    },

    /// redb reported an error other than plain I/O (corruption, a poisoned transaction, ...).
    #[error(
        "the store {path} failed to {action}: {source}. If this repeats, stop mpsync, move the \
         state directory aside and restart (a fresh store is rebuilt by the next sync)"
    )]
    Db {
        /// What was being done.
        action: &'static str,
        /// The database file.
        path: PathBuf,
        /// The redb error.
        #[source]
        source: Box<redb::Error>,
    },

    /// The file is not a redb database, or its structure is damaged.
    #[error(
        "the file {path} is not a usable mpsync store ({reason}). If it belongs to something \
         else, point daemon.state_dir at another directory; if it is a damaged store, move it \
         aside and restart (mpsync creates a fresh store and the next sync refills it)"
    )]
    NotAStore {
        /// The database file.
        path: PathBuf,
        /// What redb found wrong.
        reason: String,
    },

    /// A stored value could not be decoded.
    #[error(
        "the store {path} holds a {what} that cannot be decoded ({reason}); the file is damaged \
         or was written by an incompatible mpsync. Move the state directory aside and restart"
    )]
    Corrupt {
        /// The database file.
        path: PathBuf,
        /// Which kind of value.
        what: &'static str,
        /// The decoder's complaint.
        reason: String,
    },

    /// A run id that the store does not know.
    #[error("run {id} does not exist in the store {path}")]
    UnknownRun {
        /// The run asked for.
        id: RunId,
        /// The database file.
        path: PathBuf,
    },

    /// A run was finished twice, or a run that is no longer running was finished.
    #[error("run {id} cannot be finished: it is already {}", outcome.as_str())]
    RunNotRunning {
        /// The run.
        id: RunId,
        /// Its recorded outcome.
        outcome: RunOutcome,
    },

    /// A run was finished through the method of another kind (e.g. a push run as a vendor run).
    #[error("run {id} is a {actual} run but was finished as a {expected} run")]
    WrongKind {
        /// The run.
        id: RunId,
        /// Its recorded kind.
        actual: RunKind,
        /// The kind the caller assumed.
        expected: RunKind,
    },

    /// A snapshot listed the same customer twice (a collector bug; nothing was written).
    #[error("the snapshot of run {run} lists customer {customer} twice; nothing was written")]
    DuplicateCustomer {
        /// The run.
        run: RunId,
        /// The customer id that appeared twice.
        customer: u64,
    },

    /// The blocking task running a store operation panicked or was cancelled.
    #[error("the store task that was to {action} stopped unexpectedly: {source}")]
    Task {
        /// What was being done.
        action: &'static str,
        /// The join error (a panic, or the runtime shutting down).
        #[source]
        source: tokio::task::JoinError,
    },
}

/// What to do about an I/O error on the store: out of space (a full disk or a file-size
/// limit, `EFBIG` once SIGXFSZ is ignored) says so; anything else gets the general checks.
fn io_advice(source: &io::Error) -> String {
    if is_out_of_space(source) {
        "The disk is full or a file-size limit was reached: free space on that disk, or raise \
         the limit (ulimit -f, or LimitFSIZE= in the systemd unit); what was committed before \
         is kept"
            .into()
    } else {
        "Check that the state directory exists (or its parent is writable so it can be \
         created), that the user running mpsync may read and write it, and that its disk has \
         free space"
            .into()
    }
}

/// Whether `e` means there is no room to write: a full disk, a quota, a file-size limit.
fn is_out_of_space(e: &io::Error) -> bool {
    use io::ErrorKind::{FileTooLarge, QuotaExceeded, StorageFull};
    matches!(e.kind(), StorageFull | FileTooLarge | QuotaExceeded)
}

/// The short reading of an I/O error on the store, e.g. "disk full or a file-size limit".
pub(super) fn space_hint(e: &io::Error) -> &'static str {
    if is_out_of_space(e) {
        "disk full or a file-size limit"
    } else {
        "disk full or a file-size limit, or a disk error"
    }
}

impl StoreError {
    /// Wraps any redb error, turning plain I/O errors into [`StoreError::Io`] so their exit
    /// status is EX_IOERR.
    pub(crate) fn db(action: &'static str, path: PathBuf, err: impl Into<redb::Error>) -> Self {
        match err.into() {
            redb::Error::DatabaseAlreadyOpen => StoreError::Locked { path },
            // redb reports a foreign file (bad magic number) as invalid data.
            redb::Error::Io(source) if source.kind() == std::io::ErrorKind::InvalidData => {
                StoreError::NotAStore { path, reason: source.to_string() }
            }
            redb::Error::Io(source) => StoreError::Io { action, path, source },
            redb::Error::Corrupted(reason) => StoreError::NotAStore { path, reason },
            redb::Error::PreviousIo => StoreError::WritesStopped { action, path },
            other => StoreError::Db { action, path, source: Box::new(other) },
        }
    }
}

impl ExitStatus for StoreError {
    fn exit(&self) -> Exit {
        match self {
            StoreError::Locked { .. } => Exit::TempFail,
            StoreError::Migration { source, .. } => source.exit(),
            StoreError::MigrationMissing { .. } | StoreError::BackupUnknownTable { .. } => {
                Exit::Software
            }
            StoreError::BackupExists { .. } => Exit::CantCreate,
            StoreError::NewerSchema { .. }
            | StoreError::NotAStore { .. }
            | StoreError::Corrupt { .. } => Exit::DataErr,
            StoreError::Io { .. }
            | StoreError::WritesStopped { .. }
            | StoreError::Exposed { .. } => Exit::IoErr,
            StoreError::Db { .. }
            | StoreError::UnknownRun { .. }
            | StoreError::RunNotRunning { .. }
            | StoreError::WrongKind { .. }
            | StoreError::DuplicateCustomer { .. }
            | StoreError::Task { .. } => Exit::Software,
        }
    }
}
