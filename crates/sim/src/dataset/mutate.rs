//! Changing the dataset: the inserts the generator uses, and the mutations tests and the
//! control surface apply between runs (users added or removed, renames, moves, service
//! changes, new customers, domains and groups, mailing lists and unlicensed users, customers
//! hidden from the customer listing, revoked keys). Every change keeps the child
//! indexes in step and drops the cached user indexes.

use super::{
    ApiKey, Customer, Dataset, Domain, DomainStatus, GroupUsers, Millis, NextIds, Reseller, Role,
    Services, UserGroup, UserKind,
};

/// Why a mutation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SimError {
    /// The entity to change does not exist.
    #[error("simulator: no {kind} with id {id}; use an id from the generated dataset")]
    NotFound {
        /// Entity kind ("customer", "domain", ...).
        kind: &'static str,
        /// The id asked for.
        id: u64,
    },
    /// The change would break the tree (e.g. user groups on an alias domain).
    #[error("simulator: {0}")]
    Invalid(String),
}

fn now() -> Millis {
    chrono::Utc::now().timestamp_millis()
}

impl Dataset {
    pub(super) fn empty(seed: u64, main_reseller: u64) -> Dataset {
        Dataset {
            seed,
            main_reseller,
            resellers: Default::default(),
            customers: Default::default(),
            domains: Default::default(),
            groups: Default::default(),
            customers_of: Default::default(),
            domains_of: Default::default(),
            groups_of: Default::default(),
            aliases_of: Default::default(),
            keys: Default::default(),
            key_of: Default::default(),
            revoked: Default::default(),
            hidden: Default::default(),
            next_id: NextIds {
                customer: 7115,
                domain: 1000,
                group: 2000,
                user: 1_000_000,
                manager: 500,
            },
            user_index: Default::default(),
        }
    }

    fn changed(&mut self) {
        self.user_index.get_mut().unwrap_or_else(|e| e.into_inner()).clear();
    }

    pub(super) fn insert_reseller(&mut self, r: Reseller) {
        self.resellers.insert(r.id, r);
    }

    pub(super) fn insert_customer(&mut self, c: Customer) {
        self.next_id.customer = self.next_id.customer.max(c.id + 1);
        self.customers_of.entry(c.reseller_id).or_default().insert(c.id);
        self.customers.insert(c.id, c);
        self.changed();
    }

    pub(super) fn insert_domain(&mut self, d: Domain) {
        self.next_id.domain = self.next_id.domain.max(d.id + 1);
        self.domains_of.entry(d.customer_id).or_default().insert(d.id);
        if let Some(p) = d.parent {
            self.aliases_of.entry(p).or_default().insert(d.id);
        }
        self.domains.insert(d.id, d);
        self.changed();
    }

    pub(super) fn insert_group(
        &mut self,
        id: u64,
        name: &str,
        domain: u64,
        s: Services,
        at: Millis,
    ) {
        self.next_id.group = self.next_id.group.max(id + 1);
        self.groups_of.entry(domain).or_default().insert(id);
        let users = GroupUsers::default();
        let g = UserGroup {
            id,
            name: name.into(),
            domain_id: domain,
            services: s,
            created_at: at,
            updated_at: at,
            users,
        };
        self.groups.insert(id, g);
        self.changed();
    }

    pub(super) fn issue_key(&mut self, role: Role, key: String) {
        let manager_id = self.next_id.manager;
        self.next_id.manager += 1;
        self.keys.insert(key.clone(), ApiKey { manager_id, role });
        self.key_of.insert(role, key);
    }

    fn group_mut(&mut self, id: u64) -> Result<&mut UserGroup, SimError> {
        self.groups.get_mut(&id).ok_or(SimError::NotFound { kind: "user group", id })
    }

    /// Adds `n` users (type User) to a group; returns their ids.
    pub fn add_users(&mut self, group: u64, n: u32) -> Result<Vec<u64>, SimError> {
        let start = self.next_id.user;
        let g = self.group_mut(group)?;
        g.users.push_users(start, n);
        g.updated_at = now();
        self.next_id.user += u64::from(n);
        self.changed();
        Ok((start..start + u64::from(n)).collect())
    }

