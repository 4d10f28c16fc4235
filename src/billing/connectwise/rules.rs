//! Which agreement additions count toward the billed quantity (reference §7): the agreement
//! is not cancelled and its status is absent or `Active`; the addition's `cancelledDate` is
//! empty or in the future, its `effectiveDate` empty or not in the future, and it bills the
//! customer (`billCustomer` `Billable`; absent is read as `Billable`, the ConnectWise default).
//! Additions that do not count are kept, with every reason in the note.

use chrono::{DateTime, NaiveDate, Utc};

use super::models::{Addition, Agreement};

/// A date field that holds no date ConnectWise writes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{value:?} is not a date")]
pub struct NotADate {
    /// The value, trimmed.
    pub value: String,
}

/// An addition whose dates cannot be read, so whether it counts cannot be judged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("addition {addition} {field} {source}")]
pub struct UnreadableDate {
    /// The addition's id.
    pub addition: u64,
    /// The field, as ConnectWise names it (`cancelledDate`, `effectiveDate`).
    pub field: &'static str,
    /// What it holds.
    #[source]
    pub source: NotADate,
}

/// Parses an ISO-8601 date-time (`2024-01-01T00:00:00Z`) or a bare date (midnight UTC).
/// Empty means "no date". An unreadable value is an error naming it.
pub fn parse_date(value: Option<&str>) -> Result<Option<DateTime<Utc>>, NotADate> {
    let Some(v) = value.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    if let Ok(t) = DateTime::parse_from_rfc3339(v) {
        return Ok(Some(t.with_timezone(&Utc)));
    }
    if let Ok(d) = NaiveDate::parse_from_str(v, "%Y-%m-%d") {
        return Ok(d.and_hms_opt(0, 0, 0).map(|t| t.and_utc()));
    }
    // ConnectWise sometimes omits the zone; it means UTC.
    if let Ok(t) = chrono::NaiveDateTime::parse_from_str(v, "%Y-%m-%dT%H:%M:%S") {
        return Ok(Some(t.and_utc()));
    }
    Err(NotADate { value: v.to_owned() })
}

/// `Ok(None)` when the addition counts at `now`; `Ok(Some(note))` with every reason when it
/// does not; `Err` when a date cannot be read. `company_deleted` comes from the company list.
pub fn judge(
    agreement: &Agreement,
    addition: &Addition,
    company_deleted: bool,
    now: DateTime<Utc>,
) -> Result<Option<String>, UnreadableDate> {
    let mut why = Vec::new();
    if agreement.cancelled_flag == Some(true) {
        why.push(format!("agreement {} is cancelled", agreement.id));
    }
    if let Some(status) = agreement.agreement_status.as_deref()
        && !status.trim().eq_ignore_ascii_case("active")
    {
        why.push(format!("agreement {} has status {status}, not Active", agreement.id));
    }
    if company_deleted {
        why.push("its company is marked deleted".to_owned());
    }
    why.extend(addition_reasons(addition, now)?);
    Ok(if why.is_empty() { None } else { Some(why.join("; ")) })
}

/// The rules on the addition's own fields (dates and `billCustomer`), as [`judge`] applies
/// them: every reason it does not count at `now` (none when it does). A write-back judges a
/// single addition with them, without its agreement.
pub fn addition_reasons(
    addition: &Addition,
    now: DateTime<Utc>,
) -> Result<Vec<String>, UnreadableDate> {
    let date = |field: &'static str, value: Option<&str>| {
        parse_date(value).map_err(|source| UnreadableDate { addition: addition.id, field, source })
    };
    let mut why = Vec::new();
    let cancelled = date("cancelledDate", addition.cancelled_date.as_deref())?;
    if let Some(c) = cancelled
        && c <= now
    {
        why.push(format!("cancelled on {}", c.format("%Y-%m-%d")));
    }
    let effective = date("effectiveDate", addition.effective_date.as_deref())?;
    if let Some(e) = effective
        && e > now
    {
        why.push(format!("takes effect on {}", e.format("%Y-%m-%d")));
    }
    if let Some(bill) = addition.bill_customer.as_deref()
        && !bill.trim().eq_ignore_ascii_case("billable")
    {
        why.push(format!("billCustomer is {bill}, not Billable"));
    }
    Ok(why)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agreement(cancelled: Option<bool>, status: Option<&str>) -> Agreement {
        Agreement {
            id: 7,
            name: None,
            company: None,
            cancelled_flag: cancelled,
            agreement_status: status.map(str::to_owned),
        }
    }

    fn addition(eff: Option<&str>, canc: Option<&str>, bill: Option<&str>) -> Addition {
        Addition {
            id: 9,
            product: None,
            quantity: Some(3.0),
            less_included: None,
            unit_price: None,
            bill_customer: bill.map(str::to_owned),
            effective_date: eff.map(str::to_owned),
            cancelled_date: canc.map(str::to_owned),
        }
    }

    #[test]
    fn the_seven_rules() {
        let now = "2026-06-01T00:00:00Z".parse::<DateTime<Utc>>().unwrap();
        let ok = agreement(Some(false), Some("Active"));
        let counts = |ag: &Agreement, ad: &Addition| judge(ag, ad, false, now).unwrap();
        assert_eq!(counts(&ok, &addition(None, None, Some("Billable"))), None);
        assert_eq!(counts(&agreement(None, None), &addition(Some(""), Some(""), None)), None);
        assert_eq!(
            counts(&ok, &addition(Some("2026-06-01T00:00:00Z"), Some("2026-07-01"), None)),
            None
        );
        let n = counts(&agreement(Some(true), None), &addition(None, None, None)).unwrap();
        assert!(n.contains("agreement 7 is cancelled"), "{n}");
        let n =
            counts(&agreement(Some(false), Some("Expired")), &addition(None, None, None)).unwrap();
        assert!(n.contains("status Expired"), "{n}");
        let n = counts(&ok, &addition(None, Some("2026-05-31T00:00:00Z"), None)).unwrap();
        assert_eq!(n, "cancelled on 2026-05-31");
        let n = counts(&ok, &addition(Some("2026-06-02"), None, None)).unwrap();
        assert_eq!(n, "takes effect on 2026-06-02");
        let n = counts(&ok, &addition(None, None, Some("DoNotBill"))).unwrap();
        assert_eq!(n, "billCustomer is DoNotBill, not Billable");
        assert!(judge(&ok, &addition(None, None, None), true, now).unwrap().is_some());
        let e = judge(&ok, &addition(Some("soon"), None, None), false, now).unwrap_err();
        assert_eq!(e.to_string(), "addition 9 effectiveDate \"soon\" is not a date");
    }
}
