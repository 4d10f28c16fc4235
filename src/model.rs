//! The domain words shared by every module: customer, product, usage count, run, snapshot.
//!
//! These types are the contract between the collectors (which produce them), the store (which
//! keeps them) and the readers (server, reconcile). They carry no behaviour beyond ordering.
//! The upstreams' fixed vocabularies live beside them, so that config can check settings
//! against them without depending on the clients: Mailprotector's product names
//! ([`products`]) and user types ([`user_types`]), Gradient's service categories
//! ([`gradient_categories`]).

pub mod event_kind;
pub mod gradient_categories;
pub mod products;
pub mod status;
pub mod user_types;

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A Mailprotector customer id.
pub type CustomerId = u64;

/// A run id: strictly increasing across every job kind in one store.
pub type RunId = u64;

/// The kind of job a run executed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunKind {
    /// A Mailprotector poll that produces a usage snapshot.
    Vendor,
    /// A PSA poll that produces a billed snapshot.
    Billing,
    /// A push of counts to Gradient Synthesize.
    Push,
}

impl RunKind {
    /// The lower-case name used in logs, metrics and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            RunKind::Vendor => "vendor",
            RunKind::Billing => "billing",
            RunKind::Push => "push",
        }
    }
}

impl fmt::Display for RunKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a run ended (or that it has not yet).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunOutcome {
    /// Still going.
    Running,
    /// Completed; its snapshot (if any) was committed with it.
    Ok,
    /// Ended with an error; no snapshot was written.
    Failed,
    /// Found still "running" at start-up: the process died during it.
    Aborted,
    /// Stopped by shutdown before it completed; nothing was written.
    Cancelled,
}

impl RunOutcome {
    /// The lower-case name used in logs, metrics and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            RunOutcome::Running => "running",
            RunOutcome::Ok => "ok",
            RunOutcome::Failed => "failed",
            RunOutcome::Aborted => "aborted",
            RunOutcome::Cancelled => "cancelled",
        }
    }
}

/// One execution of a job, as recorded in the store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// Strictly increasing id.
    pub id: RunId,
    /// Which job ran.
    pub kind: RunKind,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// When it ended; `None` while running.
    pub finished_at: Option<DateTime<Utc>>,
    /// How it ended.
    pub outcome: RunOutcome,
    /// Requests made, per upstream endpoint (e.g. `mailprotector GET /domains/{id}/user_groups`).
    pub requests: BTreeMap<String, u64>,
    /// Why it failed, in words an operator can act on.
    pub error: Option<String>,
    /// The snapshot this run produced or confirmed unchanged (the run id that first stored
    /// that content); `None` for runs that produce no snapshot or did not succeed.
    pub snapshot: Option<RunId>,
    /// How a completed vendor run counted (walk, user types, `user_count`, what was counted
    /// nowhere); `None` for other runs and for records written before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counting: Option<CountingReport>,
}

/// Which walk counted the users of a vendor run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Walk {
    /// One `GET /domains/{id}/user_groups` listing per non-alias domain, `user_count`
    /// standing in for the per-user count (only where it was verified to equal it).
    UserGroups,
    /// The reseller-wide `GET /resellers/{id}/users` listing, every user classified by type.
    Users,
}

impl Walk {
    /// The snake_case name used in logs and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Walk::UserGroups => "user_groups",
            Walk::Users => "users",
        }
    }
}

/// How one vendor run counted, kept in its run record (`/v1/runs`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CountingReport {
    /// The walk whose numbers were counted.
    pub walk: Walk,
    /// The counted user types (`[mailprotector] count_user_types`), e.g. "User (1)".
    pub count_user_types: String,
    /// Users seen per user type in the per-user walk (empty when `user_count` stood in).
    #[serde(default)]
    pub user_types: Vec<UserTypeTally>,
    /// Whether `user_count` stood in for the per-user count, and why or why not.
    pub user_count: UserCountNote,
    /// Domains and users that point at an owner outside the listings: counted nowhere.
    #[serde(default)]
    pub orphans: Orphans,
}

/// Users of one type seen by a per-user walk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserTypeTally {
    /// The type id, when the API gave one (or a known name stood for one).
    pub id: Option<u64>,
    /// The type's name as the API gave it (or the known name).
    pub name: Option<String>,
    /// Users of this type in the counted customers' domains.
    pub users: u64,
    /// Whether they were counted.
    pub counted: bool,
    /// Whether the public record names this type (1, 2, 3, 11).
    pub known: bool,
}

