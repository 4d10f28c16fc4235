//! Whether `user_count` may stand in for mpsync's own per-user count on this account.
//!
//! What `user_count` counts is not public (reference §12 #11): it may include mailing lists,
//! unlicensed users or aliases. So it never changes a count: a run may take the cheaper
//! user-group walk only after a run compared `user_count` with the per-user count of the
//! counted types on every group and found them equal, and only until [`RECHECK_EVERY`] has
//! passed. A difference stops the reliance at once; a later check may restore it.
//!
//! Equality proves nothing about a type the account has no users of: if no mailing list
//! exists, `user_count` may or may not count mailing lists, and the first one created would
//! silently change the number. So a comparison agrees only when every known type that is not
//! counted was present on the account; otherwise it is inconclusive and nothing is relied on.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Utc};

use super::user_types::{CountedTypes, KNOWN_TYPES};
use super::walk::{UserCountCheck, Walk, WalkStats};
use crate::model::{UserCountNote, UserCountState};
use crate::upstream::Malformed;

/// How long a comparison is trusted before it is made again.
pub const RECHECK_EVERY: chrono::TimeDelta = chrono::TimeDelta::hours(24);

// The record is kept with the walk sizes (`walk`); when to trust it is decided here.
impl UserCountCheck {
    /// Whether it is time to compare again (a day later, or the clock went backwards).
    pub fn due(&self, now: DateTime<Utc>) -> bool {
        self.checked_at > now || now - self.checked_at >= RECHECK_EVERY
    }
}

/// The comparison kept for `types`, if one was made for exactly these types.
pub fn check_for<'a>(stats: &'a WalkStats, types: &CountedTypes) -> Option<&'a UserCountCheck> {
    stats.user_count.as_ref().filter(|c| c.types == types.ids())
}

/// The walk to count from: the user groups only while a comparison for these types agreed,
/// is not due, and that walk is the cheaper one; otherwise the per-user listing.
pub fn choose_walk(
    stats: &WalkStats,
    types: &CountedTypes,
    domains: u64,
    now: DateTime<Utc>,
) -> Walk {
    let relied = check_for(stats, types).is_some_and(|c| c.agrees && !c.due(now));
    if relied && stats.cheaper(domains) == Some(Walk::UserGroups) {
        Walk::UserGroups
    } else {
        Walk::Users
    }
}

/// After a per-user walk (with `stats` holding its listing size): whether to also walk the
/// user groups now and compare — only when that walk would be the cheaper one and no
/// comparison for these types is current.
pub fn should_compare(
    stats: &WalkStats,
    types: &CountedTypes,
    domains: u64,
    now: DateTime<Utc>,
) -> bool {
    stats.cheaper(domains) == Some(Walk::UserGroups)
        && check_for(stats, types).is_none_or(|c| c.due(now))
}

/// A listed group: id, owning customer and its `user_count` (or why it is unreadable).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedGroup {
    /// Group id.
    pub group: u64,
    /// The customer owning its domain.
    pub customer: u64,
    /// Its `user_count`, or why it is missing or not a non-negative integer.
    pub user_count: Result<u64, Malformed>,
}

