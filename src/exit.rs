//! Exit codes (sysexits(3)), and [`ExitStatus`]: each boundary error (config, store,
//! upstream, job, command) says which one it deserves, derived from the error it keeps.
//!
//! A command's error becomes the process's status in one place, `commands::dispatch`;
//! scripts and systemd rely on these numbers.

use std::process::ExitCode;

/// A process exit status from DESIGN.md's contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Exit {
    /// Everything went well.
    Ok = 0,
    /// A run or check failed for a reason with no more specific code.
    Failure = 1,
    /// The command line was wrong (EX_USAGE).
    Usage = 64,
    /// An input file or upstream response was malformed (EX_DATAERR).
    DataErr = 65,
    /// An upstream could not be reached or refused the credentials (EX_UNAVAILABLE).
    Unavailable = 69,
    /// Internal software error (EX_SOFTWARE).
    Software = 70,
    /// An output file cannot be created: `mpsync init` and `mpsync backup` refuse to
    /// overwrite a file that exists (EX_CANTCREAT).
    CantCreate = 73,
    /// Local I/O failed, e.g. the state directory cannot be written (EX_IOERR).
    IoErr = 74,
    /// The store is held by another process; try again later (EX_TEMPFAIL).
    TempFail = 75,
    /// The configuration is invalid (EX_CONFIG).
    Config = 78,
}

impl Exit {
    /// The numeric status.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The status numbered `code`; a number that is none of these is a plain failure (the
    /// control socket carries statuses as numbers).
    pub fn from_code(code: u8) -> Exit {
        [
            Exit::Ok,
            Exit::Usage,
            Exit::DataErr,
            Exit::Unavailable,
            Exit::Software,
            Exit::CantCreate,
            Exit::IoErr,
            Exit::TempFail,
            Exit::Config,
        ]
        .into_iter()
        .find(|e| e.code() == code)
        .unwrap_or(Exit::Failure)
    }
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> Self {
        ExitCode::from(e.code())
    }
}

/// An error that knows which exit status it deserves.
pub trait ExitStatus {
    /// The status a process ending with this error should report.
    fn exit(&self) -> Exit;
}
