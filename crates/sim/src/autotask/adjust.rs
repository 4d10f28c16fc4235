//! `POST /ContractServiceAdjustments` and `POST /Contracts/{id}/ServiceAdjustments` (reference
//! F4.16–F4.22, C12–C16): the only way a quantity changes. Create-only — an adjustment cannot
//! be read, queried, changed or deleted afterwards — with a signed `unitChange` from an
//! `effectiveDate` (date-only: the time part is dropped). The units row covering the date is
//! split (it keeps its start and ends on the date; a new row runs from the date to the
//! period's end with the changed units), every later period row changes by the same delta,
//! and the adjustment is kept in a journal tests read (the API offers no way back to it).
//!
//! Refusals answer 500 with `{"errors": [...]}` and change nothing: a missing field, a zero
//! or fractional `unitChange`, an unknown contract service, a contract that is not a
//! Recurring Service contract, a date outside the contract, a contract id in the path that
//! is not the body's, units that would go below zero. Sim choice (the note is silent): a date
//! no units row covers starts a row there running to the end of its calendar month.

use chrono::{Datelike, Months, NaiveDate};
use serde_json::{Map, Value, json};

use super::data::{AtAdjustment, AtData, at_date};
use super::query::get_ci;

/// The first `itemId` of an adjustment (the note's sample answer).
const FIRST_ADJUSTMENT: u64 = 77_001;

/// The day of a date or datetime field (`2024-06-15`, `2024-06-15T10:00:00[.000][Z]`).
pub fn day_of(v: &Value) -> Option<NaiveDate> {
    let s = v.as_str()?.trim();
    NaiveDate::parse_from_str(s.get(..10)?, "%Y-%m-%d").ok()
}

fn id_of(obj: &Map<String, Value>, key: &str) -> Result<Option<u64>, String> {
    match get_ci(obj, key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
            .map(Some)
            .ok_or_else(|| format!("{key} must be an integer id.")),
    }
}

fn next_id(data: &AtData, entity: &str) -> u64 {
    data.rows.get(entity).and_then(|r| r.iter().filter_map(|r| r["id"].as_u64()).max()).unwrap_or(0)
        + 1
}

/// The last day of the calendar month holding `d`.
fn month_end(d: NaiveDate) -> NaiveDate {
    let first = d.with_day(1).unwrap_or(d);
    first.checked_add_months(Months::new(1)).and_then(|n| n.pred_opt()).unwrap_or(d)
}

