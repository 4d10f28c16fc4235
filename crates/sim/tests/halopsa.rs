//! The simulated HaloPSA over HTTP, as a client sees it (reference note §3): the token
//! endpoint (tenant as query or form field, bad secret, grant type, scopes, expiry), the list
//! envelopes and paging rules, `includelines` and its variants, single GETs, case-insensitive
//! routes, the rolling-window 429, and the planted data.

use std::time::Duration;

use mpsync_sim::halopsa::{ListShape, Resource};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::halo::{Halo, TenantIn};

fn ids(v: &Value) -> Vec<i64> {
    v.as_array().expect("array").iter().map(|r| r["id"].as_i64().unwrap()).collect()
}

#[tokio::test]
async fn the_token_endpoint_takes_the_tenant_both_ways_and_refuses_as_the_note_says() {
    let h = Halo::start(3, 10).await;
    let good = [
        ("grant_type", "client_credentials"),
        ("client_id", h.creds.client_id.as_str()),
        ("client_secret", h.creds.client_secret.as_str()),
    ];
    assert_eq!(h.creds.tenant.as_deref(), Some("mpsync-sim"));
    for at in [TenantIn::Query, TenantIn::Form] {
        let r = h.token_request(&good, at).await;
        assert_eq!(r.status, 200, "{at:?}: {}", r.text);
        assert_eq!(r.json["token_type"], "Bearer");
        assert_eq!(r.json["expires_in"], 3600);
        assert_eq!(
            r.json["scope"],
            "read:customers read:contracts read:items read:invoices edit:invoices"
        );
        assert!(r.json["access_token"].as_str().unwrap().starts_with("sim."));
    }
    let r = h.token_request(&good, TenantIn::Nowhere).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json, json!({"error": "invalid_request", "error_description": "unknown tenant"}));

    let mut bad = good;
    bad[2].1 = "not-the-secret";
    let r = h.token_request(&bad, TenantIn::Query).await;
    assert_eq!(r.status, 401);
    assert_eq!(
        r.json,
        json!({"error": "invalid_client", "error_description": "Invalid client credentials"})
    );
    assert!(!r.text.contains(&h.creds.client_secret), "no secret echoed");
    let mut other_grant = good;
    other_grant[0].1 = "password";
    let r = h.token_request(&other_grant, TenantIn::Query).await;
    assert_eq!(
        (r.status, r.json.clone()),
        (StatusCode::BAD_REQUEST, json!({"error": "unsupported_grant_type"}))
    );

    // On-prem: no tenant checked.
    h.halo.set_tenant(None);
    assert_eq!(h.token_request(&good, TenantIn::Nowhere).await.status, 200);
}

#[tokio::test]
async fn scopes_gate_routes_and_a_request_beyond_the_grant_is_invalid_scope() {
    let h = Halo::start(3, 10).await;
    let r = h
        .token_request(
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &h.creds.client_id),
                ("client_secret", &h.creds.client_secret),
                ("scope", "all"),
            ],
            TenantIn::Query,
        )
        .await;
    assert_eq!(
        (r.status, r.json.clone()),
        (StatusCode::BAD_REQUEST, json!({"error": "invalid_scope"}))
    );

    let t = h.token(Some("read:customers")).await;
    assert_eq!(h.get("/Client", &t).await.status, 200);
    let item = h.get("/Item", &t).await;
    assert_eq!((item.status, item.text.as_str()), (StatusCode::FORBIDDEN, ""));
    let write = h.post("/RecurringInvoice/updatelines", &t, &json!([])).await;
    assert_eq!((write.status, write.text.as_str()), (StatusCode::FORBIDDEN, ""));

    // Read without edit: reads pass, writes do not.
    let t = h.token(Some("read:invoices")).await;
    assert_eq!(h.get("/RecurringInvoice", &t).await.status, 200);
    assert_eq!(h.post("/RecurringInvoice", &t, &json!([])).await.status, 403);

    // An application granted `all` may ask for anything.
    h.halo.update_settings(|s| s.granted_scopes = vec!["all".into()]);
    let t = h.token(Some("all")).await;
    assert_eq!(h.get("/Item", &t).await.status, 200);
}

#[tokio::test]
async fn expired_unknown_and_revoked_tokens_get_401_with_an_empty_body() {
    let h = Halo::start(3, 10).await;
    h.halo.update_settings(|s| s.expires_in = 30);
    let t = h.token(None).await;
    assert_eq!(h.get("/Client", &t).await.status, 200);
    h.halo.advance(Duration::from_secs(31));
    let r = h.get("/Client", &t).await;
    assert_eq!((r.status, r.text.as_str()), (StatusCode::UNAUTHORIZED, ""));
    assert_eq!(h.get("/Client", "sim.unknown").await.status, 401);

    let t = h.token(None).await;
    h.halo.expire_tokens();
    assert_eq!(h.get("/Client", &t).await.status, 401);
    let t = h.token(None).await;
    assert_eq!(h.get("/Client", &t).await.status, 200);

    h.halo.revoke();
    assert_eq!(h.get("/Client", &t).await.status, 401, "tokens end with the secret");
    let r = h
        .token_request(
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &h.creds.client_id),
                ("client_secret", &h.creds.client_secret),
            ],
            TenantIn::Query,
        )
        .await;
    assert_eq!(r.status, 401);
}

