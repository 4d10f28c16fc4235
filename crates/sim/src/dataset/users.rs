//! Compact user storage: each user group keeps its users (type User) as runs of consecutive
//! ids, its aliases as (alias id, parent id) pairs, and its mailing lists and unlicensed users
//! as typed runs. Users are materialised ([`SimUser`]) only when an endpoint lists them.

use super::{Dataset, Millis, names};

/// A user's type (`user_type` in the API): the four v1 types of reference §5, with their ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum UserKind {
    /// `{"id":1,"name":"User"}`: a licensed mailbox.
    User,
    /// `{"id":2,"name":"Alias"}`: another address of a user; `parent` names the user.
    Alias,
    /// `{"id":3,"name":"Mailing List"}`: a distribution list (list-like name, no person).
    MailingList,
    /// `{"id":11,"name":"Unlicensed User"}`: a person's mailbox without a licence.
    UnlicensedUser,
}

/// The type ids `user_count` includes by default (reference §12 #11): every non-alias user,
/// i.e. User, Mailing List and Unlicensed User. The `user_count_*` variants change this.
pub const USER_COUNT_TYPES: [u64; 3] = [1, 3, 11];

/// The type ids the ground truth counts by default: mpsync's `count_user_types` default,
/// User (1) only. [`Dataset::expected_counts`] uses it.
pub const DEFAULT_COUNTED_TYPES: [u64; 1] = [1];

impl UserKind {
    /// Every type, in id order.
    pub const ALL: [UserKind; 4] =
        [UserKind::User, UserKind::Alias, UserKind::MailingList, UserKind::UnlicensedUser];

    /// The type id the API serves (`user_type.id`).
    pub const fn id(self) -> u64 {
        match self {
            UserKind::User => 1,
            UserKind::Alias => 2,
            UserKind::MailingList => 3,
            UserKind::UnlicensedUser => 11,
        }
    }

    /// The type name the API serves (`user_type.name`).
    pub const fn name(self) -> &'static str {
        match self {
            UserKind::User => "User",
            UserKind::Alias => "Alias",
            UserKind::MailingList => "Mailing List",
            UserKind::UnlicensedUser => "Unlicensed User",
        }
    }

    /// The type with this id, if it is one of the four.
    pub fn from_id(id: u64) -> Option<UserKind> {
        UserKind::ALL.into_iter().find(|k| k.id() == id)
    }
}

/// One user, materialised from the compact store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimUser {
    /// User id.
    pub id: u64,
    /// Its type.
    pub kind: UserKind,
    /// For an alias, the user it belongs to.
    pub parent: Option<u64>,
    /// Its user group.
    pub group_id: u64,
    /// Local part of the address.
    pub name: String,
    /// Given name (empty for aliases and mailing lists).
    pub first_name: String,
    /// Family name (empty for aliases and mailing lists).
    pub last_name: String,
    /// Creation time.
    pub created_at: Millis,
    /// Last change.
    pub updated_at: Millis,
}

/// The users of one group: runs of consecutive ids (type User), aliases, and typed runs
/// (mailing lists, unlicensed users).
#[derive(Debug, Clone, Default)]
pub(crate) struct GroupUsers {
    /// (first id, length), ascending and disjoint.
    pub(crate) runs: Vec<(u64, u32)>,
    /// (alias id, parent user id), ascending by alias id.
    pub(crate) aliases: Vec<(u64, u64)>,
    /// (first id, length, type) of mailing lists and unlicensed users, ascending and disjoint.
    pub(crate) typed: Vec<(u64, u32, UserKind)>,
}

impl GroupUsers {
    /// Users of one type in the group.
    pub(crate) fn count(&self, kind: UserKind) -> u64 {
        match kind {
            UserKind::User => self.runs.iter().map(|r| u64::from(r.1)).sum(),
            UserKind::Alias => self.aliases.len() as u64,
            _ => self.typed.iter().filter(|t| t.2 == kind).map(|t| u64::from(t.1)).sum(),
        }
    }

    pub(crate) fn contains_user(&self, id: u64) -> bool {
        self.runs.iter().any(|&(s, n)| id >= s && id < s + u64::from(n))
    }

    /// The type of a mailing list or unlicensed user with this id, if the group has one.
    pub(crate) fn typed_kind(&self, id: u64) -> Option<UserKind> {
        self.typed.iter().find(|&&(s, n, _)| id >= s && id < s + u64::from(n)).map(|t| t.2)
    }

    /// User ids in ascending order.
    pub(crate) fn user_ids(&self) -> impl Iterator<Item = u64> + '_ {
        self.runs.iter().flat_map(|&(s, n)| s..s + u64::from(n))
    }

    /// Appends `n` users with ids `start..start+n` (ids above every existing one).
    pub(crate) fn push_users(&mut self, start: u64, n: u32) {
        if n == 0 {
            return;
        }
        if let Some(last) = self.runs.last_mut()
            && last.0 + u64::from(last.1) == start
        {
            last.1 += n;
            return;
        }
        self.runs.push((start, n));
    }

    /// Appends `n` mailing lists or unlicensed users with ids `start..start+n`.
    pub(crate) fn push_typed(&mut self, start: u64, n: u32, kind: UserKind) {
        if n == 0 {
            return;
        }
        if let Some(last) = self.typed.last_mut()
            && last.2 == kind
            && last.0 + u64::from(last.1) == start
        {
            last.1 += n;
            return;
        }
        self.typed.push((start, n, kind));
    }

    /// Removes up to `n` users (type User), newest first, with their aliases; returns how many
    /// went. Mailing lists and unlicensed users stay.
    pub(crate) fn remove_newest(&mut self, n: u64) -> u64 {
        let mut removed = 0;
        while removed < n {
            let Some(last) = self.runs.last_mut() else { break };
            let take = u64::from(last.1).min(n - removed);
            last.1 -= take as u32;
            removed += take;
            if last.1 == 0 {
                self.runs.pop();
            }
        }
        let runs = self.runs.clone();
        self.aliases.retain(|&(_, p)| runs.iter().any(|&(s, n)| p >= s && p < s + u64::from(n)));
        removed
    }
}

