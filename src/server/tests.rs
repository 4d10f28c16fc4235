//! Router tests on 127.0.0.1:0 with a tiny HTTP/1.1 client (status codes and headers).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use super::*;

struct Reply {
    status: u16,
    headers: HashMap<String, String>,
    body: String,
}

/// Sends one GET on `stream` and reads exactly one response (by Content-Length).
async fn get_on(stream: &mut TcpStream, path: &str, close: bool) -> Reply {
    let conn = if close { "close" } else { "keep-alive" };
    let host = stream.peer_addr().unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: {conn}\r\n\r\n");
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    let head_end = loop {
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(n > 0, "connection closed before a full response");
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8(buf[..head_end].to_vec()).unwrap();
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    let headers: HashMap<String, String> = lines
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_ascii_lowercase(), v.to_owned()))
        .collect();
    let len: usize = headers.get("content-length").map(|v| v.parse().unwrap()).unwrap_or(0);
    while buf.len() < head_end + len {
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(n > 0, "connection closed inside the body");
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = String::from_utf8(buf[head_end..head_end + len].to_vec()).unwrap();
    Reply { status, headers, body }
}

async fn get(addr: SocketAddr, path: &str) -> Reply {
    let mut s = TcpStream::connect(addr).await.unwrap();
    get_on(&mut s, path, true).await
}

struct Running {
    addr: SocketAddr,
    state: ServerState,
    token: CancellationToken,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

async fn start(heartbeat: Heartbeat) -> Running {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let state = ServerState {
        health: Health::new(chrono::Utc::now()),
        heartbeat,
        metrics: Metrics::new(),
        api: None,
        access: Default::default(),
    };
    let token = CancellationToken::new();
    let server = tokio::spawn(serve(listener, state.clone(), token.clone().cancelled_owned()));
    Running { addr, state, token, server }
}

fn beating() -> Heartbeat {
    Heartbeat::new(Duration::from_secs(1), Duration::from_secs(3600))
}

#[tokio::test]
async fn probes_answer_with_no_store_and_readiness_latches() {
    let r = start(beating()).await;
    let live = get(r.addr, "/livez").await;
    assert_eq!((live.status, live.headers["cache-control"].as_str()), (200, "no-store"));

    let ready = get(r.addr, "/readyz").await;
    assert_eq!(ready.status, 503, "not ready before the latch");
    r.state.health.mark_ready();
    let ready = get(r.addr, "/readyz").await;
    assert_eq!((ready.status, ready.headers["cache-control"].as_str()), (200, "no-store"));

    // An upstream failure is a warning; readiness stays.
    r.state.health.record_failure(
        crate::health::Source::Mailprotector,
        chrono::Utc::now(),
        "HTTP 503",
    );
    assert_eq!(get(r.addr, "/readyz").await.status, 200);
}

#[tokio::test]
async fn health_is_health_json_and_fails_with_503_until_the_store_is_open() {
    let r = start(beating()).await;
    let h = get(r.addr, "/v1/health").await;
    assert_eq!(h.status, 503);
    assert_eq!(h.headers["content-type"], "application/health+json");
    assert_eq!(h.headers["cache-control"], "no-store");

    r.state.health.set_store_open("/tmp/x/mpsync.redb".into(), chrono::Utc::now());
    let h = get(r.addr, "/v1/health").await;
    assert_eq!(h.status, 200);
    let v: serde_json::Value = serde_json::from_str(&h.body).unwrap();
    assert_eq!(v["status"], "warn");
    assert_eq!(v["checks"]["store:open"][0]["status"], "pass");
    assert_eq!(v["checks"]["mailprotector:lastSuccess"][0]["output"], "no run yet");
}

#[tokio::test]
async fn a_stale_heartbeat_fails_liveness() {
    let r = start(Heartbeat::new(Duration::from_millis(1), Duration::ZERO)).await;
    let live = get(r.addr, "/livez").await;
    assert_eq!(live.status, 503);
    assert!(live.body.contains("main loop"), "{}", live.body);
}

#[tokio::test]
async fn metrics_and_unknown_paths() {
    let r = start(beating()).await;
    let m = get(r.addr, "/metrics").await;
    assert_eq!(m.status, 200);
    assert_eq!(m.headers["content-type"], crate::metrics::CONTENT_TYPE);
    assert!(m.body.contains("mpsync_build_info"), "{}", m.body);

    let nf = get(r.addr, "/nope").await;
    assert_eq!((nf.status, nf.headers["content-type"].as_str()), (404, "application/json"));
    assert_eq!(nf.headers["cache-control"], "no-store");
    let v: serde_json::Value = serde_json::from_str(&nf.body).unwrap();
    assert_eq!(v["path"], "/nope");
}

#[tokio::test]
async fn an_idle_keep_alive_connection_does_not_block_shutdown() {
    let r = start(beating()).await;
    let mut idle = TcpStream::connect(r.addr).await.unwrap();
    assert_eq!(get_on(&mut idle, "/livez", false).await.status, 200);
    r.token.cancel();
    let done = tokio::time::timeout(Duration::from_secs(10), r.server).await;
    done.expect("server did not stop with an idle keep-alive connection open").unwrap().unwrap();
    // The idle connection was closed by the server.
    let mut rest = Vec::new();
    let n = tokio::time::timeout(Duration::from_secs(10), idle.read_to_end(&mut rest))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(n, 0);
}

#[tokio::test(start_paused = true)]
async fn a_stuck_handler_times_out_with_503_and_no_store() {
    use tower::ServiceExt;
    let slow = Router::new().route(
        "/slow",
        axum::routing::get(|| async {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            "too late"
        }),
    );
    let state = ServerState {
        health: Health::new(chrono::Utc::now()),
        heartbeat: beating(),
        metrics: Metrics::new(),
        api: None,
        access: Default::default(),
    };
    let app = with_common_layers(slow).with_state(state);
    let req = axum::http::Request::get("/slow").body(axum::body::Body::empty()).unwrap();
    let started = tokio::time::Instant::now();
    let resp = app.oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(resp.headers()[header::CACHE_CONTROL], "no-store");
    assert_eq!(started.elapsed(), HANDLER_TIMEOUT, "virtual time: the timeout, not the handler");
}