/// Applies one adjustment request body (`path_contract`: the id of the child route's path)
/// and returns its `itemId`, or the message of the 500 refusal. Nothing changes on refusal.
pub fn apply(data: &mut AtData, body: &[u8], path_contract: Option<u64>) -> Result<u64, String> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|_| "The request body is not valid JSON.".to_owned())?;
    let obj = v.as_object().ok_or_else(|| "The request body must be an object.".to_owned())?;
    let effective = match get_ci(obj, "effectiveDate") {
        None | Some(Value::Null) => return Err("effectiveDate is required.".into()),
        Some(d) => day_of(d).ok_or_else(|| format!("effectiveDate {d} is not a date."))?,
    };
    let change = match get_ci(obj, "unitChange") {
        None | Some(Value::Null) => return Err("unitChange is required.".into()),
        Some(n) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64))
            .ok_or_else(|| format!("unitChange {n} must be a whole number."))?,
    };
    if change == 0 {
        return Err("unitChange must not be zero.".into());
    }
    let body_contract = id_of(obj, "contractID")?;
    if let (Some(p), Some(b)) = (path_contract, body_contract)
        && p != b
    {
        return Err(format!("The contract in the URL ({p}) is not the body's contractID ({b})."));
    }
    let contract_hint = body_contract.or(path_contract);
    let service_hint = id_of(obj, "serviceID")?;
    let cs = match id_of(obj, "contractServiceID")? {
        Some(cs) => {
            let row = data
                .rows
                .get("ContractServices")
                .and_then(|r| r.iter().find(|r| r["id"] == cs))
                .ok_or_else(|| format!("ContractService {cs} does not exist."))?;
            if contract_hint.is_some_and(|c| row["contractID"] != c) {
                return Err(format!("ContractService {cs} is not on contract {contract_hint:?}."));
            }
            row.clone()
        }
        None => {
            let (Some(c), Some(s)) = (contract_hint, service_hint) else {
                return Err(
                    "Either contractServiceID or contractID and serviceID are required.".into()
                );
            };
            let found = data.rows.get("ContractServices").and_then(|r| {
                r.iter().find(|r| r["contractID"] == c && r["serviceID"] == s).cloned()
            });
            match found {
                Some(row) => row,
                None => new_contract_service(data, c, s)?,
            }
        }
    };
    let cs_id = cs["id"].as_u64().unwrap_or(0);
    let contract_id = cs["contractID"].as_u64().unwrap_or(0);
    let service_id = cs["serviceID"].as_u64().unwrap_or(0);
    let contract = data
        .rows
        .get("Contracts")
        .and_then(|r| r.iter().find(|r| r["id"] == contract_id))
        .ok_or_else(|| format!("Contract {contract_id} does not exist."))?;
    if contract["contractType"] != 7 {
        return Err(format!("Contract {contract_id} is not a Recurring Service contract."));
    }
    let (start, end) = (day_of(&contract["startDate"]), day_of(&contract["endDate"]));
    if start.is_some_and(|s| effective < s) || end.is_some_and(|e| effective > e) {
        return Err(format!(
            "effectiveDate {effective} is outside contract {contract_id}'s dates."
        ));
    }
    let price = cs["adjustedPrice"].as_f64().or(cs["unitPrice"].as_f64()).unwrap_or(0.0);

    // Every row of the contract service: the one covering the date and the later ones.
    let rows = data.rows.entry("ContractServiceUnits").or_default();
    let mine: Vec<usize> =
        (0..rows.len()).filter(|&i| rows[i]["contractServiceID"] == cs_id).collect();
    let covering = mine
        .iter()
        .copied()
        .filter(|&i| {
            day_of(&rows[i]["startDate"]).is_some_and(|s| s <= effective)
                && day_of(&rows[i]["endDate"]).is_none_or(|e| e >= effective)
        })
        .max_by_key(|&i| (day_of(&rows[i]["startDate"]), rows[i]["id"].as_u64()));
    let later: Vec<usize> = mine
        .iter()
        .copied()
        .filter(|&i| day_of(&rows[i]["startDate"]).is_some_and(|s| s > effective))
        .collect();
    let units = |rows: &[Value], i: usize| rows[i]["units"].as_f64().unwrap_or(0.0);
    let changed = |u: f64| u + change as f64;
    let base = covering.map_or(0.0, |i| units(rows, i));
    if changed(base) < 0.0 || later.iter().any(|&i| changed(units(rows, i)) < 0.0) {
        return Err("Unit change would make the service quantity negative.".into());
    }
    let unit_row = |id: u64, from: NaiveDate, to: NaiveDate, units: f64| {
        let span = (to - from).num_days() + 1;
        let period = (month_end(from) - from.with_day(1).unwrap_or(from)).num_days() + 1;
        let share = (span as f64 / period as f64).min(1.0);
        let amount = units * price * share;
        json!({
            "id": id, "contractID": contract_id, "contractServiceID": cs_id,
            "serviceID": service_id, "startDate": at_date(from), "endDate": at_date(to),
            "units": units, "price": amount, "cost": amount * 0.6,
            "internalCurrencyPrice": amount, "approveAndPostDate": null,
            "organizationalLevelAssociationID": null, "vendorCompanyID": null,
        })
    };
    let new_id = rows.iter().filter_map(|r| r["id"].as_u64()).max().unwrap_or(0) + 1;
    match covering {
        Some(i) if day_of(&rows[i]["startDate"]) == Some(effective) => {
            // The change starts with the row: no split, the row changes.
            let end = day_of(&rows[i]["endDate"]).unwrap_or(effective);
            let id = rows[i]["id"].as_u64().unwrap_or(0);
            rows[i] = unit_row(id, effective, end, changed(base));
        }
        Some(i) => {
            let (s, e) = (day_of(&rows[i]["startDate"]), day_of(&rows[i]["endDate"]));
            let (s, e) = (s.unwrap_or(effective), e.unwrap_or_else(|| month_end(effective)));
            let id = rows[i]["id"].as_u64().unwrap_or(0);
            rows[i] = unit_row(id, s, effective, base);
            rows.push(unit_row(new_id, effective, e, changed(base)));
        }
        None => {
            rows.push(unit_row(new_id, effective, month_end(effective), changed(base)));
        }
    }
    for i in later {
        let (s, e) = (day_of(&rows[i]["startDate"]), day_of(&rows[i]["endDate"]));
        let (Some(s), Some(e)) = (s, e) else { continue };
        let id = rows[i]["id"].as_u64().unwrap_or(0);
        let u = changed(units(rows, i));
        rows[i] = unit_row(id, s, e, u);
    }
    rows.sort_by_key(|r| r["id"].as_u64().unwrap_or(0));
    let id = FIRST_ADJUSTMENT + data.adjustments.len() as u64;
    data.adjustments.push(AtAdjustment {
        id,
        contract_id,
        contract_service_id: cs_id,
        service_id,
        effective_date: effective,
        unit_change: change,
    });
    Ok(id)
}

