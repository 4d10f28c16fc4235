//! The event log (`events_v1`): append-only, one entry per [`Event`] under its id. Ids count
//! up from 1 and are never reused: the next id lives in `meta` (`next_event_id`), so neither a
//! restart nor pruning the oldest entries brings an id back.
//!
//! Row events are appended by [`Store::replace_reconciliation`] in the same write transaction
//! as the rows that caused them (nothing lost, nothing doubled across a kill); the daemon's
//! observers append theirs with [`Store::append_events`] and [`Store::observe_source`], each
//! one transaction.
//!
//! Readers: [`Store::events_after`] (a consumer's cursor: every event with a larger id, in id
//! order), [`Store::events_between`] (the period report), [`Store::subscribe_events`] (woken
//! with the last id after every commit that appended). Pruning keeps events for the history
//! retention, and never one above the low-water mark once a consumer has set one
//! ([`Store::set_event_low_water`]: "everything up to this id is delivered").

use chrono::{DateTime, Utc};
use redb::{ReadableTable, TableDefinition, TableError, WriteTransaction};

use super::tables::{self, KV, META};
use super::{Inner, Store, StoreError};
use crate::events::sources::{Seen, SourcesState};
use crate::events::{Event, EventId};

/// id → encoded [`Event`].
pub(super) const EVENTS: TableDefinition<u64, &[u8]> = TableDefinition::new("events_v1");
/// `meta` key: the id the next appended event gets (absent: 1).
const KEY_NEXT_EVENT: &str = "next_event_id";
/// `meta` key: the consumer's low-water mark (absent: no consumer).
const KEY_LOW_WATER: &str = "events_low_water";
/// `kv_v1` key of the source state machine's state ([`SourcesState`]).
const KEY_SOURCES: &str = "events.sources";

/// Appends events one at a time in a write transaction, so a computation that raises many
/// (the first one after an upgrade) never holds them all: [`Appender::push`] each, then
/// [`Appender::finish`] records the next id.
pub(super) struct Appender<'t> {
    table: redb::Table<'t, u64, &'static [u8]>,
    first: u64,
    next: u64,
}

impl<'t> Appender<'t> {
    /// Opens the event log in `txn`.
    pub(super) fn open(inner: &Inner, txn: &'t WriteTransaction) -> Result<Self, StoreError> {
        let first = {
            let meta = txn.open_table(META).map_err(inner.err("open meta"))?;
            meta.get(KEY_NEXT_EVENT).map_err(inner.err("read meta"))?.map(|v| v.value())
        }
        .unwrap_or(1);
        let table = txn.open_table(EVENTS).map_err(inner.err("open the event log"))?;
        Ok(Appender { table, first, next: first })
    }

    /// Appends `ev` with the next id (written into it).
    pub(super) fn push(&mut self, inner: &Inner, ev: &mut Event) -> Result<(), StoreError> {
        ev.id = self.next;
        self.table
            .insert(self.next, tables::encode(ev).as_slice())
            .map_err(inner.err("append to the event log"))?;
        self.next += 1;
        Ok(())
    }

    /// Records the next id in `txn`; the last id given (`None` when nothing was appended).
    pub(super) fn finish(
        self,
        inner: &Inner,
        txn: &WriteTransaction,
    ) -> Result<Option<EventId>, StoreError> {
        let Appender { table, first, next } = self;
        drop(table);
        if next == first {
            return Ok(None);
        }
        let mut meta = txn.open_table(META).map_err(inner.err("open meta"))?;
        meta.insert(KEY_NEXT_EVENT, next).map_err(inner.err("write meta"))?;
        Ok(Some(next - 1))
    }
}

/// Appends `events` in `txn`, giving each the next id (written into the events). Returns the
/// last id given (`None` when `events` is empty).
pub(super) fn append_in(
    inner: &Inner,
    txn: &WriteTransaction,
    events: &mut [Event],
) -> Result<Option<EventId>, StoreError> {
    if events.is_empty() {
        return Ok(None);
    }
    let mut appender = Appender::open(inner, txn)?;
    for ev in events.iter_mut() {
        appender.push(inner, ev)?;
    }
    appender.finish(inner, txn)
}

