//! Why the daemon could not start, or did not stop cleanly: [`DaemonError`], with the errors
//! of its start-up steps ([`ListenError`], [`JobsError`]). Each keeps the error it came from
//! and knows its exit status; `mpsync run` logs it (the daemon's stderr is its log).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::billing::BillingError;
use crate::config::mapping::MappingError;
use crate::exit::{Exit, ExitStatus};
use crate::store::StoreError;
use crate::sync::CronError;
use crate::upstream::UpstreamError;

use super::tasks::StillRunning;

/// Why `mpsync run` ended with an error.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// SIGTERM/SIGINT/SIGHUP handlers could not be installed.
    #[error("cannot install the signal handlers: {0}")]
    Signals(#[source] std::io::Error),
    /// The store could not be opened (another process holds it, a newer schema, I/O, ...).
    #[error("cannot start: {0}")]
    Store(#[from] StoreError),
    /// The task opening the store panicked.
    #[error("cannot start: opening the store in {} panicked: {source}", .dir.display())]
    StoreTask {
        /// The state directory.
        dir: PathBuf,
        /// The join error.
        #[source]
        source: tokio::task::JoinError,
    },
    /// The HTTP listener could not be bound.
    #[error(transparent)]
    Listen(#[from] ListenError),
    /// The mapping file is invalid: every problem, with its line.
    #[error("cannot start: {0:#}")]
    Mapping(#[from] MappingError),
    /// A job's client could not be built.
    #[error(transparent)]
    Jobs(#[from] JobsError),
    /// The cron scheduler did not start.
    #[error("cannot start the scheduler: {0}")]
    Scheduler(#[from] CronError),
    /// The HTTP server's thread or runtime could not be started.
    #[error("cannot start the HTTP server thread: {0}")]
    ServerThread(#[source] std::io::Error),
    /// A component failed while serving (the HTTP server); it logged why when it happened.
    #[error("mpsync stopped after a fatal error (logged above)")]
    Fatal,
    /// The shutdown grace period ran out before every task ended.
    #[error(
        "shutdown grace period ({}s, daemon.shutdown_grace) ran out; still running: {still_running}",
        .grace.as_secs_f64()
    )]
    GraceExpired {
        /// `daemon.shutdown_grace`.
        grace: Duration,
        /// What was still running.
        still_running: StillRunning,
    },
}

impl DaemonError {
    /// Whether the error was already logged where it happened (nothing more to say).
    pub fn already_logged(&self) -> bool {
        matches!(self, DaemonError::Fatal)
    }
}

impl ExitStatus for DaemonError {
    fn exit(&self) -> Exit {
        match self {
            DaemonError::Store(e) => e.exit(),
            DaemonError::Listen(e) => e.exit(),
            DaemonError::Mapping(e) => e.exit(),
            DaemonError::Jobs(e) => e.exit(),
            DaemonError::Signals(_)
            | DaemonError::StoreTask { .. }
            | DaemonError::Scheduler(_)
            | DaemonError::ServerThread(_)
            | DaemonError::Fatal
            | DaemonError::GraceExpired { .. } => Exit::Software,
        }
    }
}

/// The HTTP listener could not be bound to `daemon.listen`.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {addr} (daemon.listen): {}", listen_advice(.source))]
pub struct ListenError {
    /// The address asked for.
    pub addr: SocketAddr,
    /// The OS error.
    #[source]
    pub source: std::io::Error,
}

/// What the operator should do about a bind error.
fn listen_advice(e: &std::io::Error) -> String {
    use std::io::ErrorKind;
    match e.kind() {
        ErrorKind::AddrInUse => "the address is already in use by another process (another \
             mpsync or another service). Stop that process, or set daemon.listen (or `run \
             --listen`) to a free address, e.g. 127.0.0.1:9848"
            .to_owned(),
        ErrorKind::AddrNotAvailable | ErrorKind::PermissionDenied => format!(
            "{e}. Set daemon.listen (or `run --listen`) to an address of this host and a port \
             above 1023, e.g. 127.0.0.1:9847"
        ),
        _ => format!("{e}. Check daemon.listen (or `run --listen`)"),
    }
}

/// Every bind failure is EX_CONFIG (78): the address comes from `daemon.listen` (or `run
/// --listen`), and the fix is to choose another one (or stop what holds it). 69 stays
/// reserved for upstreams, so a script can tell "the port is taken" from "Mailprotector is
/// down".
impl ExitStatus for ListenError {
    fn exit(&self) -> Exit {
        Exit::Config
    }
}

/// A scheduled job's client could not be built (a TLS set-up problem, or a key that is not a
/// valid header value).
#[derive(Debug, thiserror::Error)]
pub enum JobsError {
    /// The Mailprotector client.
    #[error("cannot build the Mailprotector client: {0}")]
    Mailprotector(#[source] UpstreamError),
    /// The billing source's client.
    #[error("cannot build the billing source: {0}")]
    Billing(#[source] BillingError),
    /// The Gradient client.
    #[error("cannot build the Gradient client: {0}")]
    Gradient(#[source] UpstreamError),
}

impl ExitStatus for JobsError {
    fn exit(&self) -> Exit {
        match self {
            // Their settings were validated with the config: what is left is the TLS set-up.
            JobsError::Mailprotector(_) | JobsError::Billing(_) => Exit::Software,
            // The Gradient keys are only required once the push is built: a missing one is
            // the config's to fix.
            JobsError::Gradient(_) => Exit::Config,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Error, ErrorKind};

    use super::*;

    #[test]
    fn a_listen_error_says_what_to_do_for_its_kind_and_is_a_config_error() {
        let addr: SocketAddr = "127.0.0.1:9847".parse().unwrap();
        let in_use = ListenError { addr, source: Error::from(ErrorKind::AddrInUse) };
        assert_eq!(
            in_use.to_string(),
            "cannot listen on 127.0.0.1:9847 (daemon.listen): the address is already in use by \
             another process (another mpsync or another service). Stop that process, or set \
             daemon.listen (or `run --listen`) to a free address, e.g. 127.0.0.1:9848"
        );
        let denied = ListenError { addr, source: Error::new(ErrorKind::PermissionDenied, "no") };
        assert!(denied.to_string().ends_with("no. Set daemon.listen (or `run --listen`) to an address of this host and a port above 1023, e.g. 127.0.0.1:9847"), "{denied}");
        let other = ListenError { addr, source: Error::other("odd") };
        assert!(other.to_string().ends_with("odd. Check daemon.listen (or `run --listen`)"));
        for e in [in_use, denied, other] {
            assert_eq!(DaemonError::from(e).exit(), Exit::Config);
        }
    }
}
