//! Retry policy: which failures are retried, capped exponential backoff with full jitter,
//! and `Retry-After` parsing.
//!
//! The math is pure (the random draw is passed in) so it is tested without clocks.

use std::time::{Duration, SystemTime};

/// How an idempotent request is retried.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in total for 5xx, 408, timeouts and transport errors (1 = no retry).
    pub max_attempts: u32,
    /// Attempts in total while the upstream answers 429 (a storm is waited out, not failed).
    pub max_rate_limited_attempts: u32,
    /// The first backoff ceiling; doubles per retry.
    pub base_delay: Duration,
    /// The largest backoff ceiling.
    pub max_delay: Duration,
    /// Pause after a 429 without a usable `Retry-After` (then doubled per consecutive 429).
    pub default_rate_limit_pause: Duration,
    /// The longest pause a `Retry-After` may impose.
    pub max_rate_limit_pause: Duration,
    /// Total time one request may take, all attempts and waits included.
    pub deadline: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            max_rate_limited_attempts: 30,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            default_rate_limit_pause: Duration::from_secs(5),
            max_rate_limit_pause: Duration::from_secs(120),
            deadline: Duration::from_secs(600),
        }
    }
}

impl RetryPolicy {
    /// The backoff ceiling before retry number `retry` (1-based): `min(max, base·2^(retry-1))`.
    pub fn ceiling(&self, retry: u32) -> Duration {
        let factor = 2u32.saturating_pow(retry.saturating_sub(1).min(30));
        self.base_delay.saturating_mul(factor).min(self.max_delay)
    }

    /// Full jitter: a delay uniformly in `[0, ceiling(retry)]`; `unit` is a draw in `[0, 1)`.
    pub fn backoff(&self, retry: u32, unit: f64) -> Duration {
        self.ceiling(retry).mul_f64(unit.clamp(0.0, 1.0))
    }

    /// The pause after the `n`-th consecutive 429 (1-based) that carried no usable
    /// `Retry-After`: the default pause first, then doubling with jitter in its upper half,
    /// capped by `max_rate_limit_pause`.
    pub fn rate_limit_pause(&self, n: u32, unit: f64) -> Duration {
        if n <= 1 {
            return self.default_rate_limit_pause.min(self.max_rate_limit_pause);
        }
        let factor = 2u32.saturating_pow((n - 1).min(30));
        let ceiling =
            self.default_rate_limit_pause.saturating_mul(factor).min(self.max_rate_limit_pause);
        ceiling / 2 + (ceiling / 2).mul_f64(unit.clamp(0.0, 1.0))
    }

    /// Clamps a server-given `Retry-After` to `[0, max_rate_limit_pause]`.
    pub fn clamp_retry_after(&self, d: Duration) -> Duration {
        d.min(self.max_rate_limit_pause)
    }
}

/// Whether an HTTP status is worth retrying for an idempotent request.
pub(super) fn status_is_transient(status: u16) -> bool {
    status == 408 || status == 429 || (500..=599).contains(&status)
}

/// Parses a `Retry-After` value: delta-seconds, or an HTTP-date relative to `now`
/// (a date in the past means "now"). `None` when it is neither.
pub(super) fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    if let Ok(secs) = v.parse::<f64>()
        && secs.is_finite()
        && secs >= 0.0
    {
        return Some(Duration::from_secs_f64(secs.min(86_400.0)));
    }
    let at = httpdate::parse_http_date(v).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(2),
            ..RetryPolicy::default()
        }
    }

    #[test]
    fn ceiling_doubles_and_caps() {
        let p = policy();
        let ms: Vec<u128> = (1..=7).map(|n| p.ceiling(n).as_millis()).collect();
        assert_eq!(ms, vec![100, 200, 400, 800, 1600, 2000, 2000]);
        assert_eq!(p.ceiling(1000), Duration::from_secs(2), "no overflow on huge retry numbers");
    }

    #[test]
    fn full_jitter_spans_zero_to_ceiling() {
        let p = policy();
        assert_eq!(p.backoff(3, 0.0), Duration::ZERO);
        assert_eq!(p.backoff(3, 0.5), Duration::from_millis(200));
        assert_eq!(p.backoff(3, 0.999_999).as_millis(), 399);
        assert_eq!(p.backoff(3, 7.0), Duration::from_millis(400), "draw is clamped");
    }

    #[test]
    fn rate_limit_pause_starts_at_default_then_grows_with_jitter() {
        let p = RetryPolicy::default();
        assert_eq!(p.rate_limit_pause(1, 0.9), Duration::from_secs(5));
        assert_eq!(p.rate_limit_pause(2, 0.0), Duration::from_secs(5));
        assert_eq!(p.rate_limit_pause(2, 1.0), Duration::from_secs(10));
        assert_eq!(p.rate_limit_pause(3, 0.0), Duration::from_secs(10));
        assert_eq!(p.rate_limit_pause(50, 1.0), p.max_rate_limit_pause);
    }

    #[test]
    fn transient_statuses() {
        for s in [408, 429, 500, 502, 503, 504, 599] {
            assert!(status_is_transient(s), "{s}");
        }
        for s in [200, 400, 401, 403, 404, 422] {
            assert!(!status_is_transient(s), "{s}");
        }
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        let now = httpdate::parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT").unwrap();
        assert_eq!(parse_retry_after("3", now), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("1.5", now), Some(Duration::from_millis(1500)));
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:47 GMT", now),
            Some(Duration::from_secs(10))
        );
        assert_eq!(parse_retry_after("Sun, 06 Nov 1994 08:00:00 GMT", now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-4", now), None);
        assert_eq!(parse_retry_after("", now), None);
    }
}
