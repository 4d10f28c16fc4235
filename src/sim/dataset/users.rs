//! Compact user storage: each user group keeps its users as runs of consecutive ids and its
//! aliases as (alias id, parent id) pairs. Users are materialised ([`SimUser`]) only when an
//! endpoint lists them; per-scope id-ordered indexes make paging cheap at 500k users.

use std::sync::Arc;

use super::{Dataset, Millis, Scope, names};

/// A user's type (`user_type` in the API). The simulator generates only these two (§12 #11).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserKind {
    /// `{"id":1,"name":"User"}`: counted in `user_count`.
    User,
    /// `{"id":2,"name":"Alias"}`: not counted.
    Alias,
}

/// One user, materialised from the compact store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimUser {
    /// User id.
    pub id: u64,
    /// User or Alias.
    pub kind: UserKind,
    /// For an alias, the user it belongs to.
    pub parent: Option<u64>,
    /// Its user group.
    pub group_id: u64,
    /// Local part of the address.
    pub name: String,
    /// Given name (empty for aliases).
    pub first_name: String,
    /// Family name (empty for aliases).
    pub last_name: String,
    /// Creation time.
    pub created_at: Millis,
    /// Last change.
    pub updated_at: Millis,
}

/// The users of one group: runs of consecutive ids (type User) and aliases.
#[derive(Debug, Clone, Default)]
pub(crate) struct GroupUsers {
    /// (first id, length), ascending and disjoint.
    pub(crate) runs: Vec<(u64, u32)>,
    /// (alias id, parent user id), ascending by alias id.
    pub(crate) aliases: Vec<(u64, u64)>,
}

impl GroupUsers {
    pub(crate) fn user_count(&self) -> u64 {
        self.runs.iter().map(|r| u64::from(r.1)).sum()
    }

    pub(crate) fn contains_user(&self, id: u64) -> bool {
        self.runs.iter().any(|&(s, n)| id >= s && id < s + u64::from(n))
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

    /// Removes up to `n` users, newest first, with their aliases; returns how many went.
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

/// One id-ordered piece of a scope's user list: a run of users or a single alias.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Seg {
    first: u64,
    len: u32,
    group: u64,
    /// Parent user for an alias; 0 for a run of users.
    parent: u64,
}

/// Every user of a scope in ascending id order, as segments with cumulative offsets.
#[derive(Debug, Default)]
pub(crate) struct ScopeUsers {
    segs: Vec<Seg>,
    ends: Vec<u64>,
}

/// One entry of a scope listing: (user id, group id, parent for aliases).
pub(crate) type UserRef = (u64, u64, Option<u64>);

impl ScopeUsers {
    pub(crate) fn total(&self) -> u64 {
        self.ends.last().copied().unwrap_or(0)
    }

    /// Entries `offset..offset+limit` in id order.
    pub(crate) fn slice(&self, offset: u64, limit: u64) -> Vec<UserRef> {
        let mut out = Vec::new();
        let mut i = self.ends.partition_point(|&e| e <= offset);
        let mut pos = offset;
        while i < self.segs.len() && (out.len() as u64) < limit {
            let seg = self.segs[i];
            let start_of_seg = self.ends[i] - u64::from(seg.len);
            let mut k = pos - start_of_seg;
            while k < u64::from(seg.len) && (out.len() as u64) < limit {
                let parent = (seg.parent != 0).then_some(seg.parent);
                out.push((seg.first + k, seg.group, parent));
                k += 1;
                pos += 1;
            }
            i += 1;
        }
        out
    }
}

impl Dataset {
    /// The groups whose users a scope lists (primary domains only, so aliases of a domain do
    /// not list its users twice; an alias domain itself lists its primary's groups).
    pub(crate) fn groups_in_scope(&self, scope: Scope, id: u64) -> Vec<u64> {
        let primary_groups = |customer: u64| {
            self.domains_of_customer(customer)
                .into_iter()
                .filter(|d| self.domains.get(d).is_some_and(|d| d.parent.is_none()))
                .flat_map(|d| self.groups_of_domain(d))
                .collect::<Vec<_>>()
        };
        match scope {
            Scope::Reseller => {
                self.customers_in_reseller(id).into_iter().flat_map(primary_groups).collect()
            }
            Scope::Customer => primary_groups(id),
            Scope::Domain => self.groups_of_domain(id),
            Scope::UserGroup => self.groups.contains_key(&id).then_some(id).into_iter().collect(),
        }
    }

