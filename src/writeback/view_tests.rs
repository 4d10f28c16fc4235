//! The plan as people and scripts see it: the table's parts and last line, the CSV a
//! CSV-billing operator types in, the JSON with its state, and the filters.

use chrono::{TimeZone, Utc};

use super::*;
use crate::model::LineRef;
use crate::writeback::{LineChoice, WriteBackMode};

fn change(row: u32, account: &str, from: f64, to: f64, held: Option<&str>) -> Change {
    let line = LineRef::Connectwise { agreement: 12, addition: 340 + u64::from(row) };
    Change {
        row,
        account: account.into(),
        account_name: Some(format!("{account}, Inc.")),
        psa_product: "MP-CF".into(),
        products: vec!["CloudFilter".into()],
        status: if to > from { Status::UnderBilled } else { Status::OverBilled },
        line_key: line.key(),
        line,
        from,
        to,
        vendor_quantity: to as u64,
        unit_price: Some(3.5),
        monthly_amount: Some((to - from) * 3.5),
        reason: format!("Mailprotector counts {to} users of CloudFilter; the line bills {from}"),
        mode: WriteBackMode::Review,
        held: held.map(str::to_owned),
        vendor_run: Some(7),
        billing_run: Some(8),
    }
}

fn plan() -> Plan {
    let at = Utc.with_ymd_and_hms(2026, 11, 27, 10, 0, 0).unwrap();
    Plan {
        id: 4,
        created_at: at,
        reconciliation_at: at,
        vendor_run: Some(7),
        billing_run: Some(8),
        billing: "connectwise".into(),
        writable: true,
        max_changes_per_apply: 1,
        changes: vec![
            change(1, "A1", 40.0, 42.0, None),
            change(2, "A2", 40.0, 20.0, Some("a drop of 50%")),
        ],
        not_planned: vec![NotPlanned {
            account: "A3".into(),
            account_name: None,
            psa_product: "MP-CF".into(),
            status: Status::UnderBilled,
            lines: vec![LineChoice {
                line_key: "cw:1/1".into(),
                source_ref: "x".into(),
                quantity: 3.0,
            }],
            reason: "billed by 2 counted lines".into(),
            stanza: Some("[[line]]\naccount = \"A3\"\n".into()),
        }],
        manual: vec![ManualStep {
            account: "A4".into(),
            account_name: None,
            psa_product: "MP-SS".into(),
            products: vec!["SafeSend".into()],
            quantity: 7,
            reason: "Mailprotector counts 7 users of SafeSend".into(),
        }],
        superseded_by: None,
    }
}

#[test]
fn the_table_shows_basis_changes_not_planned_manual_steps_and_how_to_apply() {
    let text = table(&plan(), &PlanFilter::default());
    for want in [
        "plan 4 (current), built from the reconciliation of 2026-11-27T10:00:00Z (vendor run 7, billing run 8)",
        "billing: connectwise; at most 1 changes per apply",
        "2 changes:",
        "cw:12/341",
        "40 → 42",
        "+7.00",
        "-70.00",
        "review, held",
        "  1: Mailprotector counts 42 users of CloudFilter; the line bills 40",
        "     held: a drop of 50%",
        "the changes move -63.00 a month",
        "not planned (1):\n  A3  MP-CF  (under_billed): billed by 2 counted lines\n      [[line]]\n      account = \"A3\"",
        "manual steps (1), never written by mpsync:\n  A4  MP-SS: bill 7 — Mailprotector counts 7 users of SafeSend",
    ] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }
    assert!(text.ends_with(
        "to apply: mpsync apply 4 (add --dry-run to see the requests first); 2 changes, at most 1 \
         per apply: run it again for the rest\n"
    ), "{text}");
}

