//! Verifying a HaloPSA recurring-invoice write by re-reading the invoice (issue #17). Halo
//! writes lines through their invoice (a re-POST replaces the line set; `updatelines` is
//! known to "cause issues", F36), and recalculates some lines itself (F37), so a write is
//! only trusted once the invoice, read again, shows the written line holding the new
//! `qty_order` and every other line exactly as it was read before: same id, item, quantity,
//! price, active flag, dates and quantity type. Any line that changed, appeared or
//! disappeared is described with its before and after. Pure: no I/O.

use super::models::Line;
use super::rules::parse_day;

/// What the re-read shows that the write did not ask for.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Mismatch {
    /// The quantity the written line holds, when it is not the one written (`None`: it holds
    /// the new quantity, or it disappeared — then `changes` says so).
    pub answered: Option<f64>,
    /// Every unasked-for change: `line 28857 (item 21): qty_order 20 → 21`, `line 28858
    /// (item 5) disappeared (it held qty_order 3 at unit_price 4)`, ...
    pub changes: Vec<String>,
}

/// Compares the invoice's lines `before` the write with the lines `after` it: `target`
/// should hold `quantity` and nothing else should differ. `Ok` when that is so.
pub fn verify(before: &[Line], after: &[Line], target: i64, quantity: f64) -> Result<(), Mismatch> {
    let mut m = Mismatch::default();
    for b in before {
        match after.iter().find(|a| a.id == b.id) {
            None => m.changes.push(format!("{} disappeared (it held {})", name(b), holding(b))),
            Some(a) => {
                let diffs = differences(b, a, b.id == target);
                if !diffs.is_empty() {
                    m.changes.push(format!("{}: {}", name(b), diffs.join(", ")));
                }
                if b.id == target && !a.qty_order.is_some_and(|q| same(q, quantity)) {
                    m.answered = Some(a.qty_order.unwrap_or(0.0));
                }
            }
        }
    }
    for a in after.iter().filter(|a| !before.iter().any(|b| b.id == a.id)) {
        m.changes.push(format!("{} appeared ({})", name(a), holding(a)));
    }
    if !before.iter().any(|b| b.id == target) && !after.iter().any(|a| a.id == target) {
        m.changes.push(format!("line {target} is on the invoice neither before nor after"));
    }
    if m.answered.is_none() && m.changes.is_empty() { Ok(()) } else { Err(m) }
}

fn same(a: f64, b: f64) -> bool {
    crate::billing::write::same_quantity(a, b)
}

/// `line 28857 (item 21)`.
fn name(l: &Line) -> String {
    match l.item_id {
        Some(i) => format!("line {} (item {i})", l.id),
        None => format!("line {} (no item)", l.id),
    }
}

/// `qty_order 20 at unit_price 30`.
fn holding(l: &Line) -> String {
    format!("qty_order {} at unit_price {}", num(l.qty_order), num(l.unit_price))
}

fn num(v: Option<f64>) -> String {
    match v {
        None => "none".into(),
        Some(x) if x.fract() == 0.0 && x.abs() < 1e15 => format!("{}", x as i64),
        Some(x) => format!("{x}"),
    }
}

/// The fields that differ between `b` (before) and `a` (after), `field before → after`;
/// `qty_order` is left out for the written line (it was meant to change).
fn differences(b: &Line, a: &Line, written: bool) -> Vec<String> {
    let mut out = Vec::new();
    let mut field = |name: &str, before: String, after: String| {
        if before != after {
            out.push(format!("{name} {before} → {after}"));
        }
    };
    field("_itemid", id(b.item_id), id(a.item_id));
    let qty_differs = match (b.qty_order, a.qty_order) {
        (Some(x), Some(y)) => !same(x, y),
        (x, y) => x.is_some() != y.is_some(),
    };
    if !written && qty_differs {
        field("qty_order", num(b.qty_order), num(a.qty_order));
    }
    let price_differs = match (b.unit_price, a.unit_price) {
        (Some(x), Some(y)) => !same(x, y),
        (x, y) => x.is_some() != y.is_some(),
    };
    if price_differs {
        field("unit_price", num(b.unit_price), num(a.unit_price));
    }
    field("isinactive", flag(b.isinactive), flag(a.isinactive));
    field("startdate", day(b.startdate.as_deref()), day(a.startdate.as_deref()));
    field("enddate", day(b.enddate.as_deref()), day(a.enddate.as_deref()));
    field(
        "recurring_invoice_quantity_type",
        id(b.recurring_invoice_quantity_type),
        id(a.recurring_invoice_quantity_type),
    );
    out
}

