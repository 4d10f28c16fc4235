//! The simulated ConnectWise write path (reference §3.4): a PATCH of an addition's quantity is
//! kept (every later read shows it), counted and journaled; every bad body is a 400 naming the
//! field and changes nothing; unknown or foreign additions are 404s; faults, revoked keys and a
//! role without Edit rights apply to writes as to reads; and the PSA can change behind the
//! client's back (deleted additions, edited quantities), in process and over `/_sim/mutations`.

use std::time::Duration;

use mpsync_sim::connectwise::CwAddition;
use mpsync_sim::{Fault, FaultKind, SimHandle};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::cw::{Cw, set_quantity};
use crate::support::{Api, start};

const PATCH: &str = "PATCH /finance/agreements/{id}/additions/{id}";
const GET_ONE: &str = "GET /finance/agreements/{id}/additions/{id}";

/// An addition of the generated data, and its path.
fn first_addition(sim: &SimHandle) -> (CwAddition, String) {
    let a = sim.control().connectwise().read().additions[0].clone();
    let path = format!("/finance/agreements/{}/additions/{}", a.agreement_id, a.id);
    (a, path)
}

fn quantity_of(sim: &SimHandle, id: u64) -> Option<f64> {
    sim.control().connectwise().addition(id).map(|a| a.quantity)
}

#[tokio::test]
async fn a_patch_changes_what_every_later_read_serves() {
    let sim = start(3, 12).await;
    let cw = Cw::new(&sim);
    let (add, path) = first_addition(&sim);

    let before = cw.get(&path).await;
    assert_eq!(before.status, StatusCode::OK, "{}", before.text);
    assert_eq!(before.json["quantity"], json!(add.quantity));
    assert_eq!(before.json["agreementId"], json!(add.agreement_id));

    let new = add.quantity + 5.0;
    let a = cw.patch(&path, &set_quantity(new)).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    // The answer is the whole updated addition: everything as before but the quantity.
    let mut expected = before.json.clone();
    expected["quantity"] = json!(new);
    assert_eq!(a.json, expected);

    assert_eq!(cw.get(&path).await.json["quantity"], json!(new));
    let listing = cw.get(&format!("/finance/agreements/{}/additions", add.agreement_id)).await;
    let listed = listing.json.as_array().unwrap().iter().find(|x| x["id"] == add.id).unwrap();
    assert_eq!(listed["quantity"], json!(new), "the next billing poll reads the new quantity");

    // Decimals and a path without the leading slash; several ops, the last one wins.
    let two = json!([
        {"op": "replace", "path": "quantity", "value": 1},
        {"op": "replace", "path": "/quantity", "value": 12.5},
    ]);
    let a = cw.patch(&path, &two.to_string()).await;
    assert_eq!((a.status, a.json["quantity"].clone()), (StatusCode::OK, json!(12.5)));
    assert_eq!(quantity_of(&sim, add.id), Some(12.5));

    let counts = sim.control().requests();
    assert_eq!(counts.get(PATCH), 2);
    assert_eq!(counts.get(GET_ONE), 2);
    let writes = sim.control().connectwise().writes();
    assert_eq!(writes.len(), 2);
    assert_eq!(writes[0].method, "PATCH");
    assert!(writes[0].path.ends_with(&path), "{}", writes[0].path);
    assert_eq!(writes[0].body, set_quantity(new));
    assert_eq!(writes[0].header("content-type"), Some("application/json"));
    assert_eq!((writes[0].status, writes[1].status), (200, 200));
}

