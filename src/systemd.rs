//! The systemd notify protocol (READY, STOPPING, RELOADING, STATUS, WATCHDOG) and the main-loop
//! heartbeat that drives both the watchdog pings and `/livez`.
//!
//! The watchdog only pings while the heartbeat is fresh, so a wedged main loop stops the pings
//! and systemd restarts the process. Without `NOTIFY_SOCKET` every notification is a no-op.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sd_notify::NotifyState;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

/// Liveness of the main loop: the loop calls [`Heartbeat::beat`] on every tick; readers ask
/// whether the last beat is younger than the staleness limit. Cheap to clone and share.
#[derive(Debug, Clone)]
pub struct Heartbeat {
    inner: Arc<HeartbeatInner>,
}

#[derive(Debug)]
struct HeartbeatInner {
    base: Instant,
    /// Microseconds from `base` to the last beat.
    last_us: AtomicU64,
    tick: Duration,
    stale_after: Duration,
}

impl Heartbeat {
    /// A heartbeat whose loop beats every `tick` and counts as stale after `stale_after`
    /// without a beat. It starts fresh (as if it had just beaten).
    pub fn new(tick: Duration, stale_after: Duration) -> Heartbeat {
        let inner =
            HeartbeatInner { base: Instant::now(), last_us: AtomicU64::new(0), tick, stale_after };
        Heartbeat { inner: Arc::new(inner) }
    }

    /// The heartbeat for this process: with a systemd watchdog of `w`, the loop ticks every
    /// `w/4` (at most 1 s) and the beat goes stale after `w/2` (at least three ticks), so a
    /// wedged loop misses the next watchdog ping. Without a watchdog: 1 s ticks, stale after 30 s.
    pub fn for_watchdog(watchdog: Option<Duration>) -> Heartbeat {
        match watchdog {
            Some(w) => {
                let tick = (w / 4).min(Duration::from_secs(1)).max(Duration::from_millis(1));
                Heartbeat::new(tick, (w / 2).max(tick * 3))
            }
            None => Heartbeat::new(Duration::from_secs(1), Duration::from_secs(30)),
        }
    }

    /// Records that the main loop made progress now.
    pub fn beat(&self) {
        let us = u64::try_from(self.inner.base.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.inner.last_us.store(us, Ordering::Relaxed);
    }

    /// Time since the last beat.
    pub fn age(&self) -> Duration {
        let last = Duration::from_micros(self.inner.last_us.load(Ordering::Relaxed));
        self.inner.base.elapsed().saturating_sub(last)
    }

    /// Whether the last beat is younger than the staleness limit.
    pub fn is_fresh(&self) -> bool {
        self.age() <= self.inner.stale_after
    }

    /// How often the main loop should beat.
    pub fn tick(&self) -> Duration {
        self.inner.tick
    }

    /// After how long without a beat the loop counts as wedged.
    pub fn stale_after(&self) -> Duration {
        self.inner.stale_after
    }
}

/// Sends notifications to the service manager. [`Notifier::systemd`] writes to `$NOTIFY_SOCKET`
/// (nothing when unset); [`Notifier::recording`] keeps the messages in memory for tests.
#[derive(Debug, Clone)]
pub struct Notifier {
    sink: Sink,
}

#[derive(Debug, Clone)]
enum Sink {
    Systemd,
    Memory(Arc<Mutex<Vec<String>>>),
}

impl Notifier {
    /// The real notifier (sd-notify; a no-op without `NOTIFY_SOCKET`).
    pub fn systemd() -> Notifier {
        Notifier { sink: Sink::Systemd }
    }

    /// A notifier that records every message; the returned list is shared with it.
    pub fn recording() -> (Notifier, Arc<Mutex<Vec<String>>>) {
        let log = Arc::new(Mutex::new(Vec::new()));
        (Notifier { sink: Sink::Memory(log.clone()) }, log)
    }