/// Compares every listed group's `user_count` with the per-user count of the counted types
/// (`per_user`: group → users counted). A group with counted users that the group listings
/// did not show differs too: relying on them would leave those users out. `present` holds the
/// type ids the per-user walk saw on the account.
pub fn compare(
    listed: &[ListedGroup],
    per_user: &HashMap<u64, u64>,
    present: &BTreeSet<u64>,
    types: &CountedTypes,
    now: DateTime<Utc>,
) -> UserCountCheck {
    let mut differing = 0u64;
    let mut example = None;
    let mut seen = BTreeMap::new();
    for g in listed {
        seen.insert(g.group, ());
        let counted = per_user.get(&g.group).copied().unwrap_or(0);
        match &g.user_count {
            Ok(n) if *n == counted => {}
            Ok(n) => {
                differing += 1;
                example.get_or_insert_with(|| {
                    format!(
                        "user group {} of customer {}: user_count {n}, {counted} user(s) of type {types}",
                        g.group, g.customer
                    )
                });
            }
            Err(reason) => {
                differing += 1;
                example.get_or_insert_with(|| reason.to_string());
            }
        }
    }
    let mut unlisted: Vec<(&u64, &u64)> =
        per_user.iter().filter(|(g, n)| **n > 0 && !seen.contains_key(*g)).collect();
    unlisted.sort_unstable();
    for (g, n) in &unlisted {
        differing += 1;
        example.get_or_insert_with(|| {
            format!(
                "user group {g} has {n} counted user(s) but no domain's user-group listing shows it"
            )
        });
    }
    let absent: Vec<String> = KNOWN_TYPES
        .iter()
        .filter(|(id, _, _)| !types.counts(*id) && !present.contains(id))
        .map(|(id, name, _)| format!("{name} ({id})"))
        .collect();
    let inconclusive = differing == 0 && !absent.is_empty();
    if inconclusive {
        example = Some(format!(
            "the account has no users of type {}, so whether user_count counts them is unknown",
            absent.join(" or ")
        ));
    }
    UserCountCheck {
        types: types.ids(),
        agrees: differing == 0 && !inconclusive,
        checked_at: now,
        groups_compared: listed.len() as u64 + unlisted.len() as u64,
        groups_differing: differing,
        inconclusive,
        example,
    }
}

/// The run's account of `user_count`: whether it stood in, and why or why not.
pub fn note(
    walk: Walk,
    check: Option<&UserCountCheck>,
    checked_this_run: bool,
    types: &CountedTypes,
) -> UserCountNote {
    let relied_on = walk == Walk::UserGroups;
    let stamp =
        |c: &UserCountCheck| c.checked_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let (state, detail) = match check {
        None => (
            UserCountState::Unchecked,
            "user_count was not used: it has not been compared with the per-user count on this \
             account yet (that happens when the user-group walk would be cheaper); users were \
             counted one by one"
                .to_owned(),
        ),
        Some(c) if c.agrees => {
            let how = if checked_this_run { "this run compared" } else { "a run compared" };
            let used = if relied_on {
                "so it stood in for the per-user count in this run"
            } else {
                "but this run counted users one by one (the user listing was cheaper)"
            };
            (
                UserCountState::Agrees,
                format!(
                    "{how} user_count with the per-user count of {types} on all {} user groups \
                     at {} and they were equal, {used}; it is compared again after 24 hours",
                    c.groups_compared,
                    stamp(c)
                ),
            )
        }
        Some(c) if c.inconclusive => (
            UserCountState::Inconclusive,
            format!(
                "user_count is not relied on: it equalled the per-user count of {types} on all {} \
                 user groups at {}, but {}; users are counted one by one and it is compared \
                 again after 24 hours",
                c.groups_compared,
                stamp(c),
                c.example.as_deref().unwrap_or("a type had no users")
            ),
        ),
        Some(c) => {
            let how = if checked_this_run { "this run found" } else { "a run found at" };
            let when = if checked_this_run { String::new() } else { format!(" {}", stamp(c)) };
            (
                UserCountState::Differs,
                format!(
                    "user_count is not relied on: {how}{when} that it differs from the per-user \
                     count of {types} on {} of {} user groups (e.g. {}); users are counted one by \
                     one and it is compared again after 24 hours",
                    c.groups_differing,
                    c.groups_compared,
                    c.example.as_deref().unwrap_or("no example kept")
                ),
            )
        }
    };
    UserCountNote {
        relied_on,
        state,
        checked_at: check.map(|c| c.checked_at),
        checked_this_run,
        groups_compared: check.map_or(0, |c| c.groups_compared),
        groups_differing: check.map_or(0, |c| c.groups_differing),
        detail,
    }
}

#[cfg(test)]
#[path = "trust_tests.rs"]
mod tests;
