//! Which HaloPSA recurring-invoice lines count toward the billed quantity (issue #17): the
//! client is active (not `inactive`); the recurring invoice is not `disabled` and in date
//! (`startdate` on or before the day, `enddate` on or after it); its contract, when it names
//! one that was read, is active and not expired; the line is not `isinactive`, in date,
//! bills an item and has a quantity. A line whose quantity Halo computes
//! (`recurring_invoice_quantity_type` not 0, F37) counts, says so, and is never written.
//! Lines that do not count are kept with every reason. Dates carry no offset (F43) and are
//! read as days; the placeholder years 1899–1901 mean "no date".

use chrono::{DateTime, NaiveDate, Utc};

use super::models::{Client, Contract, Line, RecurringInvoice};

/// `recurring_invoice_quantity_type` of a line whose quantity is entered by hand.
pub const MANUAL_QUANTITY: i64 = 0;

/// A date field that holds no date.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{entity} {id} {field} {value:?} is not a date")]
pub struct UnreadableDate {
    /// The record, e.g. `recurring invoice`.
    pub entity: &'static str,
    /// Its id.
    pub id: i64,
    /// The field.
    pub field: &'static str,
    /// What it holds.
    pub value: String,
}

/// The day of a Halo date-time (`2025-05-05T00:00:00`, with or without an offset or
/// fraction) or date; `None` for an empty value or a placeholder year (1899, 1900, 1901:
/// Halo's "no date", F43); `Err` (the value) for anything else.
pub fn parse_day(value: Option<&str>) -> Result<Option<NaiveDate>, String> {
    let Some(v) = value.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let day = if let Ok(t) = DateTime::parse_from_rfc3339(v) {
        t.with_timezone(&Utc).date_naive()
    } else {
        let head = v.get(..10).unwrap_or(v);
        NaiveDate::parse_from_str(head, "%Y-%m-%d").map_err(|_| v.to_owned())?
    };
    use chrono::Datelike;
    Ok((!(1899..=1901).contains(&day.year())).then_some(day))
}

fn day(
    entity: &'static str,
    id: i64,
    field: &'static str,
    value: Option<&str>,
) -> Result<Option<NaiveDate>, UnreadableDate> {
    parse_day(value).map_err(|value| UnreadableDate { entity, id, field, value })
}

/// Why `(start, end)` does not cover `on`, naming `what`.
fn out_of_date(
    what: &str,
    start: Option<NaiveDate>,
    end: Option<NaiveDate>,
    on: NaiveDate,
) -> Option<String> {
    if let Some(s) = start.filter(|s| *s > on) {
        return Some(format!("{what} starts on {s}"));
    }
    end.filter(|e| *e < on).map(|e| format!("{what} ended on {e}"))
}

/// Why the lines of client `id` (`None`: not in the client listing) do not count; empty when
/// they do.
pub fn client_reasons(id: Option<i64>, client: Option<&Client>) -> Vec<String> {
    match (id, client) {
        (None, _) => vec!["the recurring invoice names no client".to_owned()],
        (Some(id), None) => vec![format!("client {id} is not in the client listing")],
        (Some(id), Some(c)) if c.inactive == Some(true) => vec![format!("client {id} is inactive")],
        _ => Vec::new(),
    }
}

/// Why the lines of `contract` (named by an invoice) do not count on `on`; empty when they
/// do, or when the contract was not read.
pub fn contract_reasons(
    contract: Option<&Contract>,
    on: NaiveDate,
) -> Result<Vec<String>, UnreadableDate> {
    let Some(c) = contract else { return Ok(Vec::new()) };
    let name = match c.r#ref.as_deref().filter(|r| !r.trim().is_empty()) {
        Some(r) => format!("contract {} ({r})", c.id),
        None => format!("contract {}", c.id),
    };
    let mut why = Vec::new();
    if c.active == Some(false) {
        why.push(format!("{name} is inactive"));
    }
    if c.expired == Some(true) {
        why.push(format!("{name} has expired"));
    }
    let start = day("contract", c.id, "start_date", c.start_date.as_deref())?;
    let end = day("contract", c.id, "end_date", c.end_date.as_deref())?;
    if why.is_empty() {
        why.extend(out_of_date(&name, start, end, on));
    }
    Ok(why)
}

