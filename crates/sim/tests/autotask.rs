//! The simulated Autotask over HTTP, as a client sees it: the zone lookup without
//! credentials, the auth failures the note describes, POST-again paging, the refusals of a
//! next page fetched by GET or without the query, `{"item": null}`, the hourly threshold and
//! the thread limit, and a user whose security level hides contracts.

use std::time::Duration;

use mpsync_sim::autotask::{AtCredentials, ThresholdSettings};
use mpsync_sim::faults::{Fault, FaultKind};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::start;

struct Client {
    http: reqwest::Client,
    root: String,
    creds: AtCredentials,
}

impl Client {
    async fn call(
        &self,
        method: Method,
        url: &str,
        body: Option<&Value>,
    ) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        let url =
            if url.starts_with("http") { url.to_owned() } else { format!("{}{url}", self.root) };
        // Mixed-case header names, as working clients send them (F2.2).
        let mut req = self
            .http
            .request(method, url)
            .header("APIIntegrationcode", &self.creds.integration_code)
            .header("Username", &self.creds.username)
            .header("Secret", &self.creds.secret);
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await.expect("request");
        let (status, headers) = (resp.status(), resp.headers().clone());
        let text = resp.text().await.unwrap();
        (status, headers, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }
}

async fn client(seed: u64, customers: u32) -> (mpsync_sim::SimHandle, Client) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let sim = start(seed, customers).await;
    let creds = sim.control().autotask().credentials();
    let root = format!("{}/ATServicesRest/", sim.base_url());
    let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
    (sim, Client { http, root, creds })
}

#[tokio::test]
async fn the_zone_is_looked_up_without_credentials_and_auth_fails_as_documented() {
    let (sim, c) = client(3, 10).await;
    let url = format!("{}v1.0/zoneInformation?user={}", c.root, c.creds.username);
    let zone: Value = c.http.get(&url).send().await.unwrap().json().await.unwrap();
    assert_eq!(zone["url"], c.root.as_str());
    let unknown = c.http.get(format!("{}1.0/zoneInformation?user=x", c.root)).send().await.unwrap();
    assert_eq!(unknown.status(), 500);

    let wrong_secret =
        Client { creds: AtCredentials { secret: "nope".into(), ..c.creds.clone() }, ..c_clone(&c) };
    let (s, _, body) =
        wrong_secret.call(Method::POST, "V1.0/Companies/query", Some(&json!({}))).await;
    assert_eq!((s, body), (StatusCode::UNAUTHORIZED, Value::String(String::new())));
    let wrong_code = Client {
        creds: AtCredentials { integration_code: "X".into(), ..c.creds.clone() },
        ..c_clone(&c)
    };
    let (s, _, body) =
        wrong_code.call(Method::POST, "V1.0/Companies/query", Some(&json!({}))).await;
    assert_eq!(s, 500);
    assert!(body["errors"][0].as_str().unwrap().contains("Authentication failed"), "{body}");

    // After a move the old zone refuses the right credentials; the lookup names the new one.
    sim.control().autotask().move_zone();
    let (s, _, _) = c.call(Method::POST, "V1.0/Companies/query", Some(&json!({}))).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let zone: Value = c.http.get(&url).send().await.unwrap().json().await.unwrap();
    assert!(zone["url"].as_str().unwrap().ends_with("/z2/ATServicesRest/"), "{zone}");
}

fn c_clone(c: &Client) -> Client {
    Client { http: c.http.clone(), root: c.root.clone(), creds: c.creds.clone() }
}

