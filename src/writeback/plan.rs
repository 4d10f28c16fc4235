//! The planner: from a reconciliation and the mapping's write-back policy to a [`Plan`] of
//! quantity changes on PSA lines. PURE: no I/O and no clock (the time is passed in), so the
//! same inputs always give the same plan and the store can tell "same changes" apart.
//!
//! The rules (issue #14, "The plan"): only `under_billed`, `over_billed` and
//! `billed_without_usage` rows of products whose policy is not `off` become changes; an
//! `unbilled` row becomes a manual step (mpsync never creates lines); every other row —
//! `stale`, `pending`, `suppressed`, `within_tolerance`, `match`, unmapped — is left alone.
//! A row billed by several counted lines is never guessed at: without a `[[line]]`
//! preference it is listed as not planned, with the lines and the stanza that picks one.

use chrono::{DateTime, Utc};

use super::{Change, LineChoice, ManualStep, NotPlanned, Plan, Policy, WriteBackMode};
use crate::billing::write::{QUANTITY_EPSILON, same_quantity};
use crate::config::mapping::{LinePreference, Mapping};
use crate::model::LineRef;
use crate::reconcile::{
    LineEvidence, Reconciliation, ReconciliationHead, Row, RowKey, Status, quantity,
};

/// Builds the plan for `rec` as of `now`. `billing` is the billing source's name
/// (`connectwise`, `csv`), `writable` whether it has a write path, `max_changes_per_apply`
/// the `[write_back]` cap; all three are recorded in the plan for `apply` and for people.
pub fn build(
    rec: &Reconciliation,
    mapping: &Mapping,
    billing: &str,
    writable: bool,
    max_changes_per_apply: u32,
    now: DateTime<Utc>,
) -> Plan {
    build_from(&rec.head(), &rec.rows, mapping, billing, writable, max_changes_per_apply, now)
}

/// The statuses whose rows the planner looks at; the others are left alone, so a caller
/// that keeps rows apart reads only these (with their evidence).
pub const PLANNED_STATUSES: [Status; 4] =
    [Status::Unbilled, Status::UnderBilled, Status::OverBilled, Status::BilledWithoutUsage];

/// [`build`] from a reconciliation's head and some of its rows, in key order: those with a
/// [`PLANNED_STATUSES`] status are enough (others are skipped), with their evidence.
pub fn build_from(
    rec: &ReconciliationHead,
    rows: &[Row],
    mapping: &Mapping,
    billing: &str,
    writable: bool,
    max_changes_per_apply: u32,
    now: DateTime<Utc>,
) -> Plan {
    let mut plan = Plan {
        id: 0,
        created_at: now,
        reconciliation_at: rec.computed_at,
        vendor_run: rec.vendor_run,
        billing_run: rec.billing_run,
        billing: billing.to_string(),
        writable,
        max_changes_per_apply,
        changes: Vec::new(),
        not_planned: Vec::new(),
        manual: Vec::new(),
        superseded_by: None,
    };
    for row in rows {
        let RowKey::Service { account, psa_product } = &row.key else { continue };
        let policy = mapping.policy_for(psa_product);
        if policy.mode == WriteBackMode::Off {
            continue;
        }
        let service = Service { row, account, psa_product, policy: &policy };
        match row.status {
            Status::Unbilled => plan.manual.push(service.manual_step()),
            Status::UnderBilled | Status::OverBilled | Status::BilledWithoutUsage => {
                match service.change(mapping.line_for(account, psa_product)) {
                    Ok(mut change) => {
                        change.row = plan.changes.len() as u32 + 1;
                        plan.changes.push(change);
                    }
                    Err(not) => plan.not_planned.push(*not),
                }
            }
            _ => {}
        }
    }
    plan
}

/// One service row with its keys and policy.
struct Service<'a> {
    row: &'a Row,
    account: &'a str,
    psa_product: &'a str,
    policy: &'a Policy,
}

/// "1 user", "42 users", "no users".
fn users(n: u64) -> String {
    match n {
        0 => "no users".to_string(),
        1 => "1 user".to_string(),
        n => format!("{n} users"),
    }
}

