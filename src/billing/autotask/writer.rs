//! Datto Autotask as a [`LineWriter`]: a quantity changes only through a contract service
//! adjustment (F4.16–F4.22) — `POST /ContractServiceAdjustments` with a signed `unitChange`
//! from an `effectiveDate` — and an adjustment cannot be read back, changed or deleted.
//!
//! The effective date follows `billing.autotask.adjustment_effective`: `next_period` (the
//! default) is the first day of the next calendar month, the next billing period of a
//! monthly contract and the day Gradient's "approve" uses (F4.23), so the current period is
//! billed as it stands; `today` splits the current period (for contracts that prorate).
//!
//! The line's quantity, for the write-back, is the units of the row covering that effective
//! date (with `next_period`: next month's row, which may already differ from this month's
//! because of a change someone scheduled). [`LineWriter::read_line`] reads it; the guard
//! ([`crate::billing::write::write_if_unchanged`]) compares it with the plan's quantities;
//! [`LineWriter::set_quantity`] posts `unitChange = to − (the units just read)`. Exactly once
//! rests on that re-read, never on the adjustment: a row already holding `to` sends nothing,
//! one holding anything but `from` is left alone, so a crash between the POST and its record
//! is settled by reading the row again — never by a second delta. The POST itself is sent
//! once (not retried after a timeout or a 5xx, which may have created it); a later apply
//! re-reads and decides.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::{Datelike, Months, NaiveDate, Utc};
use futures_util::future::BoxFuture;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::client::{AutotaskClient, Entity, UPSTREAM, cond, day_value};
use super::models::{ContractService, ContractServiceUnit};
use super::rules;
use crate::billing::BillingError;
use crate::billing::write::{LineState, LineWriter, PlannedRequest, WriteError, same_quantity};
use crate::config::{AdjustmentEffective, AutotaskConfig};
use crate::model::LineRef;
use crate::upstream::{RetryPolicy, StatsSnapshot, UpstreamError};

/// The route pattern of a units read, as errors name it.
const UNITS: &str = "POST /ContractServiceUnits/query";

/// One Autotask line: `(contract, service, contract service)`.
type Ids = (u64, u64, u64);

/// What a read found: the units billed from the effective date.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Covering {
    effective: NaiveDate,
    units: f64,
}

/// Reads and writes Autotask contract services' units. Cheap to clone (clones share the
/// last reads).
#[derive(Debug, Clone)]
pub struct AutotaskWriter {
    client: AutotaskClient,
    policy: AdjustmentEffective,
    /// The units each line's last read found, for the delta of the write that follows it.
    last: Arc<Mutex<HashMap<LineRef, Covering>>>,
}

impl AutotaskWriter {
    /// A writer for the configured Autotask with the default retry policy.
    pub fn new(cfg: &AutotaskConfig) -> Result<AutotaskWriter, UpstreamError> {
        Self::with_retry(cfg, RetryPolicy::default())
    }

    /// A writer with a specific retry policy (tests shorten the waits).
    pub fn with_retry(
        cfg: &AutotaskConfig,
        retry: RetryPolicy,
    ) -> Result<AutotaskWriter, UpstreamError> {
        Ok(AutotaskWriter {
            client: AutotaskClient::with_retry(cfg, retry)?,
            policy: cfg.adjustment_effective,
            last: Arc::default(),
        })
    }

    /// The effective-date policy.
    pub fn policy(&self) -> AdjustmentEffective {
        self.policy
    }

    /// The day an adjustment made on `today` takes effect.
    pub fn effective_date(policy: AdjustmentEffective, today: NaiveDate) -> NaiveDate {
        match policy {
            AdjustmentEffective::Today => today,
            AdjustmentEffective::NextPeriod => today
                .with_day(1)
                .and_then(|first| first.checked_add_months(Months::new(1)))
                .unwrap_or(today),
        }
    }

    fn ids(line: &LineRef) -> Result<Ids, WriteError> {
        match line {
            LineRef::Autotask { contract, service, contract_service } => {
                Ok((u64::from(*contract), u64::from(*service), *contract_service))
            }
            other => Err(WriteError::WrongPsa { psa: UPSTREAM, line: other.clone() }),
        }
    }

    /// The adjustment that moves `line` by `to − from` from `effective`, or why it cannot be
    /// sent: the units are whole numbers and the change is not zero.
    fn adjustment(
        line: &LineRef,
        from: f64,
        to: f64,
        effective: NaiveDate,
    ) -> Result<Value, WriteError> {
        let (contract, service, cs) = Self::ids(line)?;
        let whole = |q: f64| q.is_finite() && q >= 0.0 && q.fract() == 0.0;
        if !whole(to) {
            return Err(WriteError::InvalidQuantity { line: line.clone(), quantity: to });
        }
        let change = to - from;
        if !(change.is_finite() && change.fract() == 0.0) || change == 0.0 {
            return Err(WriteError::InvalidQuantity { line: line.clone(), quantity: to });
        }
        Ok(json!({
            "contractID": contract,
            "contractServiceID": cs,
            "serviceID": service,
            "effectiveDate": day_value(effective),
            "unitChange": change as i64,
        }))
    }

