//! Which strings of which answers are names, by upstream, endpoint and field name — the
//! pseudonymizer's rule book. Ids, counts, dates, product and service names and PSA product
//! identifiers are kept (they are needed to count and map); names, e-mail addresses and
//! domain names are replaced; any other text is replaced too, unless listed as kept here.

use crate::sim::replay::Upstream;

/// What an answer holds, from the endpoint that gave it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Entity {
    /// Mailprotector `GET /resellers/{id}`.
    Reseller,
    /// Mailprotector customers.
    Customer,
    /// Mailprotector domains (aliases included).
    Domain,
    /// Mailprotector user groups.
    UserGroup,
    /// Mailprotector `GET /user_groups/{id}/services`.
    Service,
    /// Mailprotector users.
    User,
    /// Mailprotector statements (amounts and dates only).
    Statement,
    /// ConnectWise companies.
    Company,
    /// ConnectWise agreements.
    Agreement,
    /// ConnectWise agreement additions.
    Addition,
    /// ConnectWise `GET /system/info`.
    SystemInfo,
    /// Gradient `GET /api/vendor-api` (the vendor and its service catalogue).
    Vendor,
    /// Gradient `GET /organization` (the partner's integration).
    Organization,
    /// Gradient `GET /organization/accounts`.
    Account,
    /// An error answer (status 400 and above).
    Error,
    /// Anything else: every string is replaced.
    Unknown,
}

/// What to do with one string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Leave it as it is.
    Keep,
    /// A reseller's name.
    Reseller,
    /// A customer's, company's or account's name.
    Org,
    /// A PSA company's short code (`identifier`).
    OrgCode,
    /// A domain name.
    Domain,
    /// An e-mail address.
    Email,
    /// A mailbox name (the local part of an address).
    Local,
    /// A user group's name.
    Group,
    /// An agreement's name.
    Agreement,
    /// A first name.
    First,
    /// A last name.
    Last,
    /// A person's full name.
    Person,
    /// Free text.
    Text,
    /// Free text worth keeping (error messages, links): names seen elsewhere and e-mail
    /// addresses in it are replaced.
    Message,
}

/// The entity an answer to `path` (below the upstream's base path) with `status` holds.
pub(crate) fn entity(upstream: Upstream, path: &str, status: u16) -> Entity {
    if status >= 400 {
        return Entity::Error;
    }
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let word = segments.iter().rev().find(|s| s.parse::<u64>().is_err()).copied().unwrap_or("");
    match upstream {
        Upstream::Mailprotector => match word {
            "resellers" => Entity::Reseller,
            "customers" => Entity::Customer,
            "domains" | "aliases" => Entity::Domain,
            "user_groups" => Entity::UserGroup,
            "services" => Entity::Service,
            "users" => Entity::User,
            "statements" => Entity::Statement,
            _ => Entity::Unknown,
        },
        Upstream::Connectwise => match word {
            "companies" => Entity::Company,
            "agreements" => Entity::Agreement,
            "additions" => Entity::Addition,
            "info" => Entity::SystemInfo,
            _ => Entity::Unknown,
        },
        Upstream::Gradient => match segments.as_slice() {
            [] => Entity::Vendor,
            ["organization"] => Entity::Organization,
            ["organization", "accounts"] => Entity::Account,
            ["service", _] => Entity::Vendor,
            _ => Entity::Unknown,
        },
    }
}

/// The order answers are pseudonymized in, so numbers follow the hierarchy (customers before
/// their domains, domains before their users) whatever order the requests were made in.
pub(crate) fn rank(entity: Entity) -> u8 {
    match entity {
        Entity::Reseller => 0,
        Entity::Customer | Entity::Company | Entity::Organization => 1,
        Entity::Domain | Entity::Agreement | Entity::Account => 2,
        Entity::UserGroup | Entity::Addition | Entity::Vendor => 3,
        Entity::Service => 4,
        Entity::User => 5,
        _ => 6,
    }
}

