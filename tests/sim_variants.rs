//! The §11/§12 "client must also accept" variants, each switched on by a fault: services as an
//! array or the SDK object, long or lowercase product names, missing or differently keyed
//! `X-Pagination`, `{"message":..}` or plain-text error bodies, 204 deletes. Also the default
//! write codes they vary from.

mod sim_support;

use mpsync::sim::{Fault, FaultKind, Variant};
use reqwest::{Method, StatusCode};
use serde_json::json;
use sim_support::{Api, start};

fn variant(v: Variant) -> Fault {
    Fault::new(FaultKind::Variant { variant: v })
}

#[tokio::test]
async fn services_shapes_and_names_vary_on_request() {
    let sim = start(1, 5).await;
    let ctl = sim.control().clone();
    let api = Api::new(&sim, Some(&ctl.reseller_key()));
    let cf = ctl
        .read()
        .groups()
        .values()
        .find(|g| g.services.hosting.as_deref() == Some("CloudFilter"))
        .unwrap()
        .id;

    let ids = [
        ctl.add_fault(variant(Variant::ServicesArray)),
        ctl.add_fault(variant(Variant::LongNames)),
    ];
    let s = api.get(&format!("/user_groups/{cf}/services")).await.json;
    assert_eq!(s[0]["name"], "CloudFilter Email Security");
    assert_eq!(s[0]["code"], "cloudfilter");
    assert!(s[0]["id"].is_u64());
    let s = api.get("/user_groups/109/services").await.json;
    assert_eq!(
        s,
        json!([{"id": 2, "name": "Premium Hosted Email", "code": "cloudmail"}, {"id": 4, "name": "Bracket", "code": "bracket"}])
    );
    ids.iter().for_each(|i| assert!(ctl.remove_fault(*i)));

    ctl.add_fault(variant(Variant::LowercaseNames));
    let s = api.get("/user_groups/109/services").await.json;
    assert_eq!(s, json!({"service_types": {"hosting": "cloudmail", "addons": ["bracket"]}}));
    ctl.clear_faults();

    ctl.add_fault(variant(Variant::ServicesSdk));
    let s = api.get("/user_groups/109/services").await.json;
    assert_eq!(s["service_type"], "CloudMail");
    assert_eq!(s["user_group"], json!({"id": 109, "name": "CloudMail with Bracket"}));
    assert_eq!(s["domain"], json!({"id": 102, "name": "mpdemo.net"}));
}

#[tokio::test]
async fn pagination_header_variants() {
    let sim = start(1, 30).await;
    let ctl = sim.control().clone();
    let api = Api::new(&sim, Some(&ctl.reseller_key()));
    let id = ctl.add_fault(variant(Variant::PaginationAltKeys).on("customers"));
    let p = api.get("/resellers/188/customers?per_page=10").await.pagination();
    assert_eq!(p, json!({"current_page": 1, "per_page": 10, "total_count": 30, "total_pages": 3}));
    ctl.add_fault(variant(Variant::PaginationStrings).on("customers"));
    let p = api.get("/resellers/188/customers?per_page=10&page=2").await.pagination();
    assert_eq!(
        p,
        json!({"current_page": "2", "per_page": "10", "total_count": "30", "total_pages": "3"})
    );
    ctl.remove_fault(id);
    let p = api.get("/resellers/188/customers?per_page=10").await.pagination();
    assert_eq!(p["page"], "1");
    ctl.clear_faults();
    ctl.add_fault(variant(Variant::NoPagination));
    let a = api.get("/resellers/188/customers").await;
    assert!(a.headers.get("x-pagination").is_none());
    assert_eq!(a.ids().len(), 25, "body unchanged");
}

#[tokio::test]
async fn error_body_variants() {
    let sim = start(1, 5).await;
    let ctl = sim.control().clone();
    let api = Api::new(&sim, Some(&ctl.reseller_key()));
    let plain = api.get("/customers/999999").await;
    assert_eq!(plain.json, json!({"error": "customer 999999 not found"}));
    assert_eq!(plain.headers["content-type"], "application/json");
    ctl.add_fault(variant(Variant::MessageError));
    let a = api.get("/customers/999999").await;
    assert_eq!(
        (a.status, a.json.clone()),
        (StatusCode::NOT_FOUND, json!({"message": "customer 999999 not found"}))
    );
    ctl.clear_faults();
    ctl.add_fault(variant(Variant::TextError));
    let a = api.with_key(Some("wrong")).get("/customers/329").await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert!(a.headers["content-type"].to_str().unwrap().starts_with("text/plain"));
    assert_eq!(a.text, "invalid or revoked API key");
}

#[tokio::test]
async fn writes_use_the_convention_codes_and_deletes_can_be_204() {
    let sim = start(1, 6).await;
    let ctl = sim.control().clone();
    let api = Api::new(&sim, Some(&ctl.reseller_key()));
    let created = api
        .send(
            Method::POST,
            "/resellers/188/customers",
            Some(json!({"name": "A New Customer", "email": "contactemail@domain.com"})),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED);
    assert_eq!(created.json["name"], "A New Customer");
    assert!(created.json.get("email").is_none(), "email accepted, not returned");
    let cid = created.json["id"].as_u64().unwrap();
    let put =
        api.send(Method::PUT, &format!("/customers/{cid}"), Some(json!({"name": "Renamed"}))).await;
    assert_eq!((put.status, put.json["name"].clone()), (StatusCode::OK, json!("Renamed")));
    let bad = api.send(Method::PUT, &format!("/customers/{cid}"), Some(json!({"name": ""}))).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    let del = api.send(Method::DELETE, &format!("/customers/{cid}"), None).await;
    assert_eq!((del.status, del.text.as_str()), (StatusCode::OK, ""));
    assert_eq!(api.get(&format!("/customers/{cid}")).await.status, StatusCode::NOT_FOUND);

    ctl.add_fault(variant(Variant::NoContentDelete));
    let c2 = ctl.add_customer(188, "Doomed").unwrap();
    let del = api.send(Method::DELETE, &format!("/customers/{c2}"), None).await;
    assert_eq!((del.status, del.text.as_str()), (StatusCode::NO_CONTENT, ""));

    let safe_before = ctl.expected_counts()[&329].get("SafeSend").copied().unwrap_or(0);
    let put = api
        .send(
            Method::PUT,
            "/user_groups/109/services",
            Some(json!({"service_types": {"hosting": "CloudFilter", "addons": ["SafeSend"]}})),
        )
        .await;
    assert_eq!(
        put.json,
        json!({"service_types": {"hosting": "CloudFilter", "addons": ["SafeSend"]}})
    );
    assert_eq!(ctl.expected_counts()[&329]["SafeSend"], safe_before + 56);
    assert!(!ctl.expected_counts()[&329].contains_key("CloudMail"));
}
