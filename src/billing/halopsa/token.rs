//! The HaloPSA access token (F8–F9): fetched with the client-credentials grant, kept in
//! memory only, and renewed [`RENEW_MARGIN`] before it expires (half its life for a token
//! that lives under two margins) and once after a 401. Pure: the time is passed in, so the
//! renewal rule is tested without waiting.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::Secret;

/// How long before its expiry a token is renewed.
pub const RENEW_MARGIN: Duration = Duration::from_secs(60);

/// The lifetime assumed when the answer gives none (the common value; a 401 renews it anyway).
pub const ASSUMED_LIFETIME: Duration = Duration::from_secs(3600);

/// The longest lifetime believed (a year): a larger `expires_in` is read as this.
const LONGEST_LIFETIME: Duration = Duration::from_secs(365 * 86_400);

/// Where the token's time comes from: the monotonic clock, or a test's.
pub type Clock = Arc<dyn Fn() -> Instant + Send + Sync>;

/// The system's monotonic clock.
pub fn system_clock() -> Clock {
    Arc::new(Instant::now)
}

/// A token in use. `Debug` never shows it.
#[derive(Clone)]
pub struct Token {
    /// The bearer value.
    pub value: Secret,
    /// From when it is renewed before use.
    pub renew_at: Instant,
    /// Counts the tokens fetched: a 401 renews only the token it was answered for, so
    /// callers refused together fetch one new token, not one each.
    pub generation: u64,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("value", &crate::upstream::REDACTED)
            .field("generation", &self.generation)
            .finish_non_exhaustive()
    }
}

impl Token {
    /// A token fetched at `at` that lives `expires_in` seconds (absent, zero or negative:
    /// [`ASSUMED_LIFETIME`]).
    pub fn new(value: Secret, expires_in: Option<f64>, at: Instant, generation: u64) -> Token {
        let life = expires_in
            .filter(|s| s.is_finite() && *s > 0.0)
            .map(|s| Duration::from_secs_f64(s.min(LONGEST_LIFETIME.as_secs_f64())))
            .unwrap_or(ASSUMED_LIFETIME);
        let margin = RENEW_MARGIN.min(life / 2);
        Token { value, renew_at: at + (life - margin), generation }
    }

    /// Whether it may still be sent at `now` (else a new one is fetched first).
    pub fn fresh_at(&self, now: Instant) -> bool {
        now < self.renew_at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(expires_in: Option<f64>, at: Instant) -> Token {
        Token::new(Secret::new("t", "test"), expires_in, at, 1)
    }

    #[test]
    fn a_token_is_renewed_a_minute_before_it_expires() {
        let at = Instant::now();
        let t = token(Some(3600.0), at);
        assert!(t.fresh_at(at + Duration::from_secs(3539)));
        assert!(!t.fresh_at(at + Duration::from_secs(3540)), "60 s before expiry");
        assert!(format!("{t:?}").contains("<redacted>"));
    }

    #[test]
    fn short_and_missing_lifetimes() {
        let at = Instant::now();
        let t = token(Some(30.0), at);
        assert!(t.fresh_at(at + Duration::from_secs(14)), "half of a short life");
        assert!(!t.fresh_at(at + Duration::from_secs(15)));
        for none in [None, Some(0.0), Some(-5.0), Some(f64::NAN)] {
            let t = token(none, at);
            assert!(t.fresh_at(at + Duration::from_secs(3539)), "{none:?}");
            assert!(!t.fresh_at(at + Duration::from_secs(3540)), "{none:?}");
        }
        let t = token(Some(1e30), at);
        assert!(
            t.fresh_at(at + Duration::from_secs(86_400)),
            "a huge value is capped, not a panic"
        );
    }
}