    /// Gives `n` users of the group without an alias one alias each; returns the alias ids.
    pub fn add_aliases(&mut self, group: u64, n: u32) -> Result<Vec<u64>, SimError> {
        let mut next = self.next_id.user;
        let g = self.group_mut(group)?;
        let taken: Vec<u64> = g.users.aliases.iter().map(|a| a.1).collect();
        let parents: Vec<u64> =
            g.users.user_ids().filter(|u| !taken.contains(u)).take(n as usize).collect();
        let mut ids = Vec::new();
        for p in parents {
            g.users.aliases.push((next, p));
            ids.push(next);
            next += 1;
        }
        self.next_id.user = next;
        self.changed();
        Ok(ids)
    }

    /// Adds `n` mailing lists (type Mailing List, 3) to a group; returns their ids.
    pub fn add_mailing_lists(&mut self, group: u64, n: u32) -> Result<Vec<u64>, SimError> {
        self.add_typed(group, n, UserKind::MailingList)
    }

    /// Adds `n` unlicensed users (type Unlicensed User, 11) to a group; returns their ids.
    pub fn add_unlicensed_users(&mut self, group: u64, n: u32) -> Result<Vec<u64>, SimError> {
        self.add_typed(group, n, UserKind::UnlicensedUser)
    }

    fn add_typed(&mut self, group: u64, n: u32, kind: UserKind) -> Result<Vec<u64>, SimError> {
        let start = self.next_id.user;
        let g = self.group_mut(group)?;
        g.users.push_typed(start, n, kind);
        g.updated_at = now();
        self.next_id.user += u64::from(n);
        self.changed();
        Ok((start..start + u64::from(n)).collect())
    }

    /// Removes up to `n` users of type User (newest first, with their aliases; mailing lists
    /// and unlicensed users stay); returns how many went.
    pub fn remove_users(&mut self, group: u64, n: u64) -> Result<u64, SimError> {
        let g = self.group_mut(group)?;
        let removed = g.users.remove_newest(n);
        g.updated_at = now();
        self.changed();
        Ok(removed)
    }

    /// Renames a customer (keeps the old name in `former_name`, bumps `updated_at`).
    pub fn rename_customer(&mut self, id: u64, name: &str) -> Result<(), SimError> {
        let c = self.customers.get_mut(&id).ok_or(SimError::NotFound { kind: "customer", id })?;
        c.former_name = Some(std::mem::replace(&mut c.name, name.to_owned()));
        c.updated_at = now();
        Ok(())
    }

    /// Moves a primary domain (with its alias domains, groups and users) to another customer.
    pub fn move_domain(&mut self, domain: u64, customer: u64) -> Result<(), SimError> {
        if !self.customers.contains_key(&customer) {
            return Err(SimError::NotFound { kind: "customer", id: customer });
        }
        let d =
            self.domains.get(&domain).ok_or(SimError::NotFound { kind: "domain", id: domain })?;
        if d.parent.is_some() {
            return Err(SimError::Invalid(format!(
                "domain {domain} is an alias; move its primary"
            )));
        }
        let mut moving = vec![domain];
        moving.extend(self.aliases_of_domain(domain));
        for id in moving {
            if let Some(d) = self.domains.get_mut(&id) {
                if let Some(set) = self.domains_of.get_mut(&d.customer_id) {
                    set.remove(&id);
                }
                d.customer_id = customer;
                d.updated_at = now();
                self.domains_of.entry(customer).or_default().insert(id);
            }
        }
        self.changed();
        Ok(())
    }

    /// Replaces a group's services.
    pub fn set_services(&mut self, group: u64, services: Services) -> Result<(), SimError> {
        let g = self.group_mut(group)?;
        g.services = services;
        g.updated_at = now();
        Ok(())
    }