/// What a run did with `user_count`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserCountNote {
    /// Whether the run's numbers came from `user_count` (verified) instead of a per-user count.
    pub relied_on: bool,
    /// What is known about `user_count` on this account for the counted types.
    pub state: UserCountState,
    /// When it was last compared with the per-user count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checked_at: Option<DateTime<Utc>>,
    /// Whether this run made the comparison.
    #[serde(default)]
    pub checked_this_run: bool,
    /// User groups compared at that check.
    #[serde(default)]
    pub groups_compared: u64,
    /// Of those, groups whose `user_count` differed from the per-user count.
    #[serde(default)]
    pub groups_differing: u64,
    /// The whole story in one sentence an operator can read.
    pub detail: String,
}

/// What is known about `user_count` on this account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UserCountState {
    /// Never compared (for these counted types).
    Unchecked,
    /// Equal to the per-user count on every group at the last check.
    Agrees,
    /// Different on at least one group at the last check: not relied on.
    Differs,
    /// Equal on every group, but a type that is not counted had no users to compare with:
    /// not relied on.
    Inconclusive,
}

impl UserCountState {
    /// The snake_case name used in text output.
    pub fn as_str(self) -> &'static str {
        match self {
            UserCountState::Unchecked => "unchecked",
            UserCountState::Agrees => "agrees",
            UserCountState::Differs => "differs",
            UserCountState::Inconclusive => "inconclusive",
        }
    }
}

/// What a run could attribute to no listed customer: counted nowhere, reported here.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Orphans {
    /// Domains whose owner is not in the customer listing (at most [`Orphans::MAX_LISTED`]).
    #[serde(default)]
    pub domains: Vec<OrphanDomain>,
    /// How many such domains there were in all.
    #[serde(default)]
    pub domain_count: u64,
    /// Users of the counted types whose domain is one of those, or in no listing at all.
    #[serde(default)]
    pub users: u64,
    /// Some of those users' ids (at most [`Orphans::MAX_LISTED`]).
    #[serde(default)]
    pub user_ids: Vec<u64>,
    /// User groups of those users (at most [`Orphans::MAX_LISTED`]).
    #[serde(default)]
    pub group_ids: Vec<u64>,
}

impl Orphans {
    /// How many ids a run record lists per kind.
    pub const MAX_LISTED: usize = 20;

    /// Whether anything was counted nowhere.
    pub fn is_empty(&self) -> bool {
        self.domain_count == 0 && self.users == 0
    }

    /// One line for logs, health and `sync --once`.
    pub fn summary(&self) -> String {
        let mut parts = Vec::new();
        if self.domain_count > 0 {
            let ids: Vec<String> = self
                .domains
                .iter()
                .take(5)
                .map(|d| format!("{} (owner {})", d.id, d.owner))
                .collect();
            parts.push(format!(
                "{} domain(s) whose owner is not in the customer listing (e.g. {})",
                self.domain_count,
                ids.join(", ")
            ));
        }
        if self.users > 0 {
            let ids: Vec<String> = self.user_ids.iter().take(5).map(u64::to_string).collect();
            parts.push(format!(
                "{} user(s) of the counted types in such domains or in none (e.g. users {})",
                self.users,
                ids.join(", ")
            ));
        }
        format!(
            "counted nowhere: {}; the next run counts them if the customer listing catches up, \
             otherwise check these ids in the Mailprotector console",
            parts.join("; ")
        )
    }
}

/// A domain whose owner is not in the customer listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrphanDomain {
    /// The domain id.
    pub id: u64,
    /// The customer it names as owner.
    pub owner: u64,
}

/// Users of one customer per product (or count definition) name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerUsage {
    /// Mailprotector customer id.
    pub id: CustomerId,
    /// The customer's name as seen in this run.
    pub name: String,
    /// Usage count per product or count-definition name. A product absent here has 0 users.
    pub counts: BTreeMap<String, u64>,
}

/// The complete output of one successful vendor run: every customer, counted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageSnapshot {
    /// The run that produced it.
    pub run_id: RunId,
    /// When the counts were observed (the end of the collection).
    pub observed_at: DateTime<Utc>,
    /// Every customer of the reseller, ordered by id.
    pub customers: Vec<CustomerUsage>,
}

impl UsageSnapshot {
    /// Total users per product over all customers.
    pub fn totals(&self) -> BTreeMap<String, u64> {
        let mut totals = BTreeMap::new();
        for c in &self.customers {
            for (product, n) in &c.counts {
                *totals.entry(product.clone()).or_insert(0) += n;
            }
        }
        totals
    }
}

/// The products enabled on one user group, as last read from Mailprotector.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachedServices {
    /// Canonical product names (see `mailprotector::products`), sorted, de-duplicated.
    pub products: Vec<String>,
    /// When the list was read.
    pub fetched_at: DateTime<Utc>,
}

