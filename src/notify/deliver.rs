//! The delivery loop: the event log is the outbox. Each channel keeps a cursor in the store
//! and is sent the matching events after it, in id order — one message per event, or one
//! digest per schedule slot — and the cursor moves only once the receiver accepted (or
//! refused for good). A kill between the commit of an event and its delivery, or between a
//! delivery and the cursor's commit, sends it (again) after the restart: at least once, with
//! a stable id the receiver de-duplicates on.
//!
//! A failed attempt waits (see [`Backoff`]) and the wait is kept in the store, so restarts do
//! not turn a dead receiver into a tight loop; the channel keeps being retried at `retry_max`.
//! The loop wakes on new events ([`Store::subscribe_events`]), on a config reload, and when a
//! retry or a digest is due. The event log's low-water mark follows the slowest channel.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::filter::matches;
use super::message::Delivery;
use super::send::{SendError, SetupError, Transport};
use super::state::{Backoff, ChannelState};
use crate::config::{Config, NotifyConfig};
use crate::events::{Event, EventId};
use crate::store::{Store, StoreError};

/// The store key of every channel's [`ChannelState`], by channel name.
pub const STATE_KEY: &str = "notify.channels";

/// Events one pass sends to one channel before the others get their turn.
const PER_PASS: usize = 20;

/// Events read from the log at once.
const PAGE: usize = 500;

/// How long the loop waits before trying again after the store failed.
const STORE_RETRY: Duration = Duration::from_secs(30);

/// Where "now" comes from: the wall clock in the daemon, a clock that follows tokio's
/// (pausable) time in tests.
pub trait Clock: Send + Sync {
    /// The current time.
    fn now(&self) -> DateTime<Utc>;
}

/// The wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that starts at `base` and advances with tokio's time (so paused-time tests can
/// move it).
#[derive(Debug, Clone, Copy)]
pub struct TokioClock {
    base: DateTime<Utc>,
    start: tokio::time::Instant,
}

impl TokioClock {
    /// A clock reading `base` now.
    pub fn starting_at(base: DateTime<Utc>) -> TokioClock {
        TokioClock { base, start: tokio::time::Instant::now() }
    }
}

impl Clock for TokioClock {
    fn now(&self) -> DateTime<Utc> {
        let d = chrono::Duration::from_std(self.start.elapsed()).unwrap_or_default();
        self.base + d
    }
}

/// What one attempt came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The receiver accepted it.
    Ok,
    /// It failed and will be tried again.
    Retry,
    /// The receiver refused it for good; it was skipped.
    Refused,
}

impl Outcome {
    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Retry => "retry",
            Outcome::Refused => "refused",
        }
    }
}

/// One channel as health and metrics see it after a pass.
#[derive(Debug, Clone)]
pub struct ChannelReport {
    /// Its name.
    pub name: String,
    /// Its kind.
    pub kind: &'static str,
    /// Its delivery state.
    pub state: ChannelState,
    /// Matching events not delivered yet (counted up to a page of the log).
    pub pending: u64,
    /// Why it cannot deliver at all (its transport could not be built).
    pub broken: Option<String>,
}

/// Told about every attempt and, after each pass, every channel (the app publishes these to
/// health and metrics).
pub trait NotifyObserver: Send + Sync {
    /// One attempt on `channel` came to `outcome`.
    fn attempted(&self, channel: &str, outcome: Outcome);
    /// The channels after a pass (all of them, so removed ones can be dropped).
    fn channels(&self, reports: &[ChannelReport]);
}

/// Builds a channel's transport (the daemon's: [`super::send::transport`]).
pub type TransportFactory =
    Arc<dyn Fn(&NotifyConfig) -> Result<Arc<dyn Transport>, SetupError> + Send + Sync>;

/// A configured channel while the loop runs.
struct Channel {
    cfg: NotifyConfig,
    transport: Result<Arc<dyn Transport>, String>,
    pending: u64,
}