    /// The units row of the line's contract service covering the effective date (as of
    /// today), or why there is none: the contract service was deleted, or no row runs to
    /// that date (the service or its contract ends before it).
    async fn covering(&self, line: &LineRef) -> Result<Covering, WriteError> {
        let (_, _, cs) = Self::ids(line)?;
        let effective = Self::effective_date(self.policy, Utc::now().date_naive());
        let filter = vec![
            cond("eq", "contractServiceID", json!(cs)),
            cond("lte", "startDate", day_value(effective)),
            cond("gte", "endDate", day_value(effective)),
        ];
        let cancel = CancellationToken::new();
        let rows: Vec<ContractServiceUnit> = self
            .client
            .query(Entity::ContractServiceUnits, filter, &cancel)
            .await
            .map_err(|e| Self::explain(line, None, e))?;
        let refs: Vec<&ContractServiceUnit> = rows.iter().collect();
        let row =
            rules::covering_row(&refs, effective).map_err(|e| self.bad(UNITS, e.to_string()))?;
        let Some(row) = row else {
            return Err(self.missing(line, cs, effective).await);
        };
        let units = row.units.filter(|u| u.is_finite()).ok_or_else(|| {
            self.bad(UNITS, format!("units row {} of contract service {cs} has no units", row.id))
        })?;
        Ok(Covering { effective, units })
    }

    /// Why no units row covers `effective`: the contract service is gone, or it does not run
    /// to that date. Either way the line cannot take the change ([`WriteError::Gone`]).
    async fn missing(&self, line: &LineRef, cs: u64, effective: NaiveDate) -> WriteError {
        let found = self.client.get_one::<ContractService>(Entity::ContractServices, cs).await;
        let (endpoint, message) = match found {
            Ok(None) => (
                "GET /ContractServices/{id}".to_owned(),
                format!("contract service {cs} does not exist (the answer was {{\"item\": null}})"),
            ),
            Ok(Some(_)) => (
                UNITS.to_owned(),
                format!(
                    "no units row of contract service {cs} covers {effective}, the day a change \
                     would take effect (billing.autotask.adjustment_effective = \"{}\"): the \
                     service or its contract ends before it",
                    self.policy.as_str()
                ),
            ),
            Err(e) => return Self::explain(line, None, e),
        };
        WriteError::Gone { psa: UPSTREAM, line: line.clone(), endpoint, message }
    }

    fn bad(&self, endpoint: &str, reason: String) -> WriteError {
        self.client.upstream().bad_response(endpoint, reason, b"").into()
    }

    /// What a failed call means for one line: a 404 is [`WriteError::Gone`]; a refused
    /// adjustment (Autotask answers 500 with `errors`) is [`WriteError::Rejected`];
    /// `quantity` is the one a write asked for (`None` for a read).
    fn explain(line: &LineRef, quantity: Option<f64>, e: BillingError) -> WriteError {
        match e {
            BillingError::Upstream(e) => match (e, quantity) {
                (UpstreamError::NotFound { endpoint, message, .. }, _) => {
                    WriteError::Gone { psa: UPSTREAM, line: line.clone(), endpoint, message }
                }
                (
                    UpstreamError::Rejected { endpoint, status, message, fields, .. },
                    Some(quantity),
                ) => WriteError::Rejected {
                    psa: UPSTREAM,
                    line: line.clone(),
                    quantity,
                    endpoint,
                    status,
                    message,
                    fields,
                },
                (other, _) => WriteError::Upstream(other),
            },
            other => WriteError::Upstream(UpstreamError::Setup {
                upstream: UPSTREAM.into(),
                reason: other.to_string(),
            }),
        }
    }

    fn state(line: &LineRef, quantity: f64) -> Result<LineState, WriteError> {
        let (_, service, _) = Self::ids(line)?;
        Ok(LineState {
            line: line.clone(),
            quantity,
            // A units row's price is the period's amount, not a unit price (U2).
            unit_price: None,
            product_id: Some(service.to_string()),
            // The units row is judged as the write finds it; the contract is not re-read.
            inactive: None,
            locked: None,
        })
    }

    fn remember(&self, line: &LineRef, c: Covering) {
        self.last.lock().unwrap_or_else(|e| e.into_inner()).insert(line.clone(), c);
    }

    fn recall(&self, line: &LineRef) -> Option<Covering> {
        self.last.lock().unwrap_or_else(|e| e.into_inner()).remove(line)
    }
}

