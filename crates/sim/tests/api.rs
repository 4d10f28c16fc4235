//! The simulated Mailprotector API over HTTP: documented fixtures and shapes, pagination and
//! `X-Pagination`, auth scopes, `user_count` vs the user listing (all four user types), request
//! counters, and the §8 recipe walked over HTTP yielding exactly the generator's ground truth
//! under each counting rule.

use std::collections::BTreeMap;

use reqwest::StatusCode;
use serde_json::json;

use crate::support::{Api, start};

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
    let record = |id: u64, service_type: &str| {
        json!({
            "id": id,
            "service_type": service_type,
            "user_group": {"id": 109, "name": "CloudMail with Bracket"},
            "domain": {"id": 102, "name": "mpdemo.net"},
            "created_at": "2010-05-14T10:33:24.000Z",
        })
    };
    assert_eq!(s, json!([record(10902, "Premium Hosted Email"), record(10904, "Bracket")]));

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
    let sub = reseller.with_key(ctl.read().key_for(mpsync_sim::Role::Reseller(4501)));
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
async fn user_count_counts_every_type_but_aliases_and_users_carry_their_type() {
    let sim = start(11, 40).await;
    let api = Api::new(&sim, Some(&sim.control().reseller_key()));
    // Groups holding aliases, mailing lists and unlicensed users between them.
    let picked: Vec<u64> = {
        let ds = sim.control().read();
        let mut picked = Vec::new();
        for types in [[2u64], [3], [11]] {
            let found: Vec<u64> = ds
                .groups()
                .values()
                .filter(|g| g.count_of(&types) > 0 && !picked.contains(&g.id))
                .map(|g| g.id)
                .take(2)
                .collect();
            picked.extend(found);
        }
        picked
    };
    let mut seen_types = std::collections::BTreeSet::new();
    for gid in picked {
        let g = api.get(&format!("/user_groups/{gid}")).await.json;
        let users = api.all(&format!("/user_groups/{gid}/users")).await;
        let of = |id: u64| users.iter().filter(|u| u["user_type"]["id"] == id).count() as u64;
        assert_eq!(g["user_count"], of(1) + of(3) + of(11), "group {gid}: every non-alias user");
        let want = sim.control().read().groups()[&gid].listed_count();
        assert_eq!(users.len() as u64, want, "group {gid} lists all four types");
        for u in &users {
            let t = &u["user_type"];
            seen_types.insert(t["id"].as_u64().unwrap());
            let name = match t["id"].as_u64().unwrap() {
                1 => "User",
                2 => "Alias",
                3 => "Mailing List",
                11 => "Unlicensed User",
                other => panic!("unexpected user type {other}"),
            };
            assert_eq!(t, &json!({"id": t["id"], "name": name}));
            assert_eq!(u["user_group"]["id"], gid);
            let local = u["name"].as_str().unwrap();
            match name {
                "Alias" => {
                    assert!(u["parent"]["id"].is_u64() && u["first_name"] == "");
                    assert_eq!(u["primary_address"], u["parent"]["primary_address"]);
                }
                "Mailing List" => {
                    assert!(local.contains('-') && !local.contains('.'), "list-like: {local}");
                    assert_eq!((&u["first_name"], &u["parent"]), (&json!(""), &json!(null)));
                    assert!(u["primary_address"].as_str().unwrap().starts_with(local));
                }
                _ => {
                    assert!(local.contains('.') && u["first_name"] != "", "person: {local}");
                    assert!(u["parent"].is_null());
                }
            }
            let one = api.get(&format!("/users/{}", u["id"])).await;
            assert_eq!(&one.json, u, "GET /users/{{id}} serves the same user");
        }
    }
    assert_eq!(seen_types.into_iter().collect::<Vec<_>>(), vec![1, 2, 3, 11]);
}

/// The project's product for a console service name (§12 #10): the three known long forms,
/// every other name verbatim.
fn canonical(console: &str) -> String {
    match console {
        "CloudFilter Email Security" => "CloudFilter",
        "SafeSend Outbound" => "SafeSend",
        "Premium Hosted Email" => "CloudMail",
        other => other,
    }
    .to_owned()
}