fn id(v: Option<i64>) -> String {
    v.map_or_else(|| "none".into(), |i| i.to_string())
}

/// `isinactive` absent reads as false (Halo leaves it out on active lines).
fn flag(v: Option<bool>) -> String {
    v.unwrap_or(false).to_string()
}

/// A date as the day it names (`2025-05-05T00:00:00` and `2025-05-05T00:00:00Z` are the
/// same day; a placeholder year is no date), else as written.
fn day(v: Option<&str>) -> String {
    match parse_day(v) {
        Ok(Some(d)) => d.to_string(),
        Ok(None) => "none".into(),
        Err(raw) => raw,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn lines(v: serde_json::Value) -> Vec<Line> {
        serde_json::from_value(v).unwrap()
    }

    fn invoice() -> serde_json::Value {
        json!([
            {"id":24967,"ihid":-94,"_itemid":17,"qty_order":25.0,"unit_price":22.0,
             "isinactive":false,"recurring_invoice_quantity_type":0,"startdate":null,"enddate":null},
            {"id":28857,"ihid":-94,"_itemid":21,"qty_order":20.0,"unit_price":30.0,
             "isinactive":false,"recurring_invoice_quantity_type":0,
             "startdate":"2025-01-01T00:00:00","enddate":null}
        ])
    }

    #[test]
    fn the_written_line_holding_the_new_quantity_and_the_rest_unchanged_verifies() {
        let before = lines(invoice());
        let mut after = invoice();
        after[0]["qty_order"] = json!(27.0);
        // What Halo recomputes, and fields mpsync does not compare, may differ.
        after[0]["net_amount"] = json!(594.0);
        after[1]["_warning"] = json!("x");
        // The same day written another way.
        after[1]["startdate"] = json!("2025-01-01T00:00:00Z");
        assert_eq!(verify(&before, &lines(after), 24967, 27.0), Ok(()));
    }

    #[test]
    fn another_line_changed_is_reported_with_before_and_after() {
        let before = lines(invoice());
        let mut after = invoice();
        after[0]["qty_order"] = json!(27.0);
        after[1]["qty_order"] = json!(21.0);
        after[1]["enddate"] = json!("2026-12-31T00:00:00");
        let m = verify(&before, &lines(after), 24967, 27.0).unwrap_err();
        assert_eq!(m.answered, None);
        assert_eq!(
            m.changes,
            ["line 28857 (item 21): qty_order 20 → 21, enddate none → 2026-12-31"]
        );
    }

    #[test]
    fn a_line_that_disappeared_or_appeared_is_reported() {
        let before = lines(invoice());
        let mut after = invoice();
        after[0]["qty_order"] = json!(27.5);
        let mut after: Vec<serde_json::Value> = after.as_array().unwrap().clone();
        after.remove(1);
        after.push(json!({"id":30001,"_itemid":5,"qty_order":3,"unit_price":4.5}));
        let m = verify(&before, &lines(json!(after)), 24967, 27.5).unwrap_err();
        assert_eq!(
            m.changes,
            [
                "line 28857 (item 21) disappeared (it held qty_order 20 at unit_price 30)",
                "line 30001 (item 5) appeared (qty_order 3 at unit_price 4.5)",
            ]
        );
    }

    #[test]
    fn the_written_line_with_another_quantity_or_other_fields_changed() {
        let before = lines(invoice());
        // Halo kept (or recalculated) another quantity: unconfirmed, nothing else.
        let m = verify(&before, &lines(invoice()), 24967, 27.0).unwrap_err();
        assert_eq!(m, Mismatch { answered: Some(25.0), changes: vec![] });
        // The written line's price or quantity type changed with it: a side effect.
        let mut after = invoice();
        after[0]["qty_order"] = json!(27.0);
        after[0]["unit_price"] = json!(0.0);
        after[0]["recurring_invoice_quantity_type"] = json!(1);
        let m = verify(&before, &lines(after), 24967, 27.0).unwrap_err();
        assert_eq!(
            m.changes,
            ["line 24967 (item 17): unit_price 22 → 0, recurring_invoice_quantity_type 0 → 1"]
        );
        // The written line gone.
        let after = json!([invoice()[1].clone()]);
        let m = verify(&before, &lines(after), 24967, 27.0).unwrap_err();
        assert_eq!(
            m.changes,
            ["line 24967 (item 17) disappeared (it held qty_order 25 at unit_price 22)"]
        );
    }
}
