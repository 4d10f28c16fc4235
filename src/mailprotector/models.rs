//! Tolerant models of the Mailprotector resources mpsync reads (reference §5, §12).
//!
//! Only `id` is required and ids are integers; unknown fields are ignored; names take any
//! scalar. Fields whose absence would change a count (`user_count`, a user's type and group,
//! a domain's customer) are checked where they are used, so the error names the endpoint.

use serde::{Deserialize, Deserializer};
use serde_json::Value;

use super::products::canonical;
use super::user_types;
use crate::upstream::Malformed;

/// A reference to another entity: `{id, name}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct EntityRef {
    /// The entity's id.
    pub id: u64,
    /// Its name, when given.
    #[serde(default, deserialize_with = "lenient_name")]
    pub name: Option<String>,
}

/// `GET /resellers/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Reseller {
    /// Reseller id.
    pub id: u64,
    /// Its name.
    #[serde(default, deserialize_with = "lenient_name")]
    pub name: Option<String>,
}

/// One entry of `GET /resellers/{id}/customers`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Customer {
    /// Customer id.
    pub id: u64,
    /// Its name.
    #[serde(default, deserialize_with = "lenient_name")]
    pub name: Option<String>,
}

/// One entry of `GET /resellers/{id}/domains`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Domain {
    /// Domain id.
    pub id: u64,
    /// The domain name.
    #[serde(default, deserialize_with = "lenient_name")]
    pub name: Option<String>,
    /// The owning customer (`account` in the reference; `customer` accepted too).
    #[serde(default, alias = "customer")]
    pub account: Option<EntityRef>,
    /// The owning customer as a bare id, if the API sends that form instead.
    #[serde(default, alias = "customer_id")]
    pub account_id: Option<u64>,
    /// Set on domain aliases (points at the primary domain).
    #[serde(default)]
    pub parent: Option<Value>,
}

impl Domain {
    /// The owning customer's id, from whichever form the API used.
    pub fn customer_id(&self) -> Option<u64> {
        self.account.as_ref().map(|a| a.id).or(self.account_id)
    }

    /// Whether this is an alias of another domain (its users are counted on the primary).
    pub fn is_alias(&self) -> bool {
        match &self.parent {
            None | Some(Value::Null) | Some(Value::Bool(false)) => false,
            Some(Value::Object(o)) => !o.is_empty(),
            Some(Value::String(s)) => !s.is_empty(),
            Some(_) => true,
        }
    }
}

/// One entry of `GET /domains/{id}/user_groups`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct UserGroup {
    /// User group id.
    pub id: u64,
    /// Its name.
    #[serde(default, deserialize_with = "lenient_name")]
    pub name: Option<String>,
    /// Users of type User in the group, kept raw so a wrong type is reported, never read as 0.
    #[serde(default)]
    pub user_count: Option<Value>,
}

impl UserGroup {
    /// The user count; an error (for a `BadResponse`) when missing or not a non-negative integer.
    pub fn user_count(&self) -> Result<u64, Malformed> {
        match &self.user_count {
            Some(Value::Number(n)) => n.as_u64().ok_or_else(|| {
                Malformed(format!(
                    "user group {} has a user_count that is not a non-negative integer: {n}",
                    self.id
                ))
            }),
            None | Some(Value::Null) => {
                Err(Malformed(format!("user group {} has no user_count", self.id)))
            }
            Some(other) => Err(Malformed(format!(
                "user group {} has a user_count that is not an integer: {other}",
                self.id
            ))),
        }
    }
}

/// One entry of a user listing (`GET /resellers/{id}/users`, the per-user walk).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct User {
    /// User id.
    pub id: u64,
    /// `{id: 1, name: "User"}`, `{id: 2, name: "Alias"}`, ...; kept raw for tolerance.
    #[serde(default)]
    pub user_type: Option<Value>,
    /// The user's group.
    #[serde(default)]
    pub user_group: Option<EntityRef>,
    /// The user's domain.
    #[serde(default)]
    pub domain: Option<EntityRef>,
}

/// A user's type as the API gave it: an id (with its name when given), or only a name that
/// is not one of the known types.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum UserTypeRef {
    /// A type id (known or not) and the name the API gave it, if any.
    Id(u64, Option<String>),
    /// A name that maps to no known type and came without an id.
    Named(String),
}

impl UserTypeRef {
    /// The type id, when known.
    pub fn id(&self) -> Option<u64> {
        match self {
            UserTypeRef::Id(id, _) => Some(*id),
            UserTypeRef::Named(_) => None,
        }
    }
}

