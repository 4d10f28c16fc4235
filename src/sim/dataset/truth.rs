//! Ground truth: the per-customer, per-product usage counts the §8 recipe must yield from the
//! served data (sum of `user_count` over a customer's user groups that have the product; alias
//! domains contribute nothing of their own, so nothing is counted twice).

use std::collections::BTreeMap;

use super::Dataset;

impl Dataset {
    /// User groups of a customer's primary domains.
    fn customer_groups(&self, customer: u64) -> impl Iterator<Item = &super::UserGroup> + '_ {
        self.domains_of_customer(customer)
            .into_iter()
            .filter(|d| self.domains.get(d).is_some_and(|d| d.parent.is_none()))
            .flat_map(|d| self.groups_of.get(&d).into_iter().flatten())
            .filter_map(|g| self.groups.get(g))
    }

    /// For every customer of the main reseller's subtree (present even when it has no usage):
    /// canonical product → users. Products with 0 users are omitted; unknown products appear
    /// verbatim (e.g. `ForceEncrypt`).
    pub fn expected_counts(&self) -> BTreeMap<u64, BTreeMap<String, u64>> {
        let mut out = BTreeMap::new();
        for c in self.main_customers() {
            let mut counts: BTreeMap<String, u64> = BTreeMap::new();
            for g in self.customer_groups(c) {
                let n = g.user_count();
                if n == 0 {
                    continue;
                }
                for p in g.services.products() {
                    *counts.entry(p.to_owned()).or_insert(0) += n;
                }
            }
            out.insert(c, counts);
        }
        out
    }

    /// A combined count definition: per customer, the users of its groups that have ANY of
    /// `products` (compared case-insensitively; each group counted once). Customers whose sum
    /// is 0 are omitted, like zero products in [`Dataset::expected_counts`].
    pub fn expected_count_any_of(&self, products: &[&str]) -> BTreeMap<u64, u64> {
        let mut out = BTreeMap::new();
        for c in self.main_customers() {
            let sum: u64 = self
                .customer_groups(c)
                .filter(|g| {
                    g.services
                        .products()
                        .iter()
                        .any(|p| products.iter().any(|q| q.eq_ignore_ascii_case(p)))
                })
                .map(|g| g.user_count())
                .sum();
            if sum > 0 {
                out.insert(c, sum);
            }
        }
        out
    }

    /// Total users per product over the main reseller's subtree.
    pub fn expected_totals(&self) -> BTreeMap<String, u64> {
        let mut totals = BTreeMap::new();
        for counts in self.expected_counts().into_values() {
            for (p, n) in counts {
                *totals.entry(p).or_insert(0) += n;
            }
        }
        totals
    }
}