/// How to treat the string at `keys` (object keys from the entity's root; array positions
/// left out) in an answer holding `entity`.
pub(crate) fn classify(upstream: Upstream, entity: Entity, keys: &[&str]) -> Kind {
    let Some(&key) = keys.last() else { return Kind::Text };
    let parent = keys.len().checked_sub(2).map(|i| keys[i]);
    if is_id_or_date_key(key) {
        return Kind::Keep;
    }
    match entity {
        Entity::Error => {
            return match key {
                "code" | "resource" | "field" => Kind::Keep,
                _ => Kind::Message,
            };
        }
        Entity::Statement | Entity::SystemInfo | Entity::Vendor => {
            return if keys == ["message"] { Kind::Message } else { Kind::Keep };
        }
        _ => {}
    }
    match upstream {
        Upstream::Mailprotector => mailprotector(entity, parent, key),
        Upstream::Connectwise => connectwise(entity, keys, parent, key),
        Upstream::Gradient => gradient(entity, keys),
    }
}

fn is_id_or_date_key(key: &str) -> bool {
    key == "id"
        || key == "_id"
        || key.ends_with("_id")
        || key.ends_with("Id")
        || key.ends_with("_at")
        || key.ends_with("Date")
        || key.ends_with("_date")
}

fn mailprotector(entity: Entity, parent: Option<&str>, key: &str) -> Kind {
    if matches!(parent, Some("user_type" | "domain_status" | "provider" | "service_types")) {
        return Kind::Keep;
    }
    if entity == Entity::Service {
        return match (parent, key) {
            (Some("user_group"), "name") => Kind::Group,
            (Some("domain"), "name") => Kind::Domain,
            // The service itself: `service_type`, `name`, `code`, `hosting`, `addons`.
            _ => Kind::Keep,
        };
    }
    match (parent, key) {
        (_, "service_type" | "service_types" | "entity_type" | "rule_type" | "currency") => {
            Kind::Keep
        }
        (Some("reseller"), "name") => Kind::Reseller,
        (Some("account" | "customer"), "name") => Kind::Org,
        (Some("domain"), "name") => Kind::Domain,
        (Some("user_group"), "name") => Kind::Group,
        (Some("parent"), "name") if entity == Entity::Domain => Kind::Domain,
        (Some("parent"), "name") if entity == Entity::User => Kind::Local,
        (_, "primary_address" | "email_addresses" | "email" | "address") => Kind::Email,
        (_, "first_name") => Kind::First,
        (_, "last_name") => Kind::Last,
        (None, "name") => match entity {
            Entity::Reseller => Kind::Reseller,
            Entity::Customer => Kind::Org,
            Entity::Domain => Kind::Domain,
            Entity::UserGroup => Kind::Group,
            Entity::User => Kind::Local,
            _ => Kind::Text,
        },
        (_, "error" | "message") => Kind::Message,
        _ => Kind::Text,
    }
}

fn connectwise(entity: Entity, keys: &[&str], parent: Option<&str>, key: &str) -> Kind {
    // The catalog item (its identifier is the PSA product id the mapping names) and the
    // coded values the billing rules read.
    if keys.contains(&"product") || matches!(parent, Some("status" | "type" | "uom")) {
        return Kind::Keep;
    }
    if key.ends_with("_href") {
        return Kind::Message;
    }
    match (parent, key) {
        (_, "billCustomer" | "agreementStatus" | "uom" | "currency") => Kind::Keep,
        (Some("company"), "name") => Kind::Org,
        (Some("company"), "identifier") => Kind::OrgCode,
        (Some("agreement" | "parentAgreement"), "name") => Kind::Agreement,
        (Some("contact" | "member"), "name") => Kind::Person,
        (None, "name") => match entity {
            Entity::Company => Kind::Org,
            Entity::Agreement => Kind::Agreement,
            _ => Kind::Text,
        },
        (None, "identifier") if entity == Entity::Company => Kind::OrgCode,
        (_, "firstName") => Kind::First,
        (_, "lastName") => Kind::Last,
        (_, "message") => Kind::Message,
        _ => Kind::Text,
    }
}

