//! The per-user walk: the reseller-wide user listing, each user classified by type and
//! attributed through its domain to a listed customer. It is the count itself: users of the
//! counted types per user group. Users whose domain has no listed owner are counted nowhere
//! and reported; users of a type outside the known four are reported with how many there are.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::models::UserTypeRef;
use super::user_types::{self, CountedTypes};
use super::{CollectError, MailprotectorClient};
use crate::model::{Orphans, UserTypeTally};

/// A user type as a tally key: an id, or a name that came without one.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum TypeKey {
    Id(u64),
    Named(String),
}

/// What the per-user walk found.
#[derive(Debug, Default)]
pub(super) struct UsersWalk {
    /// User group → (owning customer, users of the counted types).
    pub(super) groups: HashMap<u64, (u64, u64)>,
    /// Users in the listing, every type, orphans included.
    pub(super) listed: u64,
    /// Users per type in listed customers' domains, with the name the API gave.
    by_type: BTreeMap<TypeKey, (Option<String>, u64)>,
    /// Users of the counted types attributed to no listed customer.
    orphan_users: u64,
    orphan_user_ids: Vec<u64>,
    orphan_groups: BTreeSet<u64>,
}

impl UsersWalk {
    /// Users per type, counted or not, known or not, ordered by id.
    pub(super) fn tallies(&self, types: &CountedTypes) -> Vec<UserTypeTally> {
        self.by_type
            .iter()
            .map(|(key, (name, users))| match key {
                TypeKey::Id(id) => UserTypeTally {
                    id: Some(*id),
                    name: name.clone().or_else(|| user_types::type_name(*id).map(str::to_owned)),
                    users: *users,
                    counted: types.counts(*id),
                    known: user_types::is_known(*id),
                },
                TypeKey::Named(n) => UserTypeTally {
                    id: None,
                    name: Some(n.clone()),
                    users: *users,
                    counted: false,
                    known: false,
                },
            })
            .collect()
    }

    /// Adds the users counted nowhere to `orphans`.
    pub(super) fn add_orphans(&self, orphans: &mut Orphans) {
        orphans.users += self.orphan_users;
        orphans.user_ids.extend(self.orphan_user_ids.iter().copied());
        orphans.user_ids.truncate(Orphans::MAX_LISTED);
        orphans.group_ids.extend(self.orphan_groups.iter().copied());
        orphans.group_ids.truncate(Orphans::MAX_LISTED);
    }

    /// The type ids the walk saw in listed customers' domains.
    pub(super) fn types_present(&self) -> BTreeSet<u64> {
        self.by_type
            .keys()
            .filter_map(|k| match k {
                TypeKey::Id(id) => Some(*id),
                TypeKey::Named(_) => None,
            })
            .collect()
    }

    /// Users of the counted types per group (for the comparison with `user_count`).
    pub(super) fn counted_per_group(&self) -> HashMap<u64, u64> {
        self.groups.iter().map(|(g, (_, n))| (*g, *n)).collect()
    }
}

/// Walks `GET /resellers/{id}/users`. `owners` maps every domain of a listed customer
/// (aliases included) to that customer.
pub(super) async fn walk_users(
    client: &MailprotectorClient,
    owners: &HashMap<u64, u64>,
    types: &CountedTypes,
    cancel: &CancellationToken,
) -> Result<UsersWalk, CollectError> {
    let mut w = UsersWalk::default();
    let mut last_log = Instant::now();
    client
        .for_each_user_page(cancel, |users| {
            for u in users {
                w.listed += 1;
                let kind = u.user_type_ref()?;
                let group = u
                    .user_group
                    .as_ref()
                    .ok_or_else(|| format!("user {} names no user_group", u.id))?
                    .id;
                let domain =
                    u.domain.as_ref().ok_or_else(|| format!("user {} names no domain", u.id))?.id;
                let counted = kind.id().is_some_and(|id| types.counts(id));
                let Some(&customer) = owners.get(&domain) else {
                    if counted {
                        w.orphan_users += 1;
                        if w.orphan_user_ids.len() < Orphans::MAX_LISTED {
                            w.orphan_user_ids.push(u.id);
                        }
                        if w.orphan_groups.len() < Orphans::MAX_LISTED {
                            w.orphan_groups.insert(group);
                        }
                    }
                    continue;
                };
                // Type names are kept and shown verbatim: never with an echoed credential.
                let scrub = |s: String| client.upstream().scrub(&s);
                let (key, name) = match kind {
                    UserTypeRef::Id(id, name) => (TypeKey::Id(id), name.map(scrub)),
                    UserTypeRef::Named(n) => (TypeKey::Named(scrub(n)), None),
                };
                let tally = w.by_type.entry(key).or_insert((name.clone(), 0));
                tally.1 += 1;
                if tally.0.is_none() {
                    tally.0 = name;
                }
                let entry = w.groups.entry(group).or_insert((customer, 0));
                if counted {
                    entry.1 += 1;
                }
            }
            if last_log.elapsed() >= Duration::from_secs(5) {
                last_log = Instant::now();
                tracing::info!(users = w.listed, "mailprotector: user listing in progress");
            }
            Ok(())
        })
        .await?;
    Ok(w)
}
