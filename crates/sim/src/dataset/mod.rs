//! The simulated Mailprotector data: provider → resellers → customers → domains → user groups →
//! users, generated from a seed ([`Dataset::generate`]), with the ground truth the usage counts
//! must equal ([`Dataset::expected_counts`], [`Dataset::expected_counts_for`]). Users of the four
//! v1 types (User, Alias, Mailing List, Unlicensed User) are stored compactly per user group (id
//! runs, an alias list, typed runs) and materialised only when an endpoint lists them.

mod generate;
mod mutate;
mod names;
mod scope_users;
mod time;
mod truth;
mod types;
mod users;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;

pub use generate::{FIXTURE_GROUP, MAIN_RESELLER, OTHER_RESELLER, SUB_RESELLER, UNKNOWN_PRODUCT};
pub use mutate::SimError;
pub(crate) use scope_users::{ScopeUsers, UserRef};
pub use time::{Millis, format_ts};
pub use types::{
    ApiKey, Customer, Domain, DomainStatus, PROVIDER, Reseller, Role, Services, UserGroup,
};
pub(crate) use users::GroupUsers;
pub use users::{DEFAULT_COUNTED_TYPES, SimUser, USER_COUNT_TYPES, UserKind};

/// The whole simulated tenant tree. Deterministic for a given seed and customer count.
pub struct Dataset {
    seed: u64,
    main_reseller: u64,
    resellers: BTreeMap<u64, Reseller>,
    customers: BTreeMap<u64, Customer>,
    domains: BTreeMap<u64, Domain>,
    groups: BTreeMap<u64, UserGroup>,
    // Child indexes, kept in step by every mutation.
    customers_of: BTreeMap<u64, BTreeSet<u64>>,
    domains_of: BTreeMap<u64, BTreeSet<u64>>,
    groups_of: BTreeMap<u64, BTreeSet<u64>>,
    aliases_of: BTreeMap<u64, BTreeSet<u64>>,
    keys: HashMap<String, ApiKey>,
    key_of: BTreeMap<Role, String>,
    revoked: BTreeSet<String>,
    // Customers left out of customer listings (their domains, groups and users still list).
    hidden: BTreeSet<u64>,
    next_id: NextIds,
    // Per-scope sorted user segments; cleared by every mutation.
    user_index: Mutex<HashMap<(Scope, u64), std::sync::Arc<ScopeUsers>>>,
}

impl std::fmt::Debug for Dataset {
    // Sizes only: the data is large and the keys are credentials (even simulated ones).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dataset")
            .field("seed", &self.seed)
            .field("reseller", &self.main_reseller)
            .field("customers", &self.customers.len())
            .field("domains", &self.domains.len())
            .field("groups", &self.groups.len())
            .field("keys", &self.keys.len())
            .finish_non_exhaustive()
    }
}

/// The next free id per entity kind (mutations allocate from here).
#[derive(Debug, Clone, Default)]
struct NextIds {
    customer: u64,
    domain: u64,
    group: u64,
    user: u64,
    manager: u64,
}

/// A list scope: which entity a `/{scope}/{id}/...` path starts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    /// `/resellers/{id}`.
    Reseller,
    /// `/customers/{id}`.
    Customer,
    /// `/domains/{id}`.
    Domain,
    /// `/user_groups/{id}`.
    UserGroup,
}

impl Dataset {
    /// The seed this dataset was generated from.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The reseller mpsync is configured with (188); its subtree is the ground truth's scope.
    pub fn reseller_id(&self) -> u64 {
        self.main_reseller
    }

    /// The API key of the main reseller's manager.
    pub fn reseller_key(&self) -> &str {
        self.key_for(Role::Reseller(self.main_reseller)).unwrap_or_default()
    }

    /// The API key of a customer-level manager of `customer`, if the customer exists.
    pub fn customer_key(&self, customer: u64) -> Option<&str> {
        self.key_for(Role::Customer(customer))
    }

    /// The API key for a role, if one was issued.
    pub fn key_for(&self, role: Role) -> Option<&str> {
        self.key_of.get(&role).map(String::as_str)
    }