/// The last id given out (0 before the first event), read in `txn`.
pub(super) fn last_id(inner: &Inner, txn: &redb::ReadTransaction) -> Result<EventId, StoreError> {
    let meta = txn.open_table(META).map_err(inner.err("open meta"))?;
    let next = meta.get(KEY_NEXT_EVENT).map_err(inner.err("read meta"))?.map(|v| v.value());
    Ok(next.unwrap_or(1) - 1)
}

/// Drops events recorded before `cutoff`, oldest first, stopping at the first one at or
/// above the low-water mark (when one is set). Returns how many went.
pub(super) fn prune_in(
    inner: &Inner,
    txn: &WriteTransaction,
    cutoff: DateTime<Utc>,
) -> Result<u64, StoreError> {
    let low_water = {
        let meta = txn.open_table(META).map_err(inner.err("open meta"))?;
        meta.get(KEY_LOW_WATER).map_err(inner.err("read meta"))?.map(|v| v.value())
    };
    let mut table = txn.open_table(EVENTS).map_err(inner.err("open the event log"))?;
    let mut drop = Vec::new();
    for item in table.iter().map_err(inner.err("read the event log"))? {
        let (k, v) = item.map_err(inner.err("read the event log"))?;
        let id = k.value();
        if low_water.is_some_and(|w| id > w) {
            break;
        }
        let ev: Event = tables::decode(&inner.path, "event", v.value())?;
        // Ids grow with time: everything after the first recent event is recent too.
        if ev.at >= cutoff {
            break;
        }
        drop.push(id);
    }
    for id in &drop {
        table.remove(*id).map_err(inner.err("drop an event"))?;
    }
    Ok(drop.len() as u64)
}

impl Store {
    /// Appends `events` in one transaction; returns them with their ids.
    pub async fn append_events(&self, mut events: Vec<Event>) -> Result<Vec<Event>, StoreError> {
        self.blocking("append to the event log", move |inner| {
            let txn = inner.write()?;
            let last = append_in(inner, &txn, &mut events)?;
            txn.commit().map_err(inner.err("commit to the event log"))?;
            inner.announce(last);
            Ok(events)
        })
        .await
    }

    /// Feeds what was seen of `source` to the source state machine (see
    /// [`crate::events::sources`]) and, in one transaction, keeps its new state and appends
    /// the event it raises, returned with its id.
    pub async fn observe_source(
        &self,
        source: &'static str,
        seen: Seen,
        threshold: std::time::Duration,
    ) -> Result<Option<Event>, StoreError> {
        self.blocking("record a source's state", move |inner| {
            let txn = inner.write()?;
            let mut kv = txn.open_table(KV).map_err(inner.err("open kv"))?;
            let mut state: SourcesState = match kv.get(KEY_SOURCES).map_err(inner.err("read kv"))? {
                Some(v) => tables::decode(&inner.path, "source state", v.value())?,
                None => SourcesState::default(),
            };
            let before = state.clone();
            let event = state.observe(source, seen, threshold);
            if state == before {
                return Ok(None);
            }
            kv.insert(KEY_SOURCES, tables::encode(&state).as_slice())
                .map_err(inner.err("write kv"))?;
            drop(kv);
            let mut events: Vec<Event> = event.into_iter().collect();
            let last = append_in(inner, &txn, &mut events)?;
            txn.commit().map_err(inner.err("commit a source's state"))?;
            inner.announce(last);
            Ok(events.pop())
        })
        .await
    }