/// The delivery loop's parts.
pub struct Notifier {
    store: Store,
    config: watch::Receiver<Arc<Config>>,
    clock: Arc<dyn Clock>,
    factory: TransportFactory,
    observer: Arc<dyn NotifyObserver>,
}

/// Why a pass stopped early.
enum Stop {
    /// Shutting down.
    Cancelled,
    /// The store failed.
    Store(StoreError),
}

impl From<StoreError> for Stop {
    fn from(e: StoreError) -> Stop {
        Stop::Store(e)
    }
}

impl Notifier {
    /// A notifier over `store` for the channels of `config` (followed across reloads).
    pub fn new(
        store: Store,
        config: watch::Receiver<Arc<Config>>,
        clock: Arc<dyn Clock>,
        factory: TransportFactory,
        observer: Arc<dyn NotifyObserver>,
    ) -> Notifier {
        Notifier { store, config, clock, factory, observer }
    }

    /// Gives every configured channel that has no state yet a cursor at the last event, and
    /// drops the state of channels no longer configured. Call before anything can append
    /// events (so none of them is skipped), and after each reload.
    pub async fn init(&self) -> Result<(), StoreError> {
        let cfg = self.config.borrow().clone();
        let mut states = self.states().await?;
        let before = states.clone();
        let last = self.store.last_event_id().await?;
        let now = self.clock.now();
        states.retain(|name, _| cfg.notify.iter().any(|c| &c.name == name));
        for c in &cfg.notify {
            states.entry(c.name.clone()).or_insert_with(|| ChannelState::new(last, now));
        }
        if states != before {
            self.store.put_meta(STATE_KEY, &states).await?;
        }
        self.low_water(&states).await
    }

