//! Ground truth: the per-customer, per-product usage counts a client must yield from the
//! served data under a per-user counting rule — the users of the counted types in each of a
//! customer's user groups, added to every product the group has. By default only type User (1)
//! counts ([`DEFAULT_COUNTED_TYPES`], mpsync's `count_user_types` default); `user_count`
//! includes more (§12 #11), so summing it is not the truth. Alias domains contribute nothing of
//! their own, and customers hidden from the customer listing are left out.

use std::collections::BTreeMap;

use super::{DEFAULT_COUNTED_TYPES, Dataset};

impl Dataset {
    /// User groups of a customer's primary domains.
    fn customer_groups(&self, customer: u64) -> impl Iterator<Item = &super::UserGroup> + '_ {
        self.domains_of_customer(customer)
            .into_iter()
            .filter(|d| self.domains.get(d).is_some_and(|d| d.parent.is_none()))
            .flat_map(|d| self.groups_of.get(&d).into_iter().flatten())
            .filter_map(|g| self.groups.get(g))
    }

    /// The truth under the default rule (type User only): [`Dataset::expected_counts_for`]
    /// with [`DEFAULT_COUNTED_TYPES`].
    pub fn expected_counts(&self) -> BTreeMap<u64, BTreeMap<String, u64>> {
        self.expected_counts_for(&DEFAULT_COUNTED_TYPES)
    }

    /// For every listed customer of the main reseller's subtree (present even when it has no
    /// usage; hidden customers absent): canonical product → users whose type id is in `types`.
    /// Products with 0 users are omitted; unknown products appear verbatim (e.g.
    /// `ForceEncrypt`).
    pub fn expected_counts_for(&self, types: &[u64]) -> BTreeMap<u64, BTreeMap<String, u64>> {
        let mut out = BTreeMap::new();
        for c in self.main_customers() {
            let mut counts: BTreeMap<String, u64> = BTreeMap::new();
            for g in self.customer_groups(c) {
                let n = g.count_of(types);
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

    /// A combined count definition under the default rule (type User only): see
    /// [`Dataset::expected_count_any_of_for`].
    pub fn expected_count_any_of(&self, products: &[&str]) -> BTreeMap<u64, u64> {
        self.expected_count_any_of_for(products, &DEFAULT_COUNTED_TYPES)
    }

    /// A combined count definition: per listed customer, the users of the counted `types` in
    /// its groups that have ANY of `products` (compared case-insensitively; each group counted
    /// once). Customers whose sum is 0 are omitted, like zero products in
    /// [`Dataset::expected_counts_for`].
    pub fn expected_count_any_of_for(
        &self,
        products: &[&str],
        types: &[u64],
    ) -> BTreeMap<u64, u64> {
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
                .map(|g| g.count_of(types))
                .sum();
            if sum > 0 {
                out.insert(c, sum);
            }
        }
        out
    }

    /// Total users (type User only) per product over the listed customers of the main
    /// reseller's subtree.
    pub fn expected_totals(&self) -> BTreeMap<String, u64> {
        self.expected_totals_for(&DEFAULT_COUNTED_TYPES)
    }

    /// Total users of the counted `types` per product over the listed customers of the main
    /// reseller's subtree.
    pub fn expected_totals_for(&self, types: &[u64]) -> BTreeMap<String, u64> {
        let mut totals = BTreeMap::new();
        for counts in self.expected_counts_for(types).into_values() {
            for (p, n) in counts {
                *totals.entry(p).or_insert(0) += n;
            }
        }
        totals
    }
}
