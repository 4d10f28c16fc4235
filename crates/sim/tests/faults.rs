//! Every fault kind is observable by a client: error statuses at a seeded rate, the rate limit
//! and 429 storms with Retry-After, hangs that never answer yet do not block shutdown, damaged
//! bodies, wrong types, keys revoked mid-run, latency; and faults scoped to one endpoint.

use std::time::Duration;

use mpsync_sim::{Fault, FaultKind};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{Api, start};

#[tokio::test]
async fn status_faults_fire_after_and_times_then_recover() {
    let sim = start(1, 10).await;
    let api = Api::new(&sim, Some(&sim.control().reseller_key()));
    let f = Fault::new(FaultKind::Status { status: 503 }).on("user_groups").after(1).times(2);
    sim.control().add_fault(f);
    let mut got = Vec::new();
    for _ in 0..5 {
        got.push(api.get("/domains/102/user_groups").await.status.as_u16());
    }
    assert_eq!(got, vec![200, 503, 503, 200, 200]);
    let a = api.get("/customers/329").await;
    assert_eq!(a.status, StatusCode::OK, "other endpoints unaffected");
    assert_eq!(sim.control().faults()[0].fired, 2);
    assert_eq!(sim.control().requests().status(503), 2);
}

#[tokio::test]
async fn a_rate_of_errors_is_seeded_and_repeatable() {
    let mut runs = Vec::new();
    for _ in 0..2 {
        let sim = start(77, 10).await;
        let api = Api::new(&sim, Some(&sim.control().reseller_key()));
        sim.control().add_fault(Fault::parse("status=500,rate=0.3,endpoint=services").unwrap());
        let mut seq = Vec::new();
        for _ in 0..40 {
            seq.push(api.get("/user_groups/109/services").await.status.as_u16());
        }
        runs.push(seq);
    }
    assert_eq!(runs[0], runs[1], "same seed, same failures");
    let fails = runs[0].iter().filter(|s| **s == 500).count();
    assert!((3..=25).contains(&fails), "about 30% fail: {fails}/40");
}

#[tokio::test]
async fn the_rate_limit_answers_429_with_retry_after() {
    let sim = start(1, 5).await;
    let api = Api::new(&sim, Some(&sim.control().reseller_key()));
    sim.control().add_fault(Fault::new(FaultKind::RateLimit { rps: 0.5, burst: Some(1) }));
    assert_eq!(api.get("/resellers/188").await.status, StatusCode::OK);
    let a = api.get("/resellers/188").await;
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = a.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(retry >= 1, "integer seconds >= 1");
    assert_eq!(a.json, json!({"error": "rate limit exceeded"}));
    assert!(a.headers.keys().all(|k| !k.as_str().starts_with("x-ratelimit")));

    sim.control().clear_faults();
    sim.control().add_fault(Fault::parse("kind=storm,retry_after=3").unwrap());
    for _ in 0..3 {
        let a = api.get("/customers/329").await;
        assert_eq!(
            (a.status, a.headers["retry-after"].to_str().unwrap()),
            (StatusCode::TOO_MANY_REQUESTS, "3")
        );
    }
}

