//! Unit tests of the simulated Synthesize rules.

use serde_json::json;

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
    assert_eq!(st.set_count(&cf, &body, "t").unwrap_err().status, 403, "inactive");
    st.set_status("pending").unwrap();
    assert_eq!(st.set_count(&cf, &body, "t").unwrap()["status"], 201);
    let zero = json!({"accountId": "1", "unitCount": 0});
    assert!(st.set_count(&cf, &zero, "t").is_ok(), "0 is accepted");
    assert_eq!(st.view()[0].vendor_units, 0.0);
    let unmapped_acc = st.set_count(&cf, &json!({"accountId": "9", "unitCount": 1}), "t");
    assert_eq!(unmapped_acc.unwrap_err().message, "No account map found with id: 9");
    let unmapped_svc = st.set_count(&ss, &body, "t").unwrap_err();
    assert_eq!(unmapped_svc.message, format!("No service map found with id: {ss}"));
    assert_eq!(st.set_count("12", &body, "t").unwrap_err().status, 400);
    for bad in [
        json!({"accountId": "1"}),
        json!({"accountId": "1", "unitCount": "3"}),
        json!({"accountId": "1", "unitCount": null}),
        json!({"unitCount": 3}),
    ] {
        assert_eq!(st.set_count(&cf, &bad, "t").unwrap_err().status, 400, "{bad}");
    }
    let neg = st.set_count(&cf, &json!({"accountId": "1", "unitCount": -1}), "t").unwrap_err();
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
