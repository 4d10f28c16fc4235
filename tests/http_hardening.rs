//! The HTTP endpoint against web pages and load, through the daemon's router over a test
//! store: foreign `Host` (DNS rebinding) and `Origin` (cross-site POST) refused, the access
//! token and the `/login` cookie, query-string errors as JSON on every route, and large
//! answers queueing for a render slot while health answers.

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use chrono::Utc;
use mpsync::config::Secret;
use mpsync::health::Health;
use mpsync::server::{Access, RenderGate};
use serde_json::Value;
use tower::ServiceExt;

use crate::support::api::{self, Reply, app, app_with, open, send};
use crate::support::reconcile;

const TOKEN: &str = "tok-3e1f9a7c5b2d4e6f";

fn json(r: &Reply) -> Value {
    serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", r.body))
}

fn req(method: &str, uri: &str, headers: &[(&str, &str)]) -> Request<Body> {
    let mut b = Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(Body::empty()).unwrap()
}

/// Access as the daemon builds it for a server bound to `bound`.
fn access(bound: &str, hosts: &[&str], token: Option<&str>) -> Access {
    let hosts: Vec<String> = hosts.iter().map(|h| h.to_string()).collect();
    let token = token.map(|t| Secret::new(t, "/etc/mpsync/access-token"));
    Access::new(bound.parse().unwrap(), &hosts, token.as_ref())
}

