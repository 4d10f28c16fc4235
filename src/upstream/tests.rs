//! Client behaviour against a tiny scripted axum server on 127.0.0.1: retries, 429 pauses,
//! timeouts, classification and redaction.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::*;
use crate::config::{Secret, UpstreamLimits};

#[path = "echo_tests.rs"]
mod echo;

type Script = Arc<dyn Fn(usize) -> Response + Send + Sync>;
/// When each request arrived and the Authorization header it carried.
type Arrivals = Arc<Mutex<Vec<(Instant, Option<String>)>>>;

struct Stub {
    base: url::Url,
    hits: Arc<AtomicUsize>,
    arrivals: Arrivals,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Stub {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn stub(script: impl Fn(usize) -> Response + Send + Sync + 'static) -> Stub {
    let script: Script = Arc::new(script);
    let hits = Arc::new(AtomicUsize::new(0));
    let arrivals: Arrivals = Arc::new(Mutex::new(Vec::new()));
    let (h, a) = (hits.clone(), arrivals.clone());
    let app = axum::Router::new().fallback(move |headers: HeaderMap| {
        let (script, hits, arrivals) = (script.clone(), h.clone(), a.clone());
        async move {
            let n = hits.fetch_add(1, Ordering::SeqCst);
            let auth =
                headers.get("authorization").and_then(|v| v.to_str().ok()).map(str::to_owned);
            arrivals.lock().unwrap().push((Instant::now(), auth));
            script(n)
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Stub { base: format!("http://{addr}/api/v1").parse().unwrap(), hits, arrivals, task }
}

fn spec(base: url::Url) -> UpstreamSpec {
    UpstreamSpec {
        name: "mailprotector".into(),
        base_url: base,
        limits: UpstreamLimits {
            rate_limit: 1000.0,
            burst: 50,
            max_in_flight: 4,
            // Generous for a loaded CI machine; the timeout test shortens it.
            timeout: Duration::from_secs(3),
            connect_timeout: Duration::from_secs(3),
        },
        auth_headers: vec![(
            "Authorization".into(),
            Secret::new("Bearer sk-test-secret", "/etc/k"),
        )],
        credential: "mailprotector.api_key_file (/etc/k)".into(),
        retry: RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(5),
            max_delay: Duration::from_millis(20),
            default_rate_limit_pause: Duration::from_millis(30),
            ..RetryPolicy::default()
        },
        redact: vec![Secret::new("sk-test-secret", "/etc/k")],
    }
}

fn ep() -> Endpoint {
    Endpoint::get("/resellers/188", "/resellers/{id}")
}

fn status(code: u16, body: &'static str) -> Response {
    (StatusCode::from_u16(code).unwrap(), body).into_response()
}

#[tokio::test]
async fn transient_failures_are_retried_until_success() {
    let s = stub(|n| if n < 2 { status(503, "busy") } else { status(200, r#"{"id":188}"#) }).await;
    let c = UpstreamClient::new(spec(s.base.clone())).unwrap();
    let resp = c.get(&ep(), &[]).await.unwrap();
    assert_eq!(&resp.body[..], br#"{"id":188}"#);
    let st = c.stats();
    assert_eq!(st.requests_to("GET /resellers/{id}"), 3);
    assert_eq!(st.retries, 2);
    assert_eq!(s.hits.load(Ordering::SeqCst), 3);
    let auth = s.arrivals.lock().unwrap()[0].1.clone();
    assert_eq!(auth.as_deref(), Some("Bearer sk-test-secret"), "the auth header is sent");
}

#[tokio::test]
async fn exhausted_retries_name_the_endpoint_and_last_status() {
    let s = stub(|_| status(502, r#"{"error":"upstream gone"}"#)).await;
    let c = UpstreamClient::new(spec(s.base.clone())).unwrap();
    let err = c.get(&ep(), &[]).await.unwrap_err();
    match &err {
        UpstreamError::Unavailable { attempts, detail, endpoint, .. } => {
            assert_eq!(*attempts, 3);
            assert!(detail.contains("502") && detail.contains("upstream gone"), "{detail}");
            assert_eq!(endpoint, "GET /resellers/{id}");
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
    assert!(err.is_retryable());
    assert_eq!(s.hits.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn auth_errors_are_not_retried_and_are_redacted() {
    let s = stub(|_| status(401, r#"{"error":"key Bearer sk-test-secret revoked"}"#)).await;
    let c = UpstreamClient::new(spec(s.base.clone())).unwrap();
    let err = c.get(&ep(), &[]).await.unwrap_err();
    assert!(matches!(err, UpstreamError::Unauthorized { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("mailprotector.api_key_file (/etc/k)"), "{text}");
    assert!(!text.contains("sk-test-secret"), "{text}");
    assert!(!format!("{err:?}").contains("sk-test-secret"));
    assert!(!format!("{c:?}").contains("sk-test-secret"));
    assert_eq!(s.hits.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn client_errors_are_classified() {
    let s = stub(|n| match n {
        0 => status(403, r#"{"message":"not a reseller key"}"#),
        1 => status(404, "<html>Not Found</html>"),
        2 => status(422, r#"{"errors":{"name":["is blank"]}}"#),
        _ => status(302, ""),
    })
    .await;
    let c = UpstreamClient::new(spec(s.base.clone())).unwrap();
    let e = c.get(&ep(), &[]).await.unwrap_err();
    assert!(
        matches!(&e, UpstreamError::Forbidden { message, .. } if message == "not a reseller key"),
        "{e:?}"
    );
    let e = c.get(&ep(), &[]).await.unwrap_err();
    assert!(
        matches!(&e, UpstreamError::NotFound { path, .. } if path == "/resellers/188"),
        "{e:?}"
    );
    let e = c.get(&ep(), &[]).await.unwrap_err();
    assert!(
        matches!(&e, UpstreamError::Rejected { status: 422, message, .. } if message.contains("is blank")),
        "{e:?}"
    );
    let e = c.get(&ep(), &[]).await.unwrap_err();
    assert!(matches!(&e, UpstreamError::BadResponse { .. }), "{e:?}");
    assert_eq!(c.stats().retries, 0);
}

#[tokio::test]
async fn timeouts_and_refused_connections_become_typed_errors() {
    let s = stub(|_| status(200, "[]")).await;
    let slow = axum::Router::new().fallback(|| async {
        tokio::time::sleep(Duration::from_secs(30)).await;
        "late"
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, slow).await;
    });
    let mut sp = spec(format!("http://{addr}").parse().unwrap());
    sp.limits.timeout = Duration::from_millis(300);
    let c = UpstreamClient::new(sp).unwrap();
    let e = c.get(&ep(), &[]).await.unwrap_err();
    assert!(matches!(e, UpstreamError::Timeout { attempts: 3, .. }), "{e:?}");
    task.abort();

    // A port nobody listens on: bind, note, release.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let c = UpstreamClient::new(spec(format!("http://127.0.0.1:{port}").parse().unwrap())).unwrap();
    let e = c.get(&ep(), &[]).await.unwrap_err();
    assert!(matches!(e, UpstreamError::Unavailable { attempts: 3, .. }), "{e:?}");
    drop(s);
}

#[tokio::test]
async fn non_idempotent_calls_are_not_retried() {
    let s = stub(|_| status(503, "")).await;
    let c = UpstreamClient::new(spec(s.base.clone())).unwrap();
    let post = Endpoint { method: reqwest::Method::POST, path: "/x".into(), pattern: "/x" };
    let e = c.send(&post, &[], Some(&serde_json::json!({"a":1})), false).await.unwrap_err();
    assert!(matches!(e, UpstreamError::Unavailable { attempts: 1, .. }), "{e:?}");
    assert_eq!(s.hits.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_429_pauses_every_caller_until_retry_after() {
    let s = stub(|n| {
        if n == 0 {
            (
                StatusCode::TOO_MANY_REQUESTS,
                [("retry-after", "1")],
                r#"{"error":"rate limit exceeded"}"#,
            )
                .into_response()
        } else {
            status(200, "[]")
        }
    })
    .await;
    let mut sp = spec(s.base.clone());
    sp.limits.max_in_flight = 1; // the first request is answered before the others go out
    let c = UpstreamClient::new(sp).unwrap();
    let calls: Vec<_> = (0..4)
        .map(|_| {
            let c = c.clone();
            tokio::spawn(async move { c.get(&ep(), &[]).await })
        })
        .collect();
    for call in calls {
        call.await.unwrap().unwrap();
    }
    let arrivals = s.arrivals.lock().unwrap().clone();
    assert_eq!(arrivals.len(), 5, "4 calls + 1 retry");
    let first = arrivals[0].0;
    for (at, _) in &arrivals[1..] {
        // The pause is a lower bound by construction: no request may arrive during it.
        assert!(
            at.duration_since(first) >= Duration::from_millis(990),
            "a request went out during the pause"
        );
    }
    let st = c.stats();
    assert_eq!((st.rate_limited, st.retries), (1, 1));
    assert!(st.waited >= Duration::from_millis(990));
}

#[tokio::test]
async fn a_429_storm_without_retry_after_is_waited_out_or_reported() {
    let s = stub(|n| if n < 3 { status(429, "") } else { status(200, "[]") }).await;
    let c = UpstreamClient::new(spec(s.base.clone())).unwrap();
    c.get(&ep(), &[]).await.unwrap();
    assert_eq!(c.stats().rate_limited, 3);

    let s = stub(|_| status(429, "")).await;
    let mut sp = spec(s.base.clone());
    sp.retry.max_rate_limited_attempts = 4;
    let c = UpstreamClient::new(sp).unwrap();
    let e = c.get(&ep(), &[]).await.unwrap_err();
    assert!(matches!(e, UpstreamError::RateLimited { attempts: 4, .. }), "{e:?}");
}

#[tokio::test]
async fn scoped_clients_count_separately() {
    let s = stub(|_| status(200, "{}")).await;
    let c = UpstreamClient::new(spec(s.base.clone())).unwrap();
    c.get(&ep(), &[]).await.unwrap();
    let run = c.scoped();
    run.get(&ep(), &[]).await.unwrap();
    run.get(&ep(), &[("page", "2".into())]).await.unwrap();
    assert_eq!(c.stats().total_requests(), 1);
    assert_eq!(run.stats().total_requests(), 2);
}

/// Keeps every exchange it sees as (method path?query, status, body).
#[derive(Default)]
struct Tape(Mutex<Vec<(String, u16, Vec<u8>)>>);

impl Recorder for Tape {
    fn record(&self, e: &Exchange<'_>) {
        let query: Vec<String> = e.query.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let line = format!("{} {}?{}", e.method, e.path, query.join("&"));
        self.0.lock().unwrap().push((line, e.status, e.body.to_vec()));
    }
}

#[tokio::test]
async fn a_recording_client_sees_every_answer_and_never_writes() {
    let s = stub(|n| if n == 0 { status(503, "busy") } else { status(200, r#"{"id":188}"#) }).await;
    let tape = Arc::new(Tape::default());
    let plain = UpstreamClient::new(spec(s.base.clone())).unwrap();
    let c = plain.recording(tape.clone());
    c.get(&ep(), &[("page", "1".into())]).await.unwrap();
    let seen = tape.0.lock().unwrap().clone();
    let line = "GET /resellers/188?page=1".to_owned();
    assert_eq!(
        seen,
        vec![(line.clone(), 503, b"busy".to_vec()), (line, 200, br#"{"id":188}"#.to_vec())]
    );

    let post = Endpoint {
        method: reqwest::Method::POST,
        path: "/customers".into(),
        pattern: "/customers",
    };
    let err = c.send(&post, &[], Some(&serde_json::json!({"name": "x"})), false).await.unwrap_err();
    assert!(err.to_string().contains("only reads: POST /customers was refused"), "{err}");
    assert_eq!(s.hits.load(Ordering::SeqCst), 2, "the POST never left the process");
    assert_eq!(tape.0.lock().unwrap().len(), 2);
    // The scoped clone of a recording client records too; the plain client never does.
    c.scoped().get(&ep(), &[]).await.unwrap();
    plain.get(&ep(), &[]).await.unwrap();
    assert_eq!(tape.0.lock().unwrap().len(), 3);
}

#[test]
fn the_scrubber_holds_the_auth_header_and_the_raw_key() {
    let c = UpstreamClient::new(spec("http://127.0.0.1:9/api/v1".parse().unwrap())).unwrap();
    let out = c.scrubber().scrub("Bearer sk-test-secret / c2stdGVzdC1zZWNyZXQ= / sk-test-secret");
    assert_eq!(out, "<redacted> / <redacted> / <redacted>");
}

/// What a server received: method, path and query, headers, body.
type Received = Arc<Mutex<Vec<(String, String, HeaderMap, bytes::Bytes)>>>;

#[tokio::test]
async fn describe_is_the_request_send_makes() {
    let got: Received = Arc::default();
    let g = got.clone();
    let app = axum::Router::new().fallback(
        move |method: axum::http::Method,
              uri: axum::http::Uri,
              headers: HeaderMap,
              body: bytes::Bytes| {
            let g = g.clone();
            async move {
                let pq = uri.path_and_query().map(|p| p.to_string()).unwrap_or_default();
                g.lock().unwrap().push((method.to_string(), pq, headers, body));
                status(200, "{}")
            }
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let c = UpstreamClient::new(spec(format!("http://{addr}/api/v1").parse().unwrap())).unwrap();
    let ep = Endpoint::new(reqwest::Method::PATCH, "/things/7", "/things/{id}");
    let query = [("conditions", "name = \"a&b\"".to_owned()), ("page", "2".to_owned())];
    let body = serde_json::json!([{"op": "replace", "path": "/quantity", "value": 42}]);

    let planned = c.describe(&ep, &query, Some(&body));
    c.send(&ep, &query, Some(&body), true).await.unwrap();
    let (method, pq, headers, sent) = got.lock().unwrap()[0].clone();
    task.abort();

    assert_eq!(planned.method, method);
    assert_eq!(planned.url, format!("http://{addr}{pq}"));
    assert!(pq.starts_with("/api/v1/things/7?conditions="), "{pq}");
    assert_eq!(serde_json::from_slice::<serde_json::Value>(&sent).unwrap(), body);
    assert_eq!(planned.body.as_ref(), Some(&body));
    for (name, value) in &planned.headers {
        let received = headers.get(name.as_str()).and_then(|v| v.to_str().ok());
        if value == REDACTED {
            assert_eq!(received, Some("Bearer sk-test-secret"), "{name} is sent, not shown");
        } else {
            assert_eq!(received, Some(value.as_str()), "{name}");
        }
    }
    // Nothing else was sent but what the transport adds.
    let described: Vec<String> = planned.headers.iter().map(|(k, _)| k.to_lowercase()).collect();
    let extra: Vec<&str> =
        headers.keys().map(|k| k.as_str()).filter(|k| !described.iter().any(|d| d == k)).collect();
    assert_eq!(extra, vec!["host", "content-length"], "{headers:?}");
    let shown = planned.to_string();
    assert!(shown.starts_with(&format!("PATCH http://{addr}/api/v1/things/7?")), "{shown}");
    assert!(
        shown.contains("\nAuthorization: <redacted>\n") && !shown.contains("sk-test"),
        "{shown}"
    );
    assert!(
        shown.ends_with("\n\n[{\"op\":\"replace\",\"path\":\"/quantity\",\"value\":42}]"),
        "{shown}"
    );
}