/// A contract service for (contract, service) priced from the catalog service (C13).
fn new_contract_service(data: &mut AtData, contract: u64, service: u64) -> Result<Value, String> {
    let catalog = data
        .rows
        .get("Services")
        .and_then(|r| r.iter().find(|r| r["id"] == service))
        .ok_or_else(|| format!("Service {service} does not exist."))?;
    let price = catalog["unitPrice"].as_f64().unwrap_or(0.0);
    let cost = catalog["unitCost"].as_f64().unwrap_or(0.0);
    let id = next_id(data, "ContractServices");
    let row = json!({
        "id": id, "contractID": contract, "serviceID": service, "unitPrice": price,
        "unitCost": cost, "adjustedPrice": null, "internalCurrencyUnitPrice": price,
        "internalCurrencyAdjustedPrice": null, "invoiceDescription": catalog["invoiceDescription"],
        "internalDescription": null, "quoteItemID": null, "userDefinedFields": [],
    });
    data.rows.entry("ContractServices").or_default().push(row.clone());
    Ok(row)
}

/// The units of contract service `cs` on `day` (the covering row: latest start, then newest
/// row), if a row covers it.
pub fn units_on(data: &AtData, cs: u64, day: NaiveDate) -> Option<f64> {
    let rows = data.rows.get("ContractServiceUnits")?;
    rows.iter()
        .filter(|r| r["contractServiceID"] == cs)
        .filter(|r| {
            day_of(&r["startDate"]).is_some_and(|s| s <= day)
                && day_of(&r["endDate"]).is_none_or(|e| e >= day)
        })
        .max_by_key(|r| (day_of(&r["startDate"]), r["id"].as_u64()))
        .and_then(|r| r["units"].as_f64())
}

/// Sets the units of contract service `cs` from `day` on (someone posted an adjustment in
/// the PSA's own screens): the covering row and every later one hold `units`. Returns how
/// many rows changed.
pub fn set_units(data: &mut AtData, cs: u64, day: NaiveDate, units: f64) -> usize {
    let Some(rows) = data.rows.get_mut("ContractServiceUnits") else { return 0 };
    let mut n = 0;
    for r in rows.iter_mut().filter(|r| r["contractServiceID"] == cs) {
        if day_of(&r["endDate"]).is_none_or(|e| e >= day) {
            r["units"] = json!(units);
            n += 1;
        }
    }
    n
}

/// Removes contract service `cs` and its units rows; whether it existed.
pub fn delete_contract_service(data: &mut AtData, cs: u64) -> bool {
    let before = data.rows.get("ContractServices").map_or(0, Vec::len);
    if let Some(r) = data.rows.get_mut("ContractServices") {
        r.retain(|r| r["id"] != cs);
    }
    if let Some(r) = data.rows.get_mut("ContractServiceUnits") {
        r.retain(|r| r["contractServiceID"] != cs);
    }
    data.rows.get("ContractServices").map_or(0, Vec::len) < before
}

