//! `tests/fixtures/replay-public/`: a bundle written by hand from the public record's example
//! payloads (reference/mailprotector-api.md §5 and §12, connectwise-manage.md §3 and §7).
//! Replayed, it gives the counts and billed lines a person reads off the files; the replay
//! matches queries in any order, accepts any key, and says so when a request was not captured.

use std::collections::BTreeMap;
use std::path::PathBuf;

use mpsync::sim::replay::{Bundle, ReplayServer};
use serde_json::Value;

use crate::support::{stored, sync_once};

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/replay-public")
}

/// A billed line as compared: source, account, product, quantity, unit price, note when
/// the line does not count.
type Line<'a> = (&'a str, &'a str, &'a str, f64, Option<f64>, Option<&'a str>);

fn counts(rows: &[(u64, &[(&str, u64)])]) -> BTreeMap<u64, BTreeMap<String, u64>> {
    rows.iter()
        .map(|(c, ps)| (*c, ps.iter().map(|(p, n)| ((*p).to_owned(), *n)).collect()))
        .collect()
}

/// Users of type User per customer and product, as a person counts them in the fixture:
/// group 109 (CloudFilter Email Security + Bracket) has 50, group 110 (SafeSend Outbound) 5,
/// group 3301 (CloudFilter Email Security + SafeSend Outbound) 7.
fn user_type_counts() -> BTreeMap<u64, BTreeMap<String, u64>> {
    counts(&[
        (329, &[("Bracket", 50), ("CloudFilter", 50), ("SafeSend", 5)]),
        (7114, &[("CloudFilter", 7), ("SafeSend", 7)]),
    ])
}

/// The sum of `user_count` (every non-alias user: User, Mailing List, Unlicensed User) per
/// customer and product: 56 in group 109, 6 in group 110, 8 in group 3301. What a count that
/// trusted `user_count` would report; the fixture tells the two apart.
fn user_count_sums() -> BTreeMap<u64, BTreeMap<String, u64>> {
    counts(&[
        (329, &[("Bracket", 56), ("CloudFilter", 56), ("SafeSend", 6)]),
        (7114, &[("CloudFilter", 8), ("SafeSend", 8)]),
    ])
}

