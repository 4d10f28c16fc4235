//! The seeded generator of ConnectWise billing for a Mailprotector dataset: one company per
//! customer (some names varied by case or legal suffix), one active agreement each, one
//! addition per (customer, product) with usage billing exactly what is used — and then every
//! kind of discrepancy planted on chosen rows, each recorded in [`BillingData::planted`].

use std::collections::{BTreeMap, BTreeSet};

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::data::{BillingData, CwAddition, CwAgreement, CwCompany, CwCredentials, CwRef, Planted};
use super::mapping::{MappingText, ProductMap};
use crate::dataset::{Dataset, UNKNOWN_PRODUCT};

/// Mailprotector product → (PSA product id, unit price, absolute tolerance, percent).
pub const PRODUCTS: [(&str, &str, f64, u64, f64); 8] = [
    ("CloudFilter", "MP-CF", 2.50, 1, 2.0),
    ("SafeSend", "MP-SS", 1.00, 0, 0.0),
    ("Bracket", "MP-BR", 3.25, 0, 0.0),
    ("XtraMail", "MP-XM", 1.50, 0, 0.0),
    ("SecureStore", "MP-STORE", 2.00, 0, 0.0),
    ("CloudMail", "MP-CM", 4.00, 0, 0.0),
    ("ContinuityBundle", "MP-CONT", 1.75, 0, 0.0),
    ("BracketBundle", "MP-BB", 4.50, 0, 0.0),
];

/// The first company id (the reference's example account is 250).
const FIRST_COMPANY: u64 = 250;
const FIRST_AGREEMENT: u64 = 1000;
const FIRST_ADDITION: u64 = 5000;
/// Dates far enough out to hold whenever the tests run.
const PAST: &str = "2020-01-01T00:00:00Z";
const FUTURE: &str = "2099-01-01T00:00:00Z";

/// A billable (account, PSA product) row while generating.
#[derive(Debug, Clone)]
struct Row {
    account: u64,
    customers: Vec<u64>,
    product: &'static str,
    psa: &'static str,
    vendor: u64,
}

struct Gen {
    rng: ChaCha8Rng,
    data: BillingData,
    next_agreement: u64,
    next_addition: u64,
}