    /// Every issued key with its role (revoked ones included), by role.
    pub fn keys(&self) -> impl Iterator<Item = (Role, &str)> + '_ {
        self.key_of.iter().map(|(r, k)| (*r, k.as_str()))
    }

    /// Resolves a bearer key: `None` when unknown or revoked.
    pub fn lookup_key(&self, key: &str) -> Option<&ApiKey> {
        if self.revoked.contains(key) {
            return None;
        }
        self.keys.get(key)
    }

    /// Every reseller, by id.
    pub fn resellers(&self) -> &BTreeMap<u64, Reseller> {
        &self.resellers
    }

    /// Every customer (of every reseller), by id.
    pub fn customers(&self) -> &BTreeMap<u64, Customer> {
        &self.customers
    }

    /// Every domain (aliases included), by id.
    pub fn domains(&self) -> &BTreeMap<u64, Domain> {
        &self.domains
    }

    /// Every user group, by id.
    pub fn groups(&self) -> &BTreeMap<u64, UserGroup> {
        &self.groups
    }

    /// A customer's name.
    pub fn customer_name(&self, id: u64) -> Option<&str> {
        self.customers.get(&id).map(|c| c.name.as_str())
    }

    /// Customers in the main reseller's subtree that `/resellers/{id}/customers` lists
    /// (hidden customers left out): the customers of the ground truth.
    pub fn main_customers(&self) -> Vec<u64> {
        self.listed_customers_in_reseller(self.main_reseller)
    }

    /// Whether a customer is hidden from customer listings (see [`Dataset::hide_customer`]).
    pub fn is_hidden(&self, customer: u64) -> bool {
        self.hidden.contains(&customer)
    }

    /// Hidden customers, ascending.
    pub fn hidden_customers(&self) -> Vec<u64> {
        self.hidden.iter().copied().collect()
    }

    /// [`Dataset::customers_in_reseller`] without hidden customers: what
    /// `/resellers/{id}/customers` lists.
    pub fn listed_customers_in_reseller(&self, reseller: u64) -> Vec<u64> {
        let mut all = self.customers_in_reseller(reseller);
        all.retain(|c| !self.hidden.contains(c));
        all
    }

    /// Whether reseller `inner` is `outer` or nested anywhere below it.
    pub fn reseller_within(&self, inner: u64, outer: u64) -> bool {
        let mut cur = Some(inner);
        let mut hops = 0;
        while let Some(r) = cur {
            if r == outer {
                return true;
            }
            hops += 1;
            if hops > 64 {
                return false;
            }
            cur = self.resellers.get(&r).and_then(|x| x.parent);
        }
        false
    }

    /// Customers whose reseller is `reseller` or one of its sub-resellers, ascending, hidden
    /// ones included (reseller-wide domain and user listings cover them).
    pub fn customers_in_reseller(&self, reseller: u64) -> Vec<u64> {
        let mut out: Vec<u64> = Vec::new();
        for r in self.resellers.keys() {
            if self.reseller_within(*r, reseller) {
                out.extend(self.customers_of.get(r).into_iter().flatten());
            }
        }
        out.sort_unstable();
        out
    }

    /// A customer's domains (aliases included), ascending.
    pub fn domains_of_customer(&self, customer: u64) -> Vec<u64> {
        self.domains_of.get(&customer).map(|s| s.iter().copied().collect()).unwrap_or_default()
    }

    /// The user groups listed for a domain: its own, or for an alias domain its primary's
    /// (an alias shares the primary domain's users; this is what makes double counting possible).
    pub fn groups_of_domain(&self, domain: u64) -> Vec<u64> {
        let d = match self.domains.get(&domain) {
            Some(d) => d.parent.unwrap_or(domain),
            None => return Vec::new(),
        };
        self.groups_of.get(&d).map(|s| s.iter().copied().collect()).unwrap_or_default()
    }

    /// Alias domains whose parent is `domain`, ascending.
    pub fn aliases_of_domain(&self, domain: u64) -> Vec<u64> {
        self.aliases_of.get(&domain).map(|s| s.iter().copied().collect()).unwrap_or_default()
    }

    /// The customer owning a user group.
    pub fn customer_of_group(&self, group: u64) -> Option<u64> {
        let g = self.groups.get(&group)?;
        self.domains.get(&g.domain_id).map(|d| d.customer_id)
    }

    /// Users per type over the whole dataset (every reseller, hidden customers included).
    pub fn user_totals(&self) -> UserTotals {
        let mut t = UserTotals::default();
        for g in self.groups.values() {
            t.users += g.count_kind(UserKind::User);
            t.aliases += g.count_kind(UserKind::Alias);
            t.mailing_lists += g.count_kind(UserKind::MailingList);
            t.unlicensed_users += g.count_kind(UserKind::UnlicensedUser);
        }
        t
    }
}

/// Users per type ([`Dataset::user_totals`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UserTotals {
    /// Type User (1).
    pub users: u64,
    /// Type Alias (2).
    pub aliases: u64,
    /// Type Mailing List (3).
    pub mailing_lists: u64,
    /// Type Unlicensed User (11).
    pub unlicensed_users: u64,
}