impl Dataset {
    /// Materialises one user of `group`: `kind` says which, `parent` is the user an alias
    /// belongs to (ignored for the other types; an alias without one comes out as a User).
    pub fn materialise_user(
        &self,
        id: u64,
        group: u64,
        kind: UserKind,
        parent: Option<u64>,
    ) -> SimUser {
        let base = self.groups.get(&group).map(|g| g.created_at).unwrap_or(0);
        // A stable per-user offset so timestamps differ without being stored.
        let created_at = base + ((id.wrapping_mul(2_654_435_761) % 31_536_000) as Millis) * 1000;
        let updated_at = created_at + ((id % 97) as Millis) * 86_400_000;
        let person = |id: u64| {
            let (first, last, _) = names::user_parts(id);
            if id == names::FIXTURE_USER {
                ("Abigail".to_owned(), "Thompson".to_owned())
            } else {
                (names::cap(first), names::cap(last))
            }
        };
        let (name, first_name, last_name, parent) = match (kind, parent) {
            (UserKind::Alias, Some(p)) => {
                (names::alias_local(p), String::new(), String::new(), Some(p))
            }
            (UserKind::MailingList, _) => {
                (names::list_local(id), String::new(), String::new(), None)
            }
            // A User, an unlicensed user, or an alias without a parent (never stored).
            _ => {
                let (f, l) = person(id);
                (names::user_local(id), f, l, None)
            }
        };
        let kind = if kind == UserKind::Alias && parent.is_none() { UserKind::User } else { kind };
        SimUser {
            id,
            kind,
            parent,
            group_id: group,
            name,
            first_name,
            last_name,
            created_at,
            updated_at,
        }
    }

    /// Finds a user of any type by id anywhere in the dataset.
    pub fn find_user(&self, id: u64) -> Option<SimUser> {
        for (gid, g) in &self.groups {
            if g.users.contains_user(id) {
                return Some(self.materialise_user(id, *gid, UserKind::User, None));
            }
            if let Some(&(_, p)) = g.users.aliases.iter().find(|(a, _)| *a == id) {
                return Some(self.materialise_user(id, *gid, UserKind::Alias, Some(p)));
            }
            if let Some(kind) = g.users.typed_kind(id) {
                return Some(self.materialise_user(id, *gid, kind, None));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_grow_shrink_and_drop_orphaned_aliases() {
        let mut g = GroupUsers::default();
        g.push_users(10, 3);
        g.push_users(13, 2);
        g.push_users(100, 1);
        g.aliases = vec![(200, 14), (201, 100)];
        g.push_typed(300, 2, UserKind::MailingList);
        assert_eq!(g.runs, vec![(10, 5), (100, 1)]);
        assert_eq!(g.count(UserKind::User), 6);
        assert_eq!(g.remove_newest(2), 2);
        assert_eq!(g.user_ids().collect::<Vec<_>>(), vec![10, 11, 12, 13]);
        assert_eq!(g.aliases, Vec::<(u64, u64)>::new());
        assert_eq!(g.remove_newest(10), 4);
        assert_eq!(g.count(UserKind::User), 0);
        assert_eq!(g.count(UserKind::MailingList), 2, "removing users keeps mailing lists");
    }

    #[test]
    fn typed_runs_merge_only_with_the_same_type() {
        let mut g = GroupUsers::default();
        g.push_typed(50, 2, UserKind::MailingList);
        g.push_typed(52, 1, UserKind::MailingList);
        g.push_typed(53, 3, UserKind::UnlicensedUser);
        g.push_typed(56, 0, UserKind::MailingList);
        assert_eq!(
            g.typed,
            vec![(50, 3, UserKind::MailingList), (53, 3, UserKind::UnlicensedUser)]
        );
        assert_eq!((g.count(UserKind::MailingList), g.count(UserKind::UnlicensedUser)), (3, 3));
        assert_eq!(g.typed_kind(52), Some(UserKind::MailingList));
        assert_eq!(g.typed_kind(55), Some(UserKind::UnlicensedUser));
        assert_eq!(g.typed_kind(56), None);
    }

    #[test]
    fn type_ids_and_names_are_the_reference_ones() {
        let got: Vec<(u64, &str)> = UserKind::ALL.iter().map(|k| (k.id(), k.name())).collect();
        assert_eq!(
            got,
            vec![(1, "User"), (2, "Alias"), (3, "Mailing List"), (11, "Unlicensed User")]
        );
        assert_eq!(UserKind::from_id(11), Some(UserKind::UnlicensedUser));
        assert_eq!(UserKind::from_id(4), None);
    }
}
