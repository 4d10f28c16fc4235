//! Mutations between runs change the ground truth and the served data the same way, whether
//! made in process (`SimControl`) or over `POST /_sim/mutations`.

mod sim_support;

use mpsync::sim::Services;
use reqwest::{Method, StatusCode};
use serde_json::json;
use sim_support::{Api, start};

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
    assert_eq!(s, json!({"service_types": {"hosting": null, "addons": ["ForceEncrypt"]}}));

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
    let real = users.iter().filter(|u| u["user_type"]["id"] == 1).count() as u64;
    let truth: u64 = {
        let ds = ctl.read();
        ds.main_customers()
            .iter()
            .flat_map(|c| ds.domains_of_customer(*c))
            .filter(|d| ds.domains()[d].parent.is_none())
            .flat_map(|d| ds.groups_of_domain(d))
            .map(|g| ds.groups()[&g].user_count())
            .sum()
    };
    assert_eq!(real, truth);
    let filtered = api.get("/resellers/188/users?first_name=Abigail&per_page=100").await;
    assert!(filtered.json.as_array().unwrap().iter().all(|u| u["first_name"] == "Abigail"));
    assert!(filtered.pagination()["total"].as_u64().unwrap() >= 1);
}
