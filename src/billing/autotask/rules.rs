//! Which Autotask contract services count toward the billed quantity, and with what
//! quantity (reference §4, "Daemon-side rules"): the company is active and of type Customer
//! (1); the contract is a Recurring Service contract (type 7), active (status 1) and covers
//! the day; the quantity is the units of the one row covering the day — the row with the
//! latest `startDate` on or before it whose `endDate` is on or after it — never a sum of
//! periods and never the first row; the price is `adjustedPrice`, else `unitPrice`. Lines
//! that do not count are kept, with every reason in the note. Service bundles are reported,
//! not counted. Dates are days (F5.11: date-only fields sit at midnight UTC).

use chrono::{DateTime, NaiveDate, Utc};

use super::models::{
    Company, Contract, ContractService, ContractServiceBundle, ContractServiceUnit,
};

/// `companyType` of a customer (F4.2).
pub const CUSTOMER: i64 = 1;
/// `contractType` of a Recurring Service contract, the only type with contract services.
pub const RECURRING_SERVICE: i64 = 7;
/// `status` of an active contract (F4.5).
pub const ACTIVE: i64 = 1;

/// A date field that holds no date Autotask writes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{entity} {id} {field} {value:?} is not a date")]
pub struct UnreadableDate {
    /// The entity, as Autotask names it (`Contracts`, `ContractServiceUnits`).
    pub entity: &'static str,
    /// The record's id.
    pub id: u64,
    /// The field (`startDate`, `endDate`).
    pub field: &'static str,
    /// What it holds, trimmed.
    pub value: String,
}

/// The day of an Autotask datetime (`2024-06-01T00:00:00.000Z`, with or without a zone or
/// fraction) or date; `None` for an empty value, `Err` (the value) for anything else.
pub fn parse_day(value: Option<&str>) -> Result<Option<NaiveDate>, String> {
    let Some(v) = value.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    if let Ok(t) = DateTime::parse_from_rfc3339(v) {
        return Ok(Some(t.with_timezone(&Utc).date_naive()));
    }
    let head = v.get(..10).unwrap_or(v);
    NaiveDate::parse_from_str(head, "%Y-%m-%d").map(Some).map_err(|_| v.to_owned())
}

fn day(
    entity: &'static str,
    id: u64,
    field: &'static str,
    value: Option<&str>,
) -> Result<Option<NaiveDate>, UnreadableDate> {
    parse_day(value).map_err(|value| UnreadableDate { entity, id, field, value })
}

/// Why the lines of company `id` (`None`: not in the company listing) do not count; empty
/// when they do.
pub fn company_reasons(id: u64, company: Option<&Company>) -> Vec<String> {
    let Some(c) = company else {
        return vec![format!("company {id} is not in the company listing")];
    };
    let mut why = Vec::new();
    if c.is_active != Some(true) {
        why.push(format!("company {id} is inactive"));
    }
    match c.company_type {
        Some(CUSTOMER) => {}
        Some(t) => why.push(format!("company {id} is of type {t}, not Customer ({CUSTOMER})")),
        None => why.push(format!("company {id} has no type, not Customer ({CUSTOMER})")),
    }
    why
}

/// Why the lines of `contract` do not count on `day`; empty when they do.
pub fn contract_reasons(contract: &Contract, on: NaiveDate) -> Result<Vec<String>, UnreadableDate> {
    let id = contract.id;
    let mut why = Vec::new();
    match contract.contract_type {
        Some(RECURRING_SERVICE) => {}
        t => why.push(format!(
            "contract {id} is of type {}, not Recurring Service ({RECURRING_SERVICE})",
            t.map_or_else(|| "(none)".to_owned(), |t| t.to_string())
        )),
    }
    if contract.status != Some(ACTIVE) {
        let s = contract.status.map_or_else(|| "(none)".to_owned(), |s| s.to_string());
        why.push(format!("contract {id} is inactive (status {s})"));
    }
    let start = day("Contracts", id, "startDate", contract.start_date.as_deref())?;
    let end = day("Contracts", id, "endDate", contract.end_date.as_deref())?;
    if let Some(s) = start.filter(|s| *s > on) {
        why.push(format!("contract {id} starts on {s}"));
    }
    if let Some(e) = end.filter(|e| *e < on) {
        why.push(format!("contract {id} ended on {e}"));
    }
    Ok(why)
}

/// The units row covering `on` among a contract service's rows (any periods, any order):
/// the latest `startDate` on or before `on` whose `endDate` is on or after it (a row without
/// an end is open); on a tie (a split on that very day) the newer row. `None` when no row
/// covers the day.
pub fn covering_row<'a>(
    rows: &[&'a ContractServiceUnit],
    on: NaiveDate,
) -> Result<Option<&'a ContractServiceUnit>, UnreadableDate> {
    let mut best: Option<(NaiveDate, &ContractServiceUnit)> = None;
    for r in rows {
        let start = day("ContractServiceUnits", r.id, "startDate", r.start_date.as_deref())?;
        let end = day("ContractServiceUnits", r.id, "endDate", r.end_date.as_deref())?;
        let Some(start) = start.filter(|s| *s <= on) else { continue };
        if end.is_some_and(|e| e < on) {
            continue;
        }
        if best.is_none_or(|(s, b)| (start, r.id) > (s, b.id)) {
            best = Some((start, r));
        }
    }
    Ok(best.map(|(_, r)| r))
}

/// The price per unit: `adjustedPrice` when set, else `unitPrice`.
pub fn unit_price(service: &ContractService) -> Option<f64> {
    service
        .adjusted_price
        .filter(|p| p.is_finite())
        .or(service.unit_price.filter(|p| p.is_finite()))
}

/// One contract service as a billed line: its quantity (the covering row's units, 0 when no
/// row covers `on`) and why it does not count, if it does not.
#[derive(Debug, Clone, PartialEq)]
pub struct Judged {
    /// Units billed on the day.
    pub quantity: f64,
    /// Every reason the line does not count; `None` when it counts.
    pub note: Option<String>,
}

/// Judges one contract service on `on`: the company's and contract's reasons, then its
/// units rows (see [`covering_row`]).
pub fn judge(
    company: &[String],
    contract: &[String],
    rows: &[&ContractServiceUnit],
    on: NaiveDate,
) -> Result<Judged, UnreadableDate> {
    let mut why: Vec<String> = company.iter().chain(contract).cloned().collect();
    let row = covering_row(rows, on)?;
    let quantity = match row {
        Some(r) => match r.units.filter(|u| u.is_finite()) {
            Some(u) => u,
            None => {
                why.push(format!("units row {} has no units", r.id));
                0.0
            }
        },
        None => {
            why.push(format!("no units row covers {on} ({} period rows read)", rows.len()));
            0.0
        }
    };
    Ok(Judged { quantity, note: if why.is_empty() { None } else { Some(why.join("; ")) } })
}

/// Why a service bundle's row does not count: its units live in a chain mpsync does not
/// read.
pub fn bundle_note(bundle: &ContractServiceBundle) -> String {
    let b = bundle.service_bundle_id.map_or_else(|| "(none)".to_owned(), |b| b.to_string());
    format!(
        "service bundle {b} (contract service bundle {}): bundles are not supported; their \
         units live in ContractServiceBundleUnits, which mpsync does not count — bill the \
         bundle's services as contract services, or reconcile it by hand",
        bundle.id
    )
}

#[cfg(test)]
#[path = "rules_tests.rs"]
mod tests;
