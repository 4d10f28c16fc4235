//! [`compute`]: gathers vendor counts and billed lines per row key, then gives each row its
//! status by precedence: stale, suppressed, pending, then the comparison itself.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};

use super::{
    CustomerContribution, CustomerMapping, Evidence, Freshness, Inputs, LineEvidence, MappingState,
    Observation, Prior, Reconciliation, ReconciliationHead, Row, RowKey, Since, SourceStatus,
    Status, Summary, SuppressionRef,
};
use crate::config::{Mapping, Suppression};
use crate::model::{BilledLine, CustomerUsage, RunId};

/// Quantities closer than this are equal (billed quantities are floats).
const EPSILON: f64 = 1e-9;

/// Computes the reconciliation. Pure: the same inputs always give the same result.
pub fn compute(inp: &Inputs<'_>) -> Reconciliation {
    let previous: HashMap<&RowKey, &Row> =
        inp.previous.map(|p| p.rows.iter().map(|r| (&r.key, r)).collect()).unwrap_or_default();
    let mut rows = Vec::new();
    let (head, customers) =
        compute_each(inp, &mut |key| previous.get(key).map(|r| Prior::of(r)), &mut |row| {
            rows.push(row)
        });
    Reconciliation {
        computed_at: head.computed_at,
        vendor_run: head.vendor_run,
        billing_run: head.billing_run,
        rows,
        summary: head.summary,
        customers,
    }
}

/// [`compute`] one row at a time, for a store that keeps rows apart: `prior` gives the
/// previous result's row of a key (its `since` and debounce memory; `inp.previous` is not
/// read), and `sink` takes each row, in key order, as soon as it is finished, so the caller
/// never holds the whole set. Returns the head (summary of every row) and the customers'
/// mapping states. Pure as long as `prior` answers from a fixed previous result.
pub fn compute_each(
    inp: &Inputs<'_>,
    prior: &mut dyn FnMut(&RowKey) -> Option<Prior>,
    sink: &mut dyn FnMut(Row),
) -> (ReconciliationHead, Vec<CustomerMapping>) {
    let vendor_run = inp.usage.map(|u| u.run_id);
    let billing_run = inp.billed.map(|b| b.run_id);
    let vendor =
        freshness("vendor", inp.usage.map(|u| (u.run_id, u.observed_at)), &inp.vendor, inp);
    let billing =
        freshness("billing", inp.billed.map(|b| (b.run_id, b.observed_at)), &inp.billing, inp);
    let newest_run = vendor_run.max(billing_run);
    let names = account_names(inp);
    let mut totals = Totals::default();
    {
        let ctx = RowCtx { vendor: &vendor, billing: &billing, newest_run, names: &names };
        gather(inp, &mut |key, draft| {
            let prev = prior(&key);
            let row = finish(inp, key, draft, prev.as_ref(), &ctx);
            totals.add(&row);
            sink(row);
        });
    }
    let head = ReconciliationHead {
        computed_at: inp.now,
        vendor_run,
        billing_run,
        summary: totals.summary(vendor, billing),
    };
    (head, customer_states(inp, &names))
}

/// PSA account id → name, from the billed snapshot.
fn account_names<'a>(inp: &Inputs<'a>) -> HashMap<&'a str, &'a str> {
    inp.billed
        .map(|b| b.accounts.iter().map(|a| (a.id.as_str(), a.name.as_str())).collect())
        .unwrap_or_default()
}

/// What every row's finishing shares.
struct RowCtx<'a> {
    vendor: &'a Freshness,
    billing: &'a Freshness,
    newest_run: Option<RunId>,
    names: &'a HashMap<&'a str, &'a str>,
}

