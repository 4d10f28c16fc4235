//! The daemon's side of the control socket: bind (replacing a stale socket file, mode 0600),
//! accept until shutdown, read one request line per connection, hand it to the [`Handler`]
//! and stream its replies back as they come. The file is removed when the listener is
//! dropped. What a request does is the handler's business (wired in `app`).

use std::fs::Permissions;
use std::io;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{Reply, Request};
use crate::exit::Exit;

/// The longest request line read (requests are a few hundred bytes).
const MAX_REQUEST: u64 = 64 * 1024;

/// How long a client may take to send its request line.
const REQUEST_WAIT: Duration = Duration::from_secs(10);

/// Answers requests (the daemon implements it in `app`).
pub trait Handler: Send + Sync + 'static {
    /// Answers `req` by sending replies to `out`: any progress first, one final reply last.
    fn handle(&self, req: Request, out: Replies) -> BoxFuture<'_, ()>;
}

/// Where a handler's replies go, and whether the client is still there.
#[derive(Debug, Clone)]
pub struct Replies {
    tx: mpsc::UnboundedSender<Reply>,
    gone: CancellationToken,
}

impl Replies {
    /// Replies sent into a channel, for handlers driven without a socket (tests).
    pub fn channel() -> (Replies, mpsc::UnboundedReceiver<Reply>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Replies { tx, gone: CancellationToken::new() }, rx)
    }

    /// Sends one reply; a client that went away is not an error here (see [`Replies::gone`]).
    pub fn send(&self, reply: Reply) {
        let _ = self.tx.send(reply);
    }

    /// Cancelled once the client closed its end (Ctrl-C on `mpsync apply`): an apply stops
    /// before its next change.
    pub fn gone(&self) -> CancellationToken {
        self.gone.clone()
    }
}

/// A bound control socket; dropping it removes the socket file.
#[derive(Debug)]
pub struct ControlListener {
    listener: UnixListener,
    path: PathBuf,
}

impl ControlListener {
    /// Binds `path`, first removing a socket file a previous daemon left behind (the caller
    /// holds the store lock, so no other daemon serves this state directory). Refuses to
    /// remove anything that is not a socket. The socket gets mode 0600.
    pub fn bind(path: &Path) -> io::Result<ControlListener> {
        match std::fs::symlink_metadata(path) {
            Ok(meta) if meta.file_type().is_socket() => std::fs::remove_file(path)?,
            Ok(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!("{} exists and is not a socket; move it away", path.display()),
                ));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let listener = UnixListener::bind(path)?;
        let bound = ControlListener { listener, path: path.to_path_buf() };
        // The state directory is 0700 already; the socket itself is owner-only too.
        std::fs::set_permissions(path, Permissions::from_mode(0o600))?;
        Ok(bound)
    }

    /// The socket file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for ControlListener {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Accepts connections until `token` is cancelled, each served on `tracker`; then removes
/// the socket file. A connection's apply stops before its next change on shutdown.
pub async fn serve(
    listener: ControlListener,
    handler: Arc<dyn Handler>,
    token: CancellationToken,
    tracker: TaskTracker,
) {
    loop {
        let stream = tokio::select! {
            _ = token.cancelled() => break,
            accepted = listener.listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!("control socket {}: accept failed: {e}", listener.path.display());
                    continue;
                }
            },
        };
        tracker.spawn(connection(stream, handler.clone(), token.child_token()));
    }
    drop(listener);
}

/// One connection: one request, its replies, close.
async fn connection(stream: UnixStream, handler: Arc<dyn Handler>, shutdown: CancellationToken) {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read.take(MAX_REQUEST)).lines();
    let line = match tokio::time::timeout(REQUEST_WAIT, lines.next_line()).await {
        Ok(Ok(Some(line))) => line,
        // Nothing sensible arrived in time: there is nobody to answer.
        _ => return,
    };
    let req: Request = match serde_json::from_str(&line) {
        Ok(req) => req,
        Err(e) => {
            let reply = Reply::Error {
                message: format!(
                    "the daemon does not understand this request ({e}); is the mpsync \
                     command newer than the running daemon? Restart the daemon after an upgrade"
                ),
                exit: Exit::Usage.code(),
            };
            let _ = write_reply(&mut write, &reply).await;
            return;
        }
    };
    let (tx, mut rx) = mpsc::unbounded_channel();
    let replies = Replies { tx, gone: shutdown.clone() };
    // The client sends nothing after its request: a read that ends means it went away.
    let watch = async {
        let _ = lines.next_line().await;
        shutdown.cancel();
    };
    let writer = async {
        while let Some(reply) = rx.recv().await {
            if write_reply(&mut write, &reply).await.is_err() {
                shutdown.cancel();
                break;
            }
        }
        let _ = write.shutdown().await;
    };
    let work = handler.handle(req, replies);
    tokio::select! {
        _ = async { tokio::join!(work, writer) } => {}
        // The watcher never ends the connection by itself; the work and writer do.
        _ = async { watch.await; std::future::pending::<()>().await } => {}
    }
}

async fn write_reply(w: &mut tokio::net::unix::OwnedWriteHalf, reply: &Reply) -> io::Result<()> {
    let mut line = serde_json::to_vec(reply).map_err(io::Error::other)?;
    line.push(b'\n');
    w.write_all(&line).await
}
