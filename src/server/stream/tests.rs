//! The streamed body, how it ends, and the render gate.

use super::*;

fn gate() -> RenderGate {
    RenderGate::new(1, QUEUE_WAIT)
}

#[tokio::test]
async fn a_large_body_arrives_whole_in_chunks() {
    let text: String = (0..50_000).map(|i| format!("{i},")).collect();
    let expected = text.clone();
    let slot = gate().enter("a test body").await.unwrap();
    let body = blocking_body("a test body", slot, move |w| w.write_all(text.as_bytes()));
    let got = axum::body::to_bytes(body, usize::MAX).await.unwrap();
    assert_eq!(got, expected.as_bytes());
}

#[tokio::test]
async fn a_failing_writer_ends_the_body_with_an_error() {
    let slot = gate().enter("a test body").await.unwrap();
    let body = blocking_body("a test body", slot, |w| {
        w.write_all(&[b'x'; CHUNK * 2])?;
        Err(io::Error::other("disk on fire"))
    });
    assert!(axum::body::to_bytes(body, usize::MAX).await.is_err());
}

/// A writer whose client is already gone, on `runtime`.
fn writer_to_nobody(runtime: tokio::runtime::Handle) -> ChunkWriter {
    let (tx, rx) = mpsc::channel(QUEUE);
    drop(rx);
    ChunkWriter { buf: Vec::new(), tx, runtime, stall: STALL }
}

#[tokio::test]
async fn json_for_a_client_that_went_away_is_not_a_failure() {
    // What made a closed browser tab an ERROR line: serde_json wraps the writer's error,
    // and wrapping it again as `Other` lost the "went away" kind.
    let rows: Vec<String> = (0..100_000).map(|i| format!("row {i}")).collect();
    let runtime = tokio::runtime::Handle::current();
    let ending = tokio::task::spawn_blocking(move || {
        let mut w = writer_to_nobody(runtime);
        run(&mut w, |w| write_json(w, &rows))
    })
    .await
    .unwrap();
    assert!(matches!(ending, Ending::ClientGone), "{ending:?}");
}

#[tokio::test(start_paused = true)]
async fn a_client_that_stops_reading_is_dropped_and_frees_the_slot() {
    let gate = gate();
    let slot = gate.enter("a test body").await.unwrap();
    let (tx, mut rx) = mpsc::channel(QUEUE);
    let runtime = tokio::runtime::Handle::current();
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    // A plain thread, not the blocking pool: paused time only advances while the runtime is
    // idle, and a running blocking task counts as busy.
    std::thread::spawn(move || {
        let mut w = ChunkWriter { buf: Vec::new(), tx, runtime, stall: STALL };
        let ending = run(&mut w, |w| (0..QUEUE + 3).try_for_each(|_| w.write_all(&[b'x'; CHUNK])));
        drop(slot);
        let _ = done_tx.send(ending);
    });
    let started = tokio::time::Instant::now();
    let ending = done_rx.await.unwrap();
    assert!(matches!(ending, Ending::ClientStalled), "{ending:?}");
    assert_eq!(started.elapsed(), STALL, "virtual time: one stall, not one per chunk");
    assert_eq!(gate.available(), 1, "the slot is free again");
    let mut queued = 0;
    while rx.try_recv().is_ok() {
        queued += 1;
    }
    assert_eq!(queued, QUEUE, "the client got what fit in the queue");
}

#[tokio::test(start_paused = true)]
async fn a_request_that_finds_no_free_slot_in_time_gets_a_json_503() {
    let gate = RenderGate::new(1, Duration::from_secs(8));
    let held = gate.enter("the first").await.unwrap();
    let started = tokio::time::Instant::now();
    let busy = gate.enter("the reconciliation").await.unwrap_err();
    assert_eq!(started.elapsed(), Duration::from_secs(8));
    assert_eq!(busy.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(busy.headers()[header::RETRY_AFTER], "2");
    let body = axum::body::to_bytes(busy.into_body(), 1 << 16).await.unwrap();
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert!(v["error"].as_str().unwrap().contains("the reconciliation waited 8s"), "{v}");
    // Once the slot is given back, the next one gets it at once.
    drop(held);
    assert!(gate.enter("the next").await.is_ok());
}