/// Why rows using a source are stale, if they are.
fn freshness(
    what: &str,
    snapshot: Option<(RunId, DateTime<Utc>)>,
    status: &SourceStatus,
    inp: &Inputs<'_>,
) -> Freshness {
    let age = snapshot.map(|(_, at)| (inp.now - at).num_seconds());
    let max_age = inp.settings.max_age;
    let stale_reason = match (snapshot, age) {
        (None, _) => Some(format!("no {what} run has completed yet")),
        _ if status.last_run_failed => Some(format!(
            "the last {what} run failed ({}); its last good data is not compared",
            status.last_error.as_deref().unwrap_or("no reason recorded")
        )),
        (_, Some(age)) if age > 0 && age as u64 > max_age.as_secs() => Some(format!(
            "the {what} data is {} old, more than max_age {}",
            humantime::format_duration(std::time::Duration::from_secs(age as u64)),
            humantime::format_duration(max_age)
        )),
        _ => None,
    };
    Freshness {
        run_id: snapshot.map(|(id, _)| id),
        observed_at: snapshot.map(|(_, at)| at),
        age_seconds: age,
        last_run_failed: status.last_run_failed,
        last_error: status.last_error.clone(),
        stale_reason,
    }
}

/// What is known about one row before its status is decided.
#[derive(Debug, Default)]
struct Draft {
    customer_name: Option<String>,
    /// Sorted, without duplicates.
    products: Vec<String>,
    vendor: u64,
    customers: Vec<CustomerContribution>,
    lines: Vec<LineEvidence>,
    billed: f64,
    counted: usize,
}

impl Draft {
    fn count(&mut self, c: &CustomerUsage, product: &str, count: u64) {
        self.vendor += count;
        self.customers.push(CustomerContribution {
            customer: c.id,
            name: c.name.clone(),
            product: product.to_owned(),
            count,
        });
    }

    fn bill(&mut self, line: &BilledLine) {
        self.lines.push(LineEvidence {
            source_ref: line.source_ref.clone(),
            line: line.line.clone(),
            quantity: line.quantity,
            unit_price: line.unit_price,
            counted: line.counted,
            note: line.note.clone(),
        });
        if line.counted && line.quantity.is_finite() {
            self.billed += line.quantity;
            self.counted += 1;
        }
    }
}

/// The entries of one PSA account: indices of its customers and of its billed lines, in
/// input order.
#[derive(Default)]
struct AccountEntries {
    customers: Vec<usize>,
    lines: Vec<usize>,
}

/// Sums vendor counts and billed lines per row key and hands each row's draft to `f`, in key
/// order: service rows one account at a time (only that account's drafts are held), then
/// unmapped customers, then unmapped products.
fn gather(inp: &Inputs<'_>, f: &mut dyn FnMut(RowKey, Draft)) {
    let m = inp.mapping;
    let customers = inp.usage.map(|u| u.customers.as_slice()).unwrap_or_default();
    let lines = inp.billed.map(|b| b.lines.as_slice()).unwrap_or_default();
    // Mailprotector product names per PSA product (sorted: the mapping's order).
    let mut products_of: HashMap<&str, Vec<String>> = HashMap::new();
    for (name, p) in &m.products {
        products_of.entry(p.psa_product.as_str()).or_default().push(name.clone());
    }
    let mut accounts: BTreeMap<&str, AccountEntries> = BTreeMap::new();
    let mut unmapped: Vec<usize> = Vec::new();
    let counted = |c: &CustomerUsage| !m.exclude_customers.contains(&c.id);
    for (i, c) in customers.iter().enumerate().filter(|(_, c)| counted(c)) {
        match m.account_of(c.id) {
            Some(account) => accounts.entry(account).or_default().customers.push(i),
            None => unmapped.push(i),
        }
    }
    for (i, line) in lines.iter().enumerate() {
        if products_of.contains_key(line.product_id.as_str()) {
            accounts.entry(line.account_id.as_str()).or_default().lines.push(i);
        }
    }
    for (account, entries) in accounts {
        let mut drafts: BTreeMap<&str, Draft> = BTreeMap::new();
        for c in entries.customers.iter().map(|&i| &customers[i]) {
            for (product, &count) in usage(m, c) {
                if let Some(pm) = m.products.get(product) {
                    drafts.entry(pm.psa_product.as_str()).or_default().count(c, product, count);
                }
            }
        }
        for line in entries.lines.iter().map(|&i| &lines[i]) {
            drafts.entry(line.product_id.as_str()).or_default().bill(line);
        }
        for (psa_product, mut d) in drafts {
            // A service row exists only when something says it should: usage or a counted
            // line.
            if d.vendor == 0 && d.counted == 0 {
                continue;
            }
            d.products = products_of.get(psa_product).cloned().unwrap_or_default();
            let key = RowKey::Service {
                account: account.to_owned(),
                psa_product: psa_product.to_owned(),
            };
            f(key, d);
        }
    }
    // Unmapped usage matters only when there is some. Customers by id (a customer listed
    // twice is one row).
    unmapped.sort_by_key(|&i| (customers[i].id, i));
    for same in unmapped.chunk_by(|&a, &b| customers[a].id == customers[b].id) {
        let mut d = Draft::default();
        for c in same.iter().map(|&i| &customers[i]) {
            for (product, &count) in usage(m, c).filter(|(_, n)| **n > 0) {
                d.count(c, product, count);
                d.customer_name = Some(c.name.clone());
                d.products.push(product.clone());
            }
        }
        if !d.customers.is_empty() {
            d.products.sort();
            d.products.dedup();
            f(RowKey::UnmappedCustomer { customer: customers[same[0]].id }, d);
        }
    }
    // Products with usage and no PSA product, whoever uses them.
    let mut products: BTreeMap<&str, Draft> = BTreeMap::new();
    for c in customers.iter().filter(|c| counted(c)) {
        for (product, &count) in usage(m, c) {
            if count > 0 && !m.products.contains_key(product) {
                products.entry(product.as_str()).or_default().count(c, product, count);
            }
        }
    }
    for (product, mut d) in products {
        d.products = vec![product.to_owned()];
        f(RowKey::UnmappedProduct { product: product.to_owned() }, d);
    }
}

