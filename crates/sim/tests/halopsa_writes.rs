//! The simulated HaloPSA's strict write rules over HTTP (reference §3 "Writes" and
//! "Recurring-invoice lines"): re-POSTing an invoice replaces its line set, `updatelines`
//! needs the owning `ihid`, type errors answer the model-binding map and rule failures the
//! exception shape (changing nothing), totals are recomputed, `process` resets the lines Halo
//! computes, every accepted write is journaled, and the side-effect faults.

use mpsync_sim::faults::{Fault, FaultKind};
use mpsync_sim::halopsa::Resource;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::halo::Halo;

/// An active invoice with at least two manual lines: (invoice id, its lines).
fn two_line_invoice(h: &Halo) -> (i64, Vec<Value>) {
    let d = h.halo.read();
    d.rows[&Resource::RecurringInvoice]
        .iter()
        .filter(|i| i["disabled"] == false && i["enddate"].is_null())
        .map(|i| (i["id"].as_i64().unwrap(), i["lines"].as_array().unwrap().clone()))
        .find(|(_, ls)| {
            ls.len() >= 3 && ls.iter().all(|l| l["recurring_invoice_quantity_type"] == 0)
        })
        .expect("an invoice with three manual lines")
}

fn qty(v: &Value) -> f64 {
    v["qty_order"].as_f64().unwrap()
}

#[tokio::test]
async fn reposting_an_invoice_replaces_its_lines_and_recomputes_the_amounts() {
    let h = Halo::start(3, 40).await;
    let t = h.token(None).await;
    let (id, lines) = two_line_invoice(&h);
    let got = h.get(&format!("/RecurringInvoice/{id}"), &t).await.json;

    // Every line back, one changed (F35): 200 with the header; only that line changed.
    let mut sent = got["lines"].as_array().unwrap().clone();
    let new_qty = qty(&sent[0]) + 2.0;
    sent[0]["qty_order"] = json!(new_qty);
    let r = h.post("/RecurringInvoice", &t, &json!([{"id": id, "lines": sent}])).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["id"], id, "one element: the saved object itself");
    let price = sent[0]["unit_price"].as_f64().unwrap();
    assert_eq!(r.json["lines"][0]["net_amount"].as_f64().unwrap(), new_qty * price);
    let total: f64 = r.json["lines"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["isinactive"] == false)
        .map(|l| l["net_amount"].as_f64().unwrap())
        .sum();
    assert!((r.json["total"].as_f64().unwrap() - total).abs() < 1e-9);
    let writes = h.halo.writes();
    assert_eq!(writes.len(), 1);
    assert_eq!(writes[0].route, "POST /RecurringInvoice");
    assert_eq!(writes[0].changes.len(), 1, "{:?}", writes[0].changes);
    assert_eq!(writes[0].changes[0].after, Some(new_qty));

    // A line left out is removed (replace semantics).
    let kept: Vec<Value> = sent[..sent.len() - 1].to_vec();
    let r = h.post("/RecurringInvoice", &t, &json!([{"id": id, "lines": kept}])).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let after = h.halo.invoice(id).unwrap();
    assert_eq!(after["lines"].as_array().unwrap().len(), lines.len() - 1);
    let dropped = lines.last().unwrap()["id"].as_i64().unwrap();
    assert!(h.halo.line(dropped).is_none());
    assert_eq!(h.halo.writes()[1].changes[0].after, None);

    // A line of another invoice, or an unknown one.
    let other = h.halo.read().rows[&Resource::RecurringInvoice]
        .iter()
        .find(|i| i["id"] != id && !i["lines"].as_array().unwrap().is_empty())
        .unwrap()["lines"][0]
        .clone();
    let r = h.post("/RecurringInvoice", &t, &json!([{"id": id, "lines": [other]}])).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json["ClassName"], "System.Exception");
    let r = h.post("/RecurringInvoice", &t, &json!([{"id": 55555, "disabled": false}])).await;
    assert_eq!((r.status, r.json), (StatusCode::BAD_REQUEST, json!("Record not found")));
    let r = h.post_raw("/RecurringInvoice", &t, r#"{"id": 1}"#).await;
    assert_eq!(r.json, json!({"": ["A non-empty request body is required."]}));
    assert_eq!(h.halo.writes().len(), 2, "refusals are not journaled");
}

