//! A whole HaloPSA read against the scripted server with the reference's sample payloads:
//! which lines count, the reason kept for each that does not, the line identities a writer
//! needs, and the single-invoice reads made only where the list lacks whole lines.

use chrono::{TimeZone, Utc};
use serde_json::{Value, json};

use super::stub_tests::*;
use super::*;

fn line(id: i64, item: i64, qty: f64, price: f64, extra: Value) -> Value {
    let mut l = json!({"id": id, "_itemid": item, "item_code": format!("IT-{item}"),
        "qty_order": qty, "unit_price": price, "isinactive": false,
        "recurring_invoice_quantity_type": 0, "startdate": null, "enddate": null,
        "quantity_users": [], "_warning": "ignored"});
    if let (Some(o), Some(e)) = (l.as_object_mut(), extra.as_object()) {
        o.extend(e.clone());
    }
    l
}

fn invoice(id: i64, client: i64, contract: i64, extra: Value, lines: Option<Vec<Value>>) -> Value {
    let mut h = json!({"id": id, "client_id": client, "contract_id": contract,
        "contract_ref": if contract == 31 { "ACME-MSP-2025" } else { "" },
        "disabled": false, "startdate": "2025-01-01T00:00:00", "enddate": null,
        "total": 0.0, "customfields": []});
    if let Some(o) = h.as_object_mut() {
        if let Some(e) = extra.as_object() {
            o.extend(e.clone());
        }
        if let Some(l) = lines {
            o.insert("lines".into(), Value::Array(l));
        }
    }
    h
}

async fn server() -> Stub {
    stub(|r, _| {
        let q = &r.query;
        match r.path.as_str() {
            "/auth/token" => default_token(),
            "/api/Client" if q.contains("page_no=1") => {
                assert!(q.contains("includeinactive=true"), "{q}");
                ok(json!({"record_count": 3, "clients": [
                    {"id": 12, "name": "Acme Dental", "inactive": false, "toplevel_id": 1},
                    {"id": 15, "name": "Birch Legal", "inactive": 0},
                    {"id": 20, "name": "Gone Ltd", "inactive": "true"}]}))
            }
            "/api/ClientContract" if q.contains("page_no=1") => ok(json!({"record_count": 2,
                "contracts": [
                {"id": 31, "client_id": 12, "ref": "ACME-MSP-2025", "active": true,
                 "expired": false, "start_date": "2025-01-01T00:00:00",
                 "end_date": "2026-12-31T00:00:00", "status": "0"},
                {"id": 40, "client_id": 15, "ref": "BIRCH", "active": false, "expired": true,
                 "status": 1}]})),
            "/api/RecurringInvoice" if q.contains("page_no=1") => {
                assert!(q.contains("includelines=true"), "{q}");
                ok(json!({"record_count": 6, "invoices": [
                    invoice(-94, 12, 31, json!({}), Some(vec![
                        line(24967, 17, 25.0, 22.0, json!({})),
                        line(28857, 21, 20.0, 30.0, json!({})),
                        line(3, 17, 2.0, 22.0, json!({"isinactive": true})),
                        line(4, 17, 1.0, 22.0, json!({"startdate": "2099-01-01T00:00:00"})),
                    ])),
                    invoice(5, 15, 40, json!({}), Some(vec![line(50, 17, 6.0, 22.0, json!({}))])),
                    // Reduced lines (no quantity type): read alone.
                    invoice(7, 12, 0, json!({}), Some(vec![json!({"id": 70, "_itemid": 17,
                        "qty_order": 4.0})])),
                    invoice(8, 20, 0, json!({}), Some(vec![line(80, 17, 3.0, 22.0, json!({}))])),
                    // No lines at all: read alone.
                    invoice(9, 12, 0, json!({"disabled": true}), None),
                    invoice(10, 12, 0, json!({"enddate": "2026-10-31T00:00:00"}),
                        Some(vec![line(100, 21, 9.0, 30.0, json!({}))])),
                ]}))
            }
            "/api/RecurringInvoice/7" => ok(invoice(
                7,
                12,
                0,
                json!({}),
                Some(vec![line(
                    70,
                    17,
                    4.0,
                    22.0,
                    json!({"recurring_invoice_quantity_type": 1,
                       "startdate": "1900-01-01T00:00:00", "enddate": "1899-12-30T00:00:00"}),
                )]),
            )),
            "/api/RecurringInvoice/9" => ok(invoice(
                9,
                12,
                0,
                json!({"disabled": true}),
                Some(vec![line(90, 17, 8.0, 22.0, json!({}))]),
            )),
            _ => ok(json!([])),
        }
    })
    .await
}