/// The fixture says what the tables above say: each group's `user_count` is its number of
/// non-alias users, and its User-type users are as counted there.
#[test]
fn the_fixture_is_self_consistent() {
    let bundle = Bundle::load(&fixture()).expect("the fixture loads");
    let mp = bundle.file(mpsync::sim::replay::Upstream::Mailprotector).unwrap();
    let body = |path: &str| -> Vec<Value> {
        let x = mp.exchanges.iter().find(|x| x.request.path == path).unwrap();
        match &x.response.body {
            mpsync::sim::replay::bundle::Body::Json(Value::Array(items)) => items.clone(),
            other => panic!("{path}: {other:?}"),
        }
    };
    let mut user_type = BTreeMap::new();
    for (domain, groups) in [(102, vec![109, 110]), (2201, vec![3301])] {
        for g in body(&format!("/domains/{domain}/user_groups")) {
            let id = g["id"].as_u64().unwrap();
            assert!(groups.contains(&id));
            let users = body(&format!("/user_groups/{id}/users"));
            let of_type =
                |t: u64| users.iter().filter(|u| u["user_type"]["id"] == t).count() as u64;
            assert_eq!(
                g["user_count"].as_u64().unwrap(),
                users.len() as u64 - of_type(2),
                "group {id}"
            );
            user_type.insert(id, of_type(1));
        }
    }
    assert_eq!(user_type, BTreeMap::from([(109, 50), (110, 5), (3301, 7)]));
    assert_eq!(body("/resellers/188/users").len(), 74, "the reseller listing holds every user");
    let abigail = &body("/user_groups/109/users")[0];
    assert_eq!(
        (abigail["id"].as_u64(), abigail["name"].as_str()),
        (Some(883326), Some("abigail.thompson"))
    );
    // The tables agree with each other where they should: only non-User users differ.
    assert_ne!(user_type_counts(), user_count_sums());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_public_record_bundle_replays_to_the_counts_a_person_reads_off_it() {
    let bundle = Bundle::load(&fixture()).unwrap();
    let replay = ReplayServer::start(&bundle, "127.0.0.1:0".parse().unwrap()).await.unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let config =
        mpsync::commands::write_replay_config(tmp.path(), &bundle.manifest, &replay.base_url())
            .unwrap();
    let run = sync_once(&config).await;
    assert_eq!(run["runs"][0]["customers_counted"], 2);
    let got = stored(tmp.path().join("state")).await;
    let seen = replay.requests();
    assert_eq!(seen.not_captured, 0, "{:?}", seen.missing);
    assert_eq!(
        seen.by_request.get("GET /api/v1/resellers/188/customers?page=2&per_page=100"),
        Some(&1),
        "the capped customers listing is paged: {seen:?}"
    );

    // Users of type User (the default `count_user_types`), not the `user_count` sums.
    assert_eq!(got.counts, user_type_counts());
    assert_ne!(got.counts, user_count_sums());

    assert_eq!(got.accounts, ["250", "318"]);
    let mut lines: Vec<Line<'_>> = got
        .lines
        .iter()
        .map(|l| {
            let note = if l.counted { None } else { l.note.as_deref() };
            (
                l.source_ref.as_str(),
                l.account_id.as_str(),
                l.product_id.as_str(),
                l.quantity,
                l.unit_price,
                note,
            )
        })
        .collect();
    lines.sort_by(|a, b| a.0.cmp(b.0));
    let not_billable = Some("billCustomer is DoNotBill, not Billable");
    assert_eq!(
        lines,
        [
            ("agreement 501 addition 7001", "250", "MP-CF", 50.0, Some(2.5), None),
            ("agreement 501 addition 7002", "250", "MP-BR", 56.0, Some(3.25), None),
            ("agreement 501 addition 7003", "250", "MP-SS", 5.0, Some(1.5), None),
            ("agreement 501 addition 7004", "250", "MP-XM", 10.0, Some(1.0), not_billable),
            ("agreement 502 addition 7101", "318", "MP-CF", 7.0, Some(2.5), None),
            ("agreement 502 addition 7102", "318", "MP-SS", 8.0, Some(1.5), None),
            (
                "agreement 502 addition 7103",
                "318",
                "MP-SS",
                2.0,
                Some(1.5),
                Some("cancelled on 2025-06-30")
            ),
        ]
    );
    let counted = got.lines.iter().filter(|l| l.counted).count();
    assert_eq!(counted, 5, "DoNotBill and cancelled additions are kept as evidence only");
    replay.shutdown().await;
}

#[tokio::test]
async fn the_replay_serves_captured_requests_only_in_any_query_order_with_any_key() {
    let bundle = Bundle::load(&fixture()).unwrap();
    let replay = ReplayServer::start(&bundle, "127.0.0.1:0".parse().unwrap()).await.unwrap();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http =
        reqwest::Client::builder().timeout(std::time::Duration::from_secs(10)).build().unwrap();
    let base = replay.base_url();
    let get = |path: &str| http.get(format!("{base}{path}"));

    let a = get("/api/v1/resellers/188/domains?page=1&per_page=100").send().await.unwrap();
    assert_eq!(a.status(), 200);
    let pagination = a.headers()["x-pagination"].to_str().unwrap().to_owned();
    assert_eq!(pagination, r#"{"page":1,"per_page":100,"total":3,"total_pages":1}"#);
    assert_eq!(a.headers()["content-type"], "application/json");
    let a: Value = a.json().await.unwrap();
    let b: Value = get("/api/v1/resellers/188/domains?per_page=100&page=1")
        .bearer_auth("any key at all")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(a, b, "query order does not matter, nor the key");
    assert_eq!(a[0]["name"], "mpdemo.net");

    let cw = get("/v4_6_release/apis/3.0/finance/agreements?conditions=cancelledFlag%3Dfalse&pageSize=1000&page=1")
        .basic_auth("someone", Some("anything"))
        .send()
        .await
        .unwrap();
    assert_eq!(cw.status(), 200);
    assert!(cw.headers()["link"].to_str().unwrap().contains("rel=\"last\""));

    let miss = get("/api/v1/resellers/188/domains?page=2&per_page=100").send().await.unwrap();
    assert_eq!(miss.status(), 404);
    let body: Value = miss.json().await.unwrap();
    let msg = body["error"].as_str().unwrap();
    assert!(
        msg.contains("not captured")
            && msg.contains("GET /api/v1/resellers/188/domains?page=2&per_page=100")
            && msg.contains("does not contain"),
        "{msg}"
    );
    assert_eq!(
        (body["method"].as_str(), body["query"].as_str()),
        (Some("GET"), Some("page=2&per_page=100"))
    );
    let write = http.post(format!("{base}/api/v1/resellers/188/customers")).send().await.unwrap();
    assert_eq!(write.status(), 404, "a bundle holds reads only");
    let gradient = get("/api/vendor-api/organization").send().await.unwrap();
    assert_eq!(gradient.status(), 404, "this bundle holds no Gradient answers");

    let counts: Value = get("/_sim/requests").send().await.unwrap().json().await.unwrap();
    assert_eq!((counts["answered"].as_u64(), counts["not_captured"].as_u64()), (Some(3), Some(3)));
    assert_eq!(counts["missing"][1], "POST /api/v1/resellers/188/customers");
    replay.shutdown().await;
}
