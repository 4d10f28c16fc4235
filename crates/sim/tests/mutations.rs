//! Mutations between runs change the ground truth and the served data the same way, whether
//! made in process (`SimControl`) or over `POST /_sim/mutations`: users of every type, renames,
//! moves, services, new entities, and customers hidden from the customer listing.

use mpsync_sim::Services;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::support::{Api, start};

#[tokio::test]
async fn served_data_follows_mutations() {
    let sim = start(4, 12).await;
    let ctl = sim.control().clone();
    let api = Api::new(&sim, Some(&ctl.reseller_key()));
    let count_109 = |v: serde_json::Value| {
        v.as_array().unwrap().iter().find(|g| g["id"] == 109).unwrap()["user_count"]
            .as_u64()
            .unwrap()
    };
    assert_eq!(count_109(api.get("/domains/102/user_groups").await.json), 56);

    ctl.add_users(109, 5).unwrap();
    assert_eq!(count_109(api.get("/domains/102/user_groups").await.json), 61);
    let listed = api.all("/user_groups/109/users").await;
    assert_eq!(listed.iter().filter(|u| u["user_type"]["id"] == 1).count(), 61);
    assert_eq!(ctl.expected_counts()[&329]["CloudMail"], 61);

    let a = api
        .send(
            Method::POST,
            "/_sim/mutations",
            Some(json!({"op": "remove_users", "group": 109, "n": 11})),
        )
        .await;
    assert_eq!(a.json, json!({"removed": 11}));
    assert_eq!(count_109(api.get("/domains/102/user_groups").await.json), 50);
    assert_eq!(api.get("/_sim/expected_counts").await.json["329"]["Bracket"], 50);

    api.send(
        Method::POST,
        "/_sim/mutations",
        Some(json!({"op": "rename_customer", "customer": 7114, "name": "Acme Renamed"})),
    )
    .await;
    let c = api.get("/customers/7114").await.json;
    assert_eq!(c["name"], "Acme Renamed");
    assert!(c["updated_at"].as_str().unwrap() > c["created_at"].as_str().unwrap());

    ctl.move_domain(102, 7114).unwrap();
    let d = api.get("/domains/102").await.json;
    assert_eq!(d["account"], json!({"id": 7114, "name": "Acme Renamed"}));
    let doms: Vec<u64> = api
        .all("/customers/7114/domains")
        .await
        .iter()
        .map(|d| d["id"].as_u64().unwrap())
        .collect();
    assert!(doms.contains(&102));
    assert!(ctl.expected_counts()[&329].is_empty());
    let users_329 = api.get("/customers/329/users").await;
    assert_eq!(users_329.pagination()["total"], 0);

    ctl.set_services(109, Services::new(None, &["ForceEncrypt"])).unwrap();
    let s = api.get("/user_groups/109/services").await.json;
    assert_eq!(s.as_array().unwrap().len(), 1);
    assert_eq!(s[0]["service_type"], "ForceEncrypt");

    let a = api
        .send(
            Method::POST,
            "/_sim/mutations",
            Some(json!({"op": "add_customer", "name": "Fresh Start"})),
        )
        .await;
    let cid = a.json["id"].as_u64().unwrap();
    let a = api
        .send(
            Method::POST,
            "/_sim/mutations",
            Some(json!({"op": "add_domain", "customer": cid, "name": "fresh.example"})),
        )
        .await;
    let did = a.json["id"].as_u64().unwrap();
    let a = api.send(Method::POST, "/_sim/mutations", Some(json!({"op": "add_group", "domain": did, "name": "Default", "hosting": "CloudFilter", "addons": ["SafeSend"], "users": 7}))).await;
    assert!(a.json["id"].is_u64());
    assert_eq!(ctl.expected_counts()[&cid]["SafeSend"], 7);
    let customers = api.all("/resellers/188/customers").await;
    assert_eq!(customers.last().unwrap()["id"], cid, "new customers list last (ascending id)");
    let bad = api
        .send(Method::POST, "/_sim/mutations", Some(json!({"op": "add_users", "group": 1, "n": 1})))
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.json["error"].as_str().unwrap().contains("no user group with id 1"));
    let bad = api.send(Method::POST, "/_sim/mutations", Some(json!({"op": "explode"}))).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.json["error"].as_str().unwrap().contains("explode"), "{}", bad.text);
}

#[tokio::test]
async fn reseller_wide_user_listing_pages_through_everyone_in_id_order() {
    let sim = start(8, 25).await;
    let ctl = sim.control().clone();
    let api = Api::new(&sim, Some(&ctl.reseller_key()));
    ctl.add_users(109, 3).unwrap(); // newest ids, listed last
    let users = api.all("/resellers/188/users").await;
    let ids: Vec<u64> = users.iter().map(|u| u["id"].as_u64().unwrap()).collect();
    let mut sorted = ids.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(ids, sorted, "ascending, no duplicates");
    let truth = |types: &[u64]| -> u64 {
        let ds = ctl.read();
        ds.main_customers()
            .iter()
            .flat_map(|c| ds.domains_of_customer(*c))
            .filter(|d| ds.domains()[d].parent.is_none())
            .flat_map(|d| ds.groups_of_domain(d))
            .map(|g| ds.groups()[&g].count_of(types))
            .sum()
    };
    for t in [1, 2, 3, 11] {
        let listed = users.iter().filter(|u| u["user_type"]["id"] == t).count() as u64;
        assert_eq!(listed, truth(&[t]), "user type {t}");
        assert!(listed > 0, "the listing holds type {t}");
    }
    assert_eq!(users.len() as u64, truth(&[1, 2, 3, 11]));
    let filtered = api.get("/resellers/188/users?first_name=Abigail&per_page=100").await;
    assert!(filtered.json.as_array().unwrap().iter().all(|u| u["first_name"] == "Abigail"));
    assert!(filtered.pagination()["total"].as_u64().unwrap() >= 1);
}

