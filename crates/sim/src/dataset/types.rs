//! The entities of the simulated tree (resellers, customers, domains, user groups with their
//! services) and the key roles.

use super::{GroupUsers, Millis, UserKind};

/// The provider every generated reseller belongs to (id 65 "United States" in the vendor examples).
pub const PROVIDER: (u64, &str) = (65, "United States");

/// A reseller; `parent` is `None` at the top of the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reseller {
    /// Reseller id.
    pub id: u64,
    /// Display name.
    pub name: String,
    /// The parent reseller, if this one is nested.
    pub parent: Option<u64>,
    /// Creation time.
    pub created_at: Millis,
    /// Last change.
    pub updated_at: Millis,
}

/// A customer ("account"), owned by one reseller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Customer {
    /// Customer id.
    pub id: u64,
    /// Current name.
    pub name: String,
    /// The name before a rename, if the customer was renamed (not served; for tests).
    pub former_name: Option<String>,
    /// The owning reseller.
    pub reseller_id: u64,
    /// Creation time.
    pub created_at: Millis,
    /// Last change (later than `created_at` for renamed customers).
    pub updated_at: Millis,
}

/// Domain verification state (`domain_status` in the API).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DomainStatus {
    /// `{"id":1,"name":"Pending"}`: not verified yet (new alias domains).
    Pending,
    /// `{"id":2,"name":"Active"}`.
    Active,
}

impl DomainStatus {
    /// The `{id, name}` pair the API shows.
    pub fn id_name(self) -> (u64, &'static str) {
        match self {
            DomainStatus::Pending => (1, "Pending"),
            DomainStatus::Active => (2, "Active"),
        }
    }
}

/// A domain; an alias domain has `parent` set and owns no user groups of its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Domain {
    /// Domain id.
    pub id: u64,
    /// The DNS name.
    pub name: String,
    /// The owning customer.
    pub customer_id: u64,
    /// The primary domain this one is an alias of.
    pub parent: Option<u64>,
    /// Verification state.
    pub status: DomainStatus,
    /// Set while the domain is pending verification.
    pub verification_token: Option<String>,
    /// Whether address discovery is on.
    pub address_discovery_enabled: bool,
    /// Creation time.
    pub created_at: Millis,
    /// Last change.
    pub updated_at: Millis,
}

/// The services (products) enabled on a user group, in the project's canonical vocabulary.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Services {
    /// `CloudFilter`, `CloudMail` or none.
    pub hosting: Option<String>,
    /// Add-ons such as `SafeSend`, `Bracket`; unknown products (e.g. `ForceEncrypt`) verbatim.
    pub addons: Vec<String>,
}

impl Services {
    /// Builds a service set from a hosting name and add-on names.
    pub fn new(hosting: Option<&str>, addons: &[&str]) -> Services {
        Services {
            hosting: hosting.map(str::to_owned),
            addons: addons.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    /// Every product of the group (hosting first), without duplicates.
    pub fn products(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for p in self.hosting.iter().chain(self.addons.iter()) {
            if !out.contains(&p.as_str()) {
                out.push(p);
            }
        }
        out
    }
}

/// A user group with its services and (compactly stored) users.
#[derive(Debug)]
pub struct UserGroup {
    /// User group id.
    pub id: u64,
    /// Display name.
    pub name: String,
    /// The (primary) domain it belongs to.
    pub domain_id: u64,
    /// Enabled services.
    pub services: Services,
    /// Creation time.
    pub created_at: Millis,
    /// Last change.
    pub updated_at: Millis,
    pub(crate) users: GroupUsers,
}

impl UserGroup {
    /// `user_count` as served by default (reference §12 #11): every non-alias user — types
    /// User, Mailing List and Unlicensed User ([`super::USER_COUNT_TYPES`]). This is NOT what
    /// the ground truth counts by default; that is `count_of(&[1])`.
    pub fn user_count(&self) -> u64 {
        self.count_of(&super::USER_COUNT_TYPES)
    }

    /// Users whose type id is one of `types` (1 User, 2 Alias, 3 Mailing List, 11 Unlicensed
    /// User; other ids count nothing; a repeated id counts once).
    pub fn count_of(&self, types: &[u64]) -> u64 {
        UserKind::ALL
            .into_iter()
            .filter(|k| types.contains(&k.id()))
            .map(|k| self.users.count(k))
            .sum()
    }

    /// Users of one type.
    pub fn count_kind(&self, kind: UserKind) -> u64 {
        self.users.count(kind)
    }

    /// Aliases (user type Alias) in this group.
    pub fn alias_count(&self) -> u64 {
        self.users.count(UserKind::Alias)
    }

    /// Every user of the group, all four types: what `/user_groups/{id}/users` lists.
    pub fn listed_count(&self) -> u64 {
        UserKind::ALL.into_iter().map(|k| self.users.count(k)).sum()
    }
}

/// What an API key's manager role is attached to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// A reseller-level role: sees the reseller's whole subtree, sub-resellers included.
    Reseller(u64),
    /// A customer-level role: sees that customer's domains, groups and users only.
    Customer(u64),
}

/// One API key: a manager's key for one role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    /// The manager owning the role.
    pub manager_id: u64,
    /// The role the key carries.
    pub role: Role,
}
