//! Unit tests of the simulated Synthesize rules.

use serde_json::{Value, json};

use super::*;

fn state() -> GradientState {
    GradientState::new(7, ["Acme Ltd".to_owned(), "Globex".to_owned()])
}

fn service(st: &mut GradientState, name: &str) -> String {
    let body = json!({"name": name, "description": "", "category": "security",
                      "subcategory": "email security"});
    let vendor = st.create_service(&body).unwrap();
    let skus = vendor["skus"].as_array().unwrap();
    skus.iter().find(|s| s["name"] == name).unwrap()["id"].as_str().unwrap().to_owned()
}

#[test]
fn token_is_base64_of_vendor_colon_partner() {
    let st = state();
    use base64::Engine;
    let raw = base64::engine::general_purpose::STANDARD.decode(st.token()).unwrap();
    assert_eq!(String::from_utf8(raw).unwrap(), format!("{}:{}", st.vendor_key, st.partner_key));
    assert!(st.accepts(&st.token()));
    assert!(!st.accepts("Basic x"));
}

#[test]
fn accounts_are_array_only_all_or_nothing_and_auto_mapped_by_exact_name() {
    let mut st = state();
    let one = json!({"id": "1", "name": "Acme Ltd"});
    assert_eq!(st.create_accounts(&one).unwrap_err().status, 400);
    assert_eq!(st.create_accounts(&json!([])).unwrap(), json!([]));
    let made = st
        .create_accounts(&json!([{"id": "1", "name": "Acme Ltd"}, {"id": "2", "name": "acme ltd"}]))
        .unwrap();
    assert_eq!(made.as_array().unwrap().len(), 2);
    assert_eq!(st.accounts["1"].psa_company.as_deref(), Some("Acme Ltd"));
    assert_eq!(st.accounts["2"].psa_company, None, "auto-map is exact, case-sensitive");
    let dup = st.create_accounts(&json!([{"id": "3", "name": "x"}, {"id": "1", "name": "y"}]));
    assert_eq!(dup.unwrap_err(), Refusal { status: 409, message: DUPLICATE.into() });
    assert!(!st.accounts.contains_key("3"), "nothing from a refused request is created");
    let repeat = st.create_accounts(&json!([{"id": "4", "name": "x"}, {"id": "4", "name": "y"}]));
    assert_eq!(repeat.unwrap_err().status, 409);
}

#[test]
fn counts_need_a_mapped_account_and_service_and_an_active_or_pending_integration() {
    let mut st = state();
    let cf = service(&mut st, "CloudFilter");
    let ss = service(&mut st, "SecureStore");
    assert_eq!(
        st.create_service(&json!({"name": "CloudFilter", "description": "",
        "category": "security", "subcategory": "email security"}))
            .unwrap_err()
            .status,
        409
    );
    st.create_accounts(&json!([{"id": "1", "name": "Acme Ltd"}, {"id": "9", "name": "Nobody"}]))
        .unwrap();
    let body = json!({"accountId": "1", "unitCount": 5});
    assert_eq!(st.set_count(&cf, &body, "t", false).unwrap_err().status, 403, "inactive");
    st.set_status("pending").unwrap();
    assert_eq!(st.set_count(&cf, &body, "t", false).unwrap()["status"], 201);
    let zero = json!({"accountId": "1", "unitCount": 0});
    assert!(st.set_count(&cf, &zero, "t", false).is_ok(), "0 is accepted");
    assert_eq!(st.view()[0].vendor_units, 0.0);
    let unmapped_acc = st.set_count(&cf, &json!({"accountId": "9", "unitCount": 1}), "t", false);
    assert_eq!(unmapped_acc.unwrap_err().message, "No account map found with id: 9");
    let unmapped_svc = st.set_count(&ss, &body, "t", false).unwrap_err();
    assert_eq!(unmapped_svc.message, format!("No service map found with id: {ss}"));
    assert_eq!(st.set_count("12", &body, "t", false).unwrap_err().status, 400);
    for bad in [
        json!({"accountId": "1"}),
        json!({"accountId": "1", "unitCount": "3"}),
        json!({"accountId": "1", "unitCount": null}),
        json!({"unitCount": 3}),
    ] {
        assert_eq!(st.set_count(&cf, &bad, "t", false).unwrap_err().status, 400, "{bad}");
    }
    let neg =
        st.set_count(&cf, &json!({"accountId": "1", "unitCount": -1}), "t", false).unwrap_err();
    assert_eq!(neg.message, "unitCount must not be less than 0");
}

