//! The HaloPSA client against a scripted axum server on 127.0.0.1 answering with the
//! reference's canned JSON: the token (fetched, renewed before expiry and after a 401,
//! never shown), envelopes and bare arrays, the paging stops, 429 with a text body, 403 and
//! the three 400 shapes, and the token endpoint's errors.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde_json::{Value, json};

use super::*;
use crate::billing::halopsa::models;
use crate::billing::halopsa::stub_tests::*;

/// A clock the test moves.
fn manual_clock() -> (Clock, Arc<Mutex<Instant>>) {
    let now = Arc::new(Mutex::new(Instant::now()));
    let n = now.clone();
    (Arc::new(move || *n.lock().unwrap()), now)
}

fn client(stub: &Stub) -> HaloClient {
    HaloClient::build(&config(&stub.base), false, fast(), system_clock()).unwrap()
}

fn clients(ids: &[i64]) -> Vec<Value> {
    ids.iter().map(|i| json!({"id": i, "name": format!("Client {i}"), "inactive": false})).collect()
}

fn ids(rows: &[models::Client]) -> Vec<i64> {
    rows.iter().map(|c| c.id).collect()
}

async fn list_clients(c: &HaloClient) -> Result<Vec<models::Client>, BillingError> {
    c.list(Resource::Client, &[], &CancellationToken::new()).await
}