/// Ends contract service `cs` on `last`: rows starting after it are removed, the one running
/// past it ends on it. Returns how many rows remain.
pub fn end_contract_service(data: &mut AtData, cs: u64, last: NaiveDate) -> usize {
    let Some(rows) = data.rows.get_mut("ContractServiceUnits") else { return 0 };
    rows.retain(|r| {
        r["contractServiceID"] != cs || day_of(&r["startDate"]).is_none_or(|s| s <= last)
    });
    let mut left = 0;
    for r in rows.iter_mut().filter(|r| r["contractServiceID"] == cs) {
        if day_of(&r["endDate"]).is_none_or(|e| e > last) {
            r["endDate"] = json!(at_date(last));
        }
        left += 1;
    }
    left
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connectwise::BillingData;

    fn data() -> (AtData, u64, NaiveDate) {
        let today = NaiveDate::from_ymd_opt(2026, 6, 15).unwrap();
        let cw = BillingData::generate(&crate::Dataset::generate(3, 10), 3);
        let d = AtData::from_connectwise(&cw, today);
        // A contract service with rows for last, this and next month.
        let cs = d.rows["ContractServices"]
            .iter()
            .map(|r| r["id"].as_u64().unwrap())
            .find(|cs| {
                d.rows["ContractServiceUnits"]
                    .iter()
                    .filter(|r| r["contractServiceID"] == *cs)
                    .count()
                    == 3
            })
            .unwrap();
        (d, cs, today)
    }

    #[test]
    fn a_mid_period_adjustment_splits_the_row_and_moves_later_periods() {
        let (mut d, cs, today) = data();
        let now = units_on(&d, cs, today).unwrap();
        let next = NaiveDate::from_ymd_opt(2026, 7, 1).unwrap();
        let later = units_on(&d, cs, next).unwrap();
        let body = format!(
            r#"{{"contractServiceID":{cs},"effectiveDate":"2026-06-20T13:00:00","unitChange":-2}}"#
        );
        let id = apply(&mut d, body.as_bytes(), None).unwrap();
        assert_eq!(id, FIRST_ADJUSTMENT);
        let day = |n| NaiveDate::from_ymd_opt(2026, 6, n).unwrap();
        assert_eq!(units_on(&d, cs, today), Some(now), "before the date: unchanged");
        assert_eq!(units_on(&d, cs, day(20)), Some(now - 2.0), "from the date: split row");
        assert_eq!(units_on(&d, cs, day(30)), Some(now - 2.0));
        assert_eq!(units_on(&d, cs, next), Some(later - 2.0), "later periods move too");
        assert_eq!(d.adjustments[0].effective_date, day(20));
        // On a period's first day: the row itself changes, nothing is split.
        let rows = d.rows["ContractServiceUnits"].len();
        let body =
            format!(r#"{{"contractServiceID":{cs},"effectiveDate":"2026-07-01","unitChange":3}}"#);
        apply(&mut d, body.as_bytes(), None).unwrap();
        assert_eq!(d.rows["ContractServiceUnits"].len(), rows);
        assert_eq!(units_on(&d, cs, next), Some(later + 1.0));
    }

    #[test]
    fn refusals_change_nothing() {
        let (mut d, cs, _) = data();
        let before = d.clone();
        for (body, says) in [
            (
                format!(r#"{{"contractServiceID":{cs},"unitChange":1}}"#),
                "effectiveDate is required",
            ),
            (
                format!(
                    r#"{{"contractServiceID":{cs},"effectiveDate":"2026-07-01","unitChange":0}}"#
                ),
                "not be zero",
            ),
            (
                format!(
                    r#"{{"contractServiceID":{cs},"effectiveDate":"2026-07-01","unitChange":1.5}}"#
                ),
                "whole number",
            ),
            (
                r#"{"contractServiceID":1,"effectiveDate":"2026-07-01","unitChange":1}"#.to_owned(),
                "does not exist",
            ),
            (
                format!(
                    r#"{{"contractServiceID":{cs},"effectiveDate":"2026-07-01","unitChange":-100000}}"#
                ),
                "negative",
            ),
            (
                format!(
                    r#"{{"contractServiceID":{cs},"effectiveDate":"2018-07-01","unitChange":1}}"#
                ),
                "outside contract",
            ),
            (r#"{"effectiveDate":"2026-07-01","unitChange":1}"#.to_owned(), "are required"),
        ] {
            let e = apply(&mut d, body.as_bytes(), None).unwrap_err();
            assert!(e.contains(says), "{body}: {e}");
        }
        let body = format!(
            r#"{{"contractID":1,"contractServiceID":{cs},"effectiveDate":"2026-07-01","unitChange":1}}"#
        );
        assert!(apply(&mut d, body.as_bytes(), Some(2)).unwrap_err().contains("not the body's"));
        assert_eq!(d, before);
    }
}
