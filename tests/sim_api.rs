//! The simulated Mailprotector API over HTTP: documented fixtures and shapes, pagination and
//! `X-Pagination`, auth scopes, `user_count` vs the user listing, request counters, and the §8
//! recipe walked over HTTP yielding exactly the generator's ground truth.

mod sim_support;

use std::collections::BTreeMap;

use reqwest::StatusCode;
use serde_json::json;
use sim_support::{Api, start};

#[tokio::test]
async fn documented_fixtures_are_served_with_their_shapes() {
    let sim = start(7, 30).await;
    let api = Api::new(&sim, Some(&sim.control().reseller_key()));
    let r = api.get("/resellers/188").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json["name"], "Mailprotector Direct (old)");
    assert_eq!(r.json["provider"], json!({"id": 65, "name": "United States"}));
    assert_eq!(r.json["reseller"], serde_json::Value::Null);

    let c = api.get("/customers/329").await.json;
    assert_eq!(c["name"], "Mailprotector group");
    assert_eq!(c["reseller"], json!({"id": 188, "name": "Mailprotector Direct (old)"}));
    assert_eq!(c["created_at"], "2010-05-12T10:33:24.000Z");
    assert_eq!(c["updated_at"], "2014-05-13T23:27:51.000Z");
    assert!(c.get("status").is_none() && c.get("email").is_none());

    let d = api.get("/domains/102").await.json;
    assert_eq!(d["name"], "mpdemo.net");
    assert_eq!(d["account"], json!({"id": 329, "name": "Mailprotector group"}));
    assert_eq!(d["domain_status"], json!({"id": 2, "name": "Active"}));
    assert_eq!(d["parent"], serde_json::Value::Null);

    let groups = api.get("/domains/102/user_groups").await.json;
    let g109 = groups.as_array().unwrap().iter().find(|g| g["id"] == 109).expect("group 109");
    assert_eq!(g109["name"], "CloudMail with Bracket");
    assert_eq!(g109["user_count"], 56);
    assert_eq!(g109["domain"], json!({"id": 102, "name": "mpdemo.net"}));

    let s = api.get("/user_groups/109/services").await.json;
    assert_eq!(s, json!({"service_types": {"hosting": "CloudMail", "addons": ["Bracket"]}}));

    let u = api.get("/users/883326").await.json;
    assert_eq!(u["name"], "abigail.thompson");
    assert_eq!(u["user_type"], json!({"id": 1, "name": "User"}));
    assert_eq!(u["user_group"], json!({"id": 109, "name": "CloudMail with Bracket"}));
    assert_eq!(u["primary_address"], "abigail.thompson@mpdemo.net");
    let ts = u["created_at"].as_str().unwrap();
    assert!(ts.ends_with('Z') && ts.len() == 24, "{ts}");

    let aliases = api.get("/domains/102/aliases").await.json;
    let alias = &aliases.as_array().unwrap()[0];
    assert_eq!(alias["parent"], json!({"id": 102, "name": "mpdemo.net"}));
    assert_eq!(alias["domain_status"], json!({"id": 1, "name": "Pending"}));
    assert!(alias["verification_token"].is_string());
}

#[tokio::test]
async fn pages_cover_every_customer_once_with_exact_headers() {
    let sim = start(3, 61).await;
    let api = Api::new(&sim, Some(&sim.control().reseller_key()));
    let expected = sim.control().read().main_customers();
    let total = expected.len() as u64;
    let mut seen = Vec::new();
    let pages = total.div_ceil(7);
    for page in 1..=pages + 1 {
        let a = api.get(&format!("/resellers/188/customers?page={page}&per_page=7")).await;
        assert_eq!(a.status, StatusCode::OK);
        let want = json!({"page": page, "per_page": 7, "total": total, "total_pages": pages});
        assert_eq!(a.pagination(), want);
        let raw = a.headers["x-pagination"].to_str().unwrap();
        assert!(!raw.contains(' '), "compact: {raw}");
        if page > pages {
            assert_eq!(a.json, json!([]), "past the end is an empty page");
        }
        seen.extend(a.ids());
    }
    assert_eq!(seen, expected, "ascending ids, each exactly once");

    let a = api.get("/resellers/188/customers").await;
    assert_eq!(a.pagination()["per_page"], 25);
    assert_eq!(a.ids().len() as u64, total.min(25));
    let a = api.get("/resellers/188/customers?per_page=1000").await;
    assert_eq!(a.pagination()["per_page"], 100, "clamped silently");
    assert_eq!(a.ids().len() as u64, total.min(100));

    for bad in ["page=0", "per_page=0", "page=two", "per_page=-5"] {
        let a = api.get(&format!("/resellers/188/customers?{bad}")).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{bad}");
        assert!(a.json["error"].is_string(), "{bad}: {}", a.text);
    }
    let a = api.get("/resellers/188/customers?name=Mailprotector%20group&colour=blue").await;
    assert_eq!(a.ids(), vec![329], "equality filter applies, unknown params are ignored");
}