impl LineWriter for AutotaskWriter {
    fn psa(&self) -> &'static str {
        UPSTREAM
    }

    /// The units of the row covering the effective date, which the write would change.
    fn read_line<'a>(&'a self, line: &'a LineRef) -> BoxFuture<'a, Result<LineState, WriteError>> {
        Box::pin(async move {
            let c = self.covering(line).await?;
            self.remember(line, c);
            Self::state(line, c.units)
        })
    }

    /// One adjustment by `quantity −` the units the last read of this line found (read
    /// again when there was none, or when the effective date moved since), then a read of
    /// the row to confirm it holds `quantity`.
    fn set_quantity<'a>(
        &'a self,
        line: &'a LineRef,
        quantity: f64,
    ) -> BoxFuture<'a, Result<LineState, WriteError>> {
        Box::pin(async move {
            Self::ids(line)?;
            let today = Utc::now().date_naive();
            let effective = Self::effective_date(self.policy, today);
            let before = match self.recall(line).filter(|c| c.effective == effective) {
                Some(c) => c,
                None => self.covering(line).await?,
            };
            if same_quantity(before.units, quantity) {
                return Self::state(line, quantity);
            }
            let body = Self::adjustment(line, before.units, quantity, before.effective)?;
            let item = self
                .client
                .create(Entity::ContractServiceAdjustments, &body)
                .await
                .map_err(|e| Self::explain(line, Some(quantity), e))?;
            tracing::info!(line = %line.key(), adjustment = item, unit_change = %body["unitChange"],
                effective = %before.effective, "autotask: contract service adjustment created");
            // The adjustment cannot be read back: the units row says whether it took.
            match self.covering(line).await {
                Ok(after) if same_quantity(after.units, quantity) => Self::state(line, quantity),
                Ok(after) => Err(WriteError::Unconfirmed {
                    psa: UPSTREAM,
                    line: line.clone(),
                    quantity,
                    answered: after.units,
                }),
                Err(e) => {
                    // Autotask accepted it (itemId); the next read settles what the row holds.
                    tracing::warn!(line = %line.key(), adjustment = item, error = %e,
                        "autotask: the units row could not be read back after the adjustment");
                    Self::state(line, quantity)
                }
            }
        })
    }

    /// The POST for a line that holds `from`, effective by the policy as of today.
    fn describe(
        &self,
        line: &LineRef,
        from: f64,
        quantity: f64,
    ) -> Result<PlannedRequest, WriteError> {
        let effective = Self::effective_date(self.policy, Utc::now().date_naive());
        let body = Self::adjustment(line, from, quantity, effective)?;
        Ok(self.client.describe_create(Entity::ContractServiceAdjustments, &body))
    }

    fn stats(&self) -> StatsSnapshot {
        self.client.upstream().stats()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_effective_date_is_next_month_or_today() {
        let d = |y, m, day| NaiveDate::from_ymd_opt(y, m, day).unwrap();
        let next = AdjustmentEffective::NextPeriod;
        assert_eq!(AutotaskWriter::effective_date(next, d(2026, 6, 15)), d(2026, 7, 1));
        assert_eq!(AutotaskWriter::effective_date(next, d(2026, 12, 31)), d(2027, 1, 1));
        assert_eq!(AutotaskWriter::effective_date(next, d(2026, 1, 31)), d(2026, 2, 1));
        let today = AdjustmentEffective::Today;
        assert_eq!(AutotaskWriter::effective_date(today, d(2026, 6, 15)), d(2026, 6, 15));
    }

    #[test]
    fn the_adjustment_carries_the_signed_change() {
        let line = LineRef::Autotask { contract: 29684183, service: 55, contract_service: 3001 };
        let on = NaiveDate::from_ymd_opt(2026, 7, 1).unwrap();
        let body = AutotaskWriter::adjustment(&line, 42.0, 39.0, on).unwrap();
        assert_eq!(
            body.to_string(),
            r#"{"contractID":29684183,"contractServiceID":3001,"effectiveDate":"2026-07-01T00:00:00","serviceID":55,"unitChange":-3}"#
        );
        for (from, to) in [(1.0, 1.5), (1.0, -1.0), (1.0, f64::NAN), (2.0, 2.0), (0.5, 2.0)] {
            let e = AutotaskWriter::adjustment(&line, from, to, on).unwrap_err();
            assert!(matches!(e, WriteError::InvalidQuantity { .. }), "{from} → {to}: {e}");
        }
        let e = AutotaskWriter::adjustment(&LineRef::Csv { line: 7 }, 1.0, 2.0, on).unwrap_err();
        assert!(matches!(e, WriteError::WrongPsa { psa: "autotask", .. }), "{e}");
    }
}
