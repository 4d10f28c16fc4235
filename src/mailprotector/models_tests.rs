//! Every tolerated alternative of the models, and the malformed forms that must fail.

use serde_json::json;

use super::*;

#[test]
fn only_id_is_required_and_unknown_fields_are_ignored() {
    let c: Customer =
        serde_json::from_value(json!({"id": 329, "status": "Active", "email": "x@y", "name": 7}))
            .unwrap();
    assert_eq!(c, Customer { id: 329, name: Some("7".into()) });
    let c: Customer = serde_json::from_value(json!({"id": 1})).unwrap();
    assert_eq!(c.name, None);
    assert!(serde_json::from_value::<Customer>(json!({"name": "no id"})).is_err());
    assert!(serde_json::from_value::<Customer>(json!({"id": "329"})).is_err(), "ids are integers");
    let r: Reseller =
        serde_json::from_value(json!({"id": 188, "name": "Direct", "provider": {"id": 65}}))
            .unwrap();
    assert_eq!(r.name.as_deref(), Some("Direct"));
}

#[test]
fn domains_know_their_customer_and_alias_state() {
    let d: Domain = serde_json::from_value(json!({
        "id": 102, "name": "mpdemo.net", "account": {"id": 329, "name": "Mailprotector group"},
        "domain_status": {"id": 2, "name": "Active"}, "parent": null
    }))
    .unwrap();
    assert_eq!(d.customer_id(), Some(329));
    assert!(!d.is_alias());
    let alias: Domain = serde_json::from_value(
        json!({"id": 103, "customer": {"id": 329}, "parent": {"id": 102, "name": "mpdemo.net"}}),
    )
    .unwrap();
    assert_eq!(alias.customer_id(), Some(329));
    assert!(alias.is_alias());
    let bare: Domain = serde_json::from_value(json!({"id": 104, "customer_id": 7})).unwrap();
    assert_eq!(bare.customer_id(), Some(7));
    assert!(!bare.is_alias());
    let orphan: Domain = serde_json::from_value(json!({"id": 105})).unwrap();
    assert_eq!(orphan.customer_id(), None);
}

#[test]
fn user_count_must_be_a_non_negative_integer() {
    let ok: UserGroup = serde_json::from_value(json!({"id": 109, "user_count": 56})).unwrap();
    assert_eq!(ok.user_count(), Ok(56));
    let zero: UserGroup = serde_json::from_value(json!({"id": 1, "user_count": 0})).unwrap();
    assert_eq!(zero.user_count(), Ok(0));
    for bad in [
        json!({"id": 1}),
        json!({"id": 1, "user_count": null}),
        json!({"id": 1, "user_count": "56"}),
        json!({"id": 1, "user_count": 5.5}),
        json!({"id": 1, "user_count": -3}),
    ] {
        let g: UserGroup = serde_json::from_value(bad.clone()).unwrap();
        let err = g.user_count().unwrap_err();
        assert!(err.0.contains("user group 1"), "{bad}: {err}");
    }
}

#[test]
fn user_types_are_read_in_every_form() {
    let u = |t: serde_json::Value| {
        serde_json::from_value::<User>(json!({"id": 9, "user_type": t})).unwrap().user_type_ref()
    };
    assert_eq!(u(json!({"id": 1, "name": "User"})), Ok(UserTypeRef::Id(1, Some("User".into()))));
    assert_eq!(u(json!({"id": 2, "name": "Alias"})), Ok(UserTypeRef::Id(2, Some("Alias".into()))));
    assert_eq!(
        u(json!({"id": 3, "name": "Mailing List"})),
        Ok(UserTypeRef::Id(3, Some("Mailing List".into())))
    );
    assert_eq!(u(json!({"id": 11})), Ok(UserTypeRef::Id(11, None)));
    assert_eq!(
        u(json!({"id": 7, "name": "Shared"})),
        Ok(UserTypeRef::Id(7, Some("Shared".into())))
    );
    assert_eq!(u(json!({"name": "User"})), Ok(UserTypeRef::Id(1, Some("User".into()))));
    assert_eq!(u(json!({"name": "Unlicensed User"})).unwrap().id(), Some(11));
    assert_eq!(u(json!(1)), Ok(UserTypeRef::Id(1, None)));
    assert_eq!(u(json!("alias")).unwrap().id(), Some(2));
    assert_eq!(u(json!("mailing_list")).unwrap().id(), Some(3));
    // A name that is no known type is kept (and reported by the walk), never guessed.
    assert_eq!(u(json!("robot")), Ok(UserTypeRef::Named("robot".into())));
    for bad in [json!(null), json!({}), json!(""), json!({"id": "1"}), json!(-1), json!([1])] {
        assert!(u(bad.clone()).is_err(), "{bad}");
    }
    let missing = serde_json::from_value::<User>(json!({"id": 9})).unwrap().user_type_ref();
    assert_eq!(missing, Err("user 9 has no user_type".into()));
}

#[test]
fn services_convention_object() {
    let v = json!({"service_types": {"hosting": "CloudFilter", "addons": ["SafeSend", "Bracket"]}});
    assert_eq!(parse_services(&v).unwrap(), vec!["Bracket", "CloudFilter", "SafeSend"]);
    let v = json!({"service_types": {"hosting": null, "addons": ["bracket", "securestore", "bracket"]}});
    assert_eq!(parse_services(&v).unwrap(), vec!["Bracket", "SecureStore"]);
    let v = json!({"service_types": {"addons": null}});
    assert_eq!(parse_services(&v).unwrap(), Vec::<String>::new());
    let v = json!({"service_types": {"hosting": "other", "extra": 1}});
    assert_eq!(parse_services(&v).unwrap(), vec!["other"], "unknown products are kept verbatim");
}

#[test]
fn services_array_and_sdk_forms() {
    let v = json!([{"id": 1, "name": "CloudFilter Email Security", "code": "cf"}, {"id": 2, "name": "SafeSend Outbound"},
        {"id": 3, "name": "Exchange+ Premium"}]);
    assert_eq!(parse_services(&v).unwrap(), vec!["CloudFilter", "Exchange+ Premium", "SafeSend"]);
    assert_eq!(parse_services(&json!([])).unwrap(), Vec::<String>::new());
    assert_eq!(parse_services(&json!(["XtraMail"])).unwrap(), vec!["XtraMail"]);
    let sdk = json!({"id": 5, "service_type": "CloudFilter Email Security", "user_group": {"id": 109}, "domain": {"id": 102}});
    assert_eq!(parse_services(&sdk).unwrap(), vec!["CloudFilter"]);
    assert_eq!(
        parse_services(&json!({"id": 5, "service_type": null})).unwrap(),
        Vec::<String>::new()
    );
    let sdk_array = json!([{"id": 5, "service_type": "Premium Hosted Email"}]);
    assert_eq!(parse_services(&sdk_array).unwrap(), vec!["CloudMail"]);
}

#[test]
fn malformed_services_fail() {
    for bad in [
        json!(42),
        json!("CloudFilter"),
        json!({"unrelated": true}),
        json!([17]),
        json!([{"id": 1}]),
        json!({"service_types": {"hosting": 3}}),
        json!({"service_types": {"addons": "Bracket"}}),
        json!({"service_types": []}),
    ] {
        assert!(parse_services(&bad).is_err(), "{bad}");
    }
}