#[tokio::test]
async fn a_token_is_fetched_with_the_grant_and_tenant_and_sent_as_bearer() {
    let s = stub(|r, _| match r.path.as_str() {
        "/auth/token" => default_token(),
        _ => ok(json!({"record_count": 1, "clients": clients(&[12])})),
    })
    .await;
    let c = client(&s);
    assert_eq!(ids(&list_clients(&c).await.unwrap()), [12]);
    let token = &s.to("/auth/token")[0];
    assert_eq!((token.method.as_str(), token.query.as_str()), ("POST", "tenant=acme"));
    let form: Vec<(String, String)> = url::form_urlencoded::parse(token.body.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    assert_eq!(get("grant_type"), Some("client_credentials"));
    assert_eq!(get("client_id"), Some("mpsync-app"));
    assert_eq!(get("client_secret"), Some(SECRET));
    assert_eq!(get("scope"), Some("read:customers read:contracts read:items read:invoices"));
    let call = &s.to("/api/Client")[0];
    assert_eq!(call.auth.as_deref(), Some("Bearer sim.token-0001"));
    assert_eq!(call.query, "pageinate=true&page_size=1000&page_no=1");
    assert!(!format!("{c:?}").contains("sim.token"), "Debug never shows the token");
    let writer = HaloClient::build(&config(&s.base), true, fast(), system_clock()).unwrap();
    assert!(writer.scope().ends_with("read:invoices edit:invoices"));
}

#[tokio::test]
async fn the_token_is_renewed_a_minute_before_it_expires_and_kept_until_then() {
    let s = stub(|r, _| match r.path.as_str() {
        "/auth/token" => default_token(),
        _ => ok(json!({"record_count": 1, "clients": clients(&[12])})),
    })
    .await;
    let (clock, now) = manual_clock();
    let c = HaloClient::build(&config(&s.base), false, fast(), clock).unwrap();
    list_clients(&c).await.unwrap();
    *now.lock().unwrap() += Duration::from_secs(3539);
    list_clients(&c).await.unwrap();
    assert_eq!(s.to("/auth/token").len(), 1, "still fresh: kept");
    *now.lock().unwrap() += Duration::from_secs(1);
    list_clients(&c).await.unwrap();
    assert_eq!(s.to("/auth/token").len(), 2, "60 s before expiry: renewed before use");
    let auths: Vec<Option<String>> = s.to("/api/Client").into_iter().map(|r| r.auth).collect();
    assert_eq!(auths[2].as_deref(), Some("Bearer sim.token-0002"));
}

#[tokio::test]
async fn a_401_fetches_a_new_token_once_and_replays_the_call() {
    let s = stub(|r, n| match r.path.as_str() {
        "/auth/token" => default_token(),
        // An expired bearer: 401 with an empty body (F42).
        _ if n == 0 => status(401, ""),
        _ => ok(json!({"record_count": 1, "clients": clients(&[12])})),
    })
    .await;
    let c = client(&s);
    assert_eq!(ids(&list_clients(&c).await.unwrap()), [12]);
    let auths: Vec<Option<String>> = s.to("/api/Client").into_iter().map(|r| r.auth).collect();
    assert_eq!(
        auths,
        [Some("Bearer sim.token-0001".to_owned()), Some("Bearer sim.token-0002".to_owned())]
    );

    // A fresh token refused too: one renewal, then a clear error.
    let s = stub(|r, _| match r.path.as_str() {
        "/auth/token" => default_token(),
        _ => status(401, ""),
    })
    .await;
    let e = list_clients(&client(&s)).await.unwrap_err().to_string();
    assert_eq!(s.to("/auth/token").len(), 2, "renewed once, not in a loop");
    assert!(e.contains("freshly fetched token was refused too"), "{e}");
    assert!(e.contains("billing.halopsa.client_id"), "{e}");
}

#[tokio::test]
async fn envelopes_and_bare_arrays_are_read_and_an_empty_page_ends_the_list() {
    // No record_count anywhere: an envelope, then a bare array, then an empty page.
    let s = stub(|r, n| match (r.path.as_str(), n) {
        ("/auth/token", _) => default_token(),
        (_, 0) => ok(json!({"CLIENTS": clients(&[-3, 12]), "_warning": "x"})),
        (_, 1) => ok(Value::Array(clients(&[15]))),
        _ => ok(json!({"record_count": null, "clients": []})),
    })
    .await;
    assert_eq!(ids(&list_clients(&client(&s)).await.unwrap()), [-3, 12, 15]);
    let pages: Vec<String> = s.to("/api/Client").into_iter().map(|r| r.query).collect();
    assert_eq!(pages.len(), 3);
    assert!(pages[2].ends_with("page_no=3"), "{pages:?}");
}

#[tokio::test]
async fn the_list_stops_at_record_count_without_asking_for_an_empty_page() {
    let s = stub(|r, n| match (r.path.as_str(), n) {
        ("/auth/token", _) => default_token(),
        // The server pages by 2 whatever was asked: the total decides.
        (_, 0) => ok(json!({"record_count": "3", "clients": clients(&[1, 2])})),
        (_, 1) => ok(json!({"record_count": 3, "clients": clients(&[3])})),
        _ => panic!("asked past record_count"),
    })
    .await;
    assert_eq!(ids(&list_clients(&client(&s)).await.unwrap()), [1, 2, 3]);
    assert_eq!(s.to("/api/Client").len(), 2);
}

#[tokio::test]
async fn a_page_of_repeats_ends_a_list_without_a_total_and_fails_one_that_falls_short() {
    // page_no ignored, no total: the repeat is the end (overlaps are dropped).
    let s = stub(|r, n| match (r.path.as_str(), n) {
        ("/auth/token", _) => default_token(),
        (_, 0) => ok(json!({"clients": clients(&[1, 2])})),
        (_, 1) => ok(json!({"clients": clients(&[2, 3])})),
        _ => ok(json!({"clients": clients(&[1, 2])})),
    })
    .await;
    assert_eq!(ids(&list_clients(&client(&s)).await.unwrap()), [1, 2, 3]);
    assert_eq!(s.to("/api/Client").len(), 3);

    // With a total not reached, the same repeat is a read that cannot complete.
    let s = stub(|r, _| match r.path.as_str() {
        "/auth/token" => default_token(),
        _ => ok(json!({"record_count": 5, "clients": clients(&[1, 2])})),
    })
    .await;
    let e = list_clients(&client(&s)).await.unwrap_err().to_string();
    assert!(e.contains("page 2 repeats items") && e.contains("2 of 5 clients read"), "{e}");
}

#[tokio::test]
async fn a_429_with_a_text_body_pauses_then_the_call_succeeds() {
    let s = stub(|r, n| match (r.path.as_str(), n) {
        ("/auth/token", _) => default_token(),
        (_, 0) => (
            StatusCode::TOO_MANY_REQUESTS,
            [("content-type", "text/plain")],
            "Rate Limit Reached - 300 Requests per rolling 5 minute window",
        )
            .into_response(),
        _ => ok(json!({"record_count": 1, "clients": clients(&[12])})),
    })
    .await;
    let c = client(&s).scoped();
    assert_eq!(ids(&list_clients(&c).await.unwrap()), [12]);
    assert_eq!(c.stats()[0].rate_limited, 1, "{:?}", c.stats());
    // Halo's own policy waits at least 30 s after a 429 without Retry-After (F40).
    assert_eq!(retry_policy().rate_limit_pause(1, 0.0), Duration::from_secs(30));
    assert!(retry_policy().rate_limit_pause(2, 0.0) >= Duration::from_secs(30));
    assert_eq!(retry_policy().clamp_retry_after(Duration::from_secs(90)), Duration::from_secs(90));
}

#[tokio::test]
async fn a_403_is_not_retried_and_names_the_scope_and_the_role() {
    let s = stub(|r, _| match r.path.as_str() {
        "/auth/token" => default_token(),
        _ => status(403, ""),
    })
    .await;
    let c = client(&s);
    let e = c
        .list::<models::Client>(Resource::Item, &[], &CancellationToken::new())
        .await
        .unwrap_err()
        .to_string();
    assert_eq!(s.to("/api/Item").len(), 1, "a 403 is not retried");
    assert!(e.contains("needs scope read:items"), "{e}");
    assert!(e.contains("Configuration > Integrations > HaloPSA API"), "{e}");
    assert!(e.contains("role of the agent"), "{e}");
}

#[tokio::test]
async fn the_three_400_shapes_read_as_sentences_and_never_show_the_token() {
    for (body, expect) in [
        (
            r#"{"[0].qty_order":["Could not convert string to double: ten."]}"#,
            "[0].qty_order: Could not convert string to double: ten.",
        ),
        (
            r#"{"ClassName":"System.Exception","Message":"Quantity cannot be negative","Data":null,"InnerException":null,"HResult":-2146233088,"Source":null}"#,
            "Quantity cannot be negative",
        ),
        (r#""No matching custom table""#, "No matching custom table"),
        (r#""bad bearer sim.token-0001""#, "bad bearer <redacted>"),
    ] {
        let s = stub(move |r, _| match r.path.as_str() {
            "/auth/token" => default_token(),
            _ => status(400, body),
        })
        .await;
        let e = list_clients(&client(&s)).await.unwrap_err().to_string();
        assert!(e.contains(&format!("(400: {expect})")), "{e}");
        assert!(!e.contains("sim.token-0001"), "{e}");
    }
}

#[tokio::test]
async fn token_endpoint_errors_say_what_to_check() {
    let refuse = |body: &'static str, code: u16| {
        move |r: &Seen, _: usize| match r.path.as_str() {
            "/auth/token" => status(code, body),
            _ => ok(json!([])),
        }
    };
    let s = stub(refuse(
        r#"{"error":"invalid_client","error_description":"Invalid client credentials"}"#,
        401,
    ))
    .await;
    let e = list_clients(&client(&s)).await.unwrap_err();
    let text = e.to_string();
    assert!(text.contains("invalid_client"), "{text}");
    assert!(text.contains("check billing.halopsa.client_id (mpsync-app) and the secret file /etc/mpsync/halopsa-client-secret"), "{text}");
    assert!(!text.contains(SECRET), "{text}");
    assert_eq!(s.to("/auth/token").len(), 1, "bad credentials are not retried");

    let s =
        stub(refuse(r#"{"error":"invalid_request","error_description":"unknown tenant"}"#, 400))
            .await;
    let e = list_clients(&client(&s)).await.unwrap_err().to_string();
    assert!(e.contains("check billing.halopsa.tenant") && e.contains("acme"), "{e}");

    // The application lacks read:items: each scope is tried alone to name it.
    let s = stub(|r, _| match r.path.as_str() {
        "/auth/token" if r.body.contains("read%3Aitems") => {
            status(400, r#"{"error":"invalid_scope"}"#)
        }
        "/auth/token" => default_token(),
        _ => ok(json!([])),
    })
    .await;
    let e = list_clients(&client(&s)).await.unwrap_err().to_string();
    assert!(e.contains("not granted read:items;"), "{e}");
    assert!(e.contains("Configuration > Integrations > HaloPSA API"), "{e}");
}

#[test]
fn list_bodies_unwrap_as_envelope_or_array() {
    let (rows, total) =
        unwrap_list(json!({"record_count": 2, "invoices": [{"id": 1}]}), "invoices").unwrap();
    assert_eq!((rows.len(), total), (1, Some(2)));
    let (rows, total) = unwrap_list(json!([{"id": 1}, {"id": 2}]), "invoices").unwrap();
    assert_eq!((rows.len(), total), (2, None));
    assert!(
        unwrap_list(json!({"record_count": 2}), "invoices")
            .unwrap_err()
            .contains("\"invoices\" array")
    );
    assert!(unwrap_list(json!({"invoices": 5}), "invoices").is_err());
    assert!(unwrap_list(json!("text"), "invoices").is_err());
}
