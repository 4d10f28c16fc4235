//! Every billing rule of `rules` on its own, with hand-made rows.

use super::*;

fn on() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 6, 15).unwrap()
}

fn company(active: Option<bool>, kind: Option<i64>) -> Company {
    Company {
        id: 10,
        company_name: Some("Contoso".into()),
        company_number: None,
        company_type: kind,
        is_active: active,
    }
}

fn contract(kind: Option<i64>, status: Option<i64>, start: &str, end: &str) -> Contract {
    Contract {
        id: 20,
        company_id: Some(10),
        contract_name: None,
        contract_type: kind,
        contract_category: Some(15),
        status,
        start_date: Some(start.into()),
        end_date: Some(end.into()),
    }
}

fn row(id: u64, start: &str, end: &str, units: f64) -> ContractServiceUnit {
    ContractServiceUnit {
        id,
        contract_id: Some(20),
        contract_service_id: Some(30),
        service_id: Some(55),
        start_date: Some(format!("{start}T00:00:00.000Z")),
        end_date: Some(format!("{end}T00:00:00.000Z")),
        units: Some(units),
    }
}

const YEAR: (&str, &str) = ("2026-01-01T00:00:00.000Z", "2026-12-31T00:00:00.000Z");

#[test]
fn the_units_row_covering_the_day_among_several_periods_is_taken_never_a_sum_nor_the_first() {
    let may = row(1, "2026-05-01", "2026-05-31", 40.0);
    let june = row(2, "2026-06-01", "2026-06-30", 42.0);
    let july = row(3, "2026-07-01", "2026-07-31", 50.0);
    // Out of order, as a query may return them: the first row is May, the sum is 132.
    let rows = [&may, &july, &june];
    let j = judge(&[], &[], &rows, on()).unwrap();
    assert_eq!(j, Judged { quantity: 42.0, note: None });
    // The period's last day is still covered (date-only ends).
    let end = NaiveDate::from_ymd_opt(2026, 6, 30).unwrap();
    assert_eq!(covering_row(&rows, end).unwrap().unwrap().id, 2);
}

#[test]
fn after_a_split_the_newer_row_covers_the_day() {
    // An adjustment on the 15th ends the old row on the 15th and starts a new one.
    let old = row(1, "2026-06-01", "2026-06-15", 42.0);
    let new = row(2, "2026-06-15", "2026-06-30", 45.0);
    assert_eq!(covering_row(&[&new, &old], on()).unwrap().unwrap().units, Some(45.0));
    let before = NaiveDate::from_ymd_opt(2026, 6, 14).unwrap();
    assert_eq!(covering_row(&[&new, &old], before).unwrap().unwrap().units, Some(42.0));
}

#[test]
fn no_row_covering_the_day_is_a_line_of_zero_that_does_not_count() {
    let may = row(1, "2026-05-01", "2026-05-31", 40.0);
    let july = row(3, "2026-07-01", "2026-07-31", 50.0);
    let j = judge(&[], &[], &[&may, &july], on()).unwrap();
    assert_eq!(j.quantity, 0.0);
    assert_eq!(j.note.as_deref(), Some("no units row covers 2026-06-15 (2 period rows read)"));
}

#[test]
fn an_inactive_company_does_not_count() {
    let why = company_reasons(10, Some(&company(Some(false), Some(CUSTOMER))));
    assert_eq!(why, ["company 10 is inactive"]);
    assert!(company_reasons(10, Some(&company(Some(true), Some(CUSTOMER)))).is_empty());
    assert_eq!(company_reasons(10, None), ["company 10 is not in the company listing"]);
}

#[test]
fn a_company_that_is_not_a_customer_does_not_count() {
    let why = company_reasons(10, Some(&company(Some(true), Some(3))));
    assert_eq!(why, ["company 10 is of type 3, not Customer (1)"]);
    let why = company_reasons(10, Some(&company(Some(true), None)));
    assert_eq!(why, ["company 10 has no type, not Customer (1)"]);
}

#[test]
fn a_contract_that_does_not_cover_the_day_does_not_count() {
    let ended = contract(Some(7), Some(1), "2025-01-01", "2025-12-31T00:00:00.000Z");
    assert_eq!(contract_reasons(&ended, on()).unwrap(), ["contract 20 ended on 2025-12-31"]);
    let later = contract(Some(7), Some(1), "2026-07-01T00:00:00Z", "2027-06-30");
    assert_eq!(contract_reasons(&later, on()).unwrap(), ["contract 20 starts on 2026-07-01"]);
    let current = contract(Some(7), Some(1), YEAR.0, YEAR.1);
    assert!(contract_reasons(&current, on()).unwrap().is_empty());
    // The last day counts.
    let last = contract(Some(7), Some(1), "2026-01-01", "2026-06-15");
    assert!(contract_reasons(&last, on()).unwrap().is_empty());
}

#[test]
fn an_inactive_contract_does_not_count() {
    let c = contract(Some(7), Some(0), YEAR.0, YEAR.1);
    assert_eq!(contract_reasons(&c, on()).unwrap(), ["contract 20 is inactive (status 0)"]);
}

#[test]
fn a_contract_that_is_not_recurring_service_does_not_count() {
    let c = contract(Some(3), Some(1), YEAR.0, YEAR.1);
    assert_eq!(
        contract_reasons(&c, on()).unwrap(),
        ["contract 20 is of type 3, not Recurring Service (7)"]
    );
}

#[test]
fn every_reason_is_kept_in_the_note_with_the_quantity() {
    let june = row(2, "2026-06-01", "2026-06-30", 42.0);
    let c = company_reasons(10, Some(&company(Some(false), Some(CUSTOMER))));
    let k = contract_reasons(&contract(Some(7), Some(0), YEAR.0, YEAR.1), on()).unwrap();
    let j = judge(&c, &k, &[&june], on()).unwrap();
    assert_eq!(j.quantity, 42.0, "the evidence keeps what the row bills");
    assert_eq!(
        j.note.as_deref(),
        Some("company 10 is inactive; contract 20 is inactive (status 0)")
    );
}

#[test]
fn the_adjusted_price_wins_over_the_unit_price() {
    let mut s = ContractService {
        id: 30,
        contract_id: Some(20),
        service_id: Some(55),
        unit_price: Some(12.0),
        adjusted_price: Some(10.5),
        invoice_description: None,
    };
    assert_eq!(unit_price(&s), Some(10.5));
    s.adjusted_price = None;
    assert_eq!(unit_price(&s), Some(12.0));
    s.unit_price = None;
    assert_eq!(unit_price(&s), None);
}

#[test]
fn a_bundle_is_reported_as_not_supported() {
    let b = ContractServiceBundle {
        id: 40,
        contract_id: Some(20),
        service_bundle_id: Some(12),
        unit_price: Some(80.0),
        adjusted_price: None,
    };
    let note = bundle_note(&b);
    assert!(note.starts_with("service bundle 12 (contract service bundle 40)"), "{note}");
    assert!(note.contains("not supported"), "{note}");
}

#[test]
fn an_unreadable_date_names_the_record() {
    let mut bad = row(7, "2026-06-01", "2026-06-30", 1.0);
    bad.end_date = Some("soon".into());
    let e = covering_row(&[&bad], on()).unwrap_err();
    assert_eq!(e.to_string(), "ContractServiceUnits 7 endDate \"soon\" is not a date");
    let mut c = contract(Some(7), Some(1), YEAR.0, YEAR.1);
    c.start_date = Some("2026-13-01".into());
    assert!(contract_reasons(&c, on()).is_err());
}
