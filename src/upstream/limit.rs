//! The request budget of one upstream: a governor rate limiter (`rate_limit`, `burst`), a
//! semaphore (`max_in_flight`) and a pause gate that a 429 closes for every caller.
//!
//! One [`Budget`] exists per upstream and is shared by every clone of its client.

use std::num::NonZeroU32;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Jitter, Quota, RateLimiter};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use crate::config::UpstreamLimits;

/// Shared budget: rate limiter, in-flight bound and 429 pause gate.
#[derive(Debug)]
pub struct Budget {
    limiter: DefaultDirectRateLimiter,
    jitter: Duration,
    in_flight: std::sync::Arc<Semaphore>,
    gate: PauseGate,
}

impl Budget {
    /// A budget from validated limits. `rate_limit` must be > 0; a burst of 0 is taken as 1.
    pub fn new(limits: &UpstreamLimits) -> Budget {
        let rate = if limits.rate_limit.is_finite() && limits.rate_limit > 0.0 {
            limits.rate_limit
        } else {
            1.0
        };
        let period = Duration::from_secs_f64(1.0 / rate).max(Duration::from_nanos(1));
        let burst = NonZeroU32::new(limits.burst.max(1)).unwrap_or(NonZeroU32::MIN);
        let quota =
            Quota::with_period(period).unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN));
        // Jitter spreads waiters that wake together (thundering herd). Every wait pays it, so
        // it stays a small fraction of one period: a full sync must take close to
        // requests / rate_limit.
        let jitter = (period / 20).min(Duration::from_millis(10));
        Budget {
            limiter: RateLimiter::direct(quota.allow_burst(burst)),
            jitter,
            in_flight: std::sync::Arc::new(Semaphore::new(limits.max_in_flight.max(1))),
            gate: PauseGate::default(),
        }
    }

    /// Waits for the pause gate, an in-flight slot and a rate-limiter cell, in that order.
    /// Returns the slot (hold it for the request) and the time spent on the gate and limiter.
    pub async fn acquire(&self) -> (OwnedSemaphorePermit, Duration) {
        let mut waited = self.gate.wait().await;
        // The semaphore is never closed, so acquiring cannot fail.
        let permit = self
            .in_flight
            .clone()
            .acquire_owned()
            .await
            .expect("the in-flight semaphore of an upstream budget is never closed");
        loop {
            let start = Instant::now();
            self.limiter.until_ready_with_jitter(Jitter::up_to(self.jitter)).await;
            waited += start.elapsed();
            // A 429 may have closed the gate while this caller waited for its cell.
            let paused = self.gate.wait().await;
            if paused.is_zero() {
                return (permit, waited);
            }
            waited += paused;
        }
    }

    /// The 429 pause gate.
    pub fn gate(&self) -> &PauseGate {
        &self.gate
    }
}

/// A gate that a 429 closes until a point in time; every caller waits for it to reopen.
#[derive(Debug, Default)]
pub struct PauseGate {
    until: Mutex<Option<Instant>>,
    consecutive: AtomicU32,
}

impl PauseGate {
    /// Closes the gate for `d` from now (extends it, never shortens it). Returns the number
    /// of consecutive 429s including this one.
    pub fn pause_for(&self, d: Duration) -> u32 {
        let at = Instant::now() + d;
        let mut until = self.until.lock().unwrap_or_else(|p| p.into_inner());
        if until.is_none_or(|u| u < at) {
            *until = Some(at);
        }
        self.consecutive.load(Ordering::Relaxed)
    }

    /// Counts one more consecutive 429 and returns the count.
    pub fn note_rate_limited(&self) -> u32 {
        self.consecutive.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// A success: the storm, if any, is over.
    pub fn note_success(&self) {
        self.consecutive.store(0, Ordering::Relaxed);
    }

    /// When the gate reopens, if it is closed now.
    pub fn closed_until(&self) -> Option<Instant> {
        let until = *self.until.lock().unwrap_or_else(|p| p.into_inner());
        until.filter(|u| *u > Instant::now())
    }

    /// Waits until the gate is open; returns how long that took (exactly zero when it was
    /// open already).
    pub async fn wait(&self) -> Duration {
        let start = Instant::now();
        let mut slept = false;
        while let Some(u) = self.closed_until() {
            tokio::time::sleep_until(u).await;
            slept = true;
        }
        if slept { start.elapsed() } else { Duration::ZERO }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn limits(rate: f64, burst: u32, in_flight: usize) -> UpstreamLimits {
        UpstreamLimits {
            rate_limit: rate,
            burst,
            max_in_flight: in_flight,
            timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(5),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_pause_holds_every_caller_until_it_passes() {
        let gate = Arc::new(PauseGate::default());
        assert_eq!(gate.note_rate_limited(), 1);
        gate.pause_for(Duration::from_secs(3));
        gate.pause_for(Duration::from_secs(1)); // never shortens
        let start = Instant::now();
        let waiters: Vec<_> = (0..3)
            .map(|_| {
                let g = gate.clone();
                tokio::spawn(async move { g.wait().await })
            })
            .collect();
        for w in waiters {
            assert_eq!(w.await.unwrap(), Duration::from_secs(3));
        }
        assert_eq!(start.elapsed(), Duration::from_secs(3));
        assert!(gate.closed_until().is_none());
        gate.note_success();
        assert_eq!(gate.note_rate_limited(), 1, "a success resets the storm count");
    }

    #[tokio::test(start_paused = true)]
    async fn a_pause_during_a_limiter_wait_is_honoured() {
        let budget = Budget::new(&limits(1000.0, 10, 2));
        budget.gate().pause_for(Duration::from_secs(2));
        let start = Instant::now();
        let (_permit, waited) = budget.acquire().await;
        assert!(start.elapsed() >= Duration::from_secs(2));
        assert!(waited >= Duration::from_secs(2));
    }

    #[tokio::test]
    async fn the_burst_passes_at_once_then_the_limiter_holds() {
        // Governor runs on real time: count cells instead of timing them.
        let budget = Budget::new(&limits(1.0, 3, 10));
        let mut passed = 0;
        for _ in 0..10 {
            if budget.limiter.check().is_ok() {
                passed += 1;
            }
        }
        assert_eq!(passed, 3);
    }

    #[tokio::test]
    async fn in_flight_is_bounded() {
        let budget = Budget::new(&limits(10_000.0, 100, 2));
        let (a, _) = budget.acquire().await;
        let (_b, _) = budget.acquire().await;
        assert_eq!(budget.in_flight.available_permits(), 0);
        drop(a);
        assert_eq!(budget.in_flight.available_permits(), 1);
    }
}