#[tokio::test]
async fn a_hang_never_answers_and_does_not_block_shutdown() {
    let sim = start(1, 5).await;
    sim.control().add_fault(Fault::parse("kind=hang,endpoint=customers").unwrap());
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder().timeout(Duration::from_millis(300)).build().unwrap();
    let url = format!("{}/api/v1/customers/329", sim.base_url());
    let key = sim.control().reseller_key();
    let err = client.get(&url).bearer_auth(&key).send().await.unwrap_err();
    assert!(err.is_timeout(), "{err}");
    // Another request still hanging while the server stops.
    let patient = reqwest::Client::new();
    let pending =
        tokio::spawn(
            async move { patient.get(url).bearer_auth(key).send().await.map(|r| r.status()) },
        );
    tokio::time::timeout(Duration::from_secs(10), async {
        while sim.control().requests().get("GET /customers/{id}") < 2 {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("second request arrived");
    tokio::time::timeout(Duration::from_secs(10), sim.shutdown())
        .await
        .expect("shutdown is not blocked by hangs");
    let released = pending.await.unwrap();
    assert!(released.map_or(true, |s| s == StatusCode::SERVICE_UNAVAILABLE));
}

#[tokio::test]
async fn damaged_bodies_and_wrong_types_are_served() {
    let sim = start(1, 5).await;
    let ctl = sim.control().clone();
    let api = Api::new(&sim, Some(&ctl.reseller_key()));
    let good = api.get("/domains/102/user_groups").await.text;

    let id = ctl.add_fault(Fault::parse("kind=truncate,endpoint=user_groups").unwrap());
    let a = api.get("/domains/102/user_groups").await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(
        serde_json::from_str::<Value>(&a.text).is_err()
            && good.starts_with(&a.text)
            && !a.text.is_empty()
    );
    ctl.remove_fault(id);

    let id = ctl.add_fault(Fault::parse("kind=disconnect,endpoint=user_groups").unwrap());
    let _ = rustls::crypto::ring::default_provider().install_default();
    let url = format!("{}/api/v1/domains/102/user_groups", sim.base_url());
    let client = reqwest::Client::new();
    let got = async { client.get(url).bearer_auth(ctl.reseller_key()).send().await?.bytes().await };
    let err = got.await.expect_err("the response breaks off");
    assert!(!err.is_timeout() && !err.is_status(), "a transport error: {err}");
    ctl.remove_fault(id);

    let id = ctl.add_fault(Fault::parse("kind=malformed").unwrap());
    let a = api.get("/customers/329").await;
    assert!(serde_json::from_str::<Value>(&a.text).is_err(), "{}", a.text);
    ctl.remove_fault(id);

    ctl.add_fault(Fault::parse("kind=wrong_types").unwrap());
    let a = api.get("/domains/102/user_groups").await;
    let g = a
        .json
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["id"] == "109")
        .expect("id as a string")
        .clone();
    assert_eq!(g["user_count"], "56");
    let s = api.get("/user_groups/109/services").await.json;
    assert_eq!(s[0]["id"], "10902");
    assert_eq!(s[0]["service_type"], json!(["Premium Hosted Email"]), "a list, not a name");
    ctl.add_fault(Fault::parse("variant=services_object").unwrap());
    let s = api.get("/user_groups/109/services").await.json;
    assert_eq!(s["service_types"]["addons"], "Bracket");
}

#[tokio::test]
async fn a_key_revoked_mid_run_answers_401_from_then_on() {
    let sim = start(1, 5).await;
    let ctl = sim.control().clone();
    let api = Api::new(&sim, Some(&ctl.reseller_key()));
    ctl.add_fault(Fault::parse("kind=revoke,after=3").unwrap());
    let mut got = Vec::new();
    for path in
        ["/resellers/188", "/customers/329", "/domains/102", "/user_groups/109", "/resellers/188"]
    {
        got.push(api.get(path).await.status.as_u16());
    }
    assert_eq!(got, vec![200, 200, 200, 401, 401]);
    ctl.clear_faults();
    assert_eq!(api.get("/customers/329").await.status, StatusCode::UNAUTHORIZED, "stays revoked");
    let other = api.with_key(ctl.customer_key(329).as_deref());
    assert_eq!(other.get("/customers/329").await.status, StatusCode::OK, "other keys still work");
}

#[tokio::test]
async fn latency_is_applied_and_counted() {
    let sim = start(1, 5).await;
    let api = Api::new(&sim, Some(&sim.control().reseller_key()));
    sim.control()
        .add_fault(Fault::parse("kind=latency,ms=20,jitter_ms=10,endpoint=resellers").unwrap());
    for _ in 0..3 {
        assert_eq!(api.get("/resellers/188").await.status, StatusCode::OK);
    }
    api.get("/customers/329").await;
    let f = &sim.control().faults()[0];
    assert_eq!((f.seen, f.fired), (3, 3));
}

#[tokio::test]
async fn faults_can_be_driven_over_http() {
    let sim = start(1, 5).await;
    let api = Api::new(&sim, Some(&sim.control().reseller_key()));
    let a = api
        .send(
            reqwest::Method::POST,
            "/_sim/faults",
            Some(json!({"spec": "status=502,endpoint=resellers"})),
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED);
    let id = a.json["id"].as_u64().unwrap();
    let body = json!({"kind": "variant", "variant": "no_pagination", "endpoint": "customers"});
    assert_eq!(
        api.send(reqwest::Method::POST, "/_sim/faults", Some(body)).await.status,
        StatusCode::CREATED
    );
    assert_eq!(api.get("/resellers/188").await.status, StatusCode::BAD_GATEWAY);
    let listed = api.get("/_sim/faults").await.json;
    assert_eq!(listed.as_array().unwrap().len(), 2);
    assert_eq!(listed[0]["fired"], 1);
    assert!(api.get("/resellers/188/customers").await.headers.get("x-pagination").is_none());
    let del = api.send(reqwest::Method::DELETE, &format!("/_sim/faults/{id}"), None).await;
    assert_eq!(del.status, StatusCode::OK);
    assert_eq!(api.get("/resellers/188").await.status, StatusCode::OK);
    let bad =
        api.send(reqwest::Method::POST, "/_sim/faults", Some(json!({"spec": "status=abc"}))).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.json["error"].as_str().unwrap().contains("fault SPEC forms"));
    api.send(reqwest::Method::DELETE, "/_sim/faults", None).await;
    assert!(api.get("/resellers/188/customers").await.headers.get("x-pagination").is_some());
    let counts = api.get("/_sim/requests").await.json;
    assert_eq!(counts["by_endpoint"]["GET /resellers/{id}"], 2);
    assert_eq!(counts["by_endpoint"]["GET /resellers/{id}/customers"], 2);
}

#[tokio::test]
async fn options_install_the_rate_limit_and_latency() {
    use mpsync_sim::{SimOptions, SimServer};
    let opts = SimOptions {
        customers: 3,
        rate_limit: Some(0.5),
        latency: Duration::from_millis(5),
        ..SimOptions::default()
    };
    let sim = SimServer::start(opts).await.unwrap();
    let api = Api::new(&sim, Some(&sim.control().reseller_key()));
    assert_eq!(api.get("/resellers/188").await.status, StatusCode::OK);
    let a = api.get("/resellers/188").await;
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = a.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=2).contains(&retry), "one token per 2 s: {retry}");
    let kinds: Vec<String> =
        sim.control().faults().iter().map(|f| format!("{:?}", f.fault.kind)).collect();
    assert!(kinds[0].starts_with("RateLimit") && kinds[1].starts_with("Latency"), "{kinds:?}");
    assert!(sim.base_url().starts_with("http://127.0.0.1:"));
    sim.shutdown().await;
}