impl User {
    /// The user's type; an error (for a `BadResponse`) when it is missing or unreadable, so
    /// a user is never silently left out of a count.
    pub fn user_type_ref(&self) -> Result<UserTypeRef, Malformed> {
        let by_name = |s: &str| match user_types::type_id(s) {
            Some(id) => Ok(UserTypeRef::Id(id, Some(s.to_owned()))),
            None if s.trim().is_empty() => {
                Err(Malformed(format!("user {} has an empty user_type", self.id)))
            }
            None => Ok(UserTypeRef::Named(s.trim().to_owned())),
        };
        match &self.user_type {
            Some(Value::Object(o)) => {
                let name = o.get("name").and_then(Value::as_str);
                match o.get("id") {
                    Some(Value::Number(n)) => match n.as_u64() {
                        Some(id) => Ok(UserTypeRef::Id(id, name.map(str::to_owned))),
                        None => Err(Malformed(format!(
                            "user {} has a user_type id that is not an id: {n}",
                            self.id
                        ))),
                    },
                    None | Some(Value::Null) => match name {
                        Some(n) => by_name(n),
                        None => Err(Malformed(format!(
                            "user {} has a user_type without an id or a name",
                            self.id
                        ))),
                    },
                    Some(other) => Err(Malformed(format!(
                        "user {} has a user_type id that is not a number: {other}",
                        self.id
                    ))),
                }
            }
            Some(Value::Number(n)) => {
                n.as_u64().map(|id| UserTypeRef::Id(id, None)).ok_or_else(|| {
                    Malformed(format!("user {} has a user_type that is not an id: {n}", self.id))
                })
            }
            Some(Value::String(s)) => by_name(s),
            _ => Err(Malformed(format!("user {} has no user_type", self.id))),
        }
    }
}

/// The canonical products of a `GET /user_groups/{id}/services` answer, sorted and
/// de-duplicated. Accepts the convention object `{"service_types":{"hosting","addons"}}`, an
/// array of `{name|service_type}` objects or strings, and the SDK object with `service_type`.
pub fn parse_services(v: &Value) -> Result<Vec<String>, Malformed> {
    let mut names: Vec<String> = Vec::new();
    let mut push = |s: &str| {
        if !s.trim().is_empty() {
            names.push(canonical(s));
        }
    };
    match v {
        Value::Object(o) if o.contains_key("service_types") => match o.get("service_types") {
            Some(Value::Object(st)) => {
                match st.get("hosting") {
                    Some(Value::String(h)) => push(h),
                    None | Some(Value::Null) => {}
                    Some(other) => {
                        return Err(Malformed(format!(
                            "service_types.hosting is not a string: {other}"
                        )));
                    }
                }
                match st.get("addons") {
                    Some(Value::Array(a)) => {
                        for addon in a {
                            match addon {
                                Value::String(s) => push(s),
                                Value::Object(ao) => {
                                    push(entry_name(ao).ok_or("an addon has no name")?)
                                }
                                other => {
                                    return Err(Malformed(format!(
                                        "an addon is not a name: {other}"
                                    )));
                                }
                            }
                        }
                    }
                    None | Some(Value::Null) => {}
                    Some(other) => {
                        return Err(Malformed(format!(
                            "service_types.addons is not a list: {other}"
                        )));
                    }
                }
            }
            Some(Value::Null) => {}
            Some(other) => {
                return Err(Malformed(format!("service_types is not an object: {other}")));
            }
            None => {}
        },
        // The SDK's single object: `service_type` names the one service (null: none).
        Value::Object(o) if o.contains_key("service_type") => match o.get("service_type") {
            Some(Value::String(s)) => push(s),
            Some(Value::Null) | None => {}
            Some(other) => return Err(Malformed(format!("service_type is not a string: {other}"))),
        },
        Value::Object(o) => match entry_name(o) {
            Some(n) => push(n),
            None => {
                return Err("the services object has neither service_types nor service_type".into());
            }
        },
        Value::Array(items) => {
            for item in items {
                match item {
                    Value::String(s) => push(s),
                    Value::Object(o) => {
                        push(entry_name(o).ok_or("a service entry has no name or service_type")?)
                    }
                    other => {
                        return Err(Malformed(format!(
                            "a service entry is not an object: {other}"
                        )));
                    }
                }
            }
        }
        other => {
            return Err(Malformed(format!(
                "expected an object or a list of services, got {other}"
            )));
        }
    }
    names.sort();
    names.dedup();
    Ok(names)
}

fn entry_name(o: &serde_json::Map<String, Value>) -> Option<&str> {
    ["service_type", "name", "code"].iter().find_map(|k| o.get(*k).and_then(Value::as_str))
}

/// Accepts any scalar as a name (numbers become strings); objects and arrays as absent.
fn lenient_name<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::String(s) => Some(s),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    })
}

#[cfg(test)]
#[path = "models_tests.rs"]
mod tests;