    /// At most `limit` events with an id above `after`, in id order (`after = 0`: from the
    /// oldest kept).
    pub async fn events_after(
        &self,
        after: EventId,
        limit: usize,
    ) -> Result<Vec<Event>, StoreError> {
        self.blocking("read the event log", move |inner| {
            let txn = inner.read()?;
            let table = match txn.open_table(EVENTS) {
                Ok(t) => t,
                Err(TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
                Err(e) => return Err(StoreError::db("open the event log", inner.path.clone(), e)),
            };
            let mut out = Vec::new();
            let range =
                table.range(after.saturating_add(1)..).map_err(inner.err("read the event log"))?;
            for item in range.take(limit) {
                let (_, v) = item.map_err(inner.err("read the event log"))?;
                out.push(tables::decode(&inner.path, "event", v.value())?);
            }
            Ok(out)
        })
        .await
    }

    /// Every event recorded at or after `since` and before `until`, in id order, and when the
    /// oldest event still kept was recorded (`None`: the log is empty).
    pub async fn events_between(
        &self,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<(Vec<Event>, Option<DateTime<Utc>>), StoreError> {
        self.blocking("read the event log", move |inner| {
            let txn = inner.read()?;
            let table = match txn.open_table(EVENTS) {
                Ok(t) => t,
                Err(TableError::TableDoesNotExist(_)) => return Ok((Vec::new(), None)),
                Err(e) => return Err(StoreError::db("open the event log", inner.path.clone(), e)),
            };
            let mut out = Vec::new();
            let mut oldest = None;
            for item in table.iter().map_err(inner.err("read the event log"))? {
                let (_, v) = item.map_err(inner.err("read the event log"))?;
                let ev: Event = tables::decode(&inner.path, "event", v.value())?;
                oldest.get_or_insert(ev.at);
                if ev.at >= until {
                    break;
                }
                if ev.at >= since {
                    out.push(ev);
                }
            }
            Ok((out, oldest))
        })
        .await
    }

    /// The last id given out (0 before the first event).
    pub async fn last_event_id(&self) -> Result<EventId, StoreError> {
        self.blocking("read the event log", |inner| {
            let txn = inner.read()?;
            last_id(inner, &txn)
        })
        .await
    }

    /// The consumer's low-water mark: every event up to it is delivered (`None`: no consumer
    /// has set one, and pruning goes by age alone).
    pub async fn event_low_water(&self) -> Result<Option<EventId>, StoreError> {
        self.blocking("read the event log", |inner| {
            let txn = inner.read()?;
            let meta = txn.open_table(META).map_err(inner.err("open meta"))?;
            Ok(meta.get(KEY_LOW_WATER).map_err(inner.err("read meta"))?.map(|v| v.value()))
        })
        .await
    }

    /// Sets the low-water mark (owned by the notifier: the lowest id any channel still has
    /// to deliver, minus one). Pruning never drops an event above it. It only moves forward:
    /// a lower `id` than the current mark is ignored.
    pub async fn set_event_low_water(&self, id: EventId) -> Result<(), StoreError> {
        self.blocking("write the event log's low-water mark", move |inner| {
            let txn = inner.write()?;
            {
                let mut meta = txn.open_table(META).map_err(inner.err("open meta"))?;
                let current =
                    meta.get(KEY_LOW_WATER).map_err(inner.err("read meta"))?.map(|v| v.value());
                if current.is_some_and(|c| c >= id) {
                    return Ok(());
                }
                meta.insert(KEY_LOW_WATER, id).map_err(inner.err("write meta"))?;
            }
            txn.commit().map_err(inner.err("commit the low-water mark"))
        })
        .await
    }

    /// A receiver of the last event id, updated after every commit that appended events (the
    /// notifier waits on it instead of polling).
    pub fn subscribe_events(&self) -> tokio::sync::watch::Receiver<EventId> {
        self.inner.events.subscribe()
    }
}

impl Inner {
    /// Tells [`Store::subscribe_events`]'s receivers that events up to `last` are committed.
    pub(super) fn announce(&self, last: Option<EventId>) {
        if let Some(last) = last {
            self.events.send_if_modified(|v| {
                let newer = last > *v;
                if newer {
                    *v = last;
                }
                newer
            });
        }
    }
}

#[cfg(test)]
#[path = "events_tests.rs"]
mod tests;