#[tokio::test]
async fn lists_answer_envelopes_with_the_paging_rules() {
    let h = Halo::start(5, 70).await;
    let t = h.token(None).await;
    let data = h.halo.read().clone();
    let active_clients: Vec<i64> = data.rows[&Resource::Client]
        .iter()
        .filter(|c| c["inactive"] == false)
        .map(|c| c["id"].as_i64().unwrap())
        .collect();
    assert!(active_clients.len() > 50, "enough clients for a default page");

    let r = h.get("/Client?pageinate=true&page_size=2&page_no=1", &t).await;
    assert_eq!(r.json["record_count"], active_clients.len());
    assert_eq!(ids(&r.json["clients"]), active_clients[..2]);
    let r = h.get("/Client?pageinate=true&page_size=2&page_no=2", &t).await;
    assert_eq!(ids(&r.json["clients"]), active_clients[2..4]);
    let r = h.get("/client?PAGEINATE=true&page_size=50&page_no=99", &t).await;
    assert_eq!(r.json["clients"], json!([]), "a page past the end is empty");
    assert_eq!(r.json["record_count"], active_clients.len());
    // Defaults: 50 per page, and 50 rows without paging; count without paging.
    let r = h.get("/Client?pageinate=true", &t).await;
    assert_eq!(ids(&r.json["clients"]), active_clients[..50]);
    let r = h.get("/Client", &t).await;
    assert_eq!(ids(&r.json["clients"]), active_clients[..50]);
    assert_eq!(r.json["record_count"], active_clients.len());
    let r = h.get("/Client?count=3&page_size=10", &t).await;
    assert_eq!(ids(&r.json["clients"]), active_clients[..3]);
    // idonly: every row, ids only.
    let r = h.get("/Client?idonly=true&pageinate=true&page_size=5", &t).await;
    assert_eq!(ids(&r.json["clients"]), active_clients);
    assert_eq!(r.json["clients"][0], json!({"id": active_clients[0]}));
    // Inactive rows only on request.
    let r = h.get("/Client?includeinactive=true&count=1000", &t).await;
    assert_eq!(r.json["record_count"], data.rows[&Resource::Client].len());
    assert!(r.json["clients"].as_array().unwrap().iter().any(|c| c["inactive"] == true));
    // Each resource's envelope key.
    for (path, key) in [
        ("/ClientContract", "contracts"),
        ("/RecurringInvoice", "invoices"),
        ("/Item", "items"),
        ("/Invoice", "invoices"),
    ] {
        let r = h.get(&format!("{path}?pageinate=true&page_size=1000"), &t).await;
        assert_eq!(r.status, 200, "{path}");
        assert!(r.json[key].is_array() && r.json["record_count"].is_u64(), "{path}: {}", r.text);
    }
    // Filters and ordering.
    let c = active_clients[3];
    let r = h.get(&format!("/RecurringInvoice?client_id={c}"), &t).await;
    assert!(r.json["invoices"].as_array().unwrap().iter().all(|i| i["client_id"] == c));
    let r = h.get("/Item?order=name&orderdesc=true&includeinactive=true", &t).await;
    let names: Vec<&str> =
        r.json["items"].as_array().unwrap().iter().map(|i| i["name"].as_str().unwrap()).collect();
    assert!(names.windows(2).all(|w| w[0].to_lowercase() >= w[1].to_lowercase()), "{names:?}");
    let r = h.get("/Client?page_size=abc&pageinate=true", &t).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json, json!({"page_size": ["The value 'abc' is not valid."]}));
}

