//! The cost of the two ways of counting users, from the sizes the last run saw: one
//! user-group listing per non-alias domain, or the reseller-wide user listing (pages of 100).
//! Which one may be *counted* from is [`super::trust`]'s business: cost never changes a count;
//! the comparison it relies on ([`UserCountCheck`]) is kept here, with the sizes.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::pagination::PER_PAGE;
pub use crate::model::Walk;

/// One comparison of `user_count` with the per-user count, kept between runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserCountCheck {
    /// The counted type ids it was made for; a different `count_user_types` needs a new one.
    pub types: Vec<u64>,
    /// Whether every group agreed.
    pub agrees: bool,
    /// When it was made.
    pub checked_at: DateTime<Utc>,
    /// Groups compared.
    pub groups_compared: u64,
    /// Groups whose `user_count` differed (or that only the per-user walk saw).
    pub groups_differing: u64,
    /// Every group agreed, but a known type that is not counted had no users on the account,
    /// so what `user_count` does with it is unknown: not relied on.
    #[serde(default)]
    pub inconclusive: bool,
    /// The first difference, in words.
    #[serde(default)]
    pub example: Option<String>,
}

/// Sizes seen by earlier runs, kept by the caller between runs, plus what is known about
/// `user_count` on this account.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WalkStats {
    /// The walk the last run counted from.
    pub walk: Option<Walk>,
    /// Non-alias domains of counted customers in the last run.
    pub domains: u64,
    /// Requests the last user-group walk made.
    pub user_group_requests: u64,
    /// Domains covered by that walk (to scale its cost to today's domain count).
    pub user_group_domains: u64,
    /// Users in the reseller-wide listing (all types) when last walked; 0 when never.
    pub users_listed: u64,
    /// Users counted by the last run.
    pub users_counted: u64,
    /// The last comparison of `user_count` with the per-user count (`None`: never made).
    #[serde(default)]
    pub user_count: Option<UserCountCheck>,
}

impl WalkStats {
    /// Pages of the reseller-wide user listing, when its size is known.
    pub fn user_pages(&self) -> Option<u64> {
        let users = if self.users_listed > 0 { self.users_listed } else { self.users_counted };
        (users > 0).then(|| users.div_ceil(u64::from(PER_PAGE)).max(1))
    }

    /// Calls the user-group walk would make for `domains` non-alias domains, scaled from the
    /// last such walk (big domains need several pages).
    pub fn group_calls(&self, domains: u64) -> u64 {
        if self.user_group_domains > 0 {
            (domains * self.user_group_requests).div_ceil(self.user_group_domains)
        } else {
            domains
        }
    }

    /// The cheaper walk for `domains` non-alias domains; `None` when the listing size is not
    /// known yet. A tie keeps the user listing (it needs no verification).
    pub fn cheaper(&self, domains: u64) -> Option<Walk> {
        let pages = self.user_pages()?;
        Some(if self.group_calls(domains) < pages { Walk::UserGroups } else { Walk::Users })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_listing_size_is_unknown_before_a_run() {
        assert_eq!(WalkStats::default().cheaper(10), None);
    }

    #[test]
    fn many_small_domains_make_the_user_listing_cheaper() {
        let last = WalkStats { users_counted: 2_500, ..WalkStats::default() };
        assert_eq!(last.cheaper(400), Some(Walk::Users), "25 pages against 400 calls");
        assert_eq!(last.cheaper(20), Some(Walk::UserGroups), "25 pages against 20 calls");
        assert_eq!(last.cheaper(25), Some(Walk::Users), "a tie keeps the user listing");
    }

    #[test]
    fn the_real_listing_size_wins_over_the_counted_users() {
        // Aliases and mailing lists make the listing longer than the users counted.
        let last = WalkStats { users_listed: 5_000, users_counted: 2_000, ..WalkStats::default() };
        assert_eq!(last.cheaper(30), Some(Walk::UserGroups), "50 pages against 30 calls");
        assert_eq!(last.cheaper(60), Some(Walk::Users));
    }

    #[test]
    fn extra_user_group_pages_scale_with_the_domains() {
        // Last time 10 domains needed 30 calls (big domains with several pages each).
        let last = WalkStats {
            user_group_requests: 30,
            user_group_domains: 10,
            users_listed: 2_000,
            ..WalkStats::default()
        };
        assert_eq!(last.group_calls(10), 30);
        assert_eq!(last.cheaper(10), Some(Walk::Users), "20 pages against 30 calls");
        assert_eq!(last.cheaper(5), Some(Walk::UserGroups), "20 pages against 15 calls");
    }
}
