//! Property tests: the summing and mapping laws, statuses partition the rows, no row is lost
//! or duplicated, stale inputs never yield a discrepancy, debounce never raises early.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;

use super::tests::{at, line};
use super::*;
use crate::config::ProductMapping;
use crate::model::{Account, BilledLine, CustomerUsage};

const PRODUCTS: [&str; 4] = ["P1", "P2", "P3", "P4"];
const ACCOUNTS: [&str; 4] = ["A", "B", "C", "D"];
const PSA: [&str; 3] = ["X", "Y", "Z"];

/// Where a customer or product goes: 0 = unmapped, 1 = excluded, n ≥ 2 = target n − 2.
#[derive(Debug, Clone)]
struct World {
    customers: Vec<(u64, Vec<u64>)>,
    customer_map: Vec<usize>,
    product_map: Vec<usize>,
    tolerance: (f64, f64),
    lines: Vec<(usize, usize, u8, bool, Option<u8>)>,
    vendor_state: u8,
    billing_state: u8,
}

fn world() -> impl Strategy<Value = World> {
    (
        prop::collection::vec(prop::collection::vec(0u64..6, 4), 0..7),
        prop::collection::vec(0usize..5, 7),
        prop::collection::vec(0usize..4, 4),
        (0u8..3, 0u8..10),
        prop::collection::vec(
            (0usize..4, 0usize..3, 0u8..8, any::<bool>(), prop::option::of(1u8..5)),
            0..8,
        ),
        0u8..4,
        0u8..4,
    )
        .prop_map(|(counts, customer_map, product_map, (abs, pct), lines, v, b)| World {
            customers: counts.into_iter().enumerate().map(|(i, c)| (i as u64 + 1, c)).collect(),
            customer_map,
            product_map,
            tolerance: (f64::from(abs), f64::from(pct)),
            lines,
            vendor_state: v,
            billing_state: b,
        })
}

impl World {
    fn mapping(&self) -> Mapping {
        let mut m = Mapping::default();
        for (i, &t) in self.customer_map.iter().enumerate() {
            let id = i as u64 + 1;
            match t {
                0 => {}
                1 => {
                    m.exclude_customers.insert(id);
                }
                n => {
                    m.customers.insert(id, ACCOUNTS[n - 2].to_string());
                }
            }
        }
        for (i, &t) in self.product_map.iter().enumerate() {
            match t {
                0 => {}
                1 => {
                    m.exclude_products.insert(PRODUCTS[i].to_string());
                }
                n => {
                    m.products.insert(
                        PRODUCTS[i].to_string(),
                        ProductMapping {
                            psa_product: PSA[n - 2].to_string(),
                            tolerance: self.tolerance.0,
                            tolerance_percent: self.tolerance.1,
                            debounce_runs: None,
                            policy: Default::default(),
                        },
                    );
                }
            }
        }
        m
    }

    fn usage(&self, run: u64) -> UsageSnapshot {
        UsageSnapshot {
            run_id: run,
            observed_at: if self.vendor_state == 3 { at(6) } else { at(9) },
            customers: self
                .customers
                .iter()
                .map(|(id, counts)| CustomerUsage {
                    id: *id,
                    name: format!("Customer {id}"),
                    counts: counts
                        .iter()
                        .enumerate()
                        .map(|(i, n)| (PRODUCTS[i].to_string(), *n))
                        .collect(),
                })
                .collect(),
        }
    }

    fn billed(&self) -> BilledSnapshot {
        let lines: Vec<BilledLine> = self
            .lines
            .iter()
            .map(|&(a, p, q, counted, price)| {
                line(ACCOUNTS[a], PSA[p], f64::from(q), price.map(f64::from), counted)
            })
            .collect();
        BilledSnapshot {
            run_id: 1,
            observed_at: if self.billing_state == 3 { at(6) } else { at(9) },
            accounts: ACCOUNTS
                .iter()
                .map(|a| Account { id: a.to_string(), name: a.to_string() })
                .collect(),
            lines,
        }
    }

