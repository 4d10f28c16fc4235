//! Per-scope user listings: every user of a reseller, customer, domain or group (all four
//! types) in ascending id order, as id-ordered segments with cumulative offsets so a page is
//! found by binary search and paging stays cheap at 500k users.

use std::sync::Arc;

use super::{Dataset, Scope, SimUser, UserKind};

/// One id-ordered piece of a scope's user list: a run of users of one type, or one alias.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Seg {
    first: u64,
    len: u32,
    group: u64,
    kind: UserKind,
    /// Parent user for an alias; 0 otherwise.
    parent: u64,
}

/// Every user of a scope in ascending id order, as segments with cumulative offsets.
#[derive(Debug, Default)]
pub(crate) struct ScopeUsers {
    segs: Vec<Seg>,
    ends: Vec<u64>,
}

/// One entry of a scope listing: what [`Dataset::materialise_user`] needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct UserRef {
    pub(crate) id: u64,
    pub(crate) group: u64,
    pub(crate) kind: UserKind,
    /// The user an alias belongs to.
    pub(crate) parent: Option<u64>,
}

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
                out.push(UserRef { id: seg.first + k, group: seg.group, kind: seg.kind, parent });
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
    /// not list its users twice; an alias domain itself lists its primary's groups). Hidden
    /// customers' users are listed: only the customer listing lags.
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

    /// Every user of a group (all four types), materialised, in ascending id order: what
    /// `/user_groups/{id}/users` lists. Empty for an unknown group.
    pub fn users_of_group(&self, group: u64) -> Vec<SimUser> {
        let index = self.scope_users(Scope::UserGroup, group);
        index
            .slice(0, index.total())
            .into_iter()
            .map(|u| self.materialise_user(u.id, u.group, u.kind, u.parent))
            .collect()
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
                segs.push(Seg { first, len, group: gid, kind: UserKind::User, parent: 0 });
            }
            for &(a, p) in &g.users.aliases {
                segs.push(Seg { first: a, len: 1, group: gid, kind: UserKind::Alias, parent: p });
            }
            for &(first, len, kind) in &g.users.typed {
                segs.push(Seg { first, len, group: gid, kind, parent: 0 });
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_cross_segment_boundaries() {
        let segs = vec![
            Seg { first: 1, len: 2, group: 7, kind: UserKind::User, parent: 0 },
            Seg { first: 3, len: 1, group: 7, kind: UserKind::Alias, parent: 1 },
            Seg { first: 10, len: 3, group: 8, kind: UserKind::User, parent: 0 },
            Seg { first: 13, len: 1, group: 8, kind: UserKind::MailingList, parent: 0 },
        ];
        let ends = vec![2, 3, 6, 7];
        let s = ScopeUsers { segs, ends };
        let r = |id, group, kind, parent| UserRef { id, group, kind, parent };
        assert_eq!(s.total(), 7);
        assert_eq!(
            s.slice(1, 3),
            vec![
                r(2, 7, UserKind::User, None),
                r(3, 7, UserKind::Alias, Some(1)),
                r(10, 8, UserKind::User, None)
            ]
        );
        assert_eq!(
            s.slice(5, 10),
            vec![r(12, 8, UserKind::User, None), r(13, 8, UserKind::MailingList, None)]
        );
        assert!(s.slice(7, 10).is_empty());
    }

    proptest::proptest! {
        /// Pages of any size, concatenated, list every user of every type exactly once in id
        /// order.
        #[test]
        fn pages_partition_the_scope(
            runs in proptest::collection::vec((1u32..20, 0u32..3, 0u32..3, 0u32..3), 1..12),
            per_page in 1u64..30,
        ) {
            let mut ds = Dataset::generate(5, 3);
            let mut expected = Vec::new();
            for (users, aliases, lists, unlicensed) in runs {
                expected.extend(ds.add_users(109, users).unwrap());
                expected.extend(ds.add_aliases(109, aliases).unwrap());
                expected.extend(ds.add_mailing_lists(109, lists).unwrap());
                expected.extend(ds.add_unlicensed_users(109, unlicensed).unwrap());
            }
            let idx = ds.scope_users(Scope::UserGroup, 109);
            let mut all: Vec<u64> = idx.slice(0, idx.total()).into_iter().map(|u| u.id).collect();
            let mut paged = Vec::new();
            let mut offset = 0;
            while offset < idx.total() {
                paged.extend(idx.slice(offset, per_page).into_iter().map(|u| u.id));
                offset += per_page;
            }
            proptest::prop_assert_eq!(&paged, &all);
            let before = all.len();
            all.sort_unstable();
            all.dedup();
            proptest::prop_assert_eq!(all.len(), before);
            proptest::prop_assert_eq!(&paged, &all);
            proptest::prop_assert!(expected.iter().all(|id| all.binary_search(id).is_ok()));
            let g = &ds.groups()[&109];
            let every: Vec<u64> = UserKind::ALL.iter().map(|k| k.id()).collect();
            proptest::prop_assert_eq!(idx.total(), g.count_of(&every));
        }
    }
}