#[test]
fn status_machine_and_disconnect() {
    let mut st = state();
    assert_eq!(st.status, "inactive");
    assert_eq!(st.set_status("Active").unwrap_err().status, 400);
    for s in STATUSES {
        st.set_status(s).unwrap();
        st.set_status(s).unwrap();
    }
    st.create_accounts(&json!([{"id": "1", "name": "Acme Ltd"}])).unwrap();
    st.disconnect_reconnect();
    assert!(st.accounts.is_empty());
    assert_eq!(st.status, "inactive");
}

#[test]
fn renames_keep_the_mapping_and_new_ids_rekey() {
    let mut st = state();
    st.create_accounts(&json!([{"id": "1", "name": "Acme Ltd"}, {"id": "2", "name": "B"}]))
        .unwrap();
    st.update_account("1", &json!({"name": "Acme Limited"})).unwrap();
    assert_eq!(st.accounts["1"].psa_company.as_deref(), Some("Acme Ltd"));
    assert_eq!(st.update_account("1", &json!({"id": "2"})).unwrap_err().status, 409);
    st.update_account("1", &json!({"id": "7"})).unwrap();
    assert_eq!(st.accounts["7"].psa_company.as_deref(), Some("Acme Ltd"));
    assert_eq!(st.update_account("1", &json!({})).unwrap_err().status, 404);
}

#[test]
fn the_first_accepted_count_turns_pending_active_and_a_refused_one_does_not() {
    let mut st = state();
    let cf = service(&mut st, "CloudFilter");
    st.create_accounts(&json!([{"id": "1", "name": "Acme Ltd"}, {"id": "9", "name": "Nobody"}]))
        .unwrap();
    st.set_status("pending").unwrap();
    let unmapped = json!({"accountId": "9", "unitCount": 2});
    assert_eq!(st.set_count(&cf, &unmapped, "t", false).unwrap_err().status, 404);
    assert_eq!(st.status, "pending", "a 404 is not usage received");
    st.set_count(&cf, &json!({"accountId": "1", "unitCount": 2}), "t", false).unwrap();
    assert_eq!(st.status, "active", "Gradient sets active itself once counts arrive");
    // A status spelled otherwise gates the same way.
    st.status = "Pending".into();
    st.set_count(&cf, &json!({"accountId": "1", "unitCount": 3}), "t", false).unwrap();
    assert_eq!(st.status, "active");
    st.status = "Disabled".into();
    let refused = st.set_count(&cf, &json!({"accountId": "1", "unitCount": 3}), "t", false);
    assert_eq!(refused.unwrap_err(), Refusal::new(403, "Integration is not active"));
}

#[test]
fn the_refuse_zero_counts_variant_refuses_only_zeros() {
    let mut st = state();
    let cf = service(&mut st, "CloudFilter");
    st.create_accounts(&json!([{"id": "1", "name": "Acme Ltd"}])).unwrap();
    st.set_status("active").unwrap();
    let zero = json!({"accountId": "1", "unitCount": 0});
    let e = st.set_count(&cf, &zero, "t", true).unwrap_err();
    assert_eq!(e, Refusal::new(400, "unitCount must be greater than 0"));
    assert!(st.view().is_empty(), "nothing stored");
    st.set_count(&cf, &json!({"accountId": "1", "unitCount": 4}), "t", true).unwrap();
    assert_eq!(st.view()[0].vendor_units, 4.0);
}