/// A customer's counts of the products that are not excluded.
fn usage<'a>(m: &'a Mapping, c: &'a CustomerUsage) -> impl Iterator<Item = (&'a String, &'a u64)> {
    c.counts.iter().filter(|(product, _)| !m.exclude_products.contains(*product))
}

/// Tolerances and debounce of a service row: the largest over the products billed as it.
fn limits(m: &Mapping, psa_product: &str, default_debounce: u32) -> (f64, f64, u32) {
    let mut abs = 0.0_f64;
    let mut pct = 0.0_f64;
    let mut debounce: Option<u32> = None;
    for p in m.products.values().filter(|p| p.psa_product == psa_product) {
        abs = abs.max(p.tolerance);
        pct = pct.max(p.tolerance_percent);
        if let Some(n) = p.debounce_runs {
            debounce = Some(debounce.map_or(n, |d| d.max(n)));
        }
    }
    (abs, pct, debounce.unwrap_or(default_debounce).max(1))
}

/// The comparison of a fresh service row.
fn compare(vendor: u64, billed: Option<f64>, abs: f64, pct: f64) -> Status {
    let Some(billed) = billed else {
        return Status::Unbilled;
    };
    let v = vendor as f64;
    let diff = (v - billed).abs();
    if vendor == 0 && billed > EPSILON {
        Status::BilledWithoutUsage
    } else if diff < EPSILON {
        Status::Match
    } else if diff <= abs + EPSILON || diff <= billed.abs() * pct / 100.0 + EPSILON {
        Status::WithinTolerance
    } else if v > billed {
        Status::UnderBilled
    } else {
        Status::OverBilled
    }
}

/// Price per unit over the counted lines: their common price, else quantity-weighted.
fn unit_price(lines: &[LineEvidence]) -> Option<f64> {
    let priced: Vec<(f64, f64)> = lines
        .iter()
        .filter(|l| l.counted)
        .filter_map(|l| l.unit_price.filter(|p| p.is_finite()).map(|p| (l.quantity, p)))
        .collect();
    let first = priced.first()?.1;
    if priced.iter().all(|(_, p)| (p - first).abs() < EPSILON) {
        return Some(first);
    }
    let qty: f64 = priced.iter().map(|(q, _)| q).sum();
    if qty.abs() < EPSILON {
        return Some(first);
    }
    Some(priced.iter().map(|(q, p)| q * p).sum::<f64>() / qty)
}