#[test]
fn the_last_line_says_why_a_plan_cannot_be_applied() {
    let mut p = plan();
    p.superseded_by = Some(5);
    assert!(table(&p, &PlanFilter::default()).starts_with("plan 4 (superseded by plan 5)"));
    assert!(how_to_apply(&p).starts_with("plan 4 was replaced by plan 5"));
    p.superseded_by = None;
    p.billing = "csv".into();
    p.writable = false;
    assert_eq!(
        how_to_apply(&p),
        "enter these changes in your PSA by hand (`mpsync plan --csv` lists them); apply is not \
         available for CSV billing"
    );
    p.writable = true;
    p.billing = "autotask".into();
    let at = how_to_apply(&p);
    assert!(at.starts_with("to apply: mpsync apply 4"), "{at}");
    assert!(
        at.contains("one contract service adjustment")
            && at.contains("first day of next month")
            && at.contains("adjustment_effective = \"today\""),
        "{at}"
    );
    p.changes.clear();
    assert_eq!(how_to_apply(&p), "nothing to apply");
}

#[test]
fn the_csv_has_one_line_per_change_with_the_documented_columns() {
    let text = csv(Some(&plan()), &PlanFilter::default());
    let lines: Vec<&str> = text.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(
        lines,
        [
            "row,account,account_name,psa_product,line,from,to,monthly_amount,status,reason,mode,held",
            "1,A1,\"A1, Inc.\",MP-CF,cw:12/341,40,42,7.00,under_billed,Mailprotector counts 42 users of CloudFilter; the line bills 40,review,",
            "2,A2,\"A2, Inc.\",MP-CF,cw:12/342,40,20,-70.00,over_billed,Mailprotector counts 20 users of CloudFilter; the line bills 40,review,a drop of 50%",
        ]
    );
    assert_eq!(csv(None, &PlanFilter::default()), format!("{}\r\n", CSV_COLUMNS.join(",")));
}

#[test]
fn json_is_the_plan_with_its_state_and_filters_narrow_every_list() {
    let mut p = plan();
    let doc = json(Some(&p), &PlanFilter::default());
    assert_eq!((doc["id"].as_u64(), doc["state"].as_str()), (Some(4), Some("current")));
    assert_eq!(doc["changes"].as_array().unwrap().len(), 2);
    assert_eq!(
        doc["changes"][0]["line"],
        serde_json::json!({"psa": "connectwise", "agreement": 12, "addition": 341})
    );
    let back: Plan =
        serde_json::from_value(doc.clone()).expect("the document reads back as a plan");
    assert_eq!(back, p);

    let over = PlanFilter { statuses: vec![Status::OverBilled], account: None };
    let doc = json(Some(&p), &over);
    let rows: Vec<u64> =
        doc["changes"].as_array().unwrap().iter().map(|c| c["row"].as_u64().unwrap()).collect();
    assert_eq!(rows, [2], "rows keep their numbers");
    assert!(
        doc["not_planned"].as_array().unwrap().is_empty()
            && doc["manual"].as_array().unwrap().is_empty()
    );
    assert_eq!(doc["filters"]["status"], serde_json::json!(["over_billed"]));

    let by_name = PlanFilter { statuses: vec![], account: Some("a1, inc.".into()) };
    assert_eq!(by_name.apply(&p).changes.len(), 1);
    let unbilled = PlanFilter { statuses: vec![Status::Unbilled], account: None };
    let only_manual = unbilled.apply(&p);
    assert_eq!((only_manual.changes.len(), only_manual.manual.len()), (0, 1));
    assert!(
        table(&p, &unbilled)
            .contains("filtered: 0 of 2 changes, 0 of 1 not planned, 1 of 1 manual steps")
    );

    p.superseded_by = Some(9);
    assert_eq!(json(Some(&p), &PlanFilter::default())["state"], "superseded");
    let none = json(None, &PlanFilter::default());
    assert_eq!(
        (none["state"].as_str(), none["changes"].as_array().map(Vec::len)),
        (Some("none"), Some(0))
    );
    assert!(none["note"].as_str().unwrap().starts_with("no plan yet"));
}