/// Why the lines of recurring invoice `inv` do not count on `on`; empty when they do.
pub fn invoice_reasons(
    inv: &RecurringInvoice,
    on: NaiveDate,
) -> Result<Vec<String>, UnreadableDate> {
    let mut why = Vec::new();
    let name = format!("recurring invoice {}", inv.id);
    if inv.disabled == Some(true) {
        why.push(format!("{name} is disabled"));
    }
    let start = day("recurring invoice", inv.id, "startdate", inv.startdate.as_deref())?;
    let end = day("recurring invoice", inv.id, "enddate", inv.enddate.as_deref())?;
    why.extend(out_of_date(&name, start, end, on));
    Ok(why)
}

/// One line as mpsync bills it.
#[derive(Debug, Clone, PartialEq)]
pub struct Judged {
    /// Units billed (0 when the line has none).
    pub quantity: f64,
    /// Whether it counts.
    pub counted: bool,
    /// Why it does not count, or that Halo computes its quantity.
    pub note: Option<String>,
    /// Whether Halo computes its quantity (never written).
    pub computed: bool,
}

/// Judges one line on `on`, given the reasons of its client, contract and invoice.
pub fn judge(inherited: &[String], line: &Line, on: NaiveDate) -> Result<Judged, UnreadableDate> {
    let mut why: Vec<String> = inherited.to_vec();
    let name = format!("line {}", line.id);
    if line.isinactive == Some(true) {
        why.push(format!("{name} is inactive"));
    }
    let start = day("line", line.id, "startdate", line.startdate.as_deref())?;
    let end = day("line", line.id, "enddate", line.enddate.as_deref())?;
    why.extend(out_of_date(&name, start, end, on));
    if line.item_id.is_none_or(|i| i == 0) {
        why.push(format!("{name} bills no item (_itemid)"));
    }
    let quantity = match line.qty_order {
        Some(q) => q,
        None => {
            why.push(format!("{name} has no quantity (qty_order)"));
            0.0
        }
    };
    let (computed, how) = match line.recurring_invoice_quantity_type {
        Some(MANUAL_QUANTITY) => (false, None),
        Some(t) => (
            true,
            Some(format!(
                "Halo computes this line's quantity (recurring_invoice_quantity_type {t}): \
                 counted as billed, never written back"
            )),
        ),
        None => (
            true,
            Some(
                "Halo does not say how this line's quantity is set (no \
                 recurring_invoice_quantity_type): counted as billed, never written back"
                    .to_owned(),
            ),
        ),
    };
    let counted = why.is_empty();
    if counted {
        Ok(Judged { quantity, counted, note: how, computed })
    } else {
        Ok(Judged { quantity, counted, note: Some(why.join("; ")), computed })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn on() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 15).unwrap()
    }

    fn line(json: serde_json::Value) -> Line {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn placeholder_years_mean_no_date_and_offsets_are_optional() {
        assert_eq!(parse_day(Some("1899-12-30T00:00:00")), Ok(None));
        assert_eq!(parse_day(Some("1900-01-01T00:00:00")), Ok(None));
        assert_eq!(parse_day(Some("1901-01-01T17:00:00")), Ok(None));
        assert_eq!(parse_day(Some("  ")), Ok(None));
        assert_eq!(parse_day(None), Ok(None));
        assert_eq!(parse_day(Some("2025-05-05T00:00:00")), Ok(NaiveDate::from_ymd_opt(2025, 5, 5)));
        assert_eq!(
            parse_day(Some("2025-05-05T00:00:00.000Z")),
            Ok(NaiveDate::from_ymd_opt(2025, 5, 5))
        );
        assert_eq!(parse_day(Some("2025-05-05")), Ok(NaiveDate::from_ymd_opt(2025, 5, 5)));
        assert_eq!(parse_day(Some("soon")), Err("soon".to_owned()));
    }

    #[test]
    fn a_manual_line_in_date_counts_without_a_note() {
        let l = line(serde_json::json!({"id":1,"_itemid":17,"qty_order":25.0,
            "recurring_invoice_quantity_type":0,"startdate":"1900-01-01T00:00:00","enddate":null}));
        let j = judge(&[], &l, on()).unwrap();
        assert_eq!(j, Judged { quantity: 25.0, counted: true, note: None, computed: false });
    }

    #[test]
    fn a_computed_line_counts_and_says_it_is_never_written() {
        let l = line(serde_json::json!({"id":1,"_itemid":17,"qty_order":4.5,
            "recurring_invoice_quantity_type":2}));
        let j = judge(&[], &l, on()).unwrap();
        assert!(j.counted && j.computed);
        assert!(j.note.unwrap().contains("never written back"));
        let unknown = line(serde_json::json!({"id":1,"_itemid":17,"qty_order":4.5}));
        assert!(judge(&[], &unknown, on()).unwrap().computed, "unknown is never written");
    }

    #[test]
    fn every_reason_is_kept() {
        let l = line(serde_json::json!({"id":7,"_itemid":0,"isinactive":true,
            "startdate":"2099-01-01T00:00:00","recurring_invoice_quantity_type":0}));
        let j = judge(&["client 3 is inactive".to_owned()], &l, on()).unwrap();
        assert!(!j.counted);
        assert_eq!(
            j.note.as_deref(),
            Some(
                "client 3 is inactive; line 7 is inactive; line 7 starts on 2099-01-01; line 7 \
                 bills no item (_itemid); line 7 has no quantity (qty_order)"
            )
        );
        let ended = line(serde_json::json!({"id":8,"_itemid":1,"qty_order":1,
            "enddate":"2026-11-14T00:00:00","recurring_invoice_quantity_type":0}));
        assert_eq!(
            judge(&[], &ended, on()).unwrap().note.as_deref(),
            Some("line 8 ended on 2026-11-14")
        );
        let bad = line(serde_json::json!({"id":9,"startdate":"next week"}));
        assert_eq!(
            judge(&[], &bad, on()).unwrap_err().to_string(),
            "line 9 startdate \"next week\" is not a date"
        );
    }

    #[test]
    fn invoices_contracts_and_clients() {
        let inv: RecurringInvoice = serde_json::from_value(serde_json::json!({"id":-94,
            "disabled":true,"startdate":"2025-01-01T00:00:00","enddate":"2026-10-31T00:00:00"}))
        .unwrap();
        assert_eq!(
            invoice_reasons(&inv, on()).unwrap(),
            ["recurring invoice -94 is disabled", "recurring invoice -94 ended on 2026-10-31"]
        );
        let live: RecurringInvoice =
            serde_json::from_value(serde_json::json!({"id":5,"startdate":"1899-12-30T00:00:00"}))
                .unwrap();
        assert!(invoice_reasons(&live, on()).unwrap().is_empty());
        let c: Contract = serde_json::from_value(serde_json::json!({"id":31,"ref":"ACME",
            "active":false,"expired":true}))
        .unwrap();
        assert_eq!(
            contract_reasons(Some(&c), on()).unwrap(),
            ["contract 31 (ACME) is inactive", "contract 31 (ACME) has expired"]
        );
        assert!(contract_reasons(None, on()).unwrap().is_empty());
        let client: Client =
            serde_json::from_value(serde_json::json!({"id":3,"inactive":true})).unwrap();
        assert_eq!(client_reasons(Some(3), Some(&client)), ["client 3 is inactive"]);
        assert_eq!(client_reasons(Some(4), None), ["client 4 is not in the client listing"]);
    }
}