fn finish(inp: &Inputs<'_>, key: RowKey, d: Draft, prev: Option<&Prior>, ctx: &RowCtx<'_>) -> Row {
    let m = inp.mapping;
    let is_service = matches!(key, RowKey::Service { .. });
    let stale_reason = ctx
        .vendor
        .stale_reason
        .clone()
        .or_else(|| if is_service { ctx.billing.stale_reason.clone() } else { None });
    let (abs, pct, debounce_runs) = match &key {
        RowKey::Service { psa_product, .. } => limits(m, psa_product, inp.settings.debounce_runs),
        _ => (0.0, 0.0, inp.settings.debounce_runs.max(1)),
    };
    let vendor_quantity = match key {
        RowKey::UnmappedCustomer { .. } => None,
        _ => inp.usage.map(|_| d.vendor),
    };
    let billed_quantity = (is_service && inp.billed.is_some() && d.counted > 0).then_some(d.billed);
    let unit_price = unit_price(&d.lines);

    let raw = match (&key, stale_reason.is_some()) {
        (_, true) => None,
        (RowKey::Service { .. }, false) => Some(compare(d.vendor, billed_quantity, abs, pct)),
        (RowKey::UnmappedCustomer { .. }, false) => Some(Status::UnmappedCustomer),
        (RowKey::UnmappedProduct { .. }, false) => Some(Status::UnmappedProduct),
    };
    let observed = observe(raw, prev, inp.usage.map(|u| u.run_id));
    let delta =
        (is_service && raw.is_some()).then(|| d.vendor as f64 - billed_quantity.unwrap_or(0.0));
    let monthly_impact = delta.zip(unit_price).map(|(delta, price)| delta * price);

    let suppression = if raw.is_some() { suppression_for(inp, &key, &d) } else { None };
    let (status, pending_status) = match raw {
        None => (Status::Stale, None),
        Some(_) if suppression.is_some() => (Status::Suppressed, None),
        Some(s) if s.is_discrepancy() && observed.seen_runs < debounce_runs => {
            (Status::Pending, Some(s))
        }
        Some(s) => (s, None),
    };
    let since = match prev {
        Some(p) if p.status == status => p.since.clone(),
        _ => Since { at: inp.now, run_id: ctx.newest_run },
    };
    let episode = super::episode::advance(
        prev.and_then(|p| p.episode.as_ref()),
        &super::episode::Step {
            status,
            monthly_impact,
            vendor_quantity,
            billed_quantity,
            now: inp.now,
            previous_at: inp.previous.map(|p| p.computed_at).or(inp.previous_at),
            max_age: inp.settings.max_age,
        },
    );
    let (accrued, excluded_seconds) =
        super::episode::shown(status, monthly_impact, episode.as_ref(), inp.now);
    let account_name = match &key {
        RowKey::Service { account, .. } => ctx.names.get(account.as_str()).map(|n| n.to_string()),
        _ => None,
    };
    Row {
        account_name,
        customer_name: d.customer_name,
        products: d.products,
        vendor_quantity,
        billed_quantity,
        delta,
        unit_price,
        monthly_impact,
        status,
        since,
        pending_status,
        seen_runs: observed.seen_runs,
        debounce_runs,
        stale_reason: if status == Status::Stale { stale_reason } else { None },
        suppression: suppression.map(|s| SuppressionRef {
            reason: s.reason.clone(),
            until: s.until,
            line: s.line,
        }),
        observed,
        episode,
        accrued,
        excluded_seconds,
        evidence: Evidence {
            vendor_run: inp.usage.map(|u| u.run_id),
            customers: d.customers,
            billing_run: if is_service { inp.billed.map(|b| b.run_id) } else { None },
            lines: d.lines,
        },
        key,
    }
}

/// The debounce memory after this computation. A stale row keeps the old memory, so an
/// outage neither resets nor advances the count; a recomputation without a new vendor run
/// (after a billing run) does not advance it either.
fn observe(raw: Option<Status>, prev: Option<&Prior>, vendor_run: Option<RunId>) -> Observation {
    let prev = prev.map(|p| &p.observed);
    let Some(status) = raw else {
        return prev.cloned().unwrap_or(Observation {
            status: None,
            seen_runs: 0,
            vendor_run: None,
        });
    };
    let seen_runs = match prev {
        Some(p) if p.status == Some(status) && p.vendor_run == vendor_run => p.seen_runs.max(1),
        Some(p) if p.status == Some(status) => p.seen_runs.saturating_add(1),
        _ => 1,
    };
    Observation { status: Some(status), seen_runs, vendor_run }
}

