//! The JSON shapes of §5, exactly: Reseller, Customer, Domain, UserGroup (with a live
//! `user_count` that counts every non-alias user by default, §12 #11), and User (all four
//! types, `user_type` as `{id, name}`). Timestamps are ISO-8601 UTC with milliseconds and `Z`.
//! The services shapes live in [`super::services`].

use serde_json::{Value, json};

use super::layer::ActiveVariants;
use crate::dataset::{Dataset, PROVIDER, SimUser, USER_COUNT_TYPES, UserKind, format_ts};
use crate::faults::Variant;

pub(crate) fn entity(id: u64, name: &str) -> Value {
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

pub(crate) fn domain_ref(ds: &Dataset, id: u64) -> Value {
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

/// The type ids `user_count` counts under the active variants: every non-alias type by
/// default, `user_count_users` type User only, `user_count_all` every type (the first of the
/// two wins when both are on).
pub(crate) fn user_count_types(v: &ActiveVariants) -> &'static [u64] {
    const USERS_ONLY: [u64; 1] = [1];
    const EVERY_TYPE: [u64; 4] = [1, 2, 3, 11];
    if v.has(Variant::UserCountUsers) {
        &USERS_ONLY
    } else if v.has(Variant::UserCountAll) {
        &EVERY_TYPE
    } else {
        &USER_COUNT_TYPES
    }
}

/// `UserGroup` with `user_count` computed now under the active variants.
pub(crate) fn user_group(ds: &Dataset, id: u64, v: &ActiveVariants) -> Value {
    let Some(g) = ds.groups().get(&id) else { return Value::Null };
    json!({
        "id": g.id,
        "name": g.name,
        "domain": domain_ref(ds, g.domain_id),
        "user_count": g.count_of(user_count_types(v)),
        "created_at": format_ts(g.created_at),
        "updated_at": format_ts(g.updated_at),
    })
}

fn address(local: &str, domain: &str) -> String {
    format!("{local}@{domain}")
}

/// `User` of any type: for an alias, `parent` names the user, names are empty and
/// `primary_address` is the parent's; a mailing list has a list-like name and empty names;
/// `email_addresses` include the domain-alias variants.
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
    let (parent, primary) = match (u.kind, u.parent) {
        (UserKind::Alias, Some(p)) => {
            let pu = ds.materialise_user(p, u.group_id, UserKind::User, None);
            let primary = address(&pu.name, dname);
            let parent = json!({"id": p, "name": pu.name, "primary_address": primary});
            (parent, primary)
        }
        _ => (Value::Null, address(&u.name, dname)),
    };
    json!({
        "id": u.id,
        "name": u.name,
        "parent": parent,
        "user_type": entity(u.kind.id(), u.kind.name()),
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
