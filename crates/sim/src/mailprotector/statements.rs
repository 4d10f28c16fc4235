//! Billing statements (`GET /resellers/{id}/statements`, `/customers/{id}/statements`): summary
//! only, as §4.6 and §5 describe (no line items, §12 #1). Monthly, derived from the entity's id
//! and creation date up to a fixed month so they are deterministic.

use axum::Extension;
use axum::extract::{Path, RawQuery, State};
use chrono::{Datelike, Days, Months, NaiveDate};
use serde_json::{Value, json};

use super::ApiError;
use super::auth::Caller;
use super::pagination::ListQuery;
use super::routes::{Res, check};
use crate::control::SimControl;
use crate::dataset::{Millis, Scope};

/// The last statement period starts in this month (fixed, so data does not drift with the clock).
const LAST_MONTH: (i32, u32) = (2026, 10);
/// At most this many monthly statements per entity.
const MAX_STATEMENTS: u32 = 24;

fn statements(base_id: u64, created_at: Millis, id: u64, scale: u64) -> Vec<Value> {
    let created =
        chrono::DateTime::from_timestamp_millis(created_at).unwrap_or_default().date_naive();
    let day = created.day().min(28);
    let Some(last) = NaiveDate::from_ymd_opt(LAST_MONTH.0, LAST_MONTH.1, day) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for k in 0..MAX_STATEMENTS {
        let Some(start) = last.checked_sub_months(Months::new(MAX_STATEMENTS - 1 - k)) else {
            continue;
        };
        if start < created {
            continue;
        }
        let end =
            start.checked_add_months(Months::new(1)).and_then(|d| d.checked_sub_days(Days::new(1)));
        let Some(end) = end else { continue };
        let billing = end.checked_add_days(Days::new(1)).unwrap_or(end);
        let due = billing.checked_add_days(Days::new(30)).unwrap_or(billing);
        let cents =
            (id.wrapping_mul(7919).wrapping_add(u64::from(k) * 104_729) % 40_000 + 1_000) * scale;
        out.push(json!({
            "id": base_id + id * 32 + u64::from(k),
            "amount": cents as f64 / 100.0,
            "currency": "USD",
            "statement_type": "Automatic",
            "statement_status": "Settled",
            "starting_date": start.format("%Y-%m-%d").to_string(),
            "ending_date": end.format("%Y-%m-%d").to_string(),
            "billing_date": billing.format("%Y-%m-%d").to_string(),
            "due_date": due.format("%Y-%m-%d").to_string(),
        }));
    }
    out
}

fn respond(q: &ListQuery, items: Vec<Value>) -> Res {
    let idx: Vec<usize> = (0..items.len()).collect();
    Ok(q.respond(&idx, |i| items[i].clone()))
}

/// `GET /resellers/{id}/statements`: the reseller's own statements.
pub(crate) async fn reseller_statements(
    State(c): State<SimControl>,
    Extension(who): Extension<Caller>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Res {
    let q = ListQuery::parse(q.as_deref())?;
    let items = {
        let ds = c.read();
        let id = check(&ds, &who, Scope::Reseller, &id)?;
        let r = ds.resellers().get(&id).ok_or_else(|| ApiError::internal("reseller vanished"))?;
        statements(2_000_000, r.created_at, id, 20)
    };
    respond(&q, items)
}

/// `GET /customers/{id}/statements`.
pub(crate) async fn customer_statements(
    State(c): State<SimControl>,
    Extension(who): Extension<Caller>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Res {
    let q = ListQuery::parse(q.as_deref())?;
    let items = {
        let ds = c.read();
        let id = check(&ds, &who, Scope::Customer, &id)?;
        let cu = ds.customers().get(&id).ok_or_else(|| ApiError::internal("customer vanished"))?;
        statements(3_000_000, cu.created_at, id, 1)
    };
    respond(&q, items)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monthly_periods_with_plain_dates() {
        let s = statements(3_000_000, 1_273_660_404_000, 329, 1);
        assert_eq!(s.len(), 24);
        let last = &s[23];
        assert_eq!(last["starting_date"], "2026-10-12");
        assert_eq!(last["ending_date"], "2026-11-11");
        assert_eq!(last["billing_date"], "2026-11-12");
        assert_eq!(last["due_date"], "2026-12-12");
        assert_eq!(last["currency"], "USD");
        let ids: Vec<u64> = s.iter().map(|v| v["id"].as_u64().unwrap()).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
    }
}
