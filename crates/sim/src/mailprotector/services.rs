//! `GET /user_groups/{id}/services` (and the PUT's answer) in every shape (reference §12 #9).
//!
//! By default (revised 2026-12) an array of `UserGroupService` records, one per enabled
//! product: `{id, service_type, user_group:{id,name}, domain:{id,name}, created_at}`, with
//! `service_type` as the console names the product ("CloudFilter Email Security", "SafeSend
//! Outbound", "Premium Hosted Email"; the other products by their canonical names, unknown
//! ones verbatim). Record ids are `group id × 100 + a slot per product` (fixed slots for the
//! known products, a hashed one for unknown products): unique per (group, product), stable
//! across requests and service changes (barring a hash collision between two unknown products
//! of one group, which moves the later name to the next free slot).
//!
//! The shape variants (the first active of these wins):
//! - `services_object`: the PUT-body object `{"service_types":{"hosting":..,"addons":[..]}}`.
//! - `services_array`: the legacy `[{"id":<product id>,"name":..,"code":<lowercase canonical>}]`.
//! - `services_sdk`: the SDK's single record — the first record of the default array (a group
//!   without services gets `service_type: null`).
//!
//! Names under the name variants: the records and the SDK object already carry console
//! names, so `long_names` changes nothing there; in the object and the legacy array names are
//! canonical by default and `long_names` turns them into console names. `lowercase_names`
//! lowercases whatever name a shape serves, in every shape (the legacy `code` is lowercase
//! anyway).

use serde_json::{Value, json};

use super::layer::ActiveVariants;
use super::models::{domain_ref, entity};
use crate::dataset::{Dataset, UserGroup, format_ts};
use crate::faults::Variant;

/// The canonical products, in the order of their fixed record slots (1..=8) and legacy ids.
const KNOWN: [&str; 8] = [
    "CloudFilter",
    "CloudMail",
    "SafeSend",
    "Bracket",
    "XtraMail",
    "SecureStore",
    "ContinuityBundle",
    "BracketBundle",
];

/// How the console names a product: the long forms the reference knows, else the name as is.
pub(crate) fn console_name(canonical: &str) -> &str {
    match canonical {
        "CloudFilter" => "CloudFilter Email Security",
        "SafeSend" => "SafeSend Outbound",
        "CloudMail" => "Premium Hosted Email",
        other => other,
    }
}

fn lowered(name: &str, v: &ActiveVariants) -> String {
    if v.has(Variant::LowercaseNames) { name.to_lowercase() } else { name.to_owned() }
}

/// A name in the shapes that use canonical names by default (object, legacy array).
fn canonical_spelled(canonical: &str, v: &ActiveVariants) -> String {
    let name = if v.has(Variant::LongNames) { console_name(canonical) } else { canonical };
    lowered(name, v)
}

/// FNV-1a: a fixed hash, so unknown products keep their slot across runs and builds.
fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// The record slot (1..=99) of each product of a group: known products 1..=8, unknown ones
/// 10..=99 by hash, probing upward on a collision (in name order, so it is deterministic).
fn slots(products: &[&str]) -> Vec<(String, u64)> {
    let mut out: Vec<(String, u64)> = Vec::new();
    let mut unknown: Vec<&str> = Vec::new();
    for p in products {
        match KNOWN.iter().position(|k| k == p) {
            Some(i) => out.push(((*p).to_owned(), i as u64 + 1)),
            None => unknown.push(p),
        }
    }
    unknown.sort_unstable();
    for p in unknown {
        let mut slot = 10 + fnv1a(p) % 90;
        for _ in 0..90 {
            if !out.iter().any(|(_, s)| *s == slot) {
                break;
            }
            slot = 10 + (slot - 10 + 1) % 90;
        }
        out.push((p.to_owned(), slot));
    }
    out
}

/// The default records, in the group's product order (hosting first).
fn records(ds: &Dataset, g: &UserGroup, v: &ActiveVariants) -> Vec<Value> {
    let products = g.services.products();
    let slots = slots(&products);
    products
        .iter()
        .map(|p| {
            let slot = slots.iter().find(|(n, _)| n == p).map_or(0, |(_, s)| *s);
            json!({
                "id": g.id * 100 + slot,
                "service_type": lowered(console_name(p), v),
                "user_group": entity(g.id, &g.name),
                "domain": domain_ref(ds, g.domain_id),
                "created_at": format_ts(g.created_at),
            })
        })
        .collect()
}

/// The services answer for group `id` under the active variants (see the module doc).
pub(crate) fn services(ds: &Dataset, id: u64, v: &ActiveVariants) -> Value {
    let Some(g) = ds.groups().get(&id) else { return Value::Null };
    if v.has(Variant::ServicesObject) {
        let hosting = g.services.hosting.as_deref().map(|h| canonical_spelled(h, v));
        let addons: Vec<String> =
            g.services.addons.iter().map(|a| canonical_spelled(a, v)).collect();
        return json!({"service_types": {"hosting": hosting, "addons": addons}});
    }
    if v.has(Variant::ServicesArray) {
        let items: Vec<Value> = g
            .services
            .products()
            .into_iter()
            .map(|p| {
                let id = KNOWN.iter().position(|k| *k == p).map_or(99, |i| i as u64 + 1);
                json!({"id": id, "name": canonical_spelled(p, v), "code": p.to_lowercase()})
            })
            .collect();
        return Value::Array(items);
    }
    let mut all = records(ds, g, v);
    if v.has(Variant::ServicesSdk) {
        if all.is_empty() {
            return json!({
                "id": g.id * 100,
                "service_type": null,
                "user_group": entity(g.id, &g.name),
                "domain": domain_ref(ds, g.domain_id),
                "created_at": format_ts(g.created_at),
            });
        }
        return all.swap_remove(0);
    }
    Value::Array(all)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_fixed_for_known_products_and_unique_for_unknown_ones() {
        let s = slots(&["CloudMail", "Bracket"]);
        assert_eq!(s, vec![("CloudMail".to_owned(), 2), ("Bracket".to_owned(), 4)]);
        let many: Vec<String> = (0..60).map(|i| format!("Product{i}")).collect();
        let mut names: Vec<&str> = many.iter().map(String::as_str).collect();
        names.push("CloudFilter");
        let s = slots(&names);
        let mut ids: Vec<u64> = s.iter().map(|(_, s)| *s).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), 61, "one slot per product");
        assert!(s.iter().all(|(n, slot)| (n == "CloudFilter") == (*slot == 1) && *slot < 100));
        // An unknown product keeps its slot when others come and go.
        let alone = slots(&["ForceEncrypt"])[0].1;
        let with = slots(&["CloudFilter", "ForceEncrypt", "Shield"]);
        assert_eq!(with.iter().find(|(n, _)| n == "ForceEncrypt").unwrap().1, alone);
    }

    #[test]
    fn console_names_are_the_known_long_forms() {
        assert_eq!(console_name("CloudFilter"), "CloudFilter Email Security");
        assert_eq!(console_name("SafeSend"), "SafeSend Outbound");
        assert_eq!(console_name("CloudMail"), "Premium Hosted Email");
        assert_eq!(console_name("XtraMail"), "XtraMail");
        assert_eq!(console_name("ForceEncrypt"), "ForceEncrypt");
    }
}