#[tokio::test]
async fn updatelines_needs_the_owning_ihid_and_changes_one_line() {
    let h = Halo::start(3, 40).await;
    let t = h.token(None).await;
    let (id, lines) = two_line_invoice(&h);
    let line = lines[1]["id"].as_i64().unwrap();
    let before = h.halo.invoice(id).unwrap();

    let r = h
        .post(
            "/RecurringInvoice/updatelines",
            &t,
            &json!([{"id": line, "ihid": id + 1, "qty_order": 9}]),
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json["Message"],
        format!("Invoice line {line} does not belong to recurring invoice {}", id + 1)
    );
    assert_eq!(r.json["HResult"], -2146233088);
    let r =
        h.post("/RecurringInvoice/updatelines", &t, &json!([{"id": line, "qty_order": 9}])).await;
    assert_eq!(
        (r.status, r.json["ClassName"].clone()),
        (StatusCode::BAD_REQUEST, json!("System.Exception"))
    );
    assert_eq!(h.halo.invoice(id).unwrap(), before, "refusals change nothing");

    let r = h
        .post(
            "/RecurringInvoice/updatelines",
            &t,
            &json!([{"id": line, "ihid": id, "qty_order": 9.5}]),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json[0]["id"], line, "an array of the updated lines");
    assert_eq!(qty(&r.json[0]), 9.5);
    let after = h.halo.invoice(id).unwrap();
    for (b, a) in before["lines"].as_array().unwrap().iter().zip(after["lines"].as_array().unwrap())
    {
        if b["id"] != line {
            assert_eq!(b, a, "other lines untouched");
        }
    }
    assert_eq!(h.sim.control().requests().get("POST /RecurringInvoice/updatelines"), 3);
    assert_eq!(h.halo.writes().len(), 1);
}

#[tokio::test]
async fn type_errors_use_the_model_binding_shape_and_rule_failures_the_exception_shape() {
    let h = Halo::start(3, 40).await;
    let t = h.token(None).await;
    let (id, lines) = two_line_invoice(&h);
    let ids: Vec<i64> = lines.iter().map(|l| l["id"].as_i64().unwrap()).collect();
    let before = h.halo.invoice(id).unwrap();
    let body = format!(
        r#"[{{"id":{id},"lines":[{{"id":{}}},{{"id":{}}},{{"id":{},"qty_order":"ten"}}]}}]"#,
        ids[0], ids[1], ids[2]
    );
    let r = h.post_raw("/RecurringInvoice", &t, &body).await;
    assert_eq!(r.status, 400);
    let position = body.find("\"ten\"").unwrap() + 5;
    assert_eq!(
        r.json,
        json!({"[0].lines[2].qty_order": [format!(
            "Could not convert string to double: ten. Path '[0].lines[2].qty_order', line 1, position {position}."
        )]})
    );
    let r = h
        .post(
            "/RecurringInvoice/updatelines",
            &t,
            &json!([{"id": ids[0], "ihid": id, "qty_order": -1}]),
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json["Message"], "Quantity cannot be negative");
    assert_eq!(h.halo.invoice(id).unwrap(), before);
    // Numbers as strings are fine, as in .NET.
    let r = h
        .post(
            "/RecurringInvoice/updatelines",
            &t,
            &json!([{"id": ids[0], "ihid": id.to_string(), "qty_order": "4"}]),
        )
        .await;
    assert_eq!((r.status, qty(&r.json[0])), (StatusCode::OK, 4.0));
}

#[tokio::test]
async fn process_and_the_daily_tick_reset_the_lines_halo_computes() {
    let h = Halo::start(3, 40).await;
    let t = h.token(None).await;
    let plant = h.halo.read().plants_of("auto_calculated_line")[0].clone();
    let (line, ihid) = (plant.line_id.unwrap(), plant.invoice_id.unwrap());
    let computed = h.halo.read().computed[&line];
    let r = h
        .post(
            "/RecurringInvoice/updatelines",
            &t,
            &json!([{"id": line, "ihid": ihid, "qty_order": computed + 7.0}]),
        )
        .await;
    assert_eq!(r.status, 200, "a written quantity is accepted");
    assert_eq!(qty(&h.halo.line(line).unwrap().1), computed + 7.0);
    let r = h.post("/RecurringInvoice/process", &t, &json!([ihid])).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(qty(&h.halo.line(line).unwrap().1), computed, "reset by process");
    let r = h.post("/RecurringInvoice/process", &t, &json!([4242])).await;
    assert_eq!((r.status, r.json), (StatusCode::BAD_REQUEST, json!("Record not found")));

    h.halo.set_line_qty(line, 1.0).unwrap();
    h.halo.set_computed(line, computed + 1.0);
    assert_eq!(h.halo.tick(), vec![line]);
    let (_, l) = h.halo.line(line).unwrap();
    assert_eq!(qty(&l), computed + 1.0);
}