impl Service<'_> {
    /// The Mailprotector products behind the row, in words.
    fn products(&self) -> String {
        if self.row.products.is_empty() {
            self.psa_product.to_string()
        } else {
            self.row.products.join(", ")
        }
    }

    fn manual_step(&self) -> ManualStep {
        let n = self.row.vendor_quantity.unwrap_or(0);
        let mut reason = format!(
            "Mailprotector counts {} of {}; no line bills {} for this account: add one in the \
             PSA (mpsync never creates lines)",
            users(n),
            self.products(),
            self.psa_product
        );
        if let Some(min) = self.policy.min_quantity.filter(|m| *m > n as f64) {
            reason.push_str(&format!("; min_quantity {} applies", quantity(min)));
        }
        ManualStep {
            account: self.account.to_string(),
            account_name: self.row.account_name.clone(),
            psa_product: self.psa_product.to_string(),
            products: self.row.products.clone(),
            quantity: n,
            reason,
        }
    }

    fn not_planned(&self, counted: &[&LineEvidence], reason: String) -> Box<NotPlanned> {
        Box::new(NotPlanned {
            account: self.account.to_string(),
            account_name: self.row.account_name.clone(),
            psa_product: self.psa_product.to_string(),
            status: self.row.status,
            lines: counted
                .iter()
                .map(|l| LineChoice {
                    line_key: l.line.as_ref().map(LineRef::key).unwrap_or_default(),
                    source_ref: l.source_ref.clone(),
                    quantity: l.quantity,
                })
                .collect(),
            reason,
            stanza: None,
        })
    }

    /// The change this discrepancy row calls for, or why there is none.
    fn change(&self, pref: Option<&LinePreference>) -> Result<Change, Box<NotPlanned>> {
        let row = self.row;
        let counted: Vec<&LineEvidence> = row.evidence.lines.iter().filter(|l| l.counted).collect();
        let vendor = match (row.status, row.vendor_quantity) {
            (Status::BilledWithoutUsage, _) => 0,
            (_, Some(v)) => v,
            (_, None) => {
                let why = "the reconciliation has no Mailprotector count for this row".to_string();
                return Err(self.not_planned(&counted, why));
            }
        };
        if counted.is_empty() {
            let why = "no counted PSA line bills this row".to_string();
            return Err(self.not_planned(&counted, why));
        }
        if counted.iter().any(|l| l.line.is_none()) {
            let why = "the billing data was read by an older mpsync and does not name its PSA \
                       lines: run a billing sync (`mpsync sync --once`, or POST /v1/sync to the \
                       daemon), then look at the plan again"
                .to_string();
            return Err(self.not_planned(&counted, why));
        }
        let target = match (counted.len(), pref) {
            (1, _) => 0,
            (n, None) => {
                let keys = line_list(&counted);
                let first = counted[0].line.as_ref().expect("checked above");
                let mut not = self.not_planned(
                    &counted,
                    format!(
                        "billed by {n} counted lines ({keys}); mpsync does not guess which one to \
                         change. Name it in the mapping file with a [[line]] table like the one \
                         shown (use the line you want changed), and the next plan changes it"
                    ),
                );
                not.stanza = Some(LinePreference::stanza(self.account, self.psa_product, first));
                return Err(not);
            }
            (_, Some(p)) => match counted.iter().position(|l| l.line.as_ref() == Some(&p.line)) {
                Some(i) => i,
                None => {
                    let why = format!(
                        "the [[line]] on line {} of the mapping file names {}, which is not a \
                         counted line of this row ({}); name one of these",
                        p.source_line,
                        p.line.key(),
                        line_list(&counted)
                    );
                    return Err(self.not_planned(&counted, why));
                }
            },
        };
        let line = counted[target];
        if let Some(r) = line.line.as_ref().filter(|r| !r.writable()) {
            let why = format!(
                "{} is a line whose quantity the PSA computes itself ({r}): a written quantity \
                 would be overwritten at its next recalculation, so mpsync never changes it; \
                 change how the PSA counts it, or bill the product on a line with a manual \
                 quantity",
                r.key()
            );
            return Err(self.not_planned(&counted, why));
        }
        let others: f64 =
            counted.iter().enumerate().filter(|(i, _)| *i != target).map(|(_, l)| l.quantity).sum();
        let floor = self.policy.min_quantity.unwrap_or(0.0);
        let total = (vendor as f64).max(floor);
        let to = total - others;
        let from = line.quantity;
        let line_ref = line.line.clone().expect("checked above");
        if to < -QUANTITY_EPSILON {
            let why = format!(
                "the other counted lines already bill {}, more than the {} this row should bill; \
                 lower them in the PSA by hand",
                quantity(others),
                quantity(total)
            );
            return Err(self.not_planned(&counted, why));
        }
        let to = to.max(0.0);
        if same_quantity(to, from) {
            let why = format!(
                "min_quantity {} keeps {} at {}: nothing to change (Mailprotector counts {})",
                quantity(floor),
                line_ref.key(),
                quantity(from),
                users(vendor)
            );
            return Err(self.not_planned(&counted, why));
        }
        let mut reason = format!("Mailprotector counts {} of {}; ", users(vendor), self.products());
        if counted.len() == 1 {
            reason.push_str(&format!("the line bills {}", quantity(from)));
        } else {
            reason.push_str(&format!(
                "the {} counted lines bill {} ({}); the [[line]] on line {} picks {}",
                counted.len(),
                quantity(from + others),
                line_list(&counted),
                pref.map_or(0, |p| p.source_line),
                line_ref.key()
            ));
        }
        if floor > vendor as f64 {
            reason.push_str(&format!("; min_quantity {} keeps the total at it", quantity(floor)));
        }
        let unit_price = line.unit_price.or(row.unit_price);
        Ok(Change {
            row: 0,
            account: self.account.to_string(),
            account_name: row.account_name.clone(),
            psa_product: self.psa_product.to_string(),
            products: row.products.clone(),
            status: row.status,
            line_key: line_ref.key(),
            line: line_ref,
            from,
            to,
            vendor_quantity: vendor,
            unit_price,
            monthly_amount: unit_price.map(|p| (to - from) * p),
            reason,
            mode: self.policy.mode,
            held: held(from, to, self.policy.max_decrease_percent),
            vendor_run: row.evidence.vendor_run,
            billing_run: row.evidence.billing_run,
        })
    }
}

/// `cw:1/2 30, cw:1/3 10`.
fn line_list(counted: &[&LineEvidence]) -> String {
    counted
        .iter()
        .map(|l| {
            let key = l.line.as_ref().map_or_else(|| l.source_ref.clone(), LineRef::key);
            format!("{key} {}", quantity(l.quantity))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Why a drop from `from` to `to` waits for review: when it is more than `max_percent` of
/// `from`.
fn held(from: f64, to: f64, max_percent: f64) -> Option<String> {
    if to >= from || from <= 0.0 {
        return None;
    }
    let percent = (from - to) / from * 100.0;
    (percent > max_percent + 1e-9).then(|| {
        format!(
            "a drop of {}% ({} → {}) is more than max_decrease_percent {}%: check it, then apply \
             it with `mpsync apply` (the daemon never applies it on its own)",
            quantity((percent * 10.0).round() / 10.0),
            quantity(from),
            quantity(to),
            quantity(max_percent)
        )
    })
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
