//! The JSON shapes of §5, exactly: Reseller, Customer, Domain, UserGroup (with a live
//! `user_count`), User (User or Alias), and the §12 #9 services object. Timestamps are ISO-8601
//! UTC with milliseconds and `Z`.

use serde_json::{Value, json};

use super::layer::ActiveVariants;
use crate::sim::dataset::{Dataset, PROVIDER, SimUser, UserKind, format_ts};
use crate::sim::faults::Variant;

fn entity(id: u64, name: &str) -> Value {
    json!({"id": id, "name": name})
}

fn provider() -> Value {
    entity(PROVIDER.0, PROVIDER.1)
}

fn reseller_ref(ds: &Dataset, id: u64) -> Value {
    ds.resellers().get(&id).map_or(Value::Null, |r| entity(r.id, &r.name))
}

/// `Reseller`.
pub(crate) fn reseller(ds: &Dataset, id: u64) -> Value {
    let Some(r) = ds.resellers().get(&id) else { return Value::Null };
    json!({
        "id": r.id,
        "name": r.name,
        "provider": provider(),
        "reseller": r.parent.map_or(Value::Null, |p| reseller_ref(ds, p)),
        "created_at": format_ts(r.created_at),
        "updated_at": format_ts(r.updated_at),
    })
}

/// `Customer`: no status, email or external id (§12 #12).
pub(crate) fn customer(ds: &Dataset, id: u64) -> Value {
    let Some(c) = ds.customers().get(&id) else { return Value::Null };
    json!({
        "id": c.id,
        "name": c.name,
        "provider": provider(),
        "reseller": reseller_ref(ds, c.reseller_id),
        "created_at": format_ts(c.created_at),
        "updated_at": format_ts(c.updated_at),
    })
}

fn domain_ref(ds: &Dataset, id: u64) -> Value {
    ds.domains().get(&id).map_or(Value::Null, |d| entity(d.id, &d.name))
}

/// `Domain`: aliases have `parent` set.
pub(crate) fn domain(ds: &Dataset, id: u64) -> Value {
    let Some(d) = ds.domains().get(&id) else { return Value::Null };
    let (sid, sname) = d.status.id_name();
    json!({
        "id": d.id,
        "name": d.name,
        "account": ds.customers().get(&d.customer_id).map_or(Value::Null, |c| entity(c.id, &c.name)),
        "domain_status": entity(sid, sname),
        "parent": d.parent.map_or(Value::Null, |p| domain_ref(ds, p)),
        "verification_token": d.verification_token,
        "address_discovery_enabled": d.address_discovery_enabled,
        "created_at": format_ts(d.created_at),
        "updated_at": format_ts(d.updated_at),
    })
}

/// `UserGroup` with `user_count` computed now (users of type User only).
pub(crate) fn user_group(ds: &Dataset, id: u64) -> Value {
    let Some(g) = ds.groups().get(&id) else { return Value::Null };
    json!({
        "id": g.id,
        "name": g.name,
        "domain": domain_ref(ds, g.domain_id),
        "user_count": g.user_count(),
        "created_at": format_ts(g.created_at),
        "updated_at": format_ts(g.updated_at),
    })
}

/// The services object: `{"service_types":{"hosting":..,"addons":[..]}}` (§12 #9).
pub(crate) fn services(ds: &Dataset, id: u64) -> Value {
    let Some(g) = ds.groups().get(&id) else { return Value::Null };
    json!({"service_types": {"hosting": g.services.hosting, "addons": g.services.addons}})
}

fn address(local: &str, domain: &str) -> String {
    format!("{local}@{domain}")
}

/// `User`: for an alias, `parent` names the user, names are empty and `primary_address` is
/// the parent's; `email_addresses` include the domain-alias variants.
pub(crate) fn user(ds: &Dataset, u: &SimUser) -> Value {
    let group = ds.groups().get(&u.group_id);
    let domain_id = group.map_or(0, |g| g.domain_id);
    let dname = ds.domains().get(&domain_id).map_or("", |d| d.name.as_str());
    let alias_domains: Vec<String> = ds
        .aliases_of_domain(domain_id)
        .into_iter()
        .filter_map(|a| ds.domains().get(&a).map(|d| d.name.clone()))
        .collect();
    let mut addresses = vec![address(&u.name, dname)];
    addresses.extend(alias_domains.iter().map(|a| address(&u.name, a)));
    let (type_id, type_name, parent, primary) = match (u.kind, u.parent) {
        (UserKind::Alias, Some(p)) => {
            let pu = ds.materialise_user(p, u.group_id, None);
            let primary = address(&pu.name, dname);
            let parent = json!({"id": p, "name": pu.name, "primary_address": primary});
            (2, "Alias", parent, primary)
        }
        _ => (1, "User", Value::Null, address(&u.name, dname)),
    };
    json!({
        "id": u.id,
        "name": u.name,
        "parent": parent,
        "user_type": entity(type_id, type_name),
        "user_group": group.map_or(Value::Null, |g| entity(g.id, &g.name)),
        "domain": entity(domain_id, dname),
        "primary_address": primary,
        "email_addresses": addresses,
        "first_name": u.first_name,
        "last_name": u.last_name,
        "created_at": format_ts(u.created_at),
        "updated_at": format_ts(u.updated_at),
    })
}

/// A stable id per known product for the array-shaped services variant.
fn service_id(canonical: &str) -> u64 {
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
    KNOWN.iter().position(|k| *k == canonical).map_or(99, |i| i as u64 + 1)
}

/// A product name as a variant spells it.
fn spelled(canonical: &str, v: &ActiveVariants) -> String {
    let long = match canonical {
        "CloudFilter" if v.has(Variant::LongNames) => "CloudFilter Email Security",
        "SafeSend" if v.has(Variant::LongNames) => "SafeSend Outbound",
        "CloudMail" if v.has(Variant::LongNames) => "Premium Hosted Email",
        other => other,
    };
    if v.has(Variant::LowercaseNames) { long.to_lowercase() } else { long.to_owned() }
}

/// The services answer under the active variants: the §12 #9 object by default, the legacy
/// array of `{id,name,code}`, or the SDK object with one `service_type` (the group's first
/// product only — use that variant with single-product groups).
pub(crate) fn services_variant(ds: &Dataset, id: u64, v: &ActiveVariants) -> Value {
    let Some(g) = ds.groups().get(&id) else { return Value::Null };
    if v.has(Variant::ServicesArray) {
        let items: Vec<Value> = g
            .services
            .products()
            .into_iter()
            .map(|p| json!({"id": service_id(p), "name": spelled(p, v), "code": p.to_lowercase()}))
            .collect();
        return Value::Array(items);
    }
    if v.has(Variant::ServicesSdk) {
        let first = g.services.products().first().map(|p| spelled(p, v));
        return json!({
            "id": g.id,
            "service_type": first,
            "user_group": entity(g.id, &g.name),
            "domain": domain_ref(ds, g.domain_id),
            "created_at": format_ts(g.created_at),
        });
    }
    let hosting = g.services.hosting.as_deref().map(|h| spelled(h, v));
    let addons: Vec<String> = g.services.addons.iter().map(|a| spelled(a, v)).collect();
    json!({"service_types": {"hosting": hosting, "addons": addons}})
}
