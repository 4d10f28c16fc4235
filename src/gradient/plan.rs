//! The pure push plan: from the latest complete usage snapshot, the catalogue and accounts
//! Synthesize holds, and what was sent before, decide which services and accounts to create,
//! which accounts to rename and which counts to post. No I/O.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::models::{GradientAccount, NewService, Sku};
use crate::model::{CustomerId, UsageSnapshot};

/// One count to post: the absolute `unit_count` of `product` for `customer_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedCount {
    /// The Mailprotector customer.
    pub customer_id: CustomerId,
    /// The Synthesize account id (the customer id in decimal, §11 #19).
    pub account_id: String,
    /// The product or count name (= the service name).
    pub product: String,
    /// The count; 0 for a product the customer no longer has (§11 #5).
    pub unit_count: u64,
}

/// What a push will do, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PushPlan {
    /// Services the catalogue lacks, by exact name.
    pub services_to_create: Vec<NewService>,
    /// Accounts Synthesize lacks (sent in one array request).
    pub accounts_to_create: Vec<GradientAccount>,
    /// Accounts whose name changed: (id, new name).
    pub renames: Vec<(String, String)>,
    /// Every count to post, ordered by customer then product.
    pub counts: Vec<PlannedCount>,
}

/// The service mpsync creates for a product or count name (§11 #19); names outside the
/// eight canonical products are filed under `other`/`other`.
pub fn default_service(name: &str) -> NewService {
    let (category, subcategory) = match name {
        "CloudFilter" | "SafeSend" | "Bracket" | "BracketBundle" => ("security", "email security"),
        "XtraMail" | "ContinuityBundle" => ("backup", "business continuity"),
        "SecureStore" => ("backup", "data archiving"),
        "CloudMail" => ("productivity", "hosted email"),
        _ => ("other", "other"),
    };
    NewService {
        name: name.to_owned(),
        description: format!("Mailprotector {name} users (pushed by mpsync)"),
        category: category.to_owned(),
        subcategory: subcategory.to_owned(),
    }
}

/// The service mpsync creates for `name`: [`default_service`], with the category,
/// subcategory and description the operator set in `[gradient.services.<name>]`.
pub fn configured_service(
    services: &BTreeMap<String, crate::config::GradientService>,
    name: &str,
) -> NewService {
    let mut service = default_service(name);
    if let Some(o) = services.get(name) {
        service.category.clone_from(&o.category);
        service.subcategory.clone_from(&o.subcategory);
        if let Some(d) = &o.description {
            service.description.clone_from(d);
        }
    }
    service
}