    /// State 0 fresh, 1 missing, 2 last run failed, 3 older than max_age (see `usage`).
    fn inputs<'a>(
        &self,
        u: &'a UsageSnapshot,
        b: &'a BilledSnapshot,
        m: &'a Mapping,
        previous: Option<&'a Reconciliation>,
    ) -> Inputs<'a> {
        let mut inp = super::tests::inputs(Some(u), Some(b), m, at(10), previous);
        match self.vendor_state {
            1 => inp.usage = None,
            2 => inp.vendor.last_run_failed = true,
            _ => {}
        }
        match self.billing_state {
            1 => inp.billed = None,
            2 => inp.billing.last_run_failed = true,
            _ => {}
        }
        inp
    }

    /// Σ counts over mapped customers' mapped products, per (account, PSA product).
    fn expected_service_sums(&self, m: &Mapping) -> BTreeMap<(String, String), u64> {
        let mut out = BTreeMap::new();
        for (id, counts) in &self.customers {
            let Some(account) = m.account_of(*id) else { continue };
            for (i, n) in counts.iter().enumerate() {
                if let Some(p) = m.products.get(PRODUCTS[i]) {
                    *out.entry((account.to_string(), p.psa_product.clone())).or_insert(0) += n;
                }
            }
        }
        out
    }

    /// Every row key that must appear exactly once.
    fn expected_keys(
        &self,
        m: &Mapping,
        u: Option<&UsageSnapshot>,
        b: Option<&BilledSnapshot>,
    ) -> BTreeSet<RowKey> {
        let mut keys = BTreeSet::new();
        if u.is_some() {
            for ((account, psa_product), n) in self.expected_service_sums(m) {
                if n > 0 {
                    keys.insert(RowKey::Service { account, psa_product });
                }
            }
            for (id, counts) in &self.customers {
                if m.exclude_customers.contains(id) {
                    continue;
                }
                for (i, n) in counts.iter().enumerate() {
                    let p = PRODUCTS[i];
                    if *n == 0 || m.exclude_products.contains(p) {
                        continue;
                    }
                    if m.account_of(*id).is_none() {
                        keys.insert(RowKey::UnmappedCustomer { customer: *id });
                    }
                    if !m.products.contains_key(p) {
                        keys.insert(RowKey::UnmappedProduct { product: p.to_string() });
                    }
                }
            }
        }
        if let Some(b) = b {
            let psa: BTreeSet<&str> = m.products.values().map(|p| p.psa_product.as_str()).collect();
            for l in b.lines.iter().filter(|l| l.counted && psa.contains(l.product_id.as_str())) {
                keys.insert(RowKey::Service {
                    account: l.account_id.clone(),
                    psa_product: l.product_id.clone(),
                });
            }
        }
        keys
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn rows_obey_the_summing_partition_and_identity_laws(w in world()) {
        let m = w.mapping();
        let u = w.usage(2);
        let b = w.billed();
        let inp = w.inputs(&u, &b, &m, None);
        let rec = compute(&inp);

        // No row lost or duplicated.
        let keys: Vec<&RowKey> = rec.rows.iter().map(|r| &r.key).collect();
        let unique: BTreeSet<RowKey> = keys.iter().map(|k| (*k).clone()).collect();
        prop_assert_eq!(keys.len(), unique.len(), "duplicate rows");
        prop_assert_eq!(&unique, &w.expected_keys(&m, inp.usage, inp.billed));

        // Summing law: a service row's vendor quantity is its mapped customers' mapped products.
        let sums = w.expected_service_sums(&m);
        for r in &rec.rows {
            if let RowKey::Service { account, psa_product } = &r.key {
                let expected = inp.usage.map(|_| *sums.get(&(account.clone(), psa_product.clone())).unwrap_or(&0));
                prop_assert_eq!(r.vendor_quantity, expected);
                let counted: f64 = inp.billed.map(|b| b.lines.iter()
                    .filter(|l| l.counted && &l.account_id == account && &l.product_id == psa_product)
                    .map(|l| l.quantity).sum()).unwrap_or(0.0);
                prop_assert_eq!(r.billed_quantity.unwrap_or(0.0), counted);
            }
        }

        // Statuses partition the rows.
        let total: u64 = rec.summary.by_status.values().sum();
        prop_assert_eq!(total, rec.rows.len() as u64);
        for s in Status::ALL {
            let n = rec.rows.iter().filter(|r| r.status == s).count() as u64;
            prop_assert_eq!(rec.summary.by_status[s.as_str()], n);
        }
        prop_assert!(rec.summary.impact_under_billed >= 0.0 && rec.summary.impact_over_billed >= 0.0);
    }

    #[test]
    fn stale_inputs_never_yield_a_discrepancy(w in world()) {
        let m = w.mapping();
        let u = w.usage(2);
        let b = w.billed();
        let rec = compute(&w.inputs(&u, &b, &m, None));
        let vendor_stale = w.vendor_state != 0;
        let billing_stale = w.billing_state != 0;
        for r in &rec.rows {
            if vendor_stale {
                prop_assert_eq!(r.status, Status::Stale, "{:?}", r.key);
            }
            if billing_stale && matches!(r.key, RowKey::Service { .. }) {
                prop_assert_eq!(r.status, Status::Stale, "{:?}", r.key);
            }
            if r.status == Status::Stale {
                prop_assert!(r.delta.is_none() && r.monthly_impact.is_none());
            }
        }
        if vendor_stale || billing_stale {
            prop_assert!(rec.rows.iter().all(|r| !r.status.is_discrepancy()));
            prop_assert_eq!(rec.summary.impact_under_billed + rec.summary.impact_over_billed, 0.0);
        }
    }

    #[test]
    fn debounce_never_raises_before_n_vendor_runs(w in world(), n in 1u32..5) {
        let mut w = w;
        w.vendor_state = 0;
        w.billing_state = 0;
        let m = w.mapping();
        let b = w.billed();
        let mut prev: Option<Reconciliation> = None;
        for run in 1..=n {
            let u = w.usage(u64::from(run) + 10);
            let mut inp = w.inputs(&u, &b, &m, prev.as_ref());
            inp.settings.debounce_runs = n;
            let rec = compute(&inp);
            for r in &rec.rows {
                if run < n {
                    prop_assert!(!r.status.is_discrepancy(), "run {} of {}: {:?}", run, n, r);
                } else {
                    prop_assert_ne!(r.status, Status::Pending, "raised after {} runs", n);
                }
            }
            prev = Some(rec);
        }
    }
}
