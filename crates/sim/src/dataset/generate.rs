//! The seeded generator: the documented fixtures (§11 of the reference: provider 65, reseller
//! 188, customers 329 and 7114, domain 102, user group 109 with 56 users, user 883326) plus
//! generated customers with realistic product mixes, alias domains, renamed and empty customers
//! and a few groups with an unknown product, then mailing lists and unlicensed users in about a
//! quarter of the groups that have users. Same seed and size, same data.

use std::collections::HashSet;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{
    Customer, Dataset, Domain, DomainStatus, Millis, Reseller, Role, Services, UserKind, names,
};

/// The documented reseller id ("Mailprotector Direct (old)").
pub const MAIN_RESELLER: u64 = 188;
/// A sub-reseller of 188 that owns every tenth generated customer.
pub const SUB_RESELLER: u64 = 4501;
/// A reseller outside 188's tree (its customers are outside the ground truth).
pub const OTHER_RESELLER: u64 = 4502;
/// The documented user group ("CloudMail with Bracket", `user_count` 56: Users only).
pub const FIXTURE_GROUP: u64 = 109;

const T2009: Millis = 1_230_768_000_000;
const DAY: Millis = 86_400_000;
const YEAR: Millis = 365 * DAY;

/// Product mixes: (weight, hosting, add-ons, group name).
const MIXES: &[(u32, Option<&str>, &[&str], &str)] = &[
    (30, Some("CloudFilter"), &[], "CloudFilter"),
    (15, Some("CloudFilter"), &["SafeSend"], "CloudFilter with SafeSend"),
    (12, Some("CloudFilter"), &["Bracket"], "CloudFilter with Bracket"),
    (10, Some("CloudMail"), &["Bracket"], "CloudMail with Bracket"),
    (8, Some("CloudMail"), &[], "CloudMail"),
    (6, Some("CloudFilter"), &["XtraMail", "SecureStore"], "XtraMail and SecureStore"),
    (5, Some("CloudFilter"), &["ContinuityBundle"], "Continuity"),
    (5, None, &["BracketBundle"], "BracketBundle"),
    (4, Some("CloudMail"), &["SafeSend", "SecureStore"], "CloudMail Archive"),
    (3, Some("CloudFilter"), &["SecureStore"], "Archive"),
    (2, None, &[], "No services"),
];

/// The unknown product a few groups carry; the client must surface it verbatim.
pub const UNKNOWN_PRODUCT: &str = "ForceEncrypt";

struct Gen {
    rng: ChaCha8Rng,
    ds: Dataset,
    customer_names: HashSet<String>,
    domain_names: HashSet<String>,
}

impl Dataset {
    /// Generates `customers` customers under reseller 188 (the first two are the documented
    /// 329 and 7114; every tenth sits under sub-reseller 4501), plus three customers of an
    /// unrelated reseller. Deterministic in `seed` and `customers`.
    pub fn generate(seed: u64, customers: u32) -> Dataset {
        let mut g = Gen {
            rng: ChaCha8Rng::seed_from_u64(seed),
            ds: Dataset::empty(seed, MAIN_RESELLER),
            customer_names: HashSet::new(),
            domain_names: HashSet::new(),
        };
        let resellers = [
            (MAIN_RESELLER, "Mailprotector Direct (old)", None),
            (SUB_RESELLER, "Mailprotector Direct (old) - West", Some(MAIN_RESELLER)),
            (OTHER_RESELLER, "Northwind Mail Partners", None),
        ];
        for (id, name, parent) in resellers {
            let created_at = T2009 + (id as Millis % 300) * DAY;
            let r = Reseller { id, name: name.into(), parent, created_at, updated_at: created_at };
            g.ds.insert_reseller(r);
        }
        for i in 0..customers {
            match i {
                0 => g.fixture_329(),
                1 => g.customer(7114, MAIN_RESELLER, 1),
                _ => {
                    let id = g.ds.next_id.customer;
                    let owner = if i % 10 == 9 { SUB_RESELLER } else { MAIN_RESELLER };
                    g.customer(id, owner, i);
                }
            }
        }
        for i in 0..3 {
            let id = g.ds.next_id.customer;
            g.customer(id, OTHER_RESELLER, 100 + i);
        }
        g.typed_users();
        g.issue_keys();
        g.ds
    }
}

