//! The §11/§12 "client must also accept" variants, each switched on by a fault: services as the
//! PUT-body object, the legacy array or the SDK object, long or lowercase product names,
//! `user_count` counting Users only or every type, missing or differently keyed
//! `X-Pagination`, `{"message":..}` or plain-text error bodies, 200 deletes. Also the defaults
//! they vary from (service records, `user_count` without aliases, 204 deletes).

use mpsync_sim::{Fault, FaultKind, Services, Variant};
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::support::{Api, start};

fn variant(v: Variant) -> Fault {
    Fault::new(FaultKind::Variant { variant: v })
}

#[tokio::test]
async fn services_shapes_and_names_vary_on_request() {
    let sim = start(1, 5).await;
    let ctl = sim.control().clone();
    let api = Api::new(&sim, Some(&ctl.reseller_key()));
    let created_109 = "2010-05-14T10:33:24.000Z";
    let record = |id: u64, service_type: &str| {
        json!({
            "id": id,
            "service_type": service_type,
            "user_group": {"id": 109, "name": "CloudMail with Bracket"},
            "domain": {"id": 102, "name": "mpdemo.net"},
            "created_at": created_109,
        })
    };
    // Default: one record per product, console names; long_names changes nothing there.
    let default = json!([record(10902, "Premium Hosted Email"), record(10904, "Bracket")]);
    assert_eq!(api.get("/user_groups/109/services").await.json, default);
    let id = ctl.add_fault(variant(Variant::LongNames));
    assert_eq!(api.get("/user_groups/109/services").await.json, default);
    ctl.remove_fault(id);
    let id = ctl.add_fault(variant(Variant::LowercaseNames));
    let lower = json!([record(10902, "premium hosted email"), record(10904, "bracket")]);
    assert_eq!(api.get("/user_groups/109/services").await.json, lower);
    ctl.remove_fault(id);

    // Every product's console name, unknown products verbatim, a record id per product.
    let cf = ctl.add_group(102, "Everything", Services::default(), 1).unwrap();
    let everything = [
        "SafeSend",
        "Bracket",
        "XtraMail",
        "SecureStore",
        "ContinuityBundle",
        "BracketBundle",
        "ForceEncrypt",
    ];
    ctl.set_services(cf, Services::new(Some("CloudFilter"), &everything)).unwrap();
    let s = api.get(&format!("/user_groups/{cf}/services")).await.json;
    let names: Vec<&str> =
        s.as_array().unwrap().iter().map(|r| r["service_type"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "CloudFilter Email Security",
            "SafeSend Outbound",
            "Bracket",
            "XtraMail",
            "SecureStore",
            "ContinuityBundle",
            "BracketBundle",
            "ForceEncrypt"
        ]
    );
    let mut ids: Vec<u64> =
        s.as_array().unwrap().iter().map(|r| r["id"].as_u64().unwrap()).collect();
    let force_encrypt = *ids.last().unwrap();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 8, "record ids are unique per product");
    assert!(ids.iter().all(|i| i / 100 == cf), "and per group");
    ctl.set_services(cf, Services::new(None, &["ForceEncrypt", "Shield"])).unwrap();
    let s = api.get(&format!("/user_groups/{cf}/services")).await.json;
    assert_eq!(s[0]["id"], force_encrypt, "a product keeps its record id");
    assert_eq!(s[1]["service_type"], "Shield");

    // The PUT-body object: canonical names, long or lowercase on request.
    let id = ctl.add_fault(variant(Variant::ServicesObject));
    let s = api.get("/user_groups/109/services").await.json;
    assert_eq!(s, json!({"service_types": {"hosting": "CloudMail", "addons": ["Bracket"]}}));
    let long = ctl.add_fault(variant(Variant::LongNames));
    let s = api.get("/user_groups/109/services").await.json;
    assert_eq!(
        s,
        json!({"service_types": {"hosting": "Premium Hosted Email", "addons": ["Bracket"]}})
    );
    ctl.remove_fault(long);
    let lower = ctl.add_fault(variant(Variant::LowercaseNames));
    let s = api.get("/user_groups/109/services").await.json;
    assert_eq!(s, json!({"service_types": {"hosting": "cloudmail", "addons": ["bracket"]}}));
    ctl.remove_fault(lower);
    ctl.remove_fault(id);

    // The legacy array: canonical names by default, long ones on request.
    let id = ctl.add_fault(variant(Variant::ServicesArray));
    let s = api.get("/user_groups/109/services").await.json;
    assert_eq!(
        s,
        json!([{"id": 2, "name": "CloudMail", "code": "cloudmail"}, {"id": 4, "name": "Bracket", "code": "bracket"}])
    );
    ctl.add_fault(variant(Variant::LongNames));
    let s = api.get("/user_groups/109/services").await.json;
    assert_eq!(
        s,
        json!([{"id": 2, "name": "Premium Hosted Email", "code": "cloudmail"}, {"id": 4, "name": "Bracket", "code": "bracket"}])
    );
    ctl.remove_fault(id);
    ctl.clear_faults();

    // The SDK's single object: the group's first record.
    ctl.add_fault(variant(Variant::ServicesSdk));
    let s = api.get("/user_groups/109/services").await.json;
    assert_eq!(s, record(10902, "Premium Hosted Email"));
    ctl.set_services(cf, Services::default()).unwrap();
    let s = api.get(&format!("/user_groups/{cf}/services")).await.json;
    assert_eq!(
        (s["service_type"].clone(), s["user_group"]["id"].clone()),
        (json!(null), json!(cf))
    );
}