#[tokio::test]
async fn side_effect_faults_change_or_drop_another_line_of_the_invoice() {
    let h = Halo::start(3, 40).await;
    let t = h.token(None).await;
    let (id, lines) = two_line_invoice(&h);
    let target = lines[1]["id"].as_i64().unwrap();
    let other = lines[0]["id"].as_i64().unwrap();
    let before_other = qty(&lines[0]);
    h.sim.control().add_fault(Fault::new(FaultKind::ChangeOtherLine).on("updatelines").times(1));
    let r = h
        .post(
            "/RecurringInvoice/updatelines",
            &t,
            &json!([{"id": target, "ihid": id, "qty_order": 3}]),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(qty(&h.halo.line(other).unwrap().1), before_other + 1.0, "another line moved");
    let w = h.halo.writes();
    assert_eq!(w[0].side_effect.as_ref().map(|s| s.line), Some(other));

    h.sim.control().add_fault(Fault::new(FaultKind::DropOtherLine).on("POST /RecurringInvoice"));
    let inv = h.get(&format!("/RecurringInvoice/{id}"), &t).await.json;
    let n = inv["lines"].as_array().unwrap().len();
    let r = h.post("/RecurringInvoice", &t, &json!([{"id": id, "lines": inv["lines"]}])).await;
    assert_eq!(r.status, 200);
    assert_eq!(h.halo.invoice(id).unwrap()["lines"].as_array().unwrap().len(), n - 1);

    // The existing faults apply to the Halo routes too.
    h.sim
        .control()
        .add_fault(Fault::new(FaultKind::Status { status: 503 }).on("GET /Client").times(1));
    let r = h.get("/Client", &t).await;
    assert_eq!(r.status, 503);
    assert_eq!(r.json["ClassName"], "System.Exception");
    assert_eq!(h.get("/Client", &t).await.status, 200);
}

#[tokio::test]
async fn the_existing_fault_kinds_apply_to_the_halo_routes() {
    let h = Halo::start(3, 40).await;
    let t = h.token(None).await;
    let ctl = h.sim.control().clone();
    ctl.add_fault(Fault::parse("kind=malformed,endpoint=GET /Item,times=1").unwrap());
    let r = h.get("/Item", &t).await;
    assert_eq!(r.status, 200);
    assert!(serde_json::from_str::<Value>(&r.text).is_err(), "not JSON: {}", r.text);
    ctl.add_fault(
        Fault::parse("kind=wrong_types,endpoint=GET /RecurringInvoice/{id},times=1").unwrap(),
    );
    let (id, _) = two_line_invoice(&h);
    let r = h.get(&format!("/RecurringInvoice/{id}"), &t).await;
    assert!(r.json["id"].is_string() && r.json["lines"][0]["qty_order"].is_string(), "{}", r.text);

    // A write whose answer never comes: made and journaled, then the request hangs until the
    // simulator stops.
    ctl.add_fault(Fault::parse("kind=hang_after,endpoint=updatelines").unwrap());
    let (_, lines) = two_line_invoice(&h);
    let line = lines[0]["id"].as_i64().unwrap();
    let body = json!([{"id": line, "ihid": id, "qty_order": 1}]);
    let url = format!("{}/api/RecurringInvoice/updatelines", h.base);
    let pending = tokio::spawn(h.http.post(url).bearer_auth(&t).json(&body).send());
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while h.halo.writes().is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "the write was not made");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(qty(&h.halo.line(line).unwrap().1), 1.0);
    ctl.clear_faults();

    // Revoked after one request: the next call and the token endpoint answer 401.
    ctl.add_fault(Fault::parse("kind=revoke,endpoint=GET /Client,after=1").unwrap());
    assert_eq!(h.get("/Client", &t).await.status, 200);
    assert_eq!(h.get("/Client", &t).await.status, 401);
    assert_eq!(h.get("/Item", &t).await.status, 401);
    h.halo.restore();
    let t = h.token(None).await;
    assert_eq!(h.get("/Item", &t).await.status, 200);

    // The whole PSA down, the token endpoint included.
    for f in mpsync_sim::halopsa::outage(503) {
        ctl.add_fault(f);
    }
    let r = h
        .token_request(
            &[("grant_type", "client_credentials")],
            crate::support::halo::TenantIn::Query,
        )
        .await;
    assert_eq!(r.status, 503);
    ctl.clear_faults();
    let Halo { sim, .. } = h;
    sim.shutdown().await;
    let released = pending.await.unwrap().expect("an answer at shutdown");
    assert_eq!(released.status(), 503);
}
