//! What the mapping names that Mailprotector never showed: mapped customers the latest vendor
//! snapshot does not list, and mapped products no customer uses that are not known product
//! names either. A typo (`CloudFiltr`, `cloudfilter`, a customer id with swapped digits)
//! parses fine and then simply never matches, so `mpsync check` warns about each one with the
//! nearest name seen. Pure: the caller reads the snapshot.

use std::collections::{BTreeMap, BTreeSet};

use super::Mapping;
use crate::model::{CustomerId, UsageSnapshot};

impl Mapping {
    /// One warning per mapped customer absent from `snapshot` and per mapped product that is
    /// neither used in `snapshot` nor in `known_products` (the product vocabulary and the
    /// count-definition names). Without a snapshot only products are judged, against
    /// `known_products`.
    pub fn unseen(
        &self,
        snapshot: Option<&UsageSnapshot>,
        known_products: &[String],
    ) -> Vec<String> {
        let mut warnings = Vec::new();
        let used: BTreeSet<&str> = snapshot
            .iter()
            .flat_map(|s| &s.customers)
            .flat_map(|c| c.counts.iter().filter(|(_, n)| **n > 0).map(|(p, _)| p.as_str()))
            .collect();
        let mut names: BTreeSet<&str> = known_products.iter().map(String::as_str).collect();
        names.extend(&used);
        let seen_in = match snapshot {
            Some(s) => format!(
                "no customer uses it in the latest vendor run (run {}, {})",
                s.run_id,
                s.observed_at.format("%Y-%m-%d %H:%M UTC")
            ),
            None => "there is no vendor run yet to compare with".to_owned(),
        };
        for (product, m) in &self.products {
            if names.contains(product.as_str()) {
                continue;
            }
            let hint = match nearest_name(product, &names) {
                Some(n) if n.eq_ignore_ascii_case(product) => {
                    format!("did you mean {n}? (product names are case-sensitive)")
                }
                Some(n) => format!("did you mean {n}?"),
                None => "use the name as Mailprotector reports it (see /v1/customers)".to_owned(),
            };
            warnings.push(format!(
                "product {product:?} is mapped (to PSA product {:?}) but {seen_in} and it is not a \
                 known Mailprotector product or count name: {hint}",
                m.psa_product
            ));
        }
        if let Some(s) = snapshot {
            let seen: BTreeMap<CustomerId, &str> =
                s.customers.iter().map(|c| (c.id, c.name.as_str())).collect();
            for (id, account) in &self.customers {
                if seen.contains_key(id) {
                    continue;
                }
                let hint = match self.nearest_customer(*id, &seen) {
                    Some((near, name)) => format!("did you mean {near} ({name})?"),
                    None => "check the id in the Mailprotector console, or remove the line if the \
                             customer is gone"
                        .to_owned(),
                };
                warnings.push(format!(
                    "customer {id} is mapped (to account {account:?}) but the latest vendor run \
                     (run {}, {}) saw no customer {id}: {hint}",
                    s.run_id,
                    s.observed_at.format("%Y-%m-%d %H:%M UTC")
                ));
            }
        }
        warnings
    }

    /// The seen customer whose id is closest to `id` as typed (at most two digits off), among
    /// those the mapping does not already map or exclude; ties go to the nearest number.
    fn nearest_customer<'s>(
        &self,
        id: CustomerId,
        seen: &BTreeMap<CustomerId, &'s str>,
    ) -> Option<(CustomerId, &'s str)> {
        let typed = id.to_string();
        seen.iter()
            .filter(|(c, _)| !self.customers.contains_key(c) && !self.exclude_customers.contains(c))
            .map(|(c, name)| {
                (strsim::levenshtein(&typed, &c.to_string()), c.abs_diff(id), *c, *name)
            })
            .filter(|(d, ..)| *d <= 2)
            .min()
            .map(|(_, _, c, name)| (c, name))
    }
}