/// A billing account: a PSA company (ConnectWise) or an account in a CSV export.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Account {
    /// The source's id for it, as a string (ConnectWise company id, CSV `account_id`).
    pub id: String,
    /// Its name as the PSA shows it.
    pub name: String,
}

/// One billed line: a ConnectWise agreement addition or a CSV row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BilledLine {
    /// The account billed.
    pub account_id: String,
    /// The PSA product (ConnectWise product identifier, CSV `product_id`).
    pub product_id: String,
    /// Units billed.
    pub quantity: f64,
    /// Price per unit per month, when the source gives one.
    pub unit_price: Option<f64>,
    /// Whether the line counts toward the billed quantity (agreement active, not cancelled,
    /// in effect, billable). Lines that do not count are kept as evidence.
    pub counted: bool,
    /// Why the line does not count, when it does not.
    pub note: Option<String>,
    /// Where the line came from, e.g. "agreement 12 addition 345" or "billed.csv line 7".
    pub source_ref: String,
    /// The line's identity in its PSA, for writing a quantity back (`None` in snapshots
    /// stored before it existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<LineRef>,
}

/// A billed line's identity in its PSA: what a write-back addresses and what a mapping's line
/// preference names. Its [`LineRef::key`] is stable and short (`cw:12/345`,
/// `at:29684183/55/3001`, `csv:7`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(tag = "psa", rename_all = "snake_case")]
pub enum LineRef {
    /// A ConnectWise agreement addition.
    Connectwise {
        /// The agreement id.
        agreement: u64,
        /// The addition id.
        addition: u64,
    },
    /// An Autotask contract service (a service on a recurring-service contract), whose
    /// quantity lives in per-period units rows and changes only by an adjustment (which
    /// names `contractServiceID`, or `contractID` + `serviceID`). None of the three ids
    /// changes over the line's life. The contract and service ids are 32-bit, as the API
    /// declares its reference fields (F5.12); this keeps the type as small as the others.
    Autotask {
        /// The contract id.
        contract: u32,
        /// The service id (the product id the mapping names).
        service: u32,
        /// The contract service id (`contractServiceID`).
        contract_service: u64,
    },
    /// A line of a HaloPSA recurring invoice: what a writer needs to find it again (the
    /// invoice it belongs to, `ihid`; its own id; the item it bills, `_itemid`) and whether
    /// Halo computes its quantity itself (`recurring_invoice_quantity_type` not 0), in which
    /// case it is never written. Halo's ids are 32-bit and may be negative (F31).
    Halopsa {
        /// The recurring invoice (`ihid`).
        invoice: i32,
        /// The line's id.
        line: i32,
        /// The item billed (`_itemid`: the product id the mapping names).
        item: i32,
        /// Whether Halo computes the quantity (from users, assets or licences): such a
        /// line is counted but never planned for a write-back.
        computed: bool,
    },
    /// A row of a CSV export (line number, 1-based, header included): never writable.
    Csv {
        /// The line number in the file.
        line: u64,
    },
}

impl LineRef {
    /// The stable short form: `cw:<agreement>/<addition>`,
    /// `at:<contract>/<service>/<contractService>`, `halo:<invoice>/<line>/<item>` (with
    /// `/computed` for a line whose quantity Halo computes) or `csv:<line>`.
    pub fn key(&self) -> String {
        match self {
            LineRef::Connectwise { agreement, addition } => format!("cw:{agreement}/{addition}"),
            LineRef::Autotask { contract, service, contract_service } => {
                format!("at:{contract}/{service}/{contract_service}")
            }
            LineRef::Halopsa { invoice, line, item, computed } => {
                let tail = if *computed { "/computed" } else { "" };
                format!("halo:{invoice}/{line}/{item}{tail}")
            }
            LineRef::Csv { line } => format!("csv:{line}"),
        }
    }

    /// Whether a write-back may change this line's quantity: not a line whose quantity the
    /// PSA computes itself (a HaloPSA line with a non-manual quantity type).
    pub fn writable(&self) -> bool {
        !matches!(self, LineRef::Halopsa { computed: true, .. })
    }