#[tokio::test]
async fn a_read_counts_active_lines_keeps_every_other_with_its_reason_and_names_each_line() {
    let s = server().await;
    let source = HalopsaSource::with_retry(&config(&s.base), fast()).unwrap();
    let now = Utc.with_ymd_and_hms(2026, 11, 15, 12, 0, 0).unwrap();
    let report = source.fetch(now, &CancellationToken::new()).await;
    let billed = report.outcome.unwrap();
    let accounts: Vec<(&str, &str)> =
        billed.accounts.iter().map(|a| (a.id.as_str(), a.name.as_str())).collect();
    assert_eq!(
        accounts,
        [("12", "Acme Dental"), ("15", "Birch Legal")],
        "inactive clients are no accounts"
    );

    let by_line = |id: i32| {
        billed
            .lines
            .iter()
            .find(|l| matches!(l.line, Some(LineRef::Halopsa { line, .. }) if line == id))
            .unwrap_or_else(|| panic!("line {id} in {:#?}", billed.lines))
    };
    let l = by_line(24967);
    assert_eq!((l.account_id.as_str(), l.product_id.as_str()), ("12", "17"));
    assert_eq!(
        (l.quantity, l.unit_price, l.counted, l.note.as_deref()),
        (25.0, Some(22.0), true, None)
    );
    assert_eq!(
        l.line,
        Some(LineRef::Halopsa { invoice: -94, line: 24967, item: 17, computed: false })
    );
    assert_eq!(
        l.source_ref,
        "recurring invoice -94 (contract ACME-MSP-2025) line 24967 item 17 (IT-17)"
    );
    assert!(by_line(28857).counted);

    let computed = by_line(70);
    assert!(computed.counted, "a line Halo computes still counts");
    assert_eq!(computed.line.as_ref().map(LineRef::writable), Some(false));
    assert!(computed.note.as_deref().unwrap().contains("Halo computes this line's quantity"));

    for (id, why) in [
        (3, "line 3 is inactive"),
        (4, "line 4 starts on 2099-01-01"),
        (50, "contract 40 (BIRCH) is inactive; contract 40 (BIRCH) has expired"),
        (80, "client 20 is inactive"),
        (90, "recurring invoice 9 is disabled"),
        (100, "recurring invoice 10 ended on 2026-10-31"),
    ] {
        let l = by_line(id);
        assert!(!l.counted, "line {id}");
        assert_eq!(l.note.as_deref(), Some(why), "line {id}");
    }
    assert_eq!(billed.lines.len(), 9);

    let alone: Vec<String> = s
        .seen
        .lock()
        .unwrap()
        .iter()
        .filter(|r| r.path.starts_with("/api/RecurringInvoice/"))
        .map(|r| r.path.clone())
        .collect();
    assert_eq!(alone.len(), 2, "{alone:?}");
    assert!(alone.contains(&"/api/RecurringInvoice/7".to_owned()));
    assert!(alone.contains(&"/api/RecurringInvoice/9".to_owned()));
    let stats = &report.stats[0];
    assert_eq!(stats.total_requests(), 1 + 3 + 2, "a token, three lists, two single reads");
}

#[tokio::test]
async fn check_probes_each_route_with_one_row_and_names_a_missing_scope() {
    let s = stub(|r, _| match r.path.as_str() {
        "/auth/token" => default_token(),
        "/api/Item" => status(403, ""),
        _ => ok(json!({"record_count": 7, "clients": [], "contracts": [], "invoices": []})),
    })
    .await;
    let e = check_connection(&config(&s.base), false).await.unwrap_err().to_string();
    assert!(e.contains("GET /Item") && e.contains("needs scope read:items"), "{e}");
    let probe = &s.to("/api/Client")[0];
    assert!(probe.query.contains("page_size=1&page_no=1"), "{}", probe.query);

    let s = stub(|r, _| match r.path.as_str() {
        "/auth/token" if r.body.contains("edit%3Ainvoices") => {
            status(400, r#"{"error":"invalid_scope"}"#)
        }
        "/auth/token" => default_token(),
        _ => ok(
            json!({"record_count": 7, "clients": [], "contracts": [], "items": [], "invoices": []}),
        ),
    })
    .await;
    let ok = check_connection(&config(&s.base), false).await.unwrap();
    assert!(
        ok.describe().contains("GET /RecurringInvoice (read:invoices, 7 records)"),
        "{}",
        ok.describe()
    );
    let e = check_connection(&config(&s.base), true).await.unwrap_err().to_string();
    assert!(e.contains("not granted edit:invoices"), "{e}");
}