/// The §8 recipe over HTTP, skipping alias domains: summing `user_count` yields the truth that
/// counts every non-alias type — not the default truth (User only), which a per-user walk of
/// the group listings yields exactly.
#[tokio::test]
async fn the_derivation_recipe_yields_the_ground_truth_and_is_counted() {
    let sim = start(21, 45).await;
    let ctl = sim.control().clone();
    let api = Api::new(&sim, Some(&ctl.reseller_key()));
    ctl.reset_requests();
    let mut by_user_count: BTreeMap<u64, BTreeMap<String, u64>> = BTreeMap::new();
    let mut by_user_type = by_user_count.clone();
    let (mut domains_seen, mut groups_seen) = (0u64, 0u64);
    for c in api.all("/resellers/188/customers").await {
        let cid = c["id"].as_u64().unwrap();
        let counts = by_user_count.entry(cid).or_default();
        let per_user = by_user_type.entry(cid).or_default();
        for d in api.all(&format!("/customers/{cid}/domains")).await {
            domains_seen += 1;
            if !d["parent"].is_null() {
                continue;
            }
            for g in api.all(&format!("/domains/{}/user_groups", d["id"])).await {
                groups_seen += 1;
                let n = g["user_count"].as_u64().unwrap();
                let users = api.all(&format!("/user_groups/{}/users", g["id"])).await;
                let users_only = users.iter().filter(|u| u["user_type"]["id"] == 1).count() as u64;
                let s = api.get(&format!("/user_groups/{}/services", g["id"])).await.json;
                for record in s.as_array().expect("an array of service records") {
                    assert_eq!(record["user_group"]["id"], g["id"]);
                    let p = canonical(record["service_type"].as_str().unwrap());
                    if n > 0 {
                        *counts.entry(p.clone()).or_insert(0) += n;
                    }
                    if users_only > 0 {
                        *per_user.entry(p).or_insert(0) += users_only;
                    }
                }
            }
        }
    }
    assert_eq!(by_user_count, ctl.expected_counts_for(&mpsync_sim::USER_COUNT_TYPES));
    assert_eq!(by_user_type, ctl.expected_counts());
    assert_ne!(by_user_count, by_user_type, "user_count includes lists and unlicensed users");
    assert!(
        by_user_type.values().any(|c| c.contains_key("ForceEncrypt")),
        "an unknown product surfaces verbatim"
    );
    let r = ctl.requests();
    let customers = by_user_count.len() as u64;
    assert_eq!(r.get("GET /resellers/{id}/customers"), 1);
    assert_eq!(r.get("GET /customers/{id}/domains"), customers);
    assert_eq!(r.get("GET /user_groups/{id}/services"), groups_seen);
    assert!(domains_seen > customers / 2);
    assert_eq!(r.total, r.by_endpoint.values().sum::<u64>());
    assert_eq!(r.status(200), r.total);
    ctl.reset_requests();
    assert_eq!(ctl.requests().total, 0);
}

#[tokio::test]
async fn expected_counts_over_http_follow_the_requested_types() {
    let sim = start(3, 20).await;
    let ctl = sim.control().clone();
    let api = Api::new(&sim, None);
    let as_json = |m: BTreeMap<u64, BTreeMap<String, u64>>| serde_json::to_value(m).unwrap();
    let default = api.get("/_sim/expected_counts").await;
    assert_eq!(default.json, as_json(ctl.expected_counts()));
    let wide = api.get("/_sim/expected_counts?types=1,3,11").await;
    assert_eq!(wide.json, as_json(ctl.expected_counts_for(&[1, 3, 11])));
    assert_ne!(wide.json, default.json, "the dataset has lists and unlicensed users");
    let all = api.get("/_sim/expected_counts?types=1%2C2%2C3%2C11").await;
    assert_eq!(all.json, as_json(ctl.expected_counts_for(&[1, 2, 3, 11])));
    for bad in ["types=", "types=1,4", "types=user", "type=1"] {
        let a = api.get(&format!("/_sim/expected_counts?{bad}")).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{bad}");
        let msg = a.json["error"].as_str().unwrap();
        assert!(msg.contains("/_sim/expected_counts") && msg.contains("types"), "{bad}: {msg}");
    }
    let bad = api.get("/_sim/expected_counts?types=1,4").await;
    assert!(bad.json["error"].as_str().unwrap().contains("11 (Unlicensed User)"));
    let info = api.get("/_sim/info").await.json;
    let t = ctl.read().user_totals();
    assert_eq!(
        (&info["users"], &info["aliases"], &info["mailing_lists"], &info["unlicensed_users"]),
        (&json!(t.users), &json!(t.aliases), &json!(t.mailing_lists), &json!(t.unlicensed_users))
    );
    assert!(t.mailing_lists > 0 && t.unlicensed_users > 0);
}

/// Every listed route is really routed (so fault endpoints validated against the list match).
#[tokio::test]
async fn every_listed_route_is_served_and_counted_under_its_pattern() {
    let sim = start(2, 5).await;
    let api = Api::new(&sim, Some(&sim.control().reseller_key()));
    for pattern in mpsync_sim::mailprotector::ROUTES {
        let (method, path) = pattern.split_once(' ').unwrap();
        let before = sim.control().requests().get(pattern);
        let method: reqwest::Method = method.parse().unwrap();
        api.send(method, &path.replace("{id}", "999999"), Some(json!({}))).await;
        assert_eq!(sim.control().requests().get(pattern), before + 1, "{pattern}");
    }
    assert_eq!(sim.control().requests().get("GET (unmatched)"), 0);
}