/// Plans a push of `snapshot`. `previously_sent` holds, per customer, the products last
/// sent with a non-zero count: those the customer no longer has are sent as 0, because no
/// DELETE exists and a stale count would otherwise persist. `service_for` names the category
/// of a service to create (see [`default_service`]).
pub fn plan_push(
    snapshot: &UsageSnapshot,
    skus: &[Sku],
    accounts: &[GradientAccount],
    previously_sent: &BTreeMap<CustomerId, BTreeSet<String>>,
    service_for: &dyn Fn(&str) -> NewService,
) -> PushPlan {
    let mut counts = Vec::new();
    let mut seen = BTreeSet::new();
    for c in &snapshot.customers {
        seen.insert(c.id);
        let mut products: BTreeSet<&str> = c.counts.keys().map(String::as_str).collect();
        if let Some(before) = previously_sent.get(&c.id) {
            products.extend(before.iter().map(String::as_str));
        }
        for p in products {
            let unit_count = c.counts.get(p).copied().unwrap_or(0);
            counts.push(PlannedCount {
                customer_id: c.id,
                account_id: c.id.to_string(),
                product: p.to_owned(),
                unit_count,
            });
        }
    }
    // A customer gone from Mailprotector uses nothing: zero what was sent for it.
    for (id, before) in previously_sent.iter().filter(|(id, _)| !seen.contains(id)) {
        for p in before {
            counts.push(PlannedCount {
                customer_id: *id,
                account_id: id.to_string(),
                product: p.clone(),
                unit_count: 0,
            });
        }
    }
    counts.sort_by(|a, b| (a.customer_id, &a.product).cmp(&(b.customer_id, &b.product)));
    let known: BTreeSet<&str> = skus.iter().map(|s| s.name.as_str()).collect();
    let names: BTreeSet<&str> = counts.iter().map(|c| c.product.as_str()).collect();
    let services_to_create =
        names.into_iter().filter(|n| !known.contains(n)).map(service_for).collect();
    let held: HashMap<&str, &GradientAccount> =
        accounts.iter().map(|a| (a.id.as_str(), a)).collect();
    let mut accounts_to_create = Vec::new();
    let mut renames = Vec::new();
    for c in &snapshot.customers {
        let id = c.id.to_string();
        match held.get(id.as_str()) {
            None => accounts_to_create.push(GradientAccount {
                id,
                name: c.name.clone(),
                description: String::new(),
                is_mapped: None,
            }),
            Some(a) if a.name != c.name => renames.push((id, c.name.clone())),
            Some(_) => {}
        }
    }
    PushPlan { services_to_create, accounts_to_create, renames, counts }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::CustomerUsage;

    type Row<'a> = (u64, &'a str, &'a [(&'a str, u64)]);

    fn snap(customers: Vec<Row<'_>>) -> UsageSnapshot {
        UsageSnapshot {
            run_id: 1,
            observed_at: chrono::Utc::now(),
            customers: customers
                .into_iter()
                .map(|(id, name, counts)| CustomerUsage {
                    id,
                    name: name.into(),
                    counts: counts.iter().map(|(p, n)| ((*p).to_owned(), *n)).collect(),
                })
                .collect(),
        }
    }

    #[test]
    fn plans_missing_services_accounts_renames_and_every_count() {
        let s = snap(vec![
            (1, "Acme", &[("CloudFilter", 5), ("SafeSend", 0)]),
            (2, "Globex Corp", &[("Bracket", 3)]),
            (3, "New Co", &[]),
        ]);
        let skus = vec![Sku { id: "a".into(), name: "CloudFilter".into(), filed_under: None }];
        let accounts = vec![GradientAccount {
            id: "2".into(),
            name: "Globex".into(),
            description: String::new(),
            is_mapped: Some(true),
        }];
        let p = plan_push(&s, &skus, &accounts, &BTreeMap::new(), &default_service);
        let created: Vec<_> = p.services_to_create.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(created, ["Bracket", "SafeSend"]);
        assert_eq!(p.services_to_create[0].subcategory, "email security");
        let new: Vec<_> = p.accounts_to_create.iter().map(|a| a.id.as_str()).collect();
        assert_eq!(new, ["1", "3"]);
        assert_eq!(p.renames, vec![("2".to_owned(), "Globex Corp".to_owned())]);
        let counts: Vec<_> = p
            .counts
            .iter()
            .map(|c| (c.account_id.as_str(), c.product.as_str(), c.unit_count))
            .collect();
        assert_eq!(counts, [("1", "CloudFilter", 5), ("1", "SafeSend", 0), ("2", "Bracket", 3)]);
    }

    #[test]
    fn products_sent_before_and_gone_now_are_sent_as_zero() {
        let s = snap(vec![(1, "Acme", &[("CloudFilter", 5)])]);
        let before: BTreeMap<u64, BTreeSet<String>> = [
            (1, ["CloudFilter".to_owned(), "XtraMail".to_owned()].into()),
            (9, ["Bracket".to_owned()].into()),
        ]
        .into();
        let p = plan_push(&s, &[], &[], &before, &default_service);
        let counts: Vec<_> =
            p.counts.iter().map(|c| (c.customer_id, c.product.as_str(), c.unit_count)).collect();
        assert_eq!(counts, [(1, "CloudFilter", 5), (1, "XtraMail", 0), (9, "Bracket", 0)]);
    }

    #[test]
    fn every_canonical_product_has_a_valid_category() {
        for p in crate::mailprotector::products::CANONICAL {
            let s = default_service(p);
            assert!(mpsync_sim::gradient::CATEGORIES.contains(&s.category.as_str()), "{p}");
            assert!(mpsync_sim::gradient::SUBCATEGORIES.contains(&s.subcategory.as_str()), "{p}");
        }
    }
}