/// The first active suppression covering the row.
fn suppression_for<'m>(inp: &Inputs<'m>, key: &RowKey, d: &Draft) -> Option<&'m Suppression> {
    let m = inp.mapping;
    let today = inp.now.date_naive();
    m.suppressions.iter().filter(|s| s.active_on(today)).find(|s| {
        let customer_ok = s.customer.is_none_or(|c| match key {
            RowKey::Service { account, .. } => {
                m.account_of(c) == Some(account.as_str())
                    || d.customers.iter().any(|x| x.customer == c)
            }
            RowKey::UnmappedCustomer { customer } => *customer == c,
            RowKey::UnmappedProduct { .. } => d.customers.iter().any(|x| x.customer == c),
        });
        let account_ok = s.account.as_ref().is_none_or(|a| match key {
            RowKey::Service { account, .. } => account == a,
            _ => false,
        });
        let product_ok = s.product.as_ref().is_none_or(|p| match key {
            RowKey::Service { psa_product, .. } => psa_product == p || d.products.contains(p),
            RowKey::UnmappedCustomer { .. } => d.products.contains(p),
            RowKey::UnmappedProduct { product } => product == p,
        });
        customer_ok && account_ok && product_ok
    })
}

/// The summary's counters, added to one row at a time.
#[derive(Debug, Default)]
struct Totals {
    rows: u64,
    by_status: BTreeMap<Status, u64>,
    impact_under_billed: f64,
    impact_over_billed: f64,
    accrued_under_billed: f64,
    accrued_over_billed: f64,
    discrepancies: u64,
    unpriced_discrepancies: u64,
    attention: u64,
}

impl Totals {
    fn add(&mut self, r: &Row) {
        self.rows += 1;
        *self.by_status.entry(r.status).or_insert(0) += 1;
        if r.status.needs_attention() {
            self.attention += 1;
        }
        match r.accrued {
            Some(x) if x > 0.0 => self.accrued_under_billed += x,
            Some(x) => self.accrued_over_billed += -x,
            None => {}
        }
        if !r.status.is_discrepancy() {
            return;
        }
        self.discrepancies += 1;
        match r.monthly_impact {
            None => self.unpriced_discrepancies += 1,
            Some(x) if x > 0.0 => self.impact_under_billed += x,
            Some(x) => self.impact_over_billed += -x,
        }
    }

    fn summary(self, vendor: Freshness, billing: Freshness) -> Summary {
        Summary {
            rows: self.rows,
            by_status: Status::ALL
                .iter()
                .map(|s| (s.as_str().to_string(), self.by_status.get(s).copied().unwrap_or(0)))
                .collect(),
            impact_under_billed: self.impact_under_billed,
            impact_over_billed: self.impact_over_billed,
            accrued_under_billed: self.accrued_under_billed,
            accrued_over_billed: self.accrued_over_billed,
            discrepancies: self.discrepancies,
            unpriced_discrepancies: self.unpriced_discrepancies,
            attention: self.attention,
            vendor,
            billing,
        }
    }
}

/// Every vendor customer's mapping state, with suggestions for the unmapped ones.
fn customer_states(inp: &Inputs<'_>, names: &HashMap<&str, &str>) -> Vec<CustomerMapping> {
    let Some(usage) = inp.usage else {
        return Vec::new();
    };
    let m = inp.mapping;
    let accounts = inp.billed.map(|b| b.accounts.as_slice()).unwrap_or_default();
    let mut suggestions = super::suggestions(&usage.customers, accounts, m);
    usage
        .customers
        .iter()
        .map(|c| {
            let account = m.account_of(c.id).map(str::to_string);
            let state = if m.exclude_customers.contains(&c.id) {
                MappingState::Excluded
            } else if account.is_some() {
                MappingState::Mapped
            } else {
                MappingState::Unmapped
            };
            let account_name =
                account.as_ref().and_then(|id| names.get(id.as_str())).map(|n| n.to_string());
            CustomerMapping {
                customer: c.id,
                name: c.name.clone(),
                state,
                account,
                account_name,
                suggestions: suggestions.remove(&c.id).unwrap_or_default(),
            }
        })
        .collect()
}
