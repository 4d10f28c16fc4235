//! The pure counting step: user groups (customer, users, products) → per-customer counts,
//! per canonical product and per configured count definition. No I/O.

use std::collections::{BTreeMap, HashSet};

use super::models::Customer;
use super::products::canonical;
use crate::config::CountDefinition;
use crate::model::CustomerUsage;

/// What the walk learned about one user group (its products borrowed from the service-list
/// cache, not copied for every group).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupFacts<'a> {
    /// The customer owning the group's domain.
    pub customer_id: u64,
    /// The group id.
    pub group_id: u64,
    /// Users of type User in the group.
    pub users: u64,
    /// Canonical products enabled on the group.
    pub products: &'a [String],
}

/// Counts per customer: with `each_product`, one count per canonical product seen on the
/// customer's groups (the sum of their users); plus one count per definition (users of groups
/// with ANY of its products). Every customer is present, ordered by id, even with no usage.
/// A product or definition that matched groups with 0 users is reported as 0.
pub fn count_usage(
    customers: &[Customer],
    groups: &[GroupFacts<'_>],
    each_product: bool,
    definitions: &[CountDefinition],
) -> Vec<CustomerUsage> {
    let mut by_customer: BTreeMap<u64, CustomerUsage> = customers
        .iter()
        .map(|c| {
            let name = c.name.clone().unwrap_or_else(|| format!("customer {}", c.id));
            (c.id, CustomerUsage { id: c.id, name, counts: BTreeMap::new() })
        })
        .collect();
    let definitions: Vec<(&str, HashSet<String>)> = definitions
        .iter()
        .map(|d| (d.name.as_str(), d.any_of.iter().map(|p| canonical(p)).collect()))
        .collect();
    for g in groups {
        let Some(usage) = by_customer.get_mut(&g.customer_id) else { continue };
        if each_product {
            let distinct: HashSet<&String> = g.products.iter().collect();
            for product in distinct {
                *usage.counts.entry(product.clone()).or_insert(0) += g.users;
            }
        }
        for (name, any_of) in &definitions {
            if g.products.iter().any(|p| any_of.contains(p)) {
                *usage.counts.entry((*name).to_owned()).or_insert(0) += g.users;
            }
        }
    }
    by_customer.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn customer(id: u64, name: &str) -> Customer {
        Customer { id, name: Some(name.into()) }
    }

    fn group(
        customer_id: u64,
        group_id: u64,
        users: u64,
        products: &[&str],
    ) -> GroupFacts<'static> {
        let products: Vec<String> = products.iter().map(|p| p.to_string()).collect();
        GroupFacts { customer_id, group_id, users, products: products.leak() }
    }

    #[test]
    fn sums_users_per_product_and_keeps_every_customer() {
        let customers = [customer(7, "B"), customer(3, "A"), Customer { id: 9, name: None }];
        let groups = [
            group(3, 1, 10, &["CloudFilter", "SafeSend"]),
            group(3, 2, 5, &["CloudFilter"]),
            group(7, 3, 0, &["XtraMail"]),
            group(99, 4, 1000, &["CloudFilter"]), // a customer outside the listing is not counted
        ];
        let usage = count_usage(&customers, &groups, true, &[]);
        assert_eq!(usage.iter().map(|u| u.id).collect::<Vec<_>>(), vec![3, 7, 9]);
        assert_eq!(
            usage[0].counts,
            BTreeMap::from([("CloudFilter".into(), 15), ("SafeSend".into(), 10)])
        );
        assert_eq!(usage[1].counts, BTreeMap::from([("XtraMail".into(), 0)]));
        assert!(usage[2].counts.is_empty());
        assert_eq!(usage[2].name, "customer 9");
    }

    #[test]
    fn definitions_count_groups_with_any_listed_product_once() {
        let customers = [customer(1, "A")];
        let groups = [
            group(1, 1, 10, &["CloudFilter", "Bracket"]),
            group(1, 2, 4, &["Bracket"]),
            group(1, 3, 2, &["SafeSend"]),
        ];
        let defs = [CountDefinition {
            name: "Email Security Total".into(),
            any_of: vec!["cloudfilter".into(), "Bracket".into()],
        }];
        let usage = count_usage(&customers, &groups, false, &defs);
        assert_eq!(usage[0].counts, BTreeMap::from([("Email Security Total".into(), 14)]));
        let both = count_usage(&customers, &groups, true, &defs);
        assert_eq!(both[0].counts.get("Bracket"), Some(&14));
        assert_eq!(both[0].counts.get("CloudFilter"), Some(&10));
        assert_eq!(both[0].counts.get("SafeSend"), Some(&2));
        assert_eq!(both[0].counts.get("Email Security Total"), Some(&14));
    }
}