    /// The id-ordered user index of a scope, cached until the next mutation.
    pub(crate) fn scope_users(&self, scope: Scope, id: u64) -> Arc<ScopeUsers> {
        let mut cache = self.user_index.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(hit) = cache.get(&(scope, id)) {
            return hit.clone();
        }
        let mut segs = Vec::new();
        for gid in self.groups_in_scope(scope, id) {
            let Some(g) = self.groups.get(&gid) else { continue };
            for &(first, len) in &g.users.runs {
                segs.push(Seg { first, len, group: gid, parent: 0 });
            }
            for &(a, p) in &g.users.aliases {
                segs.push(Seg { first: a, len: 1, group: gid, parent: p });
            }
        }
        segs.sort_unstable_by_key(|s| s.first);
        let mut ends = Vec::with_capacity(segs.len());
        let mut acc = 0;
        for s in &segs {
            acc += u64::from(s.len);
            ends.push(acc);
        }
        let built = Arc::new(ScopeUsers { segs, ends });
        if cache.len() >= 256 {
            cache.clear();
        }
        cache.insert((scope, id), built.clone());
        built
    }

    /// Materialises one user of `group` (`parent` set for an alias).
    pub fn materialise_user(&self, id: u64, group: u64, parent: Option<u64>) -> SimUser {
        let base = self.groups.get(&group).map(|g| g.created_at).unwrap_or(0);
        // A stable per-user offset so timestamps differ without being stored.
        let created_at = base + ((id.wrapping_mul(2_654_435_761) % 31_536_000) as Millis) * 1000;
        let updated_at = created_at + ((id % 97) as Millis) * 86_400_000;
        match parent {
            None => {
                let (first, last, _) = names::user_parts(id);
                let (first, last) = if id == super::generate::FIXTURE_USER {
                    ("abigail", "thompson")
                } else {
                    (first, last)
                };
                SimUser {
                    id,
                    kind: UserKind::User,
                    parent: None,
                    group_id: group,
                    name: names::user_local(id),
                    first_name: names::cap(first),
                    last_name: names::cap(last),
                    created_at,
                    updated_at,
                }
            }
            Some(p) => SimUser {
                id,
                kind: UserKind::Alias,
                parent: Some(p),
                group_id: group,
                name: names::alias_local(p),
                first_name: String::new(),
                last_name: String::new(),
                created_at,
                updated_at,
            },
        }
    }

    /// Finds a user or alias by id anywhere in the dataset.
    pub fn find_user(&self, id: u64) -> Option<SimUser> {
        for (gid, g) in &self.groups {
            if g.users.contains_user(id) {
                return Some(self.materialise_user(id, *gid, None));
            }
            if let Some(&(_, p)) = g.users.aliases.iter().find(|(a, _)| *a == id) {
                return Some(self.materialise_user(id, *gid, Some(p)));
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
        assert_eq!(g.runs, vec![(10, 5), (100, 1)]);
        assert_eq!(g.user_count(), 6);
        assert_eq!(g.remove_newest(2), 2);
        assert_eq!(g.user_ids().collect::<Vec<_>>(), vec![10, 11, 12, 13]);
        assert_eq!(g.aliases, Vec::<(u64, u64)>::new());
        assert_eq!(g.remove_newest(10), 4);
        assert_eq!(g.user_count(), 0);
    }

    #[test]
    fn slices_cross_segment_boundaries() {
        let segs = vec![
            Seg { first: 1, len: 2, group: 7, parent: 0 },
            Seg { first: 3, len: 1, group: 7, parent: 1 },
            Seg { first: 10, len: 3, group: 8, parent: 0 },
        ];
        let ends = vec![2, 3, 6];
        let s = ScopeUsers { segs, ends };
        assert_eq!(s.total(), 6);
        assert_eq!(s.slice(1, 3), vec![(2, 7, None), (3, 7, Some(1)), (10, 8, None)]);
        assert_eq!(s.slice(5, 10), vec![(12, 8, None)]);
        assert!(s.slice(6, 10).is_empty());
    }

    proptest::proptest! {
        /// Pages of any size, concatenated, list every user exactly once in id order.
        #[test]
        fn pages_partition_the_scope(
            runs in proptest::collection::vec((1u32..20, 0u32..3), 1..12),
            per_page in 1u64..30,
        ) {
            let mut ds = Dataset::generate(5, 3);
            let mut expected = Vec::new();
            for (users, aliases) in runs {
                let ids = ds.add_users(109, users).unwrap();
                expected.extend(ids);
                expected.extend(ds.add_aliases(109, aliases).unwrap());
            }
            let idx = ds.scope_users(Scope::UserGroup, 109);
            let mut all: Vec<u64> = idx.slice(0, idx.total()).into_iter().map(|u| u.0).collect();
            let mut paged = Vec::new();
            let mut offset = 0;
            while offset < idx.total() {
                paged.extend(idx.slice(offset, per_page).into_iter().map(|u| u.0));
                offset += per_page;
            }
            proptest::prop_assert_eq!(&paged, &all);
            let before = all.len();
            all.sort_unstable();
            all.dedup();
            proptest::prop_assert_eq!(all.len(), before);
            proptest::prop_assert_eq!(&paged, &all);
            proptest::prop_assert!(expected.iter().all(|id| all.binary_search(id).is_ok()));
        }
    }
}