#[tokio::test]
async fn page_size_is_clamped_to_1000_and_to_at_least_one() {
    let h = Halo::start(3, 10).await;
    h.halo.mutate(|d| {
        let items = d.rows.get_mut(&Resource::Item).unwrap();
        for k in 0..1100 {
            items.push(json!({"id": 1000 + k, "name": format!("Filler {k}"), "status": 0}));
        }
    });
    let t = h.token(None).await;
    let r = h.get("/Item?pageinate=true&page_size=5000", &t).await;
    assert_eq!(r.json["items"].as_array().unwrap().len(), 1000);
    assert_eq!(r.json["record_count"], 1100 + 10, "the 10 seeded active items too");
    let r = h.get("/Item?pageinate=true&page_size=0", &t).await;
    assert_eq!(r.json["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn recurring_invoice_lines_come_with_the_single_get_or_includelines() {
    let h = Halo::start(3, 20).await;
    let t = h.token(None).await;
    let negative = h.halo.read().plants_of("negative_invoice_id")[0].invoice_id.unwrap();
    let one = h.get(&format!("/recurringINVOICE/{negative}"), &t).await;
    assert_eq!(one.status, 200);
    assert_eq!(one.json["id"], negative, "a bare object");
    let lines = one.json["lines"].as_array().expect("the single GET has lines").clone();
    assert!(!lines.is_empty());
    for key in [
        "_itemid",
        "qty_order",
        "unit_price",
        "isinactive",
        "recurring_invoice_quantity_type",
        "startdate",
        "enddate",
        "ihid",
    ] {
        assert!(lines[0].get(key).is_some(), "line field {key}");
    }
    assert_eq!(one.json["customfields"], json!([]));

    let plain = h.get("/RecurringInvoice?pageinate=true&page_size=1000", &t).await;
    assert!(plain.json["invoices"].as_array().unwrap().iter().all(|i| i.get("lines").is_none()));
    let with = h.get("/RecurringInvoice?pageinate=true&page_size=1000&includelines=true", &t).await;
    let row =
        with.json["invoices"].as_array().unwrap().iter().find(|i| i["id"] == negative).unwrap();
    assert_eq!(row["lines"], Value::Array(lines));

    h.halo.update_settings(|s| s.ignore_includelines = true);
    let ignored = h.get("/RecurringInvoice?includelines=true", &t).await;
    assert!(ignored.json["invoices"].as_array().unwrap().iter().all(|i| i.get("lines").is_none()));

    h.halo.update_settings(|s| s.list_shape = ListShape::BareWhenCounted);
    let bare = h.get("/RecurringInvoice?count=3", &t).await;
    assert_eq!(bare.json.as_array().map(Vec::len), Some(3), "F14: a bare array");
    let paged = h.get("/RecurringInvoice?count=3&pageinate=true&page_size=2", &t).await;
    assert_eq!(paged.json["invoices"].as_array().map(Vec::len), Some(2));
    h.halo.update_settings(|s| s.list_shape = ListShape::NoRecordCount);
    let r = h.get("/Item", &t).await;
    assert!(r.json.get("record_count").is_none() && r.json["items"].is_array());

    let missing = h.get("/RecurringInvoice/987654", &t).await;
    assert_eq!((missing.status, missing.json), (StatusCode::NOT_FOUND, json!("Record not found")));
    assert_eq!(h.call(Method::PUT, "/Client", &t, None).await.status, 405);
    assert_eq!(h.get("/NoSuchThing", &t).await.status, 404);
}

#[tokio::test]
async fn the_rolling_window_answers_429_in_text_and_refused_requests_count() {
    let h = Halo::start(3, 10).await;
    h.halo.update_settings(|s| s.rate_limit = 300);
    let t = h.token(None).await;
    for _ in 0..300 {
        assert_eq!(h.get("/Item?count=1", &t).await.status, 200);
    }
    let r = h.get("/Item", &t).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.text, "Rate Limit Reached - 300 Requests per rolling 5 minute window");
    assert_eq!(r.headers["content-type"], "text/plain");
    assert!(r.headers.get("retry-after").is_none(), "no Retry-After by default");
    // The token endpoint is not counted.
    h.token(None).await;
    assert_eq!(h.halo.rate_use(&h.creds.client_id), (301, 300));

    // Refused requests count: with a limit of 3, requests refused at t=100 keep the window
    // full at t=300, when the first three have left it.
    h.halo.update_settings(|s| {
        s.rate_limit = 3;
        s.retry_after = true;
    });
    for _ in 0..3 {
        assert_eq!(h.get("/Item", &t).await.status, 200);
    }
    h.halo.advance(Duration::from_secs(100));
    for _ in 0..3 {
        let r = h.get("/Item", &t).await;
        assert_eq!(r.status, 429);
        assert_eq!(r.headers["retry-after"], "200", "until the first request leaves");
        assert_eq!(r.text, "Rate Limit Reached - 3 Requests per rolling 5 minute window");
    }
    h.halo.advance(Duration::from_secs(200));
    assert_eq!(h.get("/Item", &t).await.status, 429, "the refused ones still count");
    h.halo.advance(Duration::from_secs(101));
    assert_eq!(h.get("/Item", &t).await.status, 200);
}

/// Every row of `path`, walking pages of 7 (so paging is exercised) with `extra` parameters.
async fn all(h: &Halo, t: &str, path: &str, key: &str, extra: &str) -> Vec<Value> {
    let mut out = Vec::new();
    for page in 1.. {
        let r = h.get(&format!("{path}?pageinate=true&page_size=7&page_no={page}{extra}"), t).await;
        assert_eq!(r.status, 200, "{path}: {}", r.text);
        let rows = r.json[key].as_array().unwrap().clone();
        if rows.is_empty() {
            assert_eq!(out.len() as u64, r.json["record_count"].as_u64().unwrap());
            return out;
        }
        out.extend(rows);
    }
    unreachable!()
}

fn in_date(v: &Value, today: &str) -> bool {
    let (start, end) = (v["startdate"].as_str(), v["enddate"].as_str());
    start.is_none_or(|s| &s[..10] <= today) && end.is_none_or(|e| &e[..10] >= today)
}

#[tokio::test]
async fn the_planted_statuses_follow_from_the_billing_rules_read_through_the_api() {
    let h = Halo::start(7, 60).await;
    let t = h.token(None).await;
    let today = h.halo.read().today.format("%Y-%m-%d").to_string();
    let clients = all(&h, &t, "/Client", "clients", "&includeinactive=true").await;
    let invoices = all(&h, &t, "/RecurringInvoice", "invoices", "&includelines=true").await;
    let active =
        |c: &Value| clients.iter().any(|x| x["id"] == c["client_id"] && x["inactive"] == false);
    // The rule the daemon applies: lines of active (not disabled, in date) recurring invoices
    // of active clients, active and in date themselves, summed per (client, item).
    let mut billed: std::collections::BTreeMap<(i64, i64), f64> = Default::default();
    for inv in invoices.iter().filter(|i| i["disabled"] == false && in_date(i, &today) && active(i))
    {
        for l in inv["lines"].as_array().unwrap() {
            if l["isinactive"] == false && in_date(l, &today) {
                let key = (inv["client_id"].as_i64().unwrap(), l["_itemid"].as_i64().unwrap());
                *billed.entry(key).or_default() += l["qty_order"].as_f64().unwrap();
            }
        }
    }
    let data = h.halo.read().clone();
    for status in mpsync_sim::connectwise::PLANTED_STATUSES {
        assert!(!data.planted_with(status).is_empty(), "{status} planted");
    }
    for p in data.planted.iter().filter(|p| p.account_id.is_some()) {
        let key = (
            p.account_id.as_deref().unwrap().parse::<i64>().unwrap(),
            p.psa_product.as_deref().unwrap().parse::<i64>().unwrap(),
        );
        let got = billed.remove(&key).unwrap_or(0.0);
        assert_eq!(got, p.billed_qty, "{} row {key:?}", p.expected_status);
    }
    // What is left is only items that are not Mailprotector products.
    let mp: Vec<i64> = (17..=24).collect();
    assert!(billed.keys().all(|(_, item)| !mp.contains(item)), "{billed:?}");
    assert!(!billed.is_empty(), "foreign items are billed too");
    // The auto-calculated line carries a discrepancy a write-back must leave alone.
    let auto = data.plants_of("auto_calculated_line")[0];
    let row = data
        .planted
        .iter()
        .find(|p| {
            p.account_id == Some(auto.client_id.to_string())
                && p.psa_product == auto.item_id.map(|i| i.to_string())
        })
        .unwrap();
    assert_eq!(row.expected_status, "over_billed");
}

#[tokio::test]
async fn the_control_routes_show_the_credentials_and_change_the_settings() {
    let h = Halo::start(3, 10).await;
    let ctl = format!("{}/_sim/halopsa", h.sim.base_url());
    let info: Value = h.http.get(&ctl).send().await.unwrap().json().await.unwrap();
    assert_eq!(info["base_path"], "/halo");
    assert_eq!(info["client_id"], h.creds.client_id.as_str());
    assert_eq!(info["client_secret"], h.creds.client_secret.as_str());
    assert_eq!(info["settings"]["rate_limit"], 700);
    let body = json!({"rate_limit": 2, "list_shape": "bare", "tenant": null});
    let r = h.http.post(format!("{ctl}/settings")).json(&body).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let t = h.token(None).await;
    let r = h.get("/Item", &t).await;
    assert!(r.json.is_array(), "bare lists now: {}", r.text);
    assert_eq!(h.get("/Item", &t).await.status, 200);
    assert_eq!(h.get("/Item", &t).await.status, 429);
    let r = h.http.post(format!("{ctl}/advance")).json(&json!({"secs": 300})).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(h.get("/Item", &t).await.status, 200);
    let r = h.http.post(format!("{ctl}/expire_tokens")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(h.get("/Item", &t).await.status, 401);
    let r =
        h.http.post(format!("{ctl}/settings")).json(&json!({"rate_limt": 1})).send().await.unwrap();
    assert_eq!(r.status(), 400, "an unknown setting is refused");
}