#[test]
fn clients_page_by_previous_id_and_filter_by_search() {
    let names = (0..250).map(|i| format!("Company {i:03}"));
    let st = GradientState::new(3, names.chain(["Zeta Acme".to_owned()]));
    let first = st.list_clients(None, None).unwrap();
    assert_eq!(first["meta"], json!({"total": 251, "hasMore": true}));
    let page = first["clients"].as_array().unwrap();
    assert_eq!(page.len(), 100);
    assert_eq!(page[0]["name"], "Company 000");
    let mut seen: Vec<String> = Vec::new();
    let mut prev: Option<String> = None;
    loop {
        let p = st.list_clients(None, prev.as_deref()).unwrap();
        let rows = p["clients"].as_array().unwrap().clone();
        seen.extend(rows.iter().map(|c| c["name"].as_str().unwrap().to_owned()));
        prev = rows.last().map(|c| c["id"].as_str().unwrap().to_owned());
        if !p["meta"]["hasMore"].as_bool().unwrap() {
            break;
        }
    }
    assert_eq!(seen.len(), 251, "every client once, in order");
    assert!(seen.windows(2).all(|w| w[0] < w[1]));
    let found = st.list_clients(Some("acme"), None).unwrap();
    assert_eq!(
        found,
        json!({"clients": [{"id": st.clients()[250].0, "name": "Zeta Acme"}],
                             "meta": {"total": 1, "hasMore": false}})
    );
    assert_eq!(st.list_clients(None, Some("x")).unwrap_err().status, 400);
}

#[test]
fn the_vendor_profile_updates_with_at_least_one_known_field() {
    let mut st = state();
    let e = st.update_vendor(&json!({})).unwrap_err();
    assert_eq!(e, Refusal::new(400, "Must provide at least one property value"));
    assert_eq!(st.update_vendor(&json!({"name": 3})).unwrap_err().status, 400);
    assert_eq!(st.update_vendor(&json!([])).unwrap_err().status, 400);
    let v = st
        .update_vendor(&json!({"description": "Mail security", "vendorSupportPageUrl": "https://x.example/help"}))
        .unwrap();
    assert_eq!(
        (&v["name"], &v["description"], &v["vendorSupportPageUrl"]),
        (&json!("Mailprotector"), &json!("Mail security"), &json!("https://x.example/help"))
    );
    assert_eq!(st.vendor()["description"], "Mail security", "kept");
}

#[test]
fn a_service_updates_partially_keeps_its_id_and_mapping_and_refuses_bad_values() {
    let mut st = state();
    let cf = service(&mut st, "CloudFilter");
    let ss = service(&mut st, "SafeSend");
    let out = st.update_service(&cf, &json!({"subcategory": "DNS filtering"})).unwrap();
    assert_eq!(out["status"], 200);
    assert_eq!(
        (&out["data"]["id"], &out["data"]["subcategory"]),
        (&json!(cf), &json!("DNS filtering"))
    );
    assert_eq!(out["data"]["category"], "security", "untouched fields stay");
    let unchanged = st.update_service(&cf, &Value::Null).unwrap();
    assert_eq!(unchanged["data"]["subcategory"], "DNS filtering", "no body changes nothing");
    st.update_service(&cf, &json!({"name": "CloudFilter Pro"})).unwrap();
    assert!(st.skus.iter().any(|s| s.id == cf && s.name == "CloudFilter Pro" && s.mapped));
    let dup = st.update_service(&cf, &json!({"name": "SafeSend"})).unwrap_err();
    assert_eq!(dup, Refusal::new(409, DUPLICATE));
    assert_eq!(st.update_service(&ss, &json!({"category": "Security"})).unwrap_err().status, 400);
    let missing = "0123456789abcdef01234567";
    assert_eq!(st.update_service(missing, &json!({})).unwrap_err().status, 404);
    let bad = st.update_service("12", &json!({})).unwrap_err();
    assert_eq!(bad, Refusal::new(400, "You have provided an invalid Id type"));
}
