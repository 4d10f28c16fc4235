//! How long a job waits after consecutive failures before its next attempt.

use std::time::Duration;

/// The longest wait, whatever the schedule (unless the schedule's own period is longer).
const MAX_WAIT: Duration = Duration::from_secs(6 * 3600);

/// The wait before the next attempt after `failures` consecutive failures of a job whose
/// schedule fires every `period`: `period × 2^(failures−1)`, capped at the larger of the
/// period and six hours, stretched by a jitter factor in [1.0, 1.2) drawn from `unit` (a
/// number in [0, 1)). The first failure therefore waits a little over one period: the next
/// regular tick is skipped in favour of a slightly later attempt, so jobs that fail together
/// do not retry together. `failures == 0` waits nothing.
pub fn failure_backoff(failures: u32, period: Duration, unit: f64) -> Duration {
    if failures == 0 {
        return Duration::ZERO;
    }
    let factor = 2u32.saturating_pow(failures.saturating_sub(1).min(20));
    let cap = period.max(MAX_WAIT);
    let base = period.saturating_mul(factor).min(cap);
    base.mul_f64(1.0 + 0.2 * unit.clamp(0.0, 0.999_999))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HALF_HOUR: Duration = Duration::from_secs(1800);

    #[test]
    fn no_failures_no_wait() {
        assert_eq!(failure_backoff(0, HALF_HOUR, 0.5), Duration::ZERO);
    }

    #[test]
    fn doubles_per_failure_and_caps() {
        assert_eq!(failure_backoff(1, HALF_HOUR, 0.0), HALF_HOUR);
        assert_eq!(failure_backoff(2, HALF_HOUR, 0.0), HALF_HOUR * 2);
        assert_eq!(failure_backoff(3, HALF_HOUR, 0.0), HALF_HOUR * 4);
        assert_eq!(failure_backoff(5, HALF_HOUR, 0.0), MAX_WAIT);
        assert_eq!(failure_backoff(500, HALF_HOUR, 0.0), MAX_WAIT);
    }

    #[test]
    fn long_periods_are_never_shortened() {
        let day = Duration::from_secs(86_400);
        assert_eq!(failure_backoff(3, day, 0.0), day);
    }

    #[test]
    fn jitter_stretches_by_at_most_twenty_percent() {
        let lo = failure_backoff(2, HALF_HOUR, 0.0);
        let hi = failure_backoff(2, HALF_HOUR, 1.0);
        assert!(hi > lo && hi < lo.mul_f64(1.2) + Duration::from_millis(1));
    }
}