impl BillingData {
    /// Generates billing for `ds` (its customers as they are now). Deterministic in the
    /// dataset and `seed`.
    pub fn generate(ds: &Dataset, seed: u64) -> BillingData {
        let mut g = Gen {
            rng: ChaCha8Rng::seed_from_u64(seed ^ 0x00c0_ffee_b111),
            data: BillingData {
                seed,
                companies: Vec::new(),
                agreements: Vec::new(),
                additions: Vec::new(),
                credentials: credentials(seed),
                mapping_toml: String::new(),
                planted: Vec::new(),
                mapping: MappingText::default(),
            },
            next_agreement: FIRST_AGREEMENT,
            next_addition: FIRST_ADDITION,
        };
        let counts = ds.expected_counts();
        let name = |c: u64| ds.customer_name(c).unwrap_or("Unnamed customer").to_owned();
        let unknown = unmapped_product(&counts);
        // Customers whose usage is only mapped products: safe picks for the planted roles.
        let plain: Vec<u64> = counts
            .iter()
            .filter(|(_, m)| !m.is_empty() && !m.contains_key(&unknown))
            .map(|(c, _)| *c)
            .collect();
        let mut picks = plain.clone();
        picks.shuffle(&mut g.rng);
        let unmapped = picks.pop();
        let excluded = picks.pop();
        let shared = picks.pop().zip(picks.pop());

        let mut mapping = MappingText::default();
        let mut account_of: BTreeMap<u64, u64> = BTreeMap::new();
        let mut next_company = FIRST_COMPANY;
        for &c in counts.keys() {
            if shared.is_some_and(|(_, second)| second == c) {
                continue; // mapped to the first customer's company below
            }
            let id = next_company;
            next_company += 1;
            let variant = if Some(c) == unmapped { 1 + c % 3 } else { g.rng.random_range(0..6) };
            g.data.companies.push(company(id, &vary(&name(c), variant), false));
            if Some(c) != unmapped && Some(c) != excluded {
                account_of.insert(c, id);
            }
        }
        if let Some((first, second)) = shared {
            account_of.insert(second, account_of[&first]);
        }
        // Noise: a company with no customer and a deleted one.
        for (k, n) in [("Internal IT Department", false), ("Closed Account Holdings LLC", true)] {
            g.data.companies.push(company(next_company, k, n));
            next_company += 1;
        }
        mapping.customers = account_of.clone();
        mapping.excluded = excluded.into_iter().collect();
        mapping.unmapped_product = unknown.clone();
        mapping.products = PRODUCTS
            .iter()
            .filter(|p| p.0 != unknown)
            .map(|p| ProductMap { product: p.0, psa: p.1, tolerance: p.3, percent: p.4 })
            .collect();

        let rows = billable_rows(&counts, &account_of, &unknown);
        g.plant(rows, &counts, &account_of, &mut mapping);
        if let Some(c) = unmapped {
            let total = counts[&c].values().sum();
            g.data.planted.push(Planted {
                account_id: None,
                psa_product: None,
                customer_ids: vec![c],
                product: None,
                expected_status: "unmapped_customer",
                vendor_qty: total,
                billed_qty: 0.0,
            });
        }
        // One row per unmapped product, over the customers that count (not excluded).
        let users: Vec<(u64, u64)> = counts
            .iter()
            .filter(|(c, _)| Some(**c) != excluded)
            .filter_map(|(c, m)| m.get(&unknown).map(|n| (*c, *n)))
            .collect();
        if !users.is_empty() {
            g.data.planted.push(Planted {
                account_id: None,
                psa_product: None,
                customer_ids: users.iter().map(|u| u.0).collect(),
                product: Some(unknown.clone()),
                expected_status: "unmapped_product",
                vendor_qty: users.iter().map(|u| u.1).sum(),
                billed_qty: 0.0,
            });
        }
        g.data.mapping_toml = mapping.render(seed);
        g.data.mapping = mapping;
        g.data.agreements.sort_by_key(|a| a.id);
        g.data.additions.sort_by_key(|a| a.id);
        g.data
    }
}

/// The product left unmapped: `ForceEncrypt` when the dataset uses it, else (small datasets)
/// the least used product, so an `unmapped_product` row is always planted.
fn unmapped_product(counts: &BTreeMap<u64, BTreeMap<String, u64>>) -> String {
    let mut totals: BTreeMap<&str, u64> = BTreeMap::new();
    for m in counts.values() {
        for (p, n) in m {
            *totals.entry(p.as_str()).or_insert(0) += n;
        }
    }
    if totals.get(UNKNOWN_PRODUCT).is_some_and(|n| *n > 0) {
        return UNKNOWN_PRODUCT.to_owned();
    }
    PRODUCTS
        .iter()
        .filter_map(|p| totals.get(p.0).filter(|n| **n > 0).map(|n| (*n, p.0)))
        .min()
        .map_or_else(|| UNKNOWN_PRODUCT.to_owned(), |(_, p)| p.to_owned())
}