#[tokio::test]
async fn user_count_variants_change_only_user_count() {
    let sim = start(2, 5).await;
    let ctl = sim.control().clone();
    let api = Api::new(&sim, Some(&ctl.reseller_key()));
    // One User with an alias, one Mailing List and one Unlicensed User.
    let gid = ctl.add_group(102, "Mixed", Services::new(Some("CloudFilter"), &[]), 1).unwrap();
    ctl.mutate(|ds| ds.add_aliases(gid, 1)).unwrap();
    ctl.add_mailing_lists(gid, 1).unwrap();
    ctl.add_unlicensed_users(gid, 1).unwrap();
    let user_count = |v: serde_json::Value| v["user_count"].clone();
    let listed = api.all(&format!("/user_groups/{gid}/users")).await;
    let in_domain = api.get("/domains/102/user_groups?per_page=100").await.json;
    let from_list = |list: &serde_json::Value| {
        list.as_array().unwrap().iter().find(|g| g["id"] == gid).unwrap()["user_count"].clone()
    };
    assert_eq!(user_count(api.get(&format!("/user_groups/{gid}")).await.json), 3);
    assert_eq!(from_list(&in_domain), 3);
    for (v, want) in [(Variant::UserCountUsers, 1), (Variant::UserCountAll, 4)] {
        ctl.clear_faults();
        ctl.add_fault(variant(v));
        assert_eq!(user_count(api.get(&format!("/user_groups/{gid}")).await.json), want, "{v:?}");
        let in_domain = api.get("/domains/102/user_groups?per_page=100").await.json;
        assert_eq!(from_list(&in_domain), want, "{v:?} in the listing");
        let g109 = in_domain.as_array().unwrap().iter().find(|g| g["id"] == 109).unwrap().clone();
        assert_eq!(
            g109["user_count"],
            if want == 1 { 56 } else { 60 },
            "{v:?}: 56 users, 4 aliases"
        );
        assert_eq!(api.all(&format!("/user_groups/{gid}/users")).await, listed, "{v:?}");
    }
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
async fn writes_use_the_convention_codes_and_deletes_can_be_200() {
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
    assert_eq!((del.status, del.text.as_str()), (StatusCode::NO_CONTENT, ""));
    assert!(del.headers.get("content-type").is_none(), "no body, no content type");
    assert_eq!(api.get(&format!("/customers/{cid}")).await.status, StatusCode::NOT_FOUND);

    ctl.add_fault(variant(Variant::OkDelete));
    let c2 = ctl.add_customer(188, "Doomed").unwrap();
    let del = api.send(Method::DELETE, &format!("/customers/{c2}"), None).await;
    assert_eq!((del.status, del.text.as_str()), (StatusCode::OK, ""));
    assert_eq!(api.get(&format!("/customers/{c2}")).await.status, StatusCode::NOT_FOUND);
    let gone = api.send(Method::DELETE, &format!("/customers/{c2}"), None).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND, "errors are not turned into 200");
    ctl.clear_faults();

    let safe_before = ctl.expected_counts()[&329].get("SafeSend").copied().unwrap_or(0);
    let put = api
        .send(
            Method::PUT,
            "/user_groups/109/services",
            Some(json!({"service_types": {"hosting": "CloudFilter", "addons": ["SafeSend"]}})),
        )
        .await;
    assert_eq!(put.status, StatusCode::OK);
    assert_eq!(put.json, api.get("/user_groups/109/services").await.json, "PUT answers as GET");
    let types: Vec<&str> =
        put.json.as_array().unwrap().iter().map(|r| r["service_type"].as_str().unwrap()).collect();
    assert_eq!(types, ["CloudFilter Email Security", "SafeSend Outbound"]);
    assert_eq!(ctl.expected_counts()[&329]["SafeSend"], safe_before + 56);
    assert!(!ctl.expected_counts()[&329].contains_key("CloudMail"));
    ctl.add_fault(variant(Variant::ServicesObject));
    let put = api
        .send(
            Method::PUT,
            "/user_groups/109/services",
            Some(json!({"service_types": {"hosting": null, "addons": ["Bracket"]}})),
        )
        .await;
    assert_eq!(put.json, json!({"service_types": {"hosting": null, "addons": ["Bracket"]}}));
}
