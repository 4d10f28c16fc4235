//! The command line's side of the control socket: connect, send one request, hand each
//! progress event to the caller as it arrives, and return the final reply.

use std::io;
use std::path::{Path, PathBuf};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

use super::{Reply, Request};
use crate::exit::{Exit, ExitStatus};
use crate::writeback::ApplyEvent;

/// Why the daemon could not be asked, or did not answer.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// The store is locked, but the daemon's socket does not take connections.
    #[error(
        "the store is in use by a running mpsync daemon, and its control socket {path} does \
         not answer ({source}). Check that the daemon runs (`systemctl status mpsync`) and that \
         you may reach the socket: it belongs to the daemon's user, so run the command as \
         root (`sudo mpsync ...`) or as that user"
    )]
    Unreachable {
        /// The socket.
        path: PathBuf,
        /// Why connecting failed.
        #[source]
        source: io::Error,
    },
    /// The connection ended before the final reply.
    #[error(
        "the daemon closed the control socket {path} before it answered{}; it may have been \
         stopped. `mpsync audit` shows what was recorded, and running the command again is \
         safe",
        .detail.as_ref().map(|d| format!(" ({d})")).unwrap_or_default()
    )]
    Cut {
        /// The socket.
        path: PathBuf,
        /// A read error, if that is how it ended.
        detail: Option<String>,
    },
    /// A line of the answer is not a reply this command understands.
    #[error(
        "the daemon answered on {path} with something this command does not understand \
         ({reason}); is the daemon a different mpsync version? Restart it after an upgrade"
    )]
    Malformed {
        /// The socket.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
}

impl ExitStatus for ControlError {
    fn exit(&self) -> Exit {
        match self {
            ControlError::Unreachable { .. } => Exit::TempFail,
            ControlError::Cut { .. } => Exit::Failure,
            ControlError::Malformed { .. } => Exit::Software,
        }
    }
}

/// Sends `req` to the daemon at `path`, calls `on_event` with each progress event as it
/// arrives, and returns the final reply (a report, audit entries, or the daemon's error).
pub async fn request(
    path: &Path,
    req: &Request,
    mut on_event: impl FnMut(&ApplyEvent),
) -> Result<Reply, ControlError> {
    let unreachable = |source| ControlError::Unreachable { path: path.to_path_buf(), source };
    let mut stream = UnixStream::connect(path).await.map_err(unreachable)?;
    let mut line = serde_json::to_vec(req)
        .map_err(|e| ControlError::Malformed { path: path.to_path_buf(), reason: e.to_string() })?;
    line.push(b'\n');
    stream.write_all(&line).await.map_err(unreachable)?;
    let mut lines = BufReader::new(stream).lines();
    loop {
        let line = match lines.next_line().await {
            Ok(Some(line)) => line,
            Ok(None) => return Err(ControlError::Cut { path: path.to_path_buf(), detail: None }),
            Err(e) => {
                return Err(ControlError::Cut {
                    path: path.to_path_buf(),
                    detail: Some(e.to_string()),
                });
            }
        };
        let reply: Reply = serde_json::from_str(&line).map_err(|e| ControlError::Malformed {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        match reply {
            Reply::Event(event) => on_event(&event),
            done => return Ok(done),
        }
    }
}
