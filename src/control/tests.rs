//! The socket's plumbing with a stand-in handler: replies stream in order, a stale socket file
//! is replaced, the socket is owner-only and removed at shutdown, a bad request gets an error
//! reply, and a client that goes away cancels the handler's work.

use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::*;
use crate::writeback::ApplyEvent;

/// Answers `apply` with two progress events and an error naming the plan; `audit` waits until
/// the client goes away, then says so through `seen_gone`.
struct Stand {
    seen_gone: CancellationToken,
}

impl Handler for Stand {
    fn handle(&self, req: Request, out: Replies) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            match req {
                Request::Apply { plan, who, .. } => {
                    for selected in [1, 2] {
                        out.send(Reply::Event(ApplyEvent::Started {
                            plan,
                            selected,
                            cap: 25,
                            dry_run: false,
                        }));
                    }
                    out.send(Reply::Error { message: format!("plan {plan} for {who}"), exit: 65 });
                }
                Request::Plan { .. } => out.send(Reply::Plan { plan: None }),
                Request::Backup {} => out.send(Reply::Error { message: "no".into(), exit: 74 }),
                Request::Report { .. } => out.send(Reply::Error { message: "no".into(), exit: 70 }),
                Request::Audit { .. } => {
                    out.gone().cancelled().await;
                    self.seen_gone.cancel();
                }
            }
        })
    }
}

#[tokio::test]
async fn requests_stream_their_replies_and_the_socket_is_private_and_cleaned_up() {
    let dir = tempfile::tempdir().unwrap();
    let path = socket_path(dir.path());
    // A socket file left by a daemon that was killed.
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    assert!(path.exists());
    let listener = ControlListener::bind(&path).expect("a stale socket is replaced");
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);

    let token = CancellationToken::new();
    let tracker = TaskTracker::new();
    let seen_gone = CancellationToken::new();
    let handler = Arc::new(Stand { seen_gone: seen_gone.clone() });
    let server = tokio::spawn(serve(listener, handler, token.clone(), tracker.clone()));

    let req = Request::Apply { plan: 7, dry_run: false, only: vec![], who: "alice".into() };
    let mut events = Vec::new();
    let done = request(&path, &req, |e| events.push(e.clone())).await.unwrap();
    assert_eq!(done, Reply::Error { message: "plan 7 for alice".into(), exit: 65 });
    assert_eq!(events.len(), 2);
    assert!(matches!(events[1], ApplyEvent::Started { selected: 2, .. }));

    // A client that hangs up after its request (the line stays readable after the close):
    // the handler's `gone` fires.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut quitter = tokio::net::UnixStream::connect(&path).await.unwrap();
    quitter.write_all(b"{\"audit\":{\"limit\":5}}\n").await.unwrap();
    drop(quitter);
    tokio::time::timeout(Duration::from_secs(10), seen_gone.cancelled()).await.expect("gone");

    // Garbage gets an error reply, not silence.
    let mut raw = tokio::net::UnixStream::connect(&path).await.unwrap();
    raw.write_all(b"{\"launch\":{}}\n").await.unwrap();
    let mut answer = String::new();
    raw.read_to_string(&mut answer).await.unwrap();
    let reply: Reply = serde_json::from_str(answer.trim()).unwrap();
    assert!(matches!(reply, Reply::Error { exit: 64, .. }), "{reply:?}");

    token.cancel();
    server.await.unwrap();
    assert!(!path.exists(), "removed at shutdown");
    let e = request(&path, &req, |_| {}).await.unwrap_err();
    assert_eq!(crate::exit::ExitStatus::exit(&e), crate::exit::Exit::TempFail);
    assert!(e.to_string().contains("sudo mpsync"), "{e}");

    // Anything but a socket is left alone.
    std::fs::write(&path, "not a socket").unwrap();
    assert!(ControlListener::bind(&path).is_err());
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "not a socket");
}