fn gradient(entity: Entity, keys: &[&str]) -> Kind {
    match (entity, keys) {
        (Entity::Organization | Entity::Account, ["name"]) => Kind::Org,
        (Entity::Account, ["description"]) => Kind::Text,
        (_, ["message"]) => Kind::Message,
        // Statuses, vendor names and the like carry nothing of the MSP's.
        (Entity::Organization | Entity::Account, _) => Kind::Keep,
        _ => Kind::Text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entities_follow_the_endpoint() {
        let mp = Upstream::Mailprotector;
        assert_eq!(entity(mp, "/resellers/188", 200), Entity::Reseller);
        assert_eq!(entity(mp, "/resellers/188/customers", 200), Entity::Customer);
        assert_eq!(entity(mp, "/domains/102/user_groups", 200), Entity::UserGroup);
        assert_eq!(entity(mp, "/user_groups/109/services", 200), Entity::Service);
        assert_eq!(entity(mp, "/user_groups/109/users", 200), Entity::User);
        assert_eq!(entity(mp, "/user_groups/109/users", 404), Entity::Error);
        let cw = Upstream::Connectwise;
        assert_eq!(entity(cw, "/finance/agreements/7/additions", 200), Entity::Addition);
        assert_eq!(entity(Upstream::Gradient, "", 200), Entity::Vendor);
        assert_eq!(entity(Upstream::Gradient, "/organization/accounts", 200), Entity::Account);
    }

    #[test]
    fn products_ids_and_dates_are_kept_names_are_not() {
        let (mp, cw, g) = (Upstream::Mailprotector, Upstream::Connectwise, Upstream::Gradient);
        assert_eq!(classify(mp, Entity::Service, &["service_type"]), Kind::Keep);
        assert_eq!(classify(mp, Entity::Service, &["name"]), Kind::Keep, "array-shaped services");
        assert_eq!(classify(mp, Entity::Service, &["user_group", "name"]), Kind::Group);
        assert_eq!(classify(mp, Entity::User, &["user_type", "name"]), Kind::Keep);
        assert_eq!(classify(mp, Entity::User, &["name"]), Kind::Local);
        assert_eq!(classify(mp, Entity::User, &["parent", "primary_address"]), Kind::Email);
        assert_eq!(classify(mp, Entity::Domain, &["parent", "name"]), Kind::Domain);
        assert_eq!(classify(mp, Entity::Domain, &["account", "name"]), Kind::Org);
        assert_eq!(classify(mp, Entity::Customer, &["created_at"]), Kind::Keep);
        assert_eq!(classify(mp, Entity::Customer, &["provider", "name"]), Kind::Keep);
        assert_eq!(classify(mp, Entity::Customer, &["notes"]), Kind::Text, "unknown text goes");
        assert_eq!(classify(cw, Entity::Addition, &["product", "identifier"]), Kind::Keep);
        assert_eq!(classify(cw, Entity::Addition, &["billCustomer"]), Kind::Keep);
        assert_eq!(classify(cw, Entity::Addition, &["description"]), Kind::Text);
        assert_eq!(classify(cw, Entity::Company, &["identifier"]), Kind::OrgCode);
        assert_eq!(classify(cw, Entity::Agreement, &["company", "name"]), Kind::Org);
        assert_eq!(classify(cw, Entity::Agreement, &["type", "name"]), Kind::Keep);
        assert_eq!(classify(g, Entity::Vendor, &["data", "skus", "name"]), Kind::Keep);
        assert_eq!(classify(g, Entity::Account, &["name"]), Kind::Org);
        assert_eq!(classify(g, Entity::Account, &["id"]), Kind::Keep);
        assert_eq!(classify(g, Entity::Error, &["message"]), Kind::Message);
    }
}
