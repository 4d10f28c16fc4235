//! Where an Autotask database lives: its zone's REST root, looked up from the API user's
//! name (F1.2–F1.5, no credentials sent) and kept — in memory and, through a [`ZoneCache`],
//! in the store — for [`ZONE_TTL`]; looked up again after a 401 in case the database moved
//! zones (F1.8). A configured `base_url` skips all of this.

use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};

/// The store key the zone is kept under.
pub const ZONE_KEY: &str = "autotask_zone";

/// How long a looked-up zone is trusted before it is looked up again (other clients keep it
/// 12–24 h; a 401 looks it up at once).
pub const ZONE_TTL: Duration = Duration::from_secs(24 * 3600);

/// A zone as looked up for one user name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachedZone {
    /// The API user it was looked up for (a different user looks it up again).
    pub username: String,
    /// The zone's REST root, e.g. `https://webservices5.autotask.net/ATServicesRest/`.
    pub url: String,
    /// The zone's name, for `mpsync check`.
    pub zone_name: Option<String>,
    /// When it was looked up.
    pub discovered_at: DateTime<Utc>,
}

impl CachedZone {
    /// Whether it may be used for `username` at `now`.
    pub fn usable(&self, username: &str, now: DateTime<Utc>) -> bool {
        self.username.eq_ignore_ascii_case(username)
            && now
                .signed_duration_since(self.discovered_at)
                .to_std()
                .is_ok_and(|age| age < ZONE_TTL)
    }
}

/// Somewhere to keep the zone across restarts (the daemon's store). Failures to keep it are
/// the cache's to log: a lost zone only costs one lookup.
pub trait ZoneCache: Send + Sync + 'static {
    /// The zone kept last, if any.
    fn load(&self) -> BoxFuture<'_, Option<CachedZone>>;
    /// Keeps `zone`, replacing any other.
    fn save(&self, zone: CachedZone) -> BoxFuture<'_, ()>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_zone_is_used_for_its_user_for_a_day() {
        let at: DateTime<Utc> = "2026-06-01T00:00:00Z".parse().unwrap();
        let z = CachedZone {
            username: "api@example.com".into(),
            url: "https://webservices5.autotask.net/ATServicesRest/".into(),
            zone_name: None,
            discovered_at: at,
        };
        assert!(z.usable("API@example.com", at + chrono::Duration::hours(23)));
        assert!(!z.usable("api@example.com", at + chrono::Duration::hours(25)));
        assert!(!z.usable("other@example.com", at));
        assert!(!z.usable("api@example.com", at - chrono::Duration::hours(1)), "from the future");
    }
}