/// Polls `cond` (yielding to the server's tasks between tries) until it holds, or panics
/// with `what` after `timeout`.
async fn wait_until(timeout: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + timeout;
    while !cond() {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn gate() -> RenderGate {
    RenderGate::new(1, Duration::from_secs(8))
}

#[tokio::test]
async fn a_foreign_host_is_refused_with_421_saying_what_to_configure() {
    let (_dir, store) = open();
    let health = Health::new(Utc::now());
    let app = app_with(&store, &health, access("127.0.0.1:9847", &[], None), gate());
    for path in ["/", "/v1/health", "/metrics", "/v1/runs", "/v1/reconciliation", "/nope"] {
        let r = send(&app, req("GET", path, &[("host", "attacker.example:9847")])).await;
        assert_eq!(r.status, StatusCode::MISDIRECTED_REQUEST, "{path}: {}", r.body);
        assert_eq!(r.content_type(), "application/json", "{path}");
        assert_eq!(r.headers["cache-control"], "no-store", "{path}");
        let v = json(&r);
        assert!(v["error"].as_str().unwrap().contains("\"attacker.example\""), "{v}");
        assert!(v["hint"].as_str().unwrap().contains("daemon.allowed_hosts"), "{v}");
        assert!(!r.body.contains("customers"), "{path} leaked data: {}", r.body);
    }
    // A name that only ends like an allowed one, and a malformed Host, are foreign too.
    for host in ["localhost.attacker.example", "127.0.0.1.nip.io:9847", "bad host"] {
        let r = send(&app, req("GET", "/v1/runs", &[("host", host)])).await;
        assert_eq!(r.status, StatusCode::MISDIRECTED_REQUEST, "{host}");
    }
}

#[tokio::test]
async fn loopback_names_the_listen_address_and_listed_names_are_served() {
    let (_dir, store) = open();
    let health = Health::new(Utc::now());
    let rules = access("10.0.0.5:9847", &["mpsync.example.com"], None);
    let app = app_with(&store, &health, rules, gate());
    for host in [
        "127.0.0.1:9847",
        "127.0.0.1",
        "localhost",
        "localhost:9847",
        "LocalHost:8080",
        "[::1]:9847",
        "[::1]",
        "10.0.0.5:9847",
        "mpsync.example.com",
        "MPSYNC.example.com:443",
    ] {
        let r = send(&app, req("GET", "/v1/runs", &[("host", host)])).await;
        assert_eq!(r.status, StatusCode::OK, "{host}: {}", r.body);
    }
    // No Host at all (an HTTP/1.0 client) is not a browser, so not a rebinding attack.
    assert_eq!(send(&app, req("GET", "/v1/runs", &[])).await.status, StatusCode::OK);
}

#[tokio::test]
async fn probes_answer_whatever_host_or_token_a_prober_sends() {
    let (_dir, store) = open();
    let health = Health::new(Utc::now());
    let app = app_with(&store, &health, access("0.0.0.0:9847", &[], Some(TOKEN)), gate());
    // A kubelet sends the pod IP; a load balancer its own address; neither has the token.
    for host in ["10.244.1.7:9847", "attacker.example"] {
        let live = send(&app, req("GET", "/livez", &[("host", host)])).await;
        assert_eq!((live.status, live.body.as_str()), (StatusCode::OK, "ok\n"), "{host}");
        let ready = send(&app, req("GET", "/readyz", &[("host", host)])).await;
        assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE, "not ready yet: {host}");
    }
    health.mark_ready();
    let ready = send(&app, req("GET", "/readyz", &[("host", "10.244.1.7:9847")])).await;
    assert_eq!(ready.status, StatusCode::OK);
    // Everything else still needs both.
    let h = send(&app, req("GET", "/v1/health", &[("host", "10.244.1.7:9847")])).await;
    assert_eq!(h.status, StatusCode::MISDIRECTED_REQUEST);
}

#[tokio::test]
async fn a_post_from_a_foreign_page_is_refused_and_own_pages_and_scripts_are_not() {
    let (_dir, store) = open();
    let health = Health::new(Utc::now());
    let app = app_with(&store, &health, access("127.0.0.1:9847", &[], None), gate());
    let host = ("host", "127.0.0.1:9847");
    for origin in ["http://attacker.example", "null", "http://127.0.0.1.attacker.example:9847"] {
        let r = send(&app, req("POST", "/v1/sync", &[host, ("origin", origin)])).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{origin}: {}", r.body);
        let v = json(&r);
        assert!(v["error"].as_str().unwrap().contains("POST /v1/sync"), "{v}");
        assert!(v["hint"].as_str().unwrap().contains("daemon.allowed_hosts"), "{v}");
    }
    for origin in [Some("http://127.0.0.1:9847"), Some("http://localhost:9847"), None] {
        let mut headers = vec![host];
        headers.extend(origin.map(|o| ("origin", o)));
        let r = send(&app, req("POST", "/v1/sync", &headers)).await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{origin:?}: {}", r.body);
    }
    // Reading is not refused for an Origin: the browser keeps a cross-site answer from the page.
    let r = send(&app, req("GET", "/v1/runs", &[host, ("origin", "http://attacker.example")]));
    assert_eq!(r.await.status, StatusCode::OK);
}

#[tokio::test]
async fn with_a_token_every_route_but_the_probes_needs_it() {
    let (_dir, store) = open();
    let health = Health::new(Utc::now());
    health.set_store_open("/tmp/x/mpsync.redb".into(), Utc::now());
    let app = app_with(&store, &health, access("127.0.0.1:9847", &[], Some(TOKEN)), gate());
    let bearer = format!("Bearer {TOKEN}");
    for path in
        ["/v1/health", "/metrics", "/v1/runs", "/v1/reconciliation", "/v1/customers", "/nope"]
    {
        let r = send(&app, req("GET", path, &[])).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{path}: {}", r.body);
        assert_eq!(r.headers["www-authenticate"], "Bearer realm=\"mpsync\"");
        assert!(json(&r)["hint"].as_str().unwrap().contains("Authorization: Bearer"), "{path}");
        let wrong = send(&app, req("GET", path, &[("authorization", "Bearer tok-wrong")])).await;
        assert_eq!(wrong.status, StatusCode::UNAUTHORIZED, "{path}");
        let right = send(&app, req("GET", path, &[("authorization", &bearer)])).await;
        let expected = if path == "/nope" { StatusCode::NOT_FOUND } else { StatusCode::OK };
        assert_eq!(right.status, expected, "{path}: {}", right.body);
        assert!(!right.body.contains(TOKEN) && !r.body.contains(TOKEN), "{path}");
    }
    let sync = send(&app, req("POST", "/v1/sync", &[])).await;
    assert_eq!(sync.status, StatusCode::UNAUTHORIZED);
    assert_eq!(send(&app, req("GET", "/livez", &[])).await.status, StatusCode::OK);
    // The host check comes first: a foreign page learns nothing about the token.
    let foreign = send(&app, req("GET", "/v1/runs", &[("host", "attacker.example")])).await;
    assert_eq!(foreign.status, StatusCode::MISDIRECTED_REQUEST);
}

#[tokio::test]
async fn a_person_logs_in_once_and_the_cookie_opens_the_dashboard_and_its_links() {
    let (_dir, store) = open();
    store.save_reconciliation(&reconcile::sample()).await.unwrap();
    let health = Health::new(Utc::now());
    let app = app_with(&store, &health, access("127.0.0.1:9847", &[], Some(TOKEN)), gate());
    let host = ("host", "127.0.0.1:9847");

    // The dashboard without the token: the login form, not the data.
    let page = send(&app, req("GET", "/", &[host])).await;
    assert_eq!(page.status, StatusCode::UNAUTHORIZED);
    assert!(page.content_type().starts_with("text/html"), "{}", page.content_type());
    assert!(
        page.body.contains("action=\"/login\"") && !page.body.contains("Acme"),
        "{}",
        page.body
    );
    assert_eq!(send(&app, req("GET", "/login", &[host])).await.status, StatusCode::OK);

    let login = |token: &str| {
        Request::builder()
            .method("POST")
            .uri("/login")
            .header("host", "127.0.0.1:9847")
            .header("origin", "http://127.0.0.1:9847")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::from(format!("token={token}")))
            .unwrap()
    };
    let wrong = send(&app, login("tok-guess")).await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(
        wrong.body.contains("not the access token") && wrong.headers.get("set-cookie").is_none()
    );

    let ok = send(&app, login(TOKEN)).await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER, "{}", ok.body);
    assert_eq!(ok.headers["location"], "/");
    let set = ok.headers["set-cookie"].to_str().unwrap().to_owned();
    assert!(set.contains("HttpOnly") && set.contains("SameSite=Strict"), "{set}");
    assert!(!set.contains(TOKEN), "the cookie holds a digest, not the token: {set}");
    let cookie = set.split(';').next().unwrap().to_owned();

    let page = send(&app, req("GET", "/", &[host, ("cookie", &cookie)])).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Acme, Inc."), "the dashboard itself");
    let csv = send(&app, req("GET", "/v1/reconciliation?format=csv", &[host, ("cookie", &cookie)]));
    assert_eq!(csv.await.status, StatusCode::OK, "the page's links work with the cookie");
    let forged = send(&app, req("GET", "/", &[host, ("cookie", "mpsync_session=0000")])).await;
    assert_eq!(forged.status, StatusCode::UNAUTHORIZED);

    // A login form posted from another site is refused like any cross-site POST.
    let mut cross = login(TOKEN);
    cross.headers_mut().insert("origin", "http://attacker.example".parse().unwrap());
    assert_eq!(send(&app, cross).await.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_bad_query_string_is_the_json_error_body_on_every_route() {
    let (_dir, store) = open();
    store.save_reconciliation(&reconcile::sample()).await.unwrap();
    let app = app(&store, &Health::new(Utc::now()));
    // (uri, what the error must name)
    let cases = [
        ("/v1/runs?limit=abc", "limit"),
        ("/v1/runs?limit=-1", "limit"),
        ("/v1/runs?kind=bogus", "bogus"),
        ("/v1/runs?kind=vendor&kind=billing", "kind"),
        ("/v1/reconciliation?status=bogus", "bogus"),
        ("/v1/reconciliation?status=match&status=unbilled", "status"),
        ("/v1/reconciliation?format=xml", "xml"),
        ("/v1/history?customer=x&product=CloudFilter", "customer"),
        ("/v1/history?customer=1&customer=2&product=CloudFilter", "customer"),
        ("/?account=a&account=b", "account"),
    ];
    for (uri, names) in cases {
        let r = api::get(&app, uri).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{uri}: {}", r.body);
        assert_eq!(r.content_type(), "application/json", "{uri}: {}", r.body);
        let error = json(&r)["error"].as_str().unwrap_or_default().to_owned();
        assert!(error.contains(names), "{uri}: {error}");
    }
}

#[tokio::test]
async fn large_answers_queue_for_a_render_slot_while_health_answers() {
    let (_dir, store) = open();
    // The CSV of every row streams behind a render slot (JSON pages are small and do not).
    // 14,000 rows are about 1.6 MiB of CSV: more than an answer's queue and chunk buffer hold
    // (5 × 256 KiB), so the first reader's writer really waits on it.
    let rec = reconcile::large(14_000);
    let rows = rec.rows.len();
    store.save_reconciliation(&rec).await.unwrap();
    let health = Health::new(Utc::now());
    health.set_store_open("/tmp/x/mpsync.redb".into(), Utc::now());
    // Each request in line is bounded by the handler's 10 s (the 503 after the wait is tested
    // apart): two in line, so the last waits for one whole debug-build render, not two, which
    // a loaded CI host could not always give within the bound.
    let gate = RenderGate::new(1, Duration::from_secs(8));
    let app = app_with(&store, &health, Access::default(), gate.clone());
    let get = |uri: &str| app.clone().oneshot(req("GET", uri, &[]));

    // The first reader takes the only slot and stops reading: its writer waits on it.
    let first = get("/v1/reconciliation?format=csv").await.unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    let queued: Vec<_> =
        (0..2).map(|_| tokio::spawn(get("/v1/reconciliation?format=csv"))).collect();
    wait_until(Duration::from_secs(10), "two readers in line", || gate.waiting() == 2).await;
    assert_eq!(gate.available(), 0);
    // Health, probes and metrics do not stand in that line.
    for path in ["/v1/health", "/livez", "/metrics"] {
        let r = api::get(&app, path).await;
        assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.body);
    }

    // The first reader goes away: the others get their turn and whole answers.
    drop(first);
    for reader in queued {
        let resp = reader.await.unwrap().unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let body = axum::body::to_bytes(resp.into_body(), 1 << 28).await.unwrap();
        assert!(body.len() > 5 << 18, "premise: more than the queue holds ({} bytes)", body.len());
        let lines = body.iter().filter(|b| **b == b'\n').count();
        assert_eq!(lines, rows + 1, "a whole CSV answer: the header and every row");
    }
    wait_until(Duration::from_secs(10), "the slot given back", || {
        gate.available() == 1 && gate.waiting() == 0
    })
    .await;
}