impl Gen {
    fn fixture_329(&mut self) {
        let c = Customer {
            id: 329,
            name: "Mailprotector group".into(),
            former_name: None,
            reseller_id: MAIN_RESELLER,
            created_at: 1_273_660_404_000, // 2010-05-12T10:33:24.000Z
            updated_at: 1_400_023_671_000, // 2014-05-13T23:27:51.000Z
        };
        self.customer_names.insert(c.name.clone());
        let created = c.created_at;
        self.ds.insert_customer(c);
        self.domain_names.insert("mpdemo.net".into());
        self.ds.insert_domain(domain(102, "mpdemo.net", 329, None, created + DAY));
        let services = Services::new(Some("CloudMail"), &["Bracket"]);
        let at = created + 2 * DAY;
        self.ds.insert_group(FIXTURE_GROUP, "CloudMail with Bracket", 102, services, at);
        if let Some(g) = self.ds.groups.get_mut(&FIXTURE_GROUP) {
            g.users.push_users(names::FIXTURE_USER, 56);
        }
        self.add_aliases(FIXTURE_GROUP, 4);
        let gid = self.ds.next_id.group;
        let services = Services::new(Some("CloudFilter"), &["SafeSend"]);
        self.ds.insert_group(gid, "CloudFilter with SafeSend", 102, services, created + 3 * DAY);
        self.add_users(gid, 12);
        let alias = self.ds.next_id.domain;
        self.domain_names.insert("mpdemo.org".into());
        let mut d = domain(alias, "mpdemo.org", 329, Some(102), created + 400 * DAY);
        self.pending(&mut d);
        self.ds.insert_domain(d);
    }

    /// One generated customer. `i` (its position) forces the edge cases on small datasets.
    fn customer(&mut self, id: u64, reseller: u64, i: u32) {
        let created_at = T2009 + YEAR + self.rng.random_range(0..14 * YEAR);
        let mut name = self.company_name();
        let mut former_name = None;
        let mut updated_at = created_at + self.rng.random_range(0..30) * DAY;
        if i % 20 == 3 || self.rng.random_ratio(1, 25) {
            former_name = Some(std::mem::replace(&mut name, self.company_name()));
            updated_at = created_at + self.rng.random_range(1..5) * YEAR;
        }
        self.ds.insert_customer(Customer {
            id,
            name: name.clone(),
            former_name,
            reseller_id: reseller,
            created_at,
            updated_at,
        });
        let empty = i % 40 == 5 || self.rng.random_ratio(1, 50);
        let no_users = i % 40 == 6;
        if empty {
            return;
        }
        let domains = match self.rng.random_range(0..100) {
            0..75 => 1,
            75..93 => 2,
            _ => 3,
        };
        for k in 0..domains {
            let did = self.ds.next_id.domain;
            let dname = self.domain_name(&name, if k == 0 { None } else { Some("mail") });
            let dcreated = created_at + self.rng.random_range(0..90) * DAY;
            self.ds.insert_domain(domain(did, &dname, id, None, dcreated));
            let groups = match self.rng.random_range(0..100) {
                0..55 => 1,
                55..85 => 2,
                85..95 => 3,
                _ => 4,
            };
            for n in 0..groups {
                let (hosting, addons, mix_name) = self.mix();
                let mut services = Services::new(hosting, addons);
                if (i % 50 == 7 && k == 0 && n == 0) || self.rng.random_ratio(1, 150) {
                    services.addons.push(UNKNOWN_PRODUCT.into());
                }
                let gname = if n == 0 {
                    mix_name.to_owned()
                } else {
                    let pick = self.rng.random_range(0..names::GROUP_NAMES.len());
                    names::GROUP_NAMES[pick].to_owned()
                };
                let gid = self.ds.next_id.group;
                let gcreated = dcreated + self.rng.random_range(0..30) * DAY;
                self.ds.insert_group(gid, &gname, did, services, gcreated);
                let users = if no_users { 0 } else { self.user_count() };
                self.add_users(gid, users);
                let aliases = (users * self.rng.random_range(0..16)) / 100;
                self.add_aliases(gid, aliases);
            }
            if self.rng.random_ratio(3, 25) || (i % 40 == 2 && k == 0) {
                let aid = self.ds.next_id.domain;
                let aname = self.domain_name(&name, Some("alias"));
                let mut d = domain(aid, &aname, id, Some(did), dcreated + 200 * DAY);
                self.pending(&mut d);
                self.ds.insert_domain(d);
            }
        }
    }

