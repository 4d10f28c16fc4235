//! Large answers written on the blocking pool and streamed out in chunks, so a 10,000-customer
//! reconciliation is neither rendered on the single-threaded HTTP runtime nor held whole in
//! memory (one chunk in flight per answer, plus a small queue).

use std::io::{self, Write};

use axum::body::{Body, Bytes};
use tokio::sync::mpsc;

/// Bytes per chunk sent to the client.
const CHUNK: usize = 256 * 1024;
/// Chunks queued ahead of a slow client before the writer waits.
const QUEUE: usize = 4;

/// A body produced by `write` on the blocking pool. If the client goes away the writer's next
/// chunk fails and `write` stops; an error from `write` ends the body early (the client sees
/// a truncated answer, and the log says why).
pub fn blocking_body<F>(what: &'static str, write: F) -> Body
where
    F: FnOnce(&mut dyn Write) -> io::Result<()> + Send + 'static,
{
    let (tx, rx) = mpsc::channel::<Result<Bytes, io::Error>>(QUEUE);
    tokio::task::spawn_blocking(move || {
        let mut w = ChunkWriter { buf: Vec::with_capacity(CHUNK), tx };
        let done = write(&mut w).and_then(|()| w.send());
        if let Err(e) = done
            && e.kind() != io::ErrorKind::BrokenPipe
        {
            tracing::error!("writing {what} failed: {e}");
            let _ = w.tx.blocking_send(Err(e));
        }
    });
    let chunks = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (chunk, rx))
    });
    Body::from_stream(chunks)
}

struct ChunkWriter {
    buf: Vec<u8>,
    tx: mpsc::Sender<Result<Bytes, io::Error>>,
}

impl ChunkWriter {
    /// Sends what is buffered; `BrokenPipe` when the client has gone.
    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
        self.tx
            .blocking_send(Ok(Bytes::from(chunk)))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the client went away"))
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
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_large_body_arrives_whole_in_chunks() {
        let text: String = (0..50_000).map(|i| format!("{i},")).collect();
        let expected = text.clone();
        let body = blocking_body("a test body", move |w| w.write_all(text.as_bytes()));
        let got = axum::body::to_bytes(body, usize::MAX).await.unwrap();
        assert_eq!(got, expected.as_bytes());
    }

    #[tokio::test]
    async fn a_failing_writer_ends_the_body_with_an_error() {
        let body = blocking_body("a test body", |w| {
            w.write_all(&[b'x'; CHUNK * 2])?;
            Err(io::Error::other("disk on fire"))
        });
        assert!(axum::body::to_bytes(body, usize::MAX).await.is_err());
    }
}