#[tokio::test]
async fn every_bad_body_is_a_400_naming_the_field_and_changes_nothing() {
    let sim = start(3, 8).await;
    let cw = Cw::new(&sim);
    let (add, path) = first_addition(&sim);
    let cases = [
        ("not json", "body"),
        (r#"{"op":"replace","path":"/quantity","value":5}"#, "body"),
        ("[]", "body"),
        (r#"["replace"]"#, "body"),
        (r#"[{"path":"/quantity","value":5}]"#, "op"),
        (r#"[{"op":"add","path":"/quantity","value":5}]"#, "op"),
        (r#"[{"op":"replace","value":5}]"#, "path"),
        (r#"[{"op":"replace","path":"/unitPrice","value":5}]"#, "path"),
        (r#"[{"op":"replace","path":"/quantity"}]"#, "quantity"),
        (r#"[{"op":"replace","path":"/quantity","value":-1}]"#, "quantity"),
        (r#"[{"op":"replace","path":"/quantity","value":"5"}]"#, "quantity"),
        // One bad op spoils the whole array: the good one is not applied either.
        (
            r#"[{"op":"replace","path":"/quantity","value":9},{"op":"move","path":"/quantity"}]"#,
            "op",
        ),
    ];
    for (body, field) in cases {
        let a = cw.patch(&path, body).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{body}: {}", a.text);
        assert_eq!(a.json["code"], "InvalidObject", "{body}: {}", a.text);
        assert_eq!(a.json["errors"][0]["field"], field, "{body}: {}", a.text);
        assert!(a.json["message"].as_str().unwrap().contains(field), "{body}: {}", a.text);
        assert_eq!(quantity_of(&sim, add.id), Some(add.quantity), "{body} changed nothing");
    }
    // The JSON Patch must be sent as JSON.
    let a = cw.send(Method::PATCH, &path, Some(("text/plain", set_quantity(3.0)))).await;
    assert_eq!(a.status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{}", a.text);
    assert!(a.json["message"].as_str().unwrap().contains("application/json"), "{}", a.text);
    assert_eq!(quantity_of(&sim, add.id), Some(add.quantity));
    assert_eq!(sim.control().requests().get(PATCH), cases.len() as u64 + 1);
    assert_eq!(sim.control().requests().status(400), cases.len() as u64);
}

#[tokio::test]
async fn unknown_and_foreign_additions_are_404s() {
    let sim = start(3, 8).await;
    let cw = Cw::new(&sim);
    let (add, _) = first_addition(&sim);
    let cw_sim = sim.control().connectwise();
    let other = {
        let data = cw_sim.read();
        data.additions.iter().find(|a| a.agreement_id != add.agreement_id).unwrap().clone()
    };
    for (path, says) in [
        (format!("/finance/agreements/999999/additions/{}", add.id), "Agreement ID 999999"),
        (
            format!("/finance/agreements/{}/additions/999999", add.agreement_id),
            "Addition ID 999999",
        ),
        (format!("/finance/agreements/{}/additions/abc", add.agreement_id), "Addition ID abc"),
        // An addition of another agreement does not belong to this one.
        (format!("/finance/agreements/{}/additions/{}", add.agreement_id, other.id), "not found"),
    ] {
        for a in [cw.get(&path).await, cw.patch(&path, &set_quantity(1.0)).await] {
            assert_eq!(a.status, StatusCode::NOT_FOUND, "{path}: {}", a.text);
            assert_eq!(a.json["code"], "NotFound", "{path}");
            assert!(a.json["message"].as_str().unwrap().contains(says), "{path}: {}", a.text);
        }
    }
    assert_eq!(quantity_of(&sim, other.id), Some(other.quantity));
    assert_eq!(sim.control().requests().get(PATCH), 4);
    assert!(sim.control().connectwise().writes().iter().all(|w| w.status == 404));
}

#[tokio::test]
async fn faults_revoked_keys_and_missing_rights_apply_to_writes() {
    let sim = start(5, 8).await;
    let c = sim.control();
    let cw = Cw::new(&sim);
    let (add, path) = first_addition(&sim);
    let q = add.quantity;

    // A 429 storm and a 5xx answer before the handler: nothing is applied.
    let storm = c.add_fault(Fault::new(FaultKind::Storm { retry_after: 3 }).on(PATCH));
    let a = cw.patch(&path, &set_quantity(q + 1.0)).await;
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(a.headers["retry-after"], "3");
    assert_eq!(cw.get(&path).await.status, StatusCode::OK, "the storm is on PATCH only");
    c.remove_fault(storm);
    let outage = c.add_fault(Fault::new(FaultKind::Status { status: 503 }).on(PATCH).times(1));
    assert_eq!(
        cw.patch(&path, &set_quantity(q + 1.0)).await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    c.remove_fault(outage);
    assert_eq!(quantity_of(&sim, add.id), Some(q));
    assert!(c.connectwise().writes().is_empty(), "no PATCH reached the handler");

    // A hang never answers: the client gives up, nothing is applied.
    let hang = c.add_fault(Fault::new(FaultKind::Hang).on(PATCH));
    let impatient = Cw::with_timeout(&sim, Duration::from_millis(300));
    let r = impatient
        .try_send(Method::PATCH, &path, Some(("application/json", set_quantity(q + 2.0))))
        .await;
    assert!(r.is_err_and(|e| e.is_timeout()));
    c.remove_fault(hang);
    assert_eq!(quantity_of(&sim, add.id), Some(q));

    // A hang after the handler: applied and journalled, but the answer never comes.
    let lost = c.add_fault(Fault::new(FaultKind::HangAfter).on(PATCH));
    let r = impatient
        .try_send(Method::PATCH, &path, Some(("application/json", set_quantity(q + 5.0))))
        .await;
    assert!(r.is_err_and(|e| e.is_timeout()));
    c.remove_fault(lost);
    assert_eq!(quantity_of(&sim, add.id), Some(q + 5.0));
    assert_eq!(c.connectwise().writes().len(), 1, "the journal has the write");
    assert_eq!(cw.patch(&path, &set_quantity(q)).await.status, StatusCode::OK);
    c.connectwise().clear_writes();

    // A dropped connection after the handler ran: applied, though the client saw no answer.
    let drop = c.add_fault(Fault::new(FaultKind::Disconnect).on(PATCH).times(1));
    let r =
        cw.try_send(Method::PATCH, &path, Some(("application/json", set_quantity(q + 3.0)))).await;
    assert!(r.is_err(), "the answer was cut off");
    c.remove_fault(drop);
    assert_eq!(quantity_of(&sim, add.id), Some(q + 3.0));

    // A role without Edit rights reads but cannot write.
    c.connectwise().set_edit_rights(false);
    assert_eq!(cw.get(&path).await.status, StatusCode::OK);
    let a = cw.patch(&path, &set_quantity(1.0)).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert!(
        a.json["message"].as_str().unwrap().contains("Edit on Finance > Agreements"),
        "{}",
        a.text
    );
    c.connectwise().set_edit_rights(true);
    assert_eq!(cw.patch(&path, &set_quantity(4.0)).await.status, StatusCode::OK);

    // The member without Finance rights cannot write either; revoked keys are refused.
    let mut limited = Cw::new(&sim);
    limited.keys = Some(c.connectwise().credentials().limited_keys);
    assert_eq!(limited.patch(&path, &set_quantity(1.0)).await.status, StatusCode::FORBIDDEN);
    c.add_fault(Fault::new(FaultKind::Revoke { key: None }).on(PATCH).times(1));
    let a = cw.patch(&path, &set_quantity(1.0)).await;
    assert_eq!(
        (a.status, a.json["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("Unauthorized"))
    );
    assert_eq!(cw.get(&path).await.status, StatusCode::UNAUTHORIZED, "stays revoked");
    assert_eq!(quantity_of(&sim, add.id), Some(4.0));
    assert_eq!(c.requests().get(PATCH), 10);
}

#[tokio::test]
async fn the_psa_changes_behind_the_clients_back_in_process_and_over_http() {
    let sim = start(6, 8).await;
    let ctl = sim.control();
    let cw = Cw::new(&sim);
    let api = Api::new(&sim, None);
    let (add, path) = first_addition(&sim);
    let second = ctl.connectwise().read().additions[1].clone();
    let second_path =
        format!("/finance/agreements/{}/additions/{}", second.agreement_id, second.id);

    // Edited in the PSA: the reads show it, and it is not a request.
    assert_eq!(ctl.connectwise().set_quantity(add.id, 77.0).unwrap(), add.quantity);
    assert_eq!(cw.get(&path).await.json["quantity"], json!(77.0));
    let m = |body: Value| api.send(Method::POST, "/_sim/mutations", Some(body));
    let a = m(json!({"op": "set_addition_quantity", "addition": second.id, "quantity": 3.5})).await;
    assert_eq!(a.json, json!({"previous": second.quantity}));
    assert_eq!(cw.get(&second_path).await.json["quantity"], json!(3.5));

    // Deleted in the PSA: 404 for reads and writes, gone from the listing.
    let deleted = ctl.connectwise().delete_addition(add.id).unwrap();
    assert_eq!(deleted.id, add.id);
    assert_eq!(cw.get(&path).await.status, StatusCode::NOT_FOUND);
    assert_eq!(cw.patch(&path, &set_quantity(1.0)).await.status, StatusCode::NOT_FOUND);
    let listing = cw.get(&format!("/finance/agreements/{}/additions", add.agreement_id)).await;
    assert!(listing.json.as_array().unwrap().iter().all(|x| x["id"] != add.id));
    let a = m(json!({"op": "delete_addition", "addition": second.id})).await;
    assert_eq!((a.status, a.json["id"].clone()), (StatusCode::OK, json!(second.id)));
    assert_eq!(cw.get(&second_path).await.status, StatusCode::NOT_FOUND);

    // Edit rights over HTTP.
    let third = ctl.connectwise().read().additions[0].clone();
    let third_path = format!("/finance/agreements/{}/additions/{}", third.agreement_id, third.id);
    m(json!({"op": "set_edit_rights", "allowed": false})).await;
    assert_eq!(cw.patch(&third_path, &set_quantity(1.0)).await.status, StatusCode::FORBIDDEN);
    m(json!({"op": "set_edit_rights", "allowed": true})).await;
    assert_eq!(cw.patch(&third_path, &set_quantity(1.0)).await.status, StatusCode::OK);

    // Unknown additions and impossible quantities are refused, naming them.
    let a = m(json!({"op": "delete_addition", "addition": 424242})).await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(a.json["error"].as_str().unwrap().contains("addition with id 424242"), "{}", a.text);
    let a = m(json!({"op": "set_addition_quantity", "addition": third.id, "quantity": -2})).await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", a.text);
    assert_eq!(ctl.connectwise().addition(third.id).unwrap().quantity, 1.0);
    assert_eq!(ctl.requests().get(PATCH), 3, "control changes are not API requests");
}