    fn mix(&mut self) -> (Option<&'static str>, &'static [&'static str], &'static str) {
        let total: u32 = MIXES.iter().map(|m| m.0).sum();
        let mut pick = self.rng.random_range(0..total);
        for &(w, hosting, addons, name) in MIXES {
            if pick < w {
                return (hosting, addons, name);
            }
            pick -= w;
        }
        (Some("CloudFilter"), &[], "CloudFilter")
    }

    /// Users per group: mostly small, a long tail (about 22 on average).
    fn user_count(&mut self) -> u32 {
        match self.rng.random_range(0..100) {
            0..6 => 0,
            6..65 => self.rng.random_range(1..=12),
            65..92 => self.rng.random_range(13..=50),
            92..99 => self.rng.random_range(51..=150),
            _ => self.rng.random_range(151..=400),
        }
    }

    fn add_users(&mut self, gid: u64, n: u32) {
        let start = self.ds.next_id.user;
        self.ds.next_id.user += u64::from(n);
        if let Some(g) = self.ds.groups.get_mut(&gid) {
            g.users.push_users(start, n);
        }
    }

    /// Gives the group's first `n` users one alias each.
    fn add_aliases(&mut self, gid: u64, n: u32) {
        let Some(g) = self.ds.groups.get_mut(&gid) else { return };
        let parents: Vec<u64> = g.users.user_ids().take(n as usize).collect();
        for p in parents {
            let id = self.ds.next_id.user;
            self.ds.next_id.user += 1;
            g.users.aliases.push((id, p));
        }
    }

    fn company_name(&mut self) -> String {
        let (a, b, c): (u32, u32, u32) = (self.rng.random(), self.rng.random(), self.rng.random());
        let (a, b, c) = (a as usize, b as usize, c as usize);
        let base = names::company(a, b, c);
        let mut name = base.clone();
        let mut n = 2;
        while !self.customer_names.insert(name.clone()) {
            name = format!("{base} {n}");
            n += 1;
        }
        name
    }

    fn domain_name(&mut self, company: &str, extra: Option<&str>) -> String {
        let tld = self.rng.random_range(0..5);
        let mut name = names::domain_for(company, tld, extra);
        let mut n = 2;
        while !self.domain_names.insert(name.clone()) {
            name = names::domain_for(company, tld, Some(&format!("{}{n}", extra.unwrap_or(""))));
            n += 1;
        }
        name
    }

    fn pending(&mut self, d: &mut Domain) {
        d.status = DomainStatus::Pending;
        let token: u128 = self.rng.random();
        d.verification_token = Some(format!("mp-verify-{token:032x}"));
    }

    /// Mailing lists and unlicensed users, added after everything else from their own stream
    /// with ids above every other: the Users and aliases (ids, counts, the main stream's draws)
    /// stay exactly what they were before these types existed, and so does the default truth.
    /// About a quarter of the groups with users get 1–3 lists and/or 1–5 unlicensed users;
    /// the fixture customer's second group always gets 2 and 3, so even tiny datasets have
    /// both types. Group 109 gets none (its documented `user_count` 56 is Users only).
    fn typed_users(&mut self) {
        let mut trng = ChaCha8Rng::seed_from_u64(self.ds.seed ^ 0x7479_7065_6475_7365);
        let forced = self.ds.groups_of_domain(102).into_iter().find(|g| *g != FIXTURE_GROUP);
        let with_users: Vec<u64> = self
            .ds
            .groups
            .values()
            .filter(|g| g.id != FIXTURE_GROUP && g.count_kind(UserKind::User) > 0)
            .map(|g| g.id)
            .collect();
        for gid in with_users {
            let (lists, unlicensed) = if trng.random_ratio(1, 4) {
                match trng.random_range(0..3) {
                    0 => (trng.random_range(1..=3), 0),
                    1 => (0, trng.random_range(1..=5)),
                    _ => (trng.random_range(1..=3), trng.random_range(1..=5)),
                }
            } else {
                (0, 0)
            };
            let (lists, unlicensed) =
                if Some(gid) == forced { (2, 3) } else { (lists, unlicensed) };
            for (kind, n) in
                [(UserKind::MailingList, lists), (UserKind::UnlicensedUser, unlicensed)]
            {
                let start = self.ds.next_id.user;
                self.ds.next_id.user += u64::from(n);
                if let Some(g) = self.ds.groups.get_mut(&gid) {
                    g.users.push_typed(start, n, kind);
                }
            }
        }
    }

    /// One manager key per reseller and per customer, from a separate stream so keys never
    /// shift the data.
    fn issue_keys(&mut self) {
        let mut krng = ChaCha8Rng::seed_from_u64(self.ds.seed ^ 0x6b65_7973_6b65_7973);
        let mut roles: Vec<Role> = self.ds.resellers.keys().map(|r| Role::Reseller(*r)).collect();
        roles.extend(self.ds.customers.keys().map(|c| Role::Customer(*c)));
        for role in roles {
            let key = format!("{:032x}{:08x}", krng.random::<u128>(), krng.random::<u32>());
            self.ds.issue_key(role, key);
        }
    }
}

fn domain(id: u64, name: &str, customer: u64, parent: Option<u64>, at: Millis) -> Domain {
    Domain {
        id,
        name: name.into(),
        customer_id: customer,
        parent,
        status: DomainStatus::Active,
        verification_token: None,
        address_discovery_enabled: id.is_multiple_of(3),
        created_at: at,
        updated_at: at,
    }
}