    /// Adds a customer under `reseller` (issuing a customer key); returns its id.
    pub fn add_customer(&mut self, reseller: u64, name: &str) -> Result<u64, SimError> {
        if !self.resellers.contains_key(&reseller) {
            return Err(SimError::NotFound { kind: "reseller", id: reseller });
        }
        let id = self.next_id.customer;
        let at = now();
        let former_name = None;
        let c = Customer {
            id,
            name: name.into(),
            former_name,
            reseller_id: reseller,
            created_at: at,
            updated_at: at,
        };
        self.insert_customer(c);
        let key =
            format!("{:016x}{:024x}", self.seed.rotate_left(17) ^ id, id.wrapping_mul(0x9e37_79b9));
        self.issue_key(Role::Customer(id), key);
        Ok(id)
    }

    /// Leaves a customer out of customer listings (`/resellers/{id}/customers`) while its
    /// domains, groups and users stay in the reseller-wide listings and `/customers/{id}`
    /// still answers: a listing that lags a customer being created or moved. The ground
    /// truth leaves it out too (a client that lists customers cannot count it).
    pub fn hide_customer(&mut self, id: u64) -> Result<(), SimError> {
        if !self.customers.contains_key(&id) {
            return Err(SimError::NotFound { kind: "customer", id });
        }
        self.hidden.insert(id);
        self.changed();
        Ok(())
    }

    /// Lists a hidden customer again (a no-op for a listed one).
    pub fn unhide_customer(&mut self, id: u64) -> Result<(), SimError> {
        if !self.customers.contains_key(&id) {
            return Err(SimError::NotFound { kind: "customer", id });
        }
        self.hidden.remove(&id);
        self.changed();
        Ok(())
    }

    /// Removes a customer with its domains, groups and users.
    pub fn remove_customer(&mut self, id: u64) -> Result<(), SimError> {
        let c = self.customers.remove(&id).ok_or(SimError::NotFound { kind: "customer", id })?;
        self.hidden.remove(&id);
        if let Some(set) = self.customers_of.get_mut(&c.reseller_id) {
            set.remove(&id);
        }
        for d in self.domains_of.remove(&id).unwrap_or_default() {
            self.domains.remove(&d);
            self.aliases_of.remove(&d);
            for g in self.groups_of.remove(&d).unwrap_or_default() {
                self.groups.remove(&g);
            }
        }
        if let Some(key) = self.key_of.remove(&Role::Customer(id)) {
            self.keys.remove(&key);
        }
        self.changed();
        Ok(())
    }

    /// Adds a domain to a customer; with `parent` it is an alias (Pending, with a token).
    pub fn add_domain(
        &mut self,
        customer: u64,
        name: &str,
        parent: Option<u64>,
    ) -> Result<u64, SimError> {
        if !self.customers.contains_key(&customer) {
            return Err(SimError::NotFound { kind: "customer", id: customer });
        }
        if let Some(p) = parent
            && self.domains.get(&p).is_none_or(|d| d.parent.is_some())
        {
            return Err(SimError::Invalid(format!("alias parent {p} is not a primary domain")));
        }
        let id = self.next_id.domain;
        let at = now();
        let (status, token) = match parent {
            Some(_) => (DomainStatus::Pending, Some(format!("mp-verify-{id:032x}"))),
            None => (DomainStatus::Active, None),
        };
        self.insert_domain(Domain {
            id,
            name: name.into(),
            customer_id: customer,
            parent,
            status,
            verification_token: token,
            address_discovery_enabled: false,
            created_at: at,
            updated_at: at,
        });
        Ok(id)
    }

    /// Adds a user group with `users` users to a primary domain; returns its id.
    pub fn add_group(
        &mut self,
        domain: u64,
        name: &str,
        services: Services,
        users: u32,
    ) -> Result<u64, SimError> {
        let d =
            self.domains.get(&domain).ok_or(SimError::NotFound { kind: "domain", id: domain })?;
        if d.parent.is_some() {
            return Err(SimError::Invalid(format!(
                "domain {domain} is an alias; it has no groups"
            )));
        }
        let id = self.next_id.group;
        self.insert_group(id, name, domain, services, now());
        self.add_users(id, users)?;
        Ok(id)
    }

    /// Revokes a key: from now on it answers 401.
    pub fn revoke_key(&mut self, key: &str) {
        self.revoked.insert(key.to_owned());
    }

    /// Accepts a revoked key again (the operator was issued a working key).
    pub fn restore_key(&mut self, key: &str) {
        self.revoked.remove(key);
    }
}