    /// Runs until `token` is cancelled. An in-flight delivery is abandoned on cancel (its
    /// cursor did not move: it is sent again after the restart).
    pub async fn run(mut self, token: CancellationToken) {
        let mut events = self.store.subscribe_events();
        let mut channels = self.channels();
        loop {
            let wake = match self.pass(&mut channels, &token).await {
                Ok(wake) => wake,
                Err(Stop::Cancelled) => return,
                Err(Stop::Store(e)) => {
                    tracing::warn!(
                        "notifications: {e}; trying again in {}s",
                        STORE_RETRY.as_secs()
                    );
                    Some(
                        self.clock.now()
                            + chrono::Duration::from_std(STORE_RETRY).unwrap_or_default(),
                    )
                }
            };
            let sleep = wake.map(|t| (t - self.clock.now()).to_std().unwrap_or(Duration::ZERO));
            tokio::select! {
                _ = token.cancelled() => return,
                changed = events.changed() => if changed.is_err() { return },
                changed = self.config.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    if let Err(e) = self.init().await {
                        tracing::warn!("notifications: cannot apply the new channels: {e}");
                    }
                    channels = self.channels();
                }
                _ = sleep_for(sleep) => {}
            }
        }
    }

    /// The channels of the current config with their transports.
    fn channels(&self) -> Vec<Channel> {
        let cfg = self.config.borrow().clone();
        cfg.notify
            .iter()
            .map(|c| {
                let transport = (self.factory)(c).map_err(|e| {
                    tracing::error!("{e}");
                    e.reason
                });
                Channel { cfg: c.clone(), transport, pending: 0 }
            })
            .collect()
    }

    /// Keeps one channel's state (the others' as they are in the store).
    async fn save(&self, name: &str, state: &ChannelState) -> Result<(), StoreError> {
        let (name, state) = (name.to_owned(), state.clone());
        self.store
            .update_meta(STATE_KEY, move |all: &mut Option<BTreeMap<String, ChannelState>>| {
                all.get_or_insert_default().insert(name, state);
            })
            .await
    }

    async fn states(&self) -> Result<BTreeMap<String, ChannelState>, StoreError> {
        Ok(self.store.get_meta(STATE_KEY).await?.unwrap_or_default())
    }

    /// Sets the low-water mark to the slowest channel's cursor (the last event when there is
    /// no channel: nothing waits, and pruning goes by age).
    async fn low_water(&self, states: &BTreeMap<String, ChannelState>) -> Result<(), StoreError> {
        let mark = match states.values().map(|s| s.cursor).min() {
            Some(m) => m,
            None => self.store.last_event_id().await?,
        };
        if mark > 0 {
            self.store.set_event_low_water(mark).await?;
        }
        Ok(())
    }

    /// One turn over every channel; returns when to come back (`None`: on the next event).
    async fn pass(
        &self,
        channels: &mut [Channel],
        token: &CancellationToken,
    ) -> Result<Option<DateTime<Utc>>, Stop> {
        let mut states = self.states().await?;
        let mut wake: Option<DateTime<Utc>> = None;
        for ch in channels.iter_mut() {
            let Some(mut state) = states.get(&ch.cfg.name).cloned() else { continue };
            let Ok(transport) = ch.transport.clone() else { continue };
            let next = if ch.cfg.digest.is_some() {
                self.digest(ch, &transport, &mut state, token).await?
            } else {
                self.each(ch, &transport, &mut state, token).await?
            };
            // Events the filter skipped moved the cursor too.
            if states.get(&ch.cfg.name) != Some(&state) {
                self.save(&ch.cfg.name, &state).await?;
            }
            ch.pending = self.pending(&ch.cfg, state.cursor).await?;
            states.insert(ch.cfg.name.clone(), state);
            if let Some(t) = next {
                wake = Some(wake.map_or(t, |w| w.min(t)));
            }
        }
        self.low_water(&states).await?;
        let reports: Vec<ChannelReport> = channels
            .iter()
            .filter_map(|ch| {
                let state = states.get(&ch.cfg.name)?.clone();
                Some(ChannelReport {
                    name: ch.cfg.name.clone(),
                    kind: ch.cfg.kind.name().as_str(),
                    state,
                    pending: ch.pending,
                    broken: ch.transport.as_ref().err().cloned(),
                })
            })
            .collect();
        self.observer.channels(&reports);
        Ok(wake)
    }

    /// Matching events after `cursor` (up to a page).
    async fn pending(&self, cfg: &NotifyConfig, cursor: EventId) -> Result<u64, StoreError> {
        let events = self.store.events_after(cursor, PAGE).await?;
        Ok(events.iter().filter(|e| matches(&cfg.filter, e)).count() as u64)
    }

    /// One message per event: sends up to [`PER_PASS`] matching events in id order.
    async fn each(
        &self,
        ch: &Channel,
        transport: &Arc<dyn Transport>,
        state: &mut ChannelState,
        token: &CancellationToken,
    ) -> Result<Option<DateTime<Utc>>, Stop> {
        let now = self.clock.now();
        if let Some(t) = state.next_attempt.filter(|t| *t > now) {
            return Ok(Some(t));
        }
        let mut sent = 0;
        loop {
            let events = self.store.events_after(state.cursor, PAGE).await?;
            if events.is_empty() {
                return Ok(None);
            }
            for ev in events {
                if !matches(&ch.cfg.filter, &ev) {
                    state.cursor = ev.id;
                    continue;
                }
                if sent == PER_PASS {
                    // Come back at once, after the other channels.
                    return Ok(Some(self.clock.now()));
                }
                let id = ev.id;
                let d = Delivery::event(&ch.cfg.name, ev);
                sent += 1;
                if let Some(retry) = self.attempt(ch, transport, &d, id, state, token).await? {
                    return Ok(Some(retry));
                }
            }
        }
    }

    /// A digest channel: when a slot of its schedule has come, one message with the matching
    /// events up to the last one at that moment (retried with the same events and id).
    async fn digest(
        &self,
        ch: &Channel,
        transport: &Arc<dyn Transport>,
        state: &mut ChannelState,
        token: &CancellationToken,
    ) -> Result<Option<DateTime<Utc>>, Stop> {
        let Some(schedule) = &ch.cfg.digest else { return Ok(None) };
        let now = self.clock.now();
        if let Some(t) = state.next_attempt.filter(|t| *t > now) {
            return Ok(Some(t));
        }
        let upto = match state.digest_upto {
            Some(u) => u,
            None => {
                let last_at = *state.digest_at.get_or_insert(now);
                match schedule.next_after(last_at) {
                    Some(due) if due > now => return Ok(Some(due)),
                    None => return Ok(None),
                    Some(_) => {}
                }
                let u = self.store.last_event_id().await?;
                state.digest_upto = Some(u);
                u
            }
        };
        let mut events: Vec<Event> = Vec::new();
        let mut after = state.cursor;
        'read: loop {
            let page = self.store.events_after(after, PAGE).await?;
            if page.is_empty() {
                break;
            }
            for ev in page {
                if ev.id > upto {
                    break 'read;
                }
                after = ev.id;
                if matches(&ch.cfg.filter, &ev) {
                    events.push(ev);
                }
            }
        }
        if !events.is_empty() {
            let d = Delivery::digest(&ch.cfg.name, events, upto);
            if let Some(retry) = self.attempt(ch, transport, &d, upto, state, token).await? {
                return Ok(Some(retry));
            }
        }
        state.cursor = state.cursor.max(upto);
        state.digest_upto = None;
        state.digest_at = Some(self.clock.now());
        Ok(state.digest_at.and_then(|t| schedule.next_after(t)))
    }

    /// Sends `d` (covering the events up to `upto`) and records the outcome in `state`;
    /// returns when to try again if it failed.
    async fn attempt(
        &self,
        ch: &Channel,
        transport: &Arc<dyn Transport>,
        d: &Delivery,
        upto: EventId,
        state: &mut ChannelState,
        token: &CancellationToken,
    ) -> Result<Option<DateTime<Utc>>, Stop> {
        let sent = tokio::select! {
            r = transport.send(d, self.clock.now()) => r,
            _ = token.cancelled() => return Err(Stop::Cancelled),
        };
        let now = self.clock.now();
        let name = &ch.cfg.name;
        let outcome = match sent {
            Ok(answer) => {
                tracing::debug!(channel = %name, delivery = %d.id, "delivered ({})", answer.status);
                state.delivered(upto, now);
                Outcome::Ok
            }
            Err(SendError::Refused(why)) => {
                tracing::warn!(
                    channel = %name,
                    delivery = %d.id,
                    "notification {} to {name} refused for good, skipped: {why}",
                    d.id
                );
                state.refused(upto, &d.id, why, now);
                Outcome::Refused
            }
            Err(SendError::Retry(why)) => {
                let backoff = Backoff { initial: ch.cfg.retry_initial, max: ch.cfg.retry_max };
                state.failed(why.clone(), now, backoff, rand::random::<f64>());
                let at = state.next_attempt.unwrap_or(now);
                tracing::warn!(
                    channel = %name,
                    delivery = %d.id,
                    attempts = state.attempts,
                    "notification {} to {name} failed ({why}); next attempt at {}",
                    d.id,
                    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                );
                self.save(name, state).await?;
                self.observer.attempted(name, Outcome::Retry);
                return Ok(Some(at));
            }
        };
        // The cursor moved: keep it before the next send.
        self.save(name, state).await?;
        self.observer.attempted(name, outcome);
        Ok(None)
    }
}

/// Sleeps for `d`, or forever when `None`.
async fn sleep_for(d: Option<Duration>) {
    match d {
        Some(d) => tokio::time::sleep(d).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
#[path = "deliver_tests.rs"]
mod tests;