#[tokio::test]
async fn keys_are_scoped_like_manager_roles() {
    let sim = start(5, 30).await;
    let ctl = sim.control().clone();
    let reseller = Api::new(&sim, Some(&ctl.reseller_key()));
    let customer = reseller.with_key(ctl.customer_key(329).as_deref());
    let sub = reseller.with_key(ctl.read().key_for(mpsync::sim::Role::Reseller(4501)));
    let other_customer = *ctl.read().customers_in_reseller(4502).first().unwrap();
    let sub_customer = *ctl.read().customers_in_reseller(4501).first().unwrap();

    let cases: Vec<(&Api, String, StatusCode)> = vec![
        (&reseller, "/resellers/188".into(), StatusCode::OK),
        (&reseller, "/resellers/4501".into(), StatusCode::OK),
        (&reseller, format!("/customers/{sub_customer}/domains"), StatusCode::OK),
        (&reseller, "/resellers/4502".into(), StatusCode::FORBIDDEN),
        (&reseller, format!("/customers/{other_customer}"), StatusCode::FORBIDDEN),
        (&reseller, "/resellers/999999".into(), StatusCode::NOT_FOUND),
        (&customer, "/customers/329".into(), StatusCode::OK),
        (&customer, "/domains/102/user_groups".into(), StatusCode::OK),
        (&customer, "/user_groups/109/users".into(), StatusCode::OK),
        (&customer, "/resellers/188".into(), StatusCode::FORBIDDEN),
        (&customer, "/customers/7114".into(), StatusCode::FORBIDDEN),
        (&sub, format!("/customers/{sub_customer}"), StatusCode::OK),
        (&sub, "/resellers/188".into(), StatusCode::FORBIDDEN),
        (&sub, "/customers/329".into(), StatusCode::FORBIDDEN),
    ];
    for (api, path, want) in cases {
        let a = api.get(&path).await;
        assert_eq!(a.status, want, "{path}: {}", a.text);
        if want != StatusCode::OK {
            assert!(a.json["error"].is_string(), "{path}: error body {}", a.text);
        }
    }
    for key in [None, Some("not-a-key")] {
        let a = reseller.with_key(key).get("/resellers/188").await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED);
        assert_eq!(a.headers["content-type"], "application/json");
        assert!(a.json["error"].is_string());
    }
    let a = reseller.send(reqwest::Method::POST, "/domains/102", None).await;
    assert_eq!(
        (a.status, a.json["error"].is_string()),
        (StatusCode::METHOD_NOT_ALLOWED, true),
        "{}",
        a.text
    );
    let st = customer.get("/customers/329/statements").await;
    assert_eq!(st.status, StatusCode::OK);
    assert_eq!(st.json[0]["currency"], "USD");
    assert!(st.pagination()["total"].as_u64().unwrap() > 0);
    assert_eq!(customer.get("/customers/7114/statements").await.status, StatusCode::FORBIDDEN);
    assert_eq!(customer.get("/resellers/188/statements").await.status, StatusCode::FORBIDDEN);
    assert_eq!(reseller.get("/resellers/188/statements").await.status, StatusCode::OK);
    let a = reseller.get("/resellers/188/").await;
    assert_eq!(
        (a.status, a.json["error"].is_string()),
        (StatusCode::NOT_FOUND, true),
        "trailing slash"
    );
}