    fn send(&self, states: &[NotifyState<'_>]) {
        match &self.sink {
            Sink::Systemd => {
                // A notification that cannot be sent is not worth stopping for; systemd
                // will notice the missing READY or WATCHDOG on its own.
                if let Err(e) = sd_notify::notify(states) {
                    tracing::warn!(error = %e, "cannot notify systemd through $NOTIFY_SOCKET");
                }
            }
            Sink::Memory(log) => {
                let mut log = log.lock().unwrap_or_else(|p| p.into_inner());
                log.extend(states.iter().map(|s| s.to_string()));
            }
        }
    }

    /// `READY=1` with a status line: start-up (or a reload) finished.
    pub fn ready(&self, status: &str) {
        self.send(&[NotifyState::Ready, NotifyState::Status(status)]);
    }

    /// `STATUS=...`: a free-form line shown by `systemctl status`.
    pub fn status(&self, status: &str) {
        self.send(&[NotifyState::Status(status)]);
    }

    /// `STOPPING=1`: shutdown began.
    pub fn stopping(&self) {
        self.send(&[NotifyState::Stopping, NotifyState::Status("stopping")]);
    }

    /// `RELOADING=1` with `MONOTONIC_USEC` (required by systemd >= 253).
    pub fn reloading(&self) {
        match NotifyState::monotonic_usec_now() {
            Ok(now) => self.send(&[NotifyState::Reloading, now]),
            Err(_) => self.send(&[NotifyState::Reloading]),
        }
    }

    /// `EXTEND_TIMEOUT_USEC=...`: start-up (or stop) needs up to `by` more from now, e.g.
    /// while redb repairs the store after a crash.
    pub fn extend_timeout(&self, by: Duration) {
        let usec = u32::try_from(by.as_micros()).unwrap_or(u32::MAX);
        self.send(&[NotifyState::ExtendTimeoutUsec(usec)]);
    }

    /// `WATCHDOG=1`.
    pub fn watchdog(&self) {
        self.send(&[NotifyState::Watchdog]);
    }
}

/// The watchdog interval systemd asked for (`WATCHDOG_USEC`, when `WATCHDOG_PID` is unset or
/// names this process).
pub fn watchdog_interval() -> Option<Duration> {
    sd_notify::watchdog_enabled().filter(|d| !d.is_zero())
}

/// Pings the watchdog every `interval / 2` while `heartbeat` is fresh, until `token` is
/// cancelled. A stale heartbeat skips the ping (and logs once), so systemd's watchdog fires.
pub async fn run_watchdog(
    notifier: Notifier,
    heartbeat: Heartbeat,
    interval: Duration,
    token: CancellationToken,
) {
    let mut ticker = tokio::time::interval((interval / 2).max(Duration::from_millis(1)));
    ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut wedged = false;
    loop {
        tokio::select! {
            _ = token.cancelled() => return,
            _ = ticker.tick() => {}
        }
        if heartbeat.is_fresh() {
            if wedged {
                tracing::info!("main loop is making progress again; watchdog pings resumed");
                wedged = false;
            }
            notifier.watchdog();
        } else if !wedged {
            wedged = true;
            tracing::error!(
                last_beat_secs = heartbeat.age().as_secs_f64(),
                "main loop has not made progress; withholding watchdog pings so systemd restarts mpsync"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pings(log: &Mutex<Vec<String>>) -> usize {
        log.lock().unwrap().iter().filter(|m| *m == "WATCHDOG=1").count()
    }

    #[test]
    fn watchdog_policy_detects_a_wedge_before_the_next_ping() {
        let hb = Heartbeat::for_watchdog(Some(Duration::from_secs(60)));
        assert_eq!(hb.tick(), Duration::from_secs(1));
        assert_eq!(hb.stale_after(), Duration::from_secs(30));
        let hb = Heartbeat::for_watchdog(Some(Duration::from_millis(200)));
        assert_eq!(hb.tick(), Duration::from_millis(50));
        assert_eq!(hb.stale_after(), Duration::from_millis(150));
    }

    #[tokio::test(start_paused = true)]
    async fn heartbeat_goes_stale_without_beats() {
        let hb = Heartbeat::new(Duration::from_secs(1), Duration::from_secs(3));
        assert!(hb.is_fresh());
        tokio::time::advance(Duration::from_secs(2)).await;
        hb.beat();
        tokio::time::advance(Duration::from_secs(3)).await;
        assert!(hb.is_fresh());
        tokio::time::advance(Duration::from_millis(10)).await;
        assert!(!hb.is_fresh());
    }

    #[tokio::test(start_paused = true)]
    async fn a_blocked_loop_stops_the_watchdog_pings() {
        let watchdog = Duration::from_secs(2);
        let hb = Heartbeat::for_watchdog(Some(watchdog));
        let (notifier, log) = Notifier::recording();
        let token = CancellationToken::new();
        let wd = tokio::spawn(run_watchdog(notifier, hb.clone(), watchdog, token.clone()));

        // The loop beats for 10 s, then blocks forever (never beats again).
        let blocked = Arc::new(tokio::sync::Notify::new());
        let lp = {
            let (hb, blocked) = (hb.clone(), blocked.clone());
            tokio::spawn(async move {
                let mut t = tokio::time::interval(hb.tick());
                for _ in 0..20 {
                    t.tick().await;
                    hb.beat();
                }
                blocked.notified().await;
            })
        };
        tokio::time::sleep(Duration::from_secs(10)).await;
        let while_alive = pings(&log);
        assert!(
            while_alive >= 9,
            "expected a ping per second while the loop beats, got {while_alive}"
        );

        tokio::time::sleep(Duration::from_secs(30)).await;
        let after = pings(&log);
        // The beat goes stale 1.5 s after the block: at most two more pings may follow.
        assert!(
            after <= while_alive + 2,
            "pings kept coming from a blocked loop: {while_alive} → {after}"
        );

        // A loop that recovers gets its pings back.
        hb.beat();
        tokio::time::sleep(Duration::from_millis(1100)).await;
        assert!(pings(&log) > after, "pings did not resume after a beat");
        token.cancel();
        wd.await.unwrap();
        lp.abort();
    }

    #[test]
    fn notifications_use_the_protocol_words() {
        let (n, log) = Notifier::recording();
        n.ready("serving");
        n.reloading();
        n.stopping();
        n.extend_timeout(Duration::from_secs(30));
        let log = log.lock().unwrap();
        assert_eq!(log[0], "READY=1");
        assert_eq!(log[1], "STATUS=serving");
        assert_eq!(log[2], "RELOADING=1");
        assert!(log[3].starts_with("MONOTONIC_USEC="), "{log:?}");
        assert_eq!(log[4], "STOPPING=1");
        assert_eq!(log[6], "EXTEND_TIMEOUT_USEC=30000000");
    }
}