/// The name in `names` nearest to `name`: the same but for case, else within three edits
/// (ignoring case), else `None`.
fn nearest_name<'n>(name: &str, names: &BTreeSet<&'n str>) -> Option<&'n str> {
    let lower = name.to_lowercase();
    names.iter().find(|n| n.to_lowercase() == lower).copied().or_else(|| {
        names
            .iter()
            .map(|n| (strsim::levenshtein(&lower, &n.to_lowercase()), *n))
            .filter(|(d, _)| *d <= 3)
            .min()
            .map(|(_, n)| n)
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::model::CustomerUsage;

    fn mapping(text: &str) -> Mapping {
        Mapping::parse(Path::new("mapping.toml"), text).unwrap()
    }

    fn known() -> Vec<String> {
        let mut k: Vec<String> =
            crate::model::products::CANONICAL.iter().map(|s| (*s).to_owned()).collect();
        k.push("Email Security Total".into());
        k
    }

    /// A customer as a test writes it: id, name, users per product.
    type Seen<'a> = (CustomerId, &'a str, &'a [(&'a str, u64)]);

    fn snapshot(customers: &[Seen<'_>]) -> UsageSnapshot {
        UsageSnapshot {
            run_id: 12,
            observed_at: "2026-03-01T10:00:00Z".parse().unwrap(),
            customers: customers
                .iter()
                .map(|(id, name, counts)| CustomerUsage {
                    id: *id,
                    name: (*name).to_owned(),
                    counts: counts.iter().map(|(p, n)| ((*p).to_owned(), *n)).collect(),
                })
                .collect(),
        }
    }

    #[test]
    fn without_a_snapshot_products_are_judged_against_the_vocabulary() {
        let m = mapping(
            "[customers]\n999 = \"A\"\n[products.CloudFiltr]\npsa_product = \"MP-CF\"\n\
             [products.safesend]\npsa_product = \"MP-SS\"\n[products.XtraMail]\npsa_product = \"X\"\n\
             [products.\"Email Security Total\"]\npsa_product = \"EST\"\n\
             [products.Zzzzzz]\npsa_product = \"Z\"\n",
        );
        let w = m.unseen(None, &known());
        assert_eq!(w.len(), 3, "{w:#?}");
        assert!(w[0].starts_with("product \"CloudFiltr\" is mapped (to PSA product \"MP-CF\") but there is no vendor run yet"), "{}", w[0]);
        assert!(w[0].ends_with("did you mean CloudFilter?"), "{}", w[0]);
        assert!(w[1].starts_with("product \"Zzzzzz\""), "{}", w[1]);
        assert!(w[1].ends_with("(see /v1/customers)"), "{}", w[1]);
        assert!(
            w[2].ends_with("did you mean SafeSend? (product names are case-sensitive)"),
            "{}",
            w[2]
        );
    }

    #[test]
    fn with_a_snapshot_unseen_customers_and_unused_unknown_products_are_named() {
        let m = mapping(
            "[customers]\n329 = \"250\"\n392 = \"251\"\n5000 = \"252\"\n\
             [products.CloudFilter]\npsa_product = \"MP-CF\"\n\
             [products.\"Exchange+ Premium\"]\npsa_product = \"EXP\"\n\
             [products.\"Exchange Premium\"]\npsa_product = \"EXP2\"\n",
        );
        let snap = snapshot(&[
            (329, "Acme", &[("CloudFilter", 4)]),
            (293, "Bright Dental", &[("Exchange+ Premium", 2)]),
            (394, "Cobalt", &[]),
        ]);
        let w = m.unseen(Some(&snap), &known());
        assert_eq!(w.len(), 3, "{w:#?}");
        assert!(w[0].starts_with("product \"Exchange Premium\" is mapped (to PSA product \"EXP2\") but no customer uses it in the latest vendor run (run 12, 2026-03-01 10:00 UTC)"), "{}", w[0]);
        assert!(w[0].ends_with("did you mean Exchange+ Premium?"), "{}", w[0]);
        // 392 is one edit from 394 and two from 293: the nearer by edits wins.
        assert_eq!(
            w[1],
            "customer 392 is mapped (to account \"251\") but the latest vendor run (run 12, \
             2026-03-01 10:00 UTC) saw no customer 392: did you mean 394 (Cobalt)?"
        );
        assert!(w[2].starts_with("customer 5000 is mapped"), "{}", w[2]);
        assert!(w[2].ends_with("remove the line if the customer is gone"), "{}", w[2]);
    }

    #[test]
    fn a_clean_mapping_has_no_warnings() {
        let m = mapping("[customers]\n329 = \"250\"\n[products.Bracket]\npsa_product = \"B\"\n");
        let snap = snapshot(&[(329, "Acme", &[("CloudFilter", 4)])]);
        assert!(m.unseen(Some(&snap), &known()).is_empty());
        assert!(m.unseen(None, &known()).is_empty());
    }
}