#[tokio::test]
async fn user_count_counts_users_not_aliases() {
    let sim = start(11, 40).await;
    let api = Api::new(&sim, Some(&sim.control().reseller_key()));
    let with_aliases: Vec<u64> = {
        let ds = sim.control().read();
        ds.groups().values().filter(|g| g.alias_count() > 0).map(|g| g.id).take(5).collect()
    };
    assert!(!with_aliases.is_empty(), "the dataset has groups with aliases");
    for gid in with_aliases {
        let g = api.get(&format!("/user_groups/{gid}")).await.json;
        let users = api.all(&format!("/user_groups/{gid}/users")).await;
        let real = users.iter().filter(|u| u["user_type"]["id"] == 1).count();
        let aliases: Vec<_> = users.iter().filter(|u| u["user_type"]["id"] == 2).collect();
        assert_eq!(g["user_count"], real as u64, "group {gid}");
        assert!(!aliases.is_empty());
        for a in aliases {
            assert_eq!(a["user_type"], json!({"id": 2, "name": "Alias"}));
            assert!(a["parent"]["id"].is_u64() && a["first_name"] == "");
            assert_eq!(a["primary_address"], a["parent"]["primary_address"]);
        }
    }
}

/// The §8 recipe over HTTP, skipping alias domains, must equal the ground truth exactly.
#[tokio::test]
async fn the_derivation_recipe_yields_the_ground_truth_and_is_counted() {
    let sim = start(21, 45).await;
    let ctl = sim.control().clone();
    let api = Api::new(&sim, Some(&ctl.reseller_key()));
    ctl.reset_requests();
    let mut got: BTreeMap<u64, BTreeMap<String, u64>> = BTreeMap::new();
    let (mut domains_seen, mut groups_seen) = (0u64, 0u64);
    for c in api.all("/resellers/188/customers").await {
        let cid = c["id"].as_u64().unwrap();
        let counts = got.entry(cid).or_default();
        for d in api.all(&format!("/customers/{cid}/domains")).await {
            domains_seen += 1;
            if !d["parent"].is_null() {
                continue;
            }
            for g in api.all(&format!("/domains/{}/user_groups", d["id"])).await {
                groups_seen += 1;
                let n = g["user_count"].as_u64().unwrap();
                let s = api.get(&format!("/user_groups/{}/services", g["id"])).await.json;
                let st = &s["service_types"];
                let mut products: Vec<String> = st["addons"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|a| a.as_str().unwrap().to_owned())
                    .collect();
                if let Some(h) = st["hosting"].as_str() {
                    products.insert(0, h.to_owned());
                }
                for p in products {
                    if n > 0 {
                        *counts.entry(p).or_insert(0) += n;
                    }
                }
            }
        }
    }
    assert_eq!(got, ctl.expected_counts());
    assert!(
        got.values().any(|c| c.contains_key("ForceEncrypt")),
        "an unknown product surfaces verbatim"
    );
    let r = ctl.requests();
    let customers = got.len() as u64;
    assert_eq!(r.get("GET /resellers/{id}/customers"), 1);
    assert_eq!(r.get("GET /customers/{id}/domains"), customers);
    assert_eq!(r.get("GET /user_groups/{id}/services"), groups_seen);
    assert!(domains_seen > customers / 2);
    assert_eq!(r.total, r.by_endpoint.values().sum::<u64>());
    assert_eq!(r.status(200), r.total);
    ctl.reset_requests();
    assert_eq!(ctl.requests().total, 0);
}

/// Every listed route is really routed (so fault endpoints validated against the list match).
#[tokio::test]
async fn every_listed_route_is_served_and_counted_under_its_pattern() {
    let sim = start(2, 5).await;
    let api = Api::new(&sim, Some(&sim.control().reseller_key()));
    for pattern in mpsync::sim::mailprotector::ROUTES {
        let (method, path) = pattern.split_once(' ').unwrap();
        let before = sim.control().requests().get(pattern);
        let method: reqwest::Method = method.parse().unwrap();
        api.send(method, &path.replace("{id}", "999999"), Some(json!({}))).await;
        assert_eq!(sim.control().requests().get(pattern), before + 1, "{pattern}");
    }
    assert_eq!(sim.control().requests().get("GET (unmatched)"), 0);
}