/// The group a client test needs: one User, one Mailing List and one Unlicensed User, served
/// with `user_count` 3, counted 1 under the default rule and 3 when every non-alias counts.
#[tokio::test]
async fn a_group_of_one_user_one_list_and_one_unlicensed_user() {
    let sim = start(6, 5).await;
    let ctl = sim.control().clone();
    let api = Api::new(&sim, Some(&ctl.reseller_key()));
    let cid = ctl.add_customer(188, "Three Kinds LLC").unwrap();
    let did = ctl.add_domain(cid, "threekinds.example", None).unwrap();
    let gid = ctl.add_group(did, "Default", Services::new(Some("CloudFilter"), &[]), 1).unwrap();
    let list = ctl.add_mailing_lists(gid, 1).unwrap();
    let post = |body: serde_json::Value| api.send(Method::POST, "/_sim/mutations", Some(body));
    let a = post(json!({"op": "add_unlicensed_users", "group": gid, "n": 1})).await;
    let unlicensed: Vec<u64> = serde_json::from_value(a.json["ids"].clone()).unwrap();
    assert_eq!(unlicensed.len(), 1);
    assert!(unlicensed[0] > list[0], "ids ascend");

    let g = api.get(&format!("/domains/{did}/user_groups")).await.json;
    assert_eq!(g[0]["user_count"], 3);
    let users = api.all(&format!("/user_groups/{gid}/users")).await;
    let types: Vec<serde_json::Value> = users.iter().map(|u| u["user_type"].clone()).collect();
    assert_eq!(
        types,
        vec![
            json!({"id": 1, "name": "User"}),
            json!({"id": 3, "name": "Mailing List"}),
            json!({"id": 11, "name": "Unlicensed User"})
        ]
    );
    assert_eq!(ctl.expected_counts()[&cid], [("CloudFilter".to_owned(), 1)].into());
    assert_eq!(ctl.expected_counts_for(&[1, 3, 11])[&cid]["CloudFilter"], 3);
    assert_eq!(ctl.expected_count_any_of_for(&["cloudfilter"], &[3])[&cid], 1);
    let over_http = api.get("/_sim/expected_counts?types=1,3,11").await.json;
    assert_eq!(over_http[cid.to_string()]["CloudFilter"], 3);

    let a = post(json!({"op": "add_mailing_lists", "group": gid, "n": 2})).await;
    assert_eq!(a.json["ids"].as_array().unwrap().len(), 2);
    assert_eq!(api.get(&format!("/user_groups/{gid}")).await.json["user_count"], 5);
    let bad = post(json!({"op": "add_mailing_lists", "group": 1, "n": 1})).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.json["error"].as_str().unwrap().contains("no user group with id 1"));
}

/// A hidden customer is missing from the customer listing while its domains, groups and users
/// are still listed reseller-wide; the truth leaves it out.
#[tokio::test]
async fn a_hidden_customer_is_listed_nowhere_but_its_data_is() {
    let sim = start(9, 12).await;
    let ctl = sim.control().clone();
    let api = Api::new(&sim, Some(&ctl.reseller_key()));
    let c = 7114;
    let listed = |v: &[serde_json::Value]| -> Vec<u64> {
        v.iter().map(|x| x["id"].as_u64().unwrap()).collect()
    };
    let customers_before = listed(&api.all("/resellers/188/customers").await);
    let domains_before = listed(&api.all("/resellers/188/domains").await);
    let users_before = listed(&api.all("/resellers/188/users").await);
    let own_domains = ctl.read().domains_of_customer(c);
    assert!(customers_before.contains(&c) && !own_domains.is_empty());

    let post = |body: serde_json::Value| api.send(Method::POST, "/_sim/mutations", Some(body));
    let a = post(json!({"op": "hide_customer", "customer": c})).await;
    assert_eq!((a.status, a.json.clone()), (StatusCode::OK, json!({})));
    let customers = api.all("/resellers/188/customers").await;
    let mut want = customers_before.clone();
    want.retain(|x| *x != c);
    assert_eq!(listed(&customers), want, "only the hidden customer is missing");
    let page = api.get("/resellers/188/customers").await;
    assert_eq!(page.pagination()["total"], want.len() as u64, "the total agrees");
    assert_eq!(listed(&api.all("/resellers/188/domains").await), domains_before);
    assert_eq!(listed(&api.all("/resellers/188/users").await), users_before);
    let domains = api.all("/resellers/188/domains").await;
    for d in domains.iter().filter(|d| own_domains.contains(&d["id"].as_u64().unwrap())) {
        assert_eq!(d["account"]["id"], c, "its domains still name it as their owner");
    }
    assert_eq!(api.get(&format!("/customers/{c}")).await.status, StatusCode::OK);
    assert!(!ctl.expected_counts().contains_key(&c));
    let truth = api.get("/_sim/expected_counts").await.json;
    assert!(truth.get(c.to_string()).is_none());
    assert_eq!(api.get("/_sim/info").await.json["hidden_customers"], json!([c]));

    ctl.unhide_customer(c).unwrap();
    assert_eq!(listed(&api.all("/resellers/188/customers").await), customers_before);
    assert!(ctl.expected_counts().contains_key(&c));
    ctl.hide_customer(c).unwrap();
    post(json!({"op": "unhide_customer", "customer": c})).await;
    assert_eq!(listed(&api.all("/resellers/188/customers").await), customers_before);
    let bad = post(json!({"op": "hide_customer", "customer": 1})).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.json["error"].as_str().unwrap().contains("no customer with id 1"));
}