    /// Parses [`LineRef::key`]'s form; `None` for anything else.
    pub fn parse(key: &str) -> Option<LineRef> {
        let key = key.trim();
        if let Some(rest) = key.strip_prefix("cw:") {
            let (a, b) = rest.split_once('/')?;
            return Some(LineRef::Connectwise {
                agreement: a.trim().parse().ok()?,
                addition: b.trim().parse().ok()?,
            });
        }
        if let Some(rest) = key.strip_prefix("at:") {
            let mut ids = rest.split('/').map(str::trim);
            let (Some(contract), Some(service), Some(contract_service), None) =
                (ids.next(), ids.next(), ids.next(), ids.next())
            else {
                return None;
            };
            let (contract, service) = (contract.parse().ok()?, service.parse().ok()?);
            let contract_service = contract_service.parse().ok()?;
            return Some(LineRef::Autotask { contract, service, contract_service });
        }
        if let Some(rest) = key.strip_prefix("halo:") {
            let mut ids = rest.split('/').map(str::trim);
            let (Some(invoice), Some(line), Some(item)) = (ids.next(), ids.next(), ids.next())
            else {
                return None;
            };
            let computed = match (ids.next(), ids.next()) {
                (None, _) => false,
                (Some("computed"), None) => true,
                _ => return None,
            };
            return Some(LineRef::Halopsa {
                invoice: invoice.parse().ok()?,
                line: line.parse().ok()?,
                item: item.parse().ok()?,
                computed,
            });
        }
        let line = key.strip_prefix("csv:")?.trim().parse().ok()?;
        Some(LineRef::Csv { line })
    }
}

impl fmt::Display for LineRef {
    /// "ConnectWise agreement 12 addition 345", "CSV line 7".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LineRef::Connectwise { agreement, addition } => {
                write!(f, "ConnectWise agreement {agreement} addition {addition}")
            }
            LineRef::Autotask { contract_service, contract, service } => write!(
                f,
                "Autotask contract {contract} service {service} (contract service \
                 {contract_service})"
            ),
            LineRef::Halopsa { invoice, line, item, computed } => {
                write!(f, "HaloPSA recurring invoice {invoice} line {line} (item {item})")?;
                if *computed {
                    f.write_str(", quantity computed by Halo")?;
                }
                Ok(())
            }
            LineRef::Csv { line } => write!(f, "CSV line {line}"),
        }
    }
}

/// The complete output of one successful billing run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BilledSnapshot {
    /// The run that produced it.
    pub run_id: RunId,
    /// When it was read.
    pub observed_at: DateTime<Utc>,
    /// Every account the source knows (used for names and mapping suggestions).
    pub accounts: Vec<Account>,
    /// Every line read, counted or not.
    pub lines: Vec<BilledLine>,
}

#[cfg(test)]
mod tests {
    use super::LineRef;

    #[test]
    fn line_refs_have_a_stable_key_that_parses_back() {
        let cw = LineRef::Connectwise { agreement: 12, addition: 345 };
        assert_eq!(cw.key(), "cw:12/345");
        assert_eq!(cw.to_string(), "ConnectWise agreement 12 addition 345");
        let csv = LineRef::Csv { line: 7 };
        assert_eq!(csv.key(), "csv:7");
        let at = LineRef::Autotask { contract: 29684183, service: 55, contract_service: 3001 };
        assert_eq!(at.key(), "at:29684183/55/3001");
        assert_eq!(at.to_string(), "Autotask contract 29684183 service 55 (contract service 3001)");
        assert_eq!(serde_json::to_value(&at).unwrap()["psa"], "autotask");
        let halo = LineRef::Halopsa { invoice: -94, line: 24967, item: 17, computed: false };
        assert_eq!(halo.key(), "halo:-94/24967/17");
        assert_eq!(halo.to_string(), "HaloPSA recurring invoice -94 line 24967 (item 17)");
        assert_eq!(serde_json::to_value(&halo).unwrap()["psa"], "halopsa");
        assert!(halo.writable());
        let auto = LineRef::Halopsa { invoice: 5, line: 6, item: 7, computed: true };
        assert_eq!(auto.key(), "halo:5/6/7/computed");
        assert!(auto.to_string().ends_with(", quantity computed by Halo"));
        assert!(!auto.writable(), "Halo recalculates it: never written");
        for r in [cw, csv, at, halo, auto] {
            assert_eq!(LineRef::parse(&r.key()), Some(r.clone()));
            let json = serde_json::to_value(&r).unwrap();
            assert_eq!(serde_json::from_value::<LineRef>(json).unwrap(), r);
        }
        for bad in [
            "",
            "cw:12",
            "cw:a/1",
            "csv:",
            "xx:1/2",
            "12/345",
            "at:3001",
            "at:1/2/x",
            "at:1/2/3/4",
            "at:5000000000/1/2",
            "halo:1/2",
            "halo:1/2/x",
            "halo:1/2/3/manual",
            "halo:1/2/3/computed/4",
            "halo:3000000000/1/2",
        ] {
            assert_eq!(LineRef::parse(bad), None, "{bad}");
        }
    }
}
