//! The choice between the two ways of counting users, from the sizes the last run saw: one
//! user-group listing per non-alias domain, or the reseller-wide user listing when that needs
//! fewer pages (many small domains).

use serde::{Deserialize, Serialize};

use super::pagination::PER_PAGE;

/// Which walk counted the users.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Walk {
    /// One `GET /domains/{id}/user_groups` listing per non-alias domain (`user_count`).
    UserGroups,
    /// The reseller-wide `GET /resellers/{id}/users` listing, counting users of type User.
    Users,
}

/// Sizes seen by the last run, kept by the caller, used to pick the cheaper walk next time.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WalkStats {
    /// The walk the last run took.
    pub walk: Option<Walk>,
    /// Non-alias domains of counted customers in the last run.
    pub domains: u64,
    /// Requests the last user-group walk made, and the domains it covered then.
    pub user_group_requests: u64,
    /// Domains covered by that walk (to scale its cost to today's domain count).
    pub user_group_domains: u64,
    /// Users in the reseller-wide listing (all types) when last walked; 0 when never.
    pub users_listed: u64,
    /// Users of type User counted by the last run.
    pub users_counted: u64,
}

impl WalkStats {
    /// The walk to take now for `domains` non-alias domains: the reseller-wide user listing
    /// when its pages are fewer than the user-group calls, judged from the last run.
    pub fn choose(&self, domains: u64) -> Walk {
        let users = if self.users_listed > 0 { self.users_listed } else { self.users_counted };
        if users == 0 || self.walk.is_none() {
            return Walk::UserGroups;
        }
        let user_pages = users.div_ceil(u64::from(PER_PAGE)).max(1);
        let group_calls = if self.user_group_domains > 0 {
            (domains * self.user_group_requests).div_ceil(self.user_group_domains)
        } else {
            domains
        };
        if user_pages < group_calls { Walk::Users } else { Walk::UserGroups }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_first_run_walks_user_groups() {
        assert_eq!(WalkStats::default().choose(10), Walk::UserGroups);
    }

    #[test]
    fn many_small_domains_take_the_user_listing() {
        let last = WalkStats {
            walk: Some(Walk::UserGroups),
            domains: 400,
            user_group_requests: 400,
            user_group_domains: 400,
            users_listed: 0,
            users_counted: 2_500,
        };
        assert_eq!(last.choose(400), Walk::Users, "25 pages against 400 calls");
        assert_eq!(last.choose(20), Walk::UserGroups, "25 pages against 20 calls");
        assert_eq!(last.choose(25), Walk::UserGroups, "a tie keeps the per-domain walk");
    }

    #[test]
    fn the_real_listing_size_wins_over_the_counted_users() {
        // Aliases make the listing longer than the users counted.
        let last = WalkStats {
            walk: Some(Walk::Users),
            domains: 30,
            user_group_requests: 30,
            user_group_domains: 30,
            users_listed: 5_000,
            users_counted: 2_000,
        };
        assert_eq!(last.choose(30), Walk::UserGroups, "50 pages against 30 calls");
        assert_eq!(last.choose(60), Walk::Users);
    }

    #[test]
    fn extra_user_group_pages_scale_with_the_domains() {
        // Last time 10 domains needed 30 calls (big domains with several pages each).
        let last = WalkStats {
            walk: Some(Walk::UserGroups),
            domains: 10,
            user_group_requests: 30,
            user_group_domains: 10,
            users_listed: 0,
            users_counted: 2_000,
        };
        assert_eq!(last.choose(10), Walk::Users, "20 pages against 30 calls");
    }
}
