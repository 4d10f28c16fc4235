//! A channel's delivery state, kept in the store (`kv_v1`, key `notify.<name>`) so that
//! retries, their backoff and digests carry across restarts: the cursor (every event up to it
//! is delivered, skipped by the filter, or refused for good), the failed attempts at the
//! head, when to try again, and what went wrong. Pure: the loop in `deliver` reads and
//! writes it.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::events::EventId;

/// The store key of channel `name`'s state.
pub fn key(name: &str) -> String {
    format!("notify.{name}")
}

/// Failed attempts in a row after which health warns about the channel.
pub const WARN_AFTER_FAILURES: u32 = 3;

/// One channel's delivery state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChannelState {
    /// Every event with an id up to this one is handled.
    pub cursor: EventId,
    /// Failed attempts in a row at the head (0 after a success).
    pub attempts: u32,
    /// No attempt before this time (a retry's backoff).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_attempt: Option<DateTime<Utc>>,
    /// Since when deliveries have been failing (cleared by a success).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failing_since: Option<DateTime<Utc>>,
    /// The last failure: when, and why (secrets cut out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<(DateTime<Utc>, String)>,
    /// The last delivery the receiver accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_ok: Option<DateTime<Utc>>,
    /// Deliveries the receiver refused for good (a 4xx other than 408 and 429, an SMTP 5xx):
    /// skipped, never retried.
    #[serde(default)]
    pub rejected: u64,
    /// The last refused delivery: when, its id, and the receiver's answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_rejected: Option<(DateTime<Utc>, String, String)>,
    /// For a digest channel: when the last digest was due.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest_at: Option<DateTime<Utc>>,
    /// For a digest channel: the digest being delivered (retried with the same events and id)
    /// holds the events up to this id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest_upto: Option<EventId>,
}

impl ChannelState {
    /// A new channel: it starts after event `last` (the events before it was configured are
    /// not sent), its first digest due on the schedule after `now`.
    pub fn new(last: EventId, now: DateTime<Utc>) -> ChannelState {
        ChannelState { cursor: last, digest_at: Some(now), ..ChannelState::default() }
    }

    /// Records a delivery the receiver accepted, handling every event up to `upto`.
    pub fn delivered(&mut self, upto: EventId, now: DateTime<Utc>) {
        self.cursor = self.cursor.max(upto);
        self.attempts = 0;
        self.next_attempt = None;
        self.failing_since = None;
        self.last_ok = Some(now);
    }

    /// Records a delivery refused for good: skipped (up to `upto`), never retried.
    pub fn refused(&mut self, upto: EventId, id: &str, reason: String, now: DateTime<Utc>) {
        self.cursor = self.cursor.max(upto);
        self.attempts = 0;
        self.next_attempt = None;
        self.failing_since = None;
        self.rejected += 1;
        self.last_rejected = Some((now, id.to_owned(), reason));
    }

    /// Records a failed attempt that is worth repeating: the next one waits `backoff` for
    /// this attempt count, scaled by `jitter` (0.0 to 1.0, drawn by the caller).
    pub fn failed(&mut self, reason: String, now: DateTime<Utc>, backoff: Backoff, jitter: f64) {
        self.attempts = self.attempts.saturating_add(1);
        self.failing_since.get_or_insert(now);
        self.last_error = Some((now, reason));
        let wait = backoff.wait(self.attempts, jitter);
        self.next_attempt = Some(now + chrono::Duration::from_std(wait).unwrap_or_default());
    }
}

/// Exponential backoff with jitter: `initial` doubling per failed attempt up to `max`, each
/// wait between 3/4 and all of that (jitter spreads receivers' retries without ever
/// retrying much sooner than the schedule says).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    /// The wait after the first failure.
    pub initial: Duration,
    /// The longest wait: the slow cadence of a receiver that keeps failing.
    pub max: Duration,
}

impl Backoff {
    /// The wait after failed attempt number `attempts` (1 for the first), with `jitter` in
    /// 0.0..=1.0 (1.0: the full wait).
    pub fn wait(&self, attempts: u32, jitter: f64) -> Duration {
        let doublings = attempts.saturating_sub(1).min(32);
        let full = self.initial.saturating_mul(1u32 << doublings.min(31)).min(self.max);
        full.mul_f64(0.75 + 0.25 * jitter.clamp(0.0, 1.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_doubles_from_thirty_seconds_to_an_hour_with_bounded_jitter() {
        let b = Backoff { initial: Duration::from_secs(30), max: Duration::from_secs(3600) };
        let full: Vec<u64> = (1..=9).map(|n| b.wait(n, 1.0).as_secs()).collect();
        assert_eq!(full, [30, 60, 120, 240, 480, 960, 1920, 3600, 3600]);
        assert_eq!(b.wait(1, 0.0), Duration::from_millis(22_500));
        assert_eq!(b.wait(400, 0.5), Duration::from_secs(3150), "no overflow, capped");
    }

    #[test]
    fn a_success_clears_the_failures_and_a_refusal_skips_without_retrying() {
        let t = |s: i64| DateTime::<Utc>::from_timestamp(s, 0).unwrap();
        let b = Backoff { initial: Duration::from_secs(30), max: Duration::from_secs(3600) };
        let mut st = ChannelState::new(5, t(0));
        st.failed("503".into(), t(10), b, 1.0);
        st.failed("503".into(), t(40), b, 1.0);
        assert_eq!(
            (st.attempts, st.next_attempt, st.failing_since),
            (2, Some(t(100)), Some(t(10)))
        );
        assert_eq!(st.cursor, 5, "nothing handled yet");
        st.delivered(6, t(100));
        assert_eq!((st.cursor, st.attempts, st.next_attempt, st.failing_since), (6, 0, None, None));
        st.refused(7, "event-7", "HTTP 400".into(), t(101));
        assert_eq!((st.cursor, st.rejected), (7, 1));
        assert_eq!(st.last_rejected.as_ref().map(|r| r.1.as_str()), Some("event-7"));
    }
}
