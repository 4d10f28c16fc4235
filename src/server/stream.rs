//! Large answers written on the blocking pool and streamed out in chunks, so a 10,000-customer
//! reconciliation is neither rendered on the single-threaded HTTP runtime nor held whole in
//! memory (one chunk in flight per answer, plus a small queue).
//!
//! Renders run behind a [`RenderGate`]: a few at once, the rest queue (without a thread).
//! Thirty-two readers rendering at once on a two-core host left the HTTP thread a
//! thirty-fourth of the CPU, and `/v1/health` waited 250 ms behind them.

use std::io::{self, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

/// Bytes per chunk sent to the client.
const CHUNK: usize = 256 * 1024;
/// Chunks queued ahead of a slow client before the writer waits.
const QUEUE: usize = 4;
/// A client that takes no chunk for this long is dropped, so it cannot hold a render slot.
const STALL: Duration = Duration::from_secs(10);
/// How long a request waits for a render slot before it is told to come back (below the
/// handler timeout, so the answer is the JSON 503 and not the timeout's empty one).
pub const QUEUE_WAIT: Duration = Duration::from_secs(8);

/// Limits how many large answers render at once; the others wait in line.
#[derive(Debug, Clone)]
pub struct RenderGate {
    slots: Arc<Semaphore>,
    wait: Duration,
    /// Requests waiting for a slot right now.
    waiting: Arc<AtomicUsize>,
}

impl RenderGate {
    /// `slots` renders at once; a request waits at most `wait` for one.
    pub fn new(slots: usize, wait: Duration) -> RenderGate {
        RenderGate {
            slots: Arc::new(Semaphore::new(slots.max(1))),
            wait,
            waiting: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Half the cores (at least one): the other half keeps the HTTP thread, the sync and
    /// the probes answering.
    pub fn for_this_host() -> RenderGate {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        RenderGate::new(cores / 2, QUEUE_WAIT)
    }

    /// A slot for rendering `what`, held until the render ends; a JSON 503 with
    /// `Retry-After` when none frees up within the wait.
    pub async fn enter(&self, what: &str) -> Result<OwnedSemaphorePermit, Response> {
        // Counted while waiting, also when the request is dropped (the client gave up).
        struct Waiting<'a>(&'a AtomicUsize);
        impl Drop for Waiting<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::Relaxed);
            }
        }
        self.waiting.fetch_add(1, Ordering::Relaxed);
        let waiting = Waiting(&self.waiting);
        let got = tokio::time::timeout(self.wait, self.slots.clone().acquire_owned()).await;
        drop(waiting);
        match got {
            Ok(Ok(permit)) => Ok(permit),
            // The semaphore is never closed; a timeout is the only real case.
            Ok(Err(_)) | Err(_) => {
                tracing::debug!("no render slot for {what} within {:?}", self.wait);
                let mut resp = super::errors::json_error_hint(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!(
                        "too many large answers are being rendered; {what} waited {}s",
                        self.wait.as_secs()
                    ),
                    "retry in a few seconds; scripts that poll this endpoint should not run many \
                     requests at once",
                );
                resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("2"));
                Err(resp)
            }
        }
    }

    /// Slots free right now.
    pub fn available(&self) -> usize {
        self.slots.available_permits()
    }

    /// Requests waiting for a slot right now.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }
}

/// How a streamed answer ended.
#[derive(Debug)]
enum Ending {
    Complete,
    /// The client closed the connection: normal (a browser tab closed, `curl | head`).
    ClientGone,
    /// The client stopped reading for [`STALL`].
    ClientStalled,
    /// Rendering failed: a bug or a store problem worth an error in the log.
    Failed(io::Error),
}

impl Ending {
    fn of(result: io::Result<()>) -> Ending {
        match result {
            Ok(()) => Ending::Complete,
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ending::ClientGone,
            Err(e) if e.kind() == io::ErrorKind::TimedOut => Ending::ClientStalled,
            Err(e) => Ending::Failed(e),
        }
    }
}

/// A body produced by `write` on the blocking pool, holding `slot` until it is written. If the
/// client goes away the writer's next chunk fails and `write` stops (logged at debug); an
/// error from `write` ends the body early (the client sees a truncated answer, and the log
/// says why). Errors keep their kind (`BrokenPipe` when the client went away).
pub fn blocking_body<F>(what: &'static str, slot: OwnedSemaphorePermit, write: F) -> Body
where
    F: FnOnce(&mut dyn Write) -> io::Result<()> + Send + 'static,
{
    let (tx, rx) = mpsc::channel::<Result<Bytes, io::Error>>(QUEUE);
    let runtime = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        let mut w = ChunkWriter { buf: Vec::with_capacity(CHUNK), tx, runtime, stall: STALL };
        let ending = run(&mut w, write);
        drop(slot);
        match ending {
            Ending::Complete => {}
            Ending::ClientGone => tracing::debug!("the client went away during {what}"),
            Ending::ClientStalled => {
                tracing::debug!("the client stopped reading {what} for {STALL:?}; dropped it")
            }
            Ending::Failed(e) => {
                tracing::error!("writing {what} failed: {e}");
                // The error reaches the client as a broken answer, not a short one that looks
                // complete (bounded like a chunk, in case the client stopped reading).
                let tx = &w.tx;
                let _ = w
                    .runtime
                    .block_on(async { tokio::time::timeout(STALL, tx.send(Err(e))).await });
            }
        }
    });
    let chunks = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (chunk, rx))
    });
    Body::from_stream(chunks)
}

#[cfg(test)]
/// Writes `value` as JSON. `serde_json` wraps the writer's errors; `io::Error::from` takes
/// them back out, so a client that went away still reads as `BrokenPipe`.
pub fn write_json<T: serde::Serialize + ?Sized>(w: &mut dyn Write, value: &T) -> io::Result<()> {
    serde_json::to_writer(w, value).map_err(io::Error::from)
}

fn run<F>(w: &mut ChunkWriter, write: F) -> Ending
where
    F: FnOnce(&mut dyn Write) -> io::Result<()>,
{
    Ending::of(write(w).and_then(|()| w.send()))
}

struct ChunkWriter {
    buf: Vec<u8>,
    tx: mpsc::Sender<Result<Bytes, io::Error>>,
    /// The HTTP runtime, whose timer bounds each send.
    runtime: tokio::runtime::Handle,
    stall: Duration,
}

impl ChunkWriter {
    /// Sends what is buffered; `BrokenPipe` when the client has gone, `TimedOut` when it
    /// took nothing for `stall`.
    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        // The timer is made inside the block: only there is the runtime's context entered.
        let (tx, stall) = (&self.tx, self.stall);
        let sent =
            self.runtime.block_on(async { tokio::time::timeout(stall, tx.send(Ok(chunk))).await });
        match sent {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(io::Error::new(io::ErrorKind::BrokenPipe, "the client went away")),
            Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "the client stopped reading")),
        }
    }
}

impl Write for ChunkWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests;