/// Every (account, PSA product) with usage, summed over the customers mapped to the account.
fn billable_rows(
    counts: &BTreeMap<u64, BTreeMap<String, u64>>,
    account_of: &BTreeMap<u64, u64>,
    unknown: &str,
) -> Vec<Row> {
    let mut rows: BTreeMap<(u64, &'static str), Row> = BTreeMap::new();
    for (&c, m) in counts {
        let Some(&account) = account_of.get(&c) else { continue };
        for (product, &n) in m {
            let Some(p) = PRODUCTS.iter().find(|p| p.0 == product && p.0 != unknown) else {
                continue;
            };
            let row = rows.entry((account, p.1)).or_insert_with(|| Row {
                account,
                customers: Vec::new(),
                product: p.0,
                psa: p.1,
                vendor: 0,
            });
            row.customers.push(c);
            row.vendor += n;
        }
    }
    rows.into_values().collect()
}

impl Gen {
    /// Bills every row, planting one of each discrepancy and the non-counting additions.
    fn plant(
        &mut self,
        rows: Vec<Row>,
        counts: &BTreeMap<u64, BTreeMap<String, u64>>,
        account_of: &BTreeMap<u64, u64>,
        mapping: &mut MappingText,
    ) {
        let accounts: BTreeSet<u64> = account_of.values().copied().collect();
        let mut agreement_of = BTreeMap::new();
        for &a in &accounts {
            agreement_of.insert(a, self.agreement(a, false, Some("Active")));
        }
        // Single-customer rows with room for a delta are candidates for planting.
        let mut order: Vec<usize> = (0..rows.len())
            .filter(|&i| rows[i].customers.len() == 1 && rows[i].vendor >= 3)
            .collect();
        order.shuffle(&mut self.rng);
        let big_cf = order
            .iter()
            .position(|&i| rows[i].psa == "MP-CF" && rows[i].vendor >= 50)
            .or_else(|| order.iter().position(|&i| rows[i].psa == "MP-CF"));
        let within = big_cf.map(|k| order.remove(k));
        let mut take = || order.pop();
        let (under, over, unbilled, suppressed) = (take(), take(), take(), take());
        let carriers: Vec<usize> = (0..5).filter_map(|_| take()).collect();
        let split = take();

        for (i, r) in rows.iter().enumerate() {
            let agreement = agreement_of[&r.account];
            let v = r.vendor;
            let (status, billed) = match Some(i) {
                x if x == within => ("within_tolerance", v - 1),
                x if x == under => ("under_billed", v - (2 + v / 5)),
                x if x == over => ("over_billed", v + 2 + v / 5),
                x if x == unbilled => ("unbilled", 0),
                x if x == suppressed => ("suppressed", v + 3),
                _ => ("match", v),
            };
            if status == "suppressed" {
                mapping.suppress.push((r.customers[0], r.product));
            }
            if status != "unbilled" {
                if Some(i) == split && billed >= 2 {
                    self.addition(
                        agreement,
                        r.psa,
                        (billed / 2) as f64,
                        "Billable",
                        Some(PAST),
                        None,
                    );
                    self.addition(
                        agreement,
                        r.psa,
                        (billed - billed / 2) as f64,
                        "Billable",
                        None,
                        None,
                    );
                } else {
                    // Some lines carry a cancellation date that has not come yet: they count.
                    let later = if i % 7 == 3 { Some("2099-12-31T00:00:00Z") } else { None };
                    self.addition(agreement, r.psa, billed as f64, "Billable", Some(PAST), later);
                }
            }
            self.data.planted.push(Planted {
                account_id: Some(r.account.to_string()),
                psa_product: Some(r.psa.into()),
                customer_ids: r.customers.clone(),
                product: Some(r.product.into()),
                expected_status: status,
                vendor_qty: v,
                billed_qty: if status == "unbilled" { 0.0 } else { billed as f64 },
            });
        }
        // Additions that do not count, each on a row that otherwise matches.
        for (k, &i) in carriers.iter().enumerate() {
            let r = &rows[i];
            let main = agreement_of[&r.account];
            match k {
                0 => {
                    let cancelled = self.agreement(r.account, true, Some("Cancelled"));
                    self.addition(cancelled, r.psa, 10.0, "Billable", Some(PAST), None);
                }
                1 => {
                    let expired = self.agreement(r.account, false, Some("Expired"));
                    self.addition(expired, r.psa, 7.0, "Billable", Some(PAST), None);
                }
                2 => self.addition(main, r.psa, 4.0, "Billable", Some(FUTURE), None),
                3 => self.addition(
                    main,
                    r.psa,
                    6.0,
                    "Billable",
                    Some(PAST),
                    Some("2021-06-30T00:00:00Z"),
                ),
                _ => self.addition(main, r.psa, 2.0, "DoNotBill", Some(PAST), None),
            }
        }
        // Billed without usage: a product the account's customers do not use.
        if let Some(&account) = accounts.iter().next() {
            let customers: Vec<u64> =
                account_of.iter().filter(|(_, a)| **a == account).map(|(c, _)| *c).collect();
            let used: BTreeSet<&str> =
                customers.iter().flat_map(|c| counts[c].keys().map(String::as_str)).collect();
            let mapped = |p: &str| mapping.products.iter().any(|m| m.product == p);
            if let Some(p) = PRODUCTS.iter().rev().find(|p| !used.contains(p.0) && mapped(p.0)) {
                self.addition(agreement_of[&account], p.1, 5.0, "Billable", Some(PAST), None);
                self.data.planted.push(Planted {
                    account_id: Some(account.to_string()),
                    psa_product: Some(p.1.into()),
                    customer_ids: customers,
                    product: Some(p.0.into()),
                    expected_status: "billed_without_usage",
                    vendor_qty: 0,
                    billed_qty: 5.0,
                });
            }
        }
    }

    fn agreement(&mut self, company: u64, cancelled: bool, status: Option<&str>) -> u64 {
        let id = self.next_agreement;
        self.next_agreement += 1;
        let c = self.data.companies.iter().find(|c| c.id == company);
        self.data.agreements.push(CwAgreement {
            id,
            name: if cancelled { "Email Security (old)".into() } else { "Email Security".into() },
            company: CwRef {
                id: company,
                identifier: c.map(|c| c.identifier.clone()),
                name: c.map(|c| c.name.clone()),
            },
            agreement_type: CwRef {
                id: 3,
                identifier: None,
                name: Some("Managed Services".into()),
            },
            cancelled_flag: cancelled,
            agreement_status: status.map(str::to_owned),
            start_date: "2019-01-01T00:00:00Z".into(),
            no_ending_date_flag: true,
            bill_cycle_id: 1,
        });
        id
    }

    fn addition(
        &mut self,
        agreement: u64,
        psa: &str,
        quantity: f64,
        bill: &str,
        effective: Option<&str>,
        cancelled: Option<&str>,
    ) {
        let id = self.next_addition;
        self.next_addition += 1;
        let price = PRODUCTS.iter().find(|p| p.1 == psa).map_or(1.0, |p| p.2);
        let product_id = 100 + PRODUCTS.iter().position(|p| p.1 == psa).unwrap_or(0) as u64;
        self.data.additions.push(CwAddition {
            id,
            agreement_id: agreement,
            product: CwRef { id: product_id, identifier: Some(psa.into()), name: None },
            quantity,
            less_included: 0.0,
            unit_price: price,
            unit_cost: (price * 0.6 * 100.0).round() / 100.0,
            bill_customer: bill.into(),
            effective_date: effective.map(str::to_owned),
            cancelled_date: cancelled.map(str::to_owned),
            description: format!("Mailprotector {psa}"),
        });
    }
}

fn company(id: u64, name: &str, deleted: bool) -> CwCompany {
    let mut identifier: String =
        name.chars().filter(char::is_ascii_alphanumeric).take(20).collect();
    identifier.push_str(&id.to_string());
    CwCompany {
        id,
        identifier,
        name: name.to_owned(),
        status: CwRef { id: 1, identifier: None, name: Some("Active".into()) },
        deleted_flag: deleted,
    }
}

/// Name variations a PSA typically has: 0 and 4–5 as is, 1 upper case, 2 legal suffix
/// dropped or added, 3 a different legal suffix.
pub fn vary(name: &str, variant: u64) -> String {
    const SUFFIXES: [&str; 6] = [" LLC", " Inc.", " Ltd", " Co.", " Group", " Inc"];
    let base = SUFFIXES.iter().find_map(|s| name.strip_suffix(s));
    match (variant, base) {
        (1, _) => name.to_uppercase(),
        (2, Some(b)) => b.to_owned(),
        (2, None) => format!("{name}, Inc."),
        (3, Some(b)) => format!("{b}, LLC"),
        (3, None) => format!("{name} Ltd"),
        _ => name.to_owned(),
    }
}

fn credentials(seed: u64) -> CwCredentials {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5eed_c0de);
    let mut hex = |n: usize| -> String {
        (0..n).map(|_| format!("{:x}", rng.random_range(0..16u8))).collect()
    };
    CwCredentials {
        company_id: "mpsim".into(),
        public_key: format!("pub{}", hex(13)),
        private_key: format!("priv{}", hex(12)),
        client_id: format!("{}-{}-{}-{}-{}", hex(8), hex(4), hex(4), hex(4), hex(12)),
        limited_keys: (format!("pubro{}", hex(11)), format!("privro{}", hex(10))),
    }
}