#[tokio::test]
async fn pages_continue_only_by_posting_the_same_query_again() {
    let (sim, c) = client(3, 30).await;
    let body = json!({"maxRecords": 7, "Filter": [{"op": "gt", "field": "ID", "value": 0}]});
    let (s, _, first) = c.call(Method::POST, "v1.0/companies/query", Some(&body)).await;
    assert_eq!(s, 200, "{first}");
    assert_eq!(first["pageDetails"]["count"], 7);
    let next = first["pageDetails"]["nextPageUrl"].as_str().expect("a next page").to_owned();
    assert!(next.starts_with("http://") && next.contains("/query/next?paging="), "{next}");

    let (s, _, e) = c.call(Method::GET, &next, None).await;
    assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED, "{e}");
    assert!(e["Message"].as_str().unwrap().contains("'GET'"));
    let (s, _, e) = c.call(Method::POST, &next, None).await;
    assert_eq!(s, 500, "a next page without the query: {e}");

    let mut ids: Vec<u64> = Vec::new();
    let mut page = first;
    loop {
        ids.extend(page["items"].as_array().unwrap().iter().map(|r| r["id"].as_u64().unwrap()));
        let Some(next) = page["pageDetails"]["nextPageUrl"].as_str().map(str::to_owned) else {
            break;
        };
        page = c.call(Method::POST, &next, Some(&body)).await.2;
    }
    let all: Vec<u64> = sim.control().autotask().read().rows["Companies"]
        .iter()
        .map(|r| r["id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, all, "every company once, by ascending id");

    let (_, _, missing) = c.call(Method::GET, "v1.0/Companies/1", None).await;
    assert_eq!(missing, json!({"item": null}));
    let (s, _, e) = c
        .call(
            Method::POST,
            "v1.0/Companies/query",
            Some(&json!({"filter": [{"op": "eq", "field": "nope", "value": 1}]})),
        )
        .await;
    assert_eq!(
        (s, e),
        (StatusCode::INTERNAL_SERVER_ERROR, json!({"errors": ["Unknown field: nope"]}))
    );
}

#[tokio::test]
async fn the_hourly_threshold_and_the_thread_limit_answer_429() {
    let (sim, c) = client(3, 10).await;
    let at = sim.control().autotask();
    at.set_threshold(ThresholdSettings {
        limit: 2,
        tiers: (Duration::ZERO, Duration::ZERO),
        ..Default::default()
    });
    for _ in 0..2 {
        assert_eq!(c.call(Method::GET, "v1.0/ThresholdInformation", None).await.0, 200);
    }
    let (s, h, e) = c.call(Method::GET, "v1.0/ThresholdInformation", None).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS, "{e}");
    assert_eq!(h["retry-after"], "60");
    at.set_threshold(ThresholdSettings::default());
    let (_, _, t) = c.call(Method::GET, "v1.0/ThresholdInformation", None).await;
    assert_eq!(t["externalRequestThreshold"], 10_000);
    assert_eq!(t["currentTimeframeRequestCount"], 1);

    // Four slow calls on one entity at once: the fourth is refused.
    sim.control().add_fault(
        Fault::new(FaultKind::Latency { ms: 300, jitter_ms: 0 }).on("POST /Contracts/query"),
    );
    let body = json!({"filter": []});
    let calls = (0..4).map(|_| c.call(Method::POST, "v1.0/Contracts/query", Some(&body)));
    let statuses: Vec<StatusCode> =
        futures_util::future::join_all(calls).await.into_iter().map(|r| r.0).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == StatusCode::TOO_MANY_REQUESTS).count(),
        1,
        "{statuses:?}"
    );
}

#[tokio::test]
async fn a_security_level_without_contract_access_sees_no_contracts() {
    let (_sim, c) = client(3, 10).await;
    let (user, secret) = c.creds.no_contracts.clone();
    let limited = Client {
        creds: AtCredentials { username: user, secret, ..c.creds.clone() },
        ..c_clone(&c)
    };
    let (s, _, page) = limited.call(Method::POST, "v1.0/Contracts/query", Some(&json!({}))).await;
    assert_eq!((s, page["items"].as_array().unwrap().len()), (StatusCode::OK, 0));
    let (_, _, page) = limited.call(Method::POST, "v1.0/Companies/query", Some(&json!({}))).await;
    assert!(!page["items"].as_array().unwrap().is_empty());
}
