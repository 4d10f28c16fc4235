//! The latest reconciliation, kept row by row so nothing has to hold it whole: at 10,000
//! customers it is tens of thousands of rows and megabytes of evidence.
//!
//! - `reconciliation_rows_v2`: one row per key (see [`row_key`]: service rows by (account,
//!   PSA product), then unmapped customers, then unmapped products), without its evidence.
//!   Each value starts with the row's status byte so a status filter skips the decoding.
//! - `reconciliation_evidence_v2`: each row's evidence under the same key, read only when a
//!   caller asks for it (`?evidence=true`, the planner).
//! - `reconciliation_meta_v2`: the head (when, which runs, the summary of every row) and the
//!   customers' mapping states, apart from the rows.
//!
//! A recomputation ([`Store::replace_reconciliation`]) runs the pure engine row by row inside
//! ONE write transaction: each row's previous state (`since`, debounce memory) is read from
//! the table as the engine reaches its key, the new row is written only when it changed, and
//! rows that no longer exist are removed before the commit. Readers see the old result or the
//! new one, never a mix.
//!
//! Nothing in a stored row names the latest vendor or billing run, so a row whose content did
//! not change compares equal and is not rewritten (at 10,000 customers a recompute after an
//! unchanged vendor run writes nothing but the head): the evidence's run ids are filled in
//! from the head when read, and a row's debounce memory, when it counts up to the latest
//! vendor run, is kept as the ordinal of the vendor run its streak started in ([`Base`]).
//!
//! Stores from before this layout kept the whole reconciliation as one value in
//! `reconciliation_v1`; opening such a store moves it into these tables (it is derived data:
//! a lost or unreadable one is simply recomputed from the stored snapshots).

use std::cell::RefCell;
use std::collections::HashSet;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use redb::{ReadableTable, ReadableTableMetadata, TableDefinition, TableError, WriteTransaction};

use super::tables;
use super::{Inner, Store, StoreError};
use crate::model::RunId;
use crate::reconcile::{
    CustomerMapping, Evidence, Filter, Observation, Prior, Reconciliation, ReconciliationHead, Row,
    RowKey, Status,
};

/// key (see [`row_key`]) → status byte + encoded [`Row`] without its evidence.
pub(super) const ROWS: TableDefinition<&[u8], &[u8]> =
    TableDefinition::new("reconciliation_rows_v2");
/// key → encoded [`Evidence`].
pub(super) const EVIDENCE: TableDefinition<&[u8], &[u8]> =
    TableDefinition::new("reconciliation_evidence_v2");
/// [`HEAD`] and [`CUSTOMERS`] → encoded values.
pub(super) const META: TableDefinition<&str, &[u8]> =
    TableDefinition::new("reconciliation_meta_v2");
/// The whole reconciliation as one value (stores written before the rows had a table).
pub(super) const OLD: TableDefinition<&str, &[u8]> = TableDefinition::new("reconciliation_v1");

/// The meta key of the [`ReconciliationHead`].
const HEAD: &str = "head";
/// The meta key of the customers' mapping states.
const CUSTOMERS: &str = "customers";
/// The meta key of the [`Base`] the stored rows are relative to.
const BASE: &str = "base";

/// What the stored rows leave out because it changes with every run: the runs the
/// reconciliation used, and the ordinal of its vendor run among the vendor runs reconciled so
/// far (it grows by one each time a recomputation sees a new vendor run). A row seen in `n`
/// consecutive vendor runs up to the latest is stored with `live_from = seq - n + 1`, the
/// same value run after run.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
struct Base {
    vendor_run: Option<RunId>,
    billing_run: Option<RunId>,
    seq: i64,
    /// When the reconciliation was computed: what a row's `accrued` is shown as of.
    #[serde(default)]
    computed_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl Base {
    /// The base of a recomputation using `vendor_run` and `billing_run` after `prev`.
    fn next(prev: Base, vendor_run: Option<RunId>, billing_run: Option<RunId>) -> Base {
        let seq = if prev.vendor_run == vendor_run { prev.seq } else { prev.seq + 1 };
        Base { vendor_run, billing_run, seq, computed_at: None }
    }

    /// The seen count of a streak stored as `live_from`.
    fn seen(&self, live_from: i64) -> u32 {
        u32::try_from((self.seq - live_from + 1).max(0)).unwrap_or(u32::MAX)
    }

    /// Fills in what [`Base::strip`] left out of `row` (stored with `live_from`).
    fn restore(&self, row: &mut Row, live_from: Option<i64>) {
        if let Some(from) = live_from {
            self.restore_observed(&mut row.observed, Some(from));
            row.seen_runs = row.observed.seen_runs;
        }
        if let Some(at) = self.computed_at {
            (row.accrued, row.excluded_seconds) = crate::reconcile::episode::shown(
                row.status,
                row.monthly_impact,
                row.episode.as_ref(),
                at,
            );
        }
    }

    fn restore_observed(&self, observed: &mut Observation, live_from: Option<i64>) {
        if let Some(from) = live_from {
            observed.seen_runs = self.seen(from);
            observed.vendor_run = self.vendor_run;
        }
    }

    /// Fills in the run ids of evidence stored without them.
    fn restore_evidence(&self, key: &[u8], e: &mut Evidence) {
        if e.vendor_run.is_none() {
            e.vendor_run = self.vendor_run;
        }
        // Only service rows (key tag 0) compare billed lines.
        if e.billing_run.is_none() && key.first() == Some(&0) {
            e.billing_run = self.billing_run;
        }
    }

    /// Takes what changes with every run out of `row`: a debounce memory counting up to this
    /// base's vendor run becomes its `live_from`, returned.
    fn strip(&self, row: &mut Row) -> Option<i64> {
        let o = &mut row.observed;
        if o.vendor_run.is_none() || o.vendor_run != self.vendor_run || row.seen_runs != o.seen_runs
        {
            return None;
        }
        let from = self.seq - i64::from(o.seen_runs) + 1;
        o.vendor_run = None;
        o.seen_runs = 0;
        row.seen_runs = 0;
        Some(from)
    }
}

/// A row as stored: the row (without its evidence) and, when its debounce memory counts up to
/// the base's vendor run, where that streak started.
#[derive(serde::Serialize)]
struct StoredOut<'a> {
    #[serde(flatten)]
    row: &'a Row,
    #[serde(skip_serializing_if = "Option::is_none")]
    live_from: Option<i64>,
}

/// The `live_from` of a stored row, read on its own (a second pass over the value that skips
/// every other field: cheaper than buffering the row to flatten it).
#[derive(serde::Deserialize)]
struct LiveFrom {
    #[serde(default)]
    live_from: Option<i64>,
}

/// Reads a [`StoredOut`] back, as a whole row or only its [`Prior`] (both ignore
/// `live_from`), with its `live_from`.
fn decode_stored<T: serde::de::DeserializeOwned>(
    path: &std::path::Path,
    bytes: &[u8],
) -> Result<(T, Option<i64>), StoreError> {
    let row: T = tables::decode(path, "reconciliation row", bytes)?;
    let live: LiveFrom = tables::decode(path, "reconciliation row", bytes)?;
    Ok((row, live.live_from))
}

/// A row's key in the tables: byte order is the engine's row order (services by account
/// then PSA product, unmapped customers by id, unmapped products by name).
pub(crate) fn row_key(key: &RowKey) -> Vec<u8> {
    match key {
        RowKey::Service { account, psa_product } => {
            let mut k = Vec::with_capacity(2 + account.len() + psa_product.len());
            k.push(0);
            k.extend_from_slice(account.as_bytes());
            k.push(0);
            k.extend_from_slice(psa_product.as_bytes());
            k
        }
        RowKey::UnmappedCustomer { customer } => {
            let mut k = vec![1];
            k.extend_from_slice(&customer.to_be_bytes());
            k
        }
        RowKey::UnmappedProduct { product } => {
            let mut k = vec![2];
            k.extend_from_slice(product.as_bytes());
            k
        }
    }
}

fn status_byte(s: Status) -> u8 {
    Status::ALL.iter().position(|x| *x == s).unwrap_or(0) as u8
}

fn status_of_byte(b: u8) -> Option<Status> {
    Status::ALL.get(usize::from(b)).copied()
}

/// Where a page of rows ends: the last row's key, handed to clients as an opaque string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor(Vec<u8>);

/// A `cursor` that no answer handed out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "cursor {given:?} is not one this server gave out; use the next_cursor of the previous \
     answer, or leave cursor out to start from the first row"
)]
pub struct BadCursor {
    /// The value given.
    pub given: String,
}

impl Cursor {
    /// Reads a cursor handed out by [`Cursor::encode`].
    pub fn parse(s: &str) -> Result<Cursor, BadCursor> {
        let bad = || BadCursor { given: s.chars().take(80).collect() };
        let s = s.trim();
        if s.is_empty() || !s.len().is_multiple_of(2) {
            return Err(bad());
        }
        (0..s.len())
            .step_by(2)
            .map(|i| s.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
            .collect::<Option<Vec<u8>>>()
            .map(Cursor)
            .ok_or_else(bad)
    }

    /// The cursor of the page that starts after `row`.
    pub fn after_row(row: &Row) -> Cursor {
        Cursor(row_key(&row.key))
    }

    /// The opaque text form.
    pub fn encode(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// One page of rows.
#[derive(Debug, Clone, PartialEq)]
pub struct RowPage {
    /// The rows, in key order.
    pub rows: Vec<Row>,
    /// Where the next page starts; `None` on the last page.
    pub next: Option<Cursor>,
}

/// What a computation hands back: the head and the customers' mapping states.
pub type Computed = (ReconciliationHead, Vec<CustomerMapping>);

impl Store {
    /// Replaces the stored reconciliation with `rec` in one transaction (tests, migration;
    /// the daemon uses [`Store::replace_reconciliation`]).
    pub async fn save_reconciliation(&self, rec: &Reconciliation) -> Result<(), StoreError> {
        let rec = rec.clone();
        self.replace_reconciliation(rec.vendor_run, rec.computed_at, move |_, sink| {
            let computed = (rec.head(), rec.customers);
            for row in rec.rows {
                sink(row);
            }
            computed
        })
        .await
        .map(|_| ())
    }

    /// Replaces the stored reconciliation with what `compute` produces, in one write
    /// transaction on the blocking pool: `compute` gets the previous row of a key (`prior`)
    /// and hands each new row to `sink` as soon as it is finished (see
    /// `reconcile::compute_each`). Unchanged rows are not rewritten; rows not produced are
    /// removed. `vendor_run` is the vendor run the computation uses (the head's `vendor_run`),
    /// `now` its time (the head's `computed_at`). The events of the rows' transitions (see
    /// [`crate::events::rows`]) are appended to the event log in the same transaction.
    /// Returns the new head, which readers get from then on.
    pub async fn replace_reconciliation<F>(
        &self,
        vendor_run: Option<RunId>,
        now: DateTime<Utc>,
        compute: F,
    ) -> Result<Arc<ReconciliationHead>, StoreError>
    where
        F: FnOnce(&mut dyn FnMut(&RowKey) -> Option<Prior>, &mut dyn FnMut(Row)) -> Computed
            + Send
            + 'static,
    {
        self.blocking("save the reconciliation", move |inner| {
            let txn = inner.write()?;
            let (head, last_event) = write_all(inner, &txn, vendor_run, now, compute)?;
            txn.commit().map_err(inner.err("commit the reconciliation"))?;
            inner.announce(last_event);
            let head = Arc::new(head);
            *inner.reconciliation_head.lock().unwrap_or_else(|e| e.into_inner()) =
                Some(head.clone());
            Ok(head)
        })
        .await
    }

    /// The head of the latest reconciliation (when, which runs, the summary); `None` before
    /// the first one was saved. Kept in memory: health, metrics and every page read it.
    pub async fn reconciliation_head(&self) -> Result<Option<Arc<ReconciliationHead>>, StoreError> {
        self.blocking("read the reconciliation", |inner| {
            let cache = &inner.reconciliation_head;
            if let Some(head) = cache.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
                return Ok(Some(head.clone()));
            }
            let txn = inner.read()?;
            let Some(head) = read_meta::<ReconciliationHead>(inner, &txn, HEAD)? else {
                return Ok(None);
            };
            // Only into an empty cache: a save that committed meanwhile holds the newer head.
            let mut cached = cache.lock().unwrap_or_else(|e| e.into_inner());
            Ok(Some(cached.get_or_insert_with(|| Arc::new(head)).clone()))
        })
        .await
    }

    /// Every vendor customer's mapping state in the latest reconciliation (empty before the
    /// first one). Read from the store on each call.
    pub async fn reconciliation_customers(&self) -> Result<Vec<CustomerMapping>, StoreError> {
        self.blocking("read the customers' mapping states", |inner| {
            let txn = inner.read()?;
            Ok(read_meta(inner, &txn, CUSTOMERS)?.unwrap_or_default())
        })
        .await
    }

    /// At most `limit` rows passing `filter`, after the row `after` (from the start when
    /// `None`), with their evidence when `evidence`.
    pub async fn reconciliation_page(
        &self,
        filter: Filter,
        after: Option<Cursor>,
        limit: usize,
        evidence: bool,
    ) -> Result<RowPage, StoreError> {
        let store = self.clone();
        self.blocking("read reconciliation rows", move |_| {
            let mut rows = Vec::new();
            let mut next = None;
            let limit = limit.max(1);
            store.each_reconciliation_row(&filter, after.as_ref(), evidence, &mut |row| {
                if rows.len() == limit {
                    next = rows.last().map(|r: &Row| Cursor(row_key(&r.key)));
                    return false;
                }
                rows.push(row);
                true
            })?;
            Ok(RowPage { rows, next })
        })
        .await
    }

    /// Every row passing `filter`, with evidence when `evidence` (the planner asks for the
    /// discrepancies only, so it never holds the other rows).
    pub async fn reconciliation_rows(
        &self,
        filter: Filter,
        evidence: bool,
    ) -> Result<Vec<Row>, StoreError> {
        let store = self.clone();
        self.blocking("read reconciliation rows", move |_| {
            let mut rows = Vec::new();
            store.each_reconciliation_row(&filter, None, evidence, &mut |row| {
                rows.push(row);
                true
            })?;
            Ok(rows)
        })
        .await
    }

    /// Hands each row passing `filter` (after `after`, in key order; with its evidence when
    /// `evidence`) to `f` until `f` returns false, from one read transaction, without holding
    /// more than one row. BLOCKING: for streaming answers on the blocking pool.
    pub fn each_reconciliation_row(
        &self,
        filter: &Filter,
        after: Option<&Cursor>,
        evidence: bool,
        f: &mut dyn FnMut(Row) -> bool,
    ) -> Result<(), StoreError> {
        let inner = &*self.inner;
        let txn = inner.read()?;
        let rows = match txn.open_table(ROWS) {
            Ok(t) => t,
            Err(TableError::TableDoesNotExist(_)) => return Ok(()),
            Err(e) => {
                return Err(StoreError::db("open the reconciliation rows", inner.path.clone(), e));
            }
        };
        let base = read_meta::<Base>(inner, &txn, BASE)?.unwrap_or_default();
        let evidence_table = if evidence {
            Some(txn.open_table(EVIDENCE).map_err(inner.err("open the reconciliation evidence"))?)
        } else {
            None
        };
        let range = match after {
            Some(c) => rows.range::<&[u8]>((
                std::ops::Bound::Excluded(c.0.as_slice()),
                std::ops::Bound::Unbounded,
            )),
            None => rows.range::<&[u8]>(..),
        }
        .map_err(inner.err("read the reconciliation rows"))?;
        for entry in range {
            let (k, v) = entry.map_err(inner.err("read the reconciliation rows"))?;
            let value = v.value();
            let Some((&status, encoded)) = value.split_first() else { continue };
            if !filter.statuses.is_empty()
                && !status_of_byte(status).is_some_and(|s| filter.statuses.contains(&s))
            {
                continue;
            }
            let (mut row, live_from) = decode_stored::<Row>(&inner.path, encoded)?;
            base.restore(&mut row, live_from);
            if !filter.matches(&row) {
                continue;
            }
            if let Some(table) = &evidence_table
                && let Some(e) =
                    table.get(k.value()).map_err(inner.err("read the reconciliation evidence"))?
            {
                row.evidence = tables::decode(&inner.path, "reconciliation evidence", e.value())?;
                base.restore_evidence(k.value(), &mut row.evidence);
            }
            if !f(row) {
                break;
            }
        }
        Ok(())
    }

    /// The latest reconciliation whole, rows with evidence (`mpsync check`, tests); `None`
    /// before the first one. The daemon's readers page instead.
    pub async fn latest_reconciliation(&self) -> Result<Option<Reconciliation>, StoreError> {
        let Some(head) = self.reconciliation_head().await? else { return Ok(None) };
        let rows = self.reconciliation_rows(Filter::default(), true).await?;
        let customers = self.reconciliation_customers().await?;
        let head = ReconciliationHead::clone(&head);
        Ok(Some(Reconciliation {
            computed_at: head.computed_at,
            vendor_run: head.vendor_run,
            billing_run: head.billing_run,
            rows,
            summary: head.summary,
            customers,
        }))
    }
}

/// Reads one meta value; `None` when the table or the key does not exist yet.
fn read_meta<T: serde::de::DeserializeOwned>(
    inner: &Inner,
    txn: &redb::ReadTransaction,
    key: &str,
) -> Result<Option<T>, StoreError> {
    let table = match txn.open_table(META) {
        Ok(t) => t,
        Err(TableError::TableDoesNotExist(_)) => return Ok(None),
        Err(e) => {
            return Err(StoreError::db("open the reconciliation table", inner.path.clone(), e));
        }
    };
    let Some(value) = table.get(key).map_err(inner.err("read the reconciliation"))? else {
        return Ok(None);
    };
    tables::decode(&inner.path, "reconciliation", value.value()).map(Some)
}

/// Runs `compute` against the tables in `txn`: see [`Store::replace_reconciliation`].
fn write_all<F>(
    inner: &Inner,
    txn: &WriteTransaction,
    vendor_run: Option<RunId>,
    now: DateTime<Utc>,
    compute: F,
) -> Result<(ReconciliationHead, Option<crate::events::EventId>), StoreError>
where
    F: FnOnce(&mut dyn FnMut(&RowKey) -> Option<Prior>, &mut dyn FnMut(Row)) -> Computed,
{
    let rows =
        RefCell::new(txn.open_table(ROWS).map_err(inner.err("open the reconciliation rows"))?);
    let mut evidence =
        txn.open_table(EVIDENCE).map_err(inner.err("open the reconciliation evidence"))?;
    let mut seen: HashSet<Vec<u8>> = HashSet::new();
    let mut failed: Option<StoreError> = None;
    let prev_base = {
        let meta = txn.open_table(META).map_err(inner.err("open the reconciliation table"))?;
        match meta.get(BASE).map_err(inner.err("read the reconciliation"))? {
            Some(v) => tables::decode::<Base>(&inner.path, "reconciliation", v.value())?,
            None => Base::default(),
        }
    };
    let base = Base::next(prev_base, vendor_run, None);
    let read_prior = |key: &RowKey| -> Option<Prior> {
        let rows = rows.borrow();
        let value = rows.get(row_key(key).as_slice()).ok()??;
        // An unreadable previous row only loses its `since` and debounce memory.
        let (mut prior, live_from) =
            decode_stored::<Prior>(&inner.path, value.value().get(1..)?).ok()?;
        prev_base.restore_observed(&mut prior.observed, live_from);
        Some(prior)
    };
    let mut prior = read_prior;
    let mut events = super::events::Appender::open(inner, txn)?;
    let mut sink = |mut row: Row| {
        if failed.is_some() {
            return;
        }
        let k = row_key(&row.key);
        // Every transition changes the stored row (its episode or status), so only a changed
        // row is looked at for one.
        let mut transition = |row: &Row, old: Option<&[u8]>| -> Result<(), StoreError> {
            let prior = match old.and_then(|v| v.get(1..)) {
                Some(bytes) => Some(decode_stored::<Prior>(&inner.path, bytes)?.0),
                None => None,
            };
            let mut applied_err = None;
            let mut applied = |key: &RowKey, since: DateTime<Utc>| match key {
                RowKey::Service { account, psa_product } => {
                    super::writeback::applied_since(inner, txn, account, psa_product, since)
                        .unwrap_or_else(|e| {
                            applied_err = Some(e);
                            false
                        })
                }
                _ => false,
            };
            let event = crate::events::rows::transition(prior.as_ref(), row, now, &mut applied);
            if let Some(e) = applied_err {
                return Err(e);
            }
            match event {
                Some(mut ev) => events.push(inner, &mut ev),
                None => Ok(()),
            }
        };
        let result = (|| -> Result<(), StoreError> {
            let mut rows = rows.borrow_mut();
            let (value, ev) = encode_row(&base, &mut row);
            let same = {
                let old = rows.get(k.as_slice()).map_err(inner.err("read a reconciliation row"))?;
                let old = old.as_ref().map(|v| v.value());
                let same = old == Some(value.as_slice());
                if !same {
                    transition(&row, old)?;
                }
                same
            };
            if !same {
                rows.insert(k.as_slice(), value.as_slice())
                    .map_err(inner.err("write a reconciliation row"))?;
            }
            let same = evidence
                .get(k.as_slice())
                .map_err(inner.err("read a row's evidence"))?
                .is_some_and(|old| old.value() == ev.as_slice());
            if !same {
                evidence
                    .insert(k.as_slice(), ev.as_slice())
                    .map_err(inner.err("write a row's evidence"))?;
            }
            Ok(())
        })();
        match result {
            Ok(()) => {
                seen.insert(k);
            }
            Err(e) => failed = Some(e),
        }
    };
    let (head, customers) = compute(&mut prior, &mut sink);
    if let Some(e) = failed {
        return Err(e);
    }
    let mut rows = rows.into_inner();
    let gone = |k: &[u8]| !seen.contains(k);
    let mut gone_rows: Vec<Vec<u8>> = Vec::new();
    rows.retain(|k, v| {
        if gone(k) {
            gone_rows.push(v.to_vec());
        }
        !gone(k)
    })
    .map_err(inner.err("remove old reconciliation rows"))?;
    for value in gone_rows {
        // A gone row's last episode is settled as of the last computation that saw it.
        let Some(bytes) = value.get(1..) else { continue };
        let Ok((old, _)) = decode_stored::<Row>(&inner.path, bytes) else { continue };
        let seen_at = prev_base.computed_at.unwrap_or(now);
        if let Some(mut ev) = crate::events::rows::gone(&old, seen_at, now) {
            events.push(inner, &mut ev)?;
        }
    }
    evidence.retain(|k, _| !gone(k)).map_err(inner.err("remove old evidence"))?;
    let mut meta = txn.open_table(META).map_err(inner.err("open the reconciliation table"))?;
    meta.insert(HEAD, tables::encode(&head).as_slice())
        .map_err(inner.err("write the reconciliation summary"))?;
    let base = Base { billing_run: head.billing_run, computed_at: Some(head.computed_at), ..base };
    meta.insert(BASE, tables::encode(&base).as_slice())
        .map_err(inner.err("write the reconciliation summary"))?;
    meta.insert(CUSTOMERS, tables::encode(&customers).as_slice())
        .map_err(inner.err("write the customers' mapping states"))?;
    drop(meta);
    let last_event = events.finish(inner, txn)?;
    Ok((head, last_event))
}

/// The stored value of `row` (status byte, then the row without its evidence and with its
/// per-run fields taken out against `base`) and of its evidence (without run ids).
fn encode_row(base: &Base, row: &mut Row) -> (Vec<u8>, Vec<u8>) {
    let mut ev = std::mem::take(&mut row.evidence);
    ev.vendor_run = None;
    ev.billing_run = None;
    let live_from = base.strip(row);
    // Derived from the episode at read time: storing them would rewrite every open
    // discrepancy at every computation.
    row.accrued = None;
    row.excluded_seconds = None;
    let mut value = vec![status_byte(row.status)];
    value.extend_from_slice(&tables::encode(&StoredOut { row, live_from }));
    (value, tables::encode(&ev))
}

/// Moves a reconciliation kept whole by an older mpsync (`reconciliation_v1`) into the row
/// tables, in `txn` at open. A value this build cannot read is dropped: it is derived data,
/// and the daemon recomputes it from the stored snapshots at start.
fn migrate(inner_path: &std::path::Path, txn: &WriteTransaction) -> Result<(), StoreError> {
    let err = |action: &'static str| {
        move |e: redb::Error| StoreError::db(action, inner_path.to_path_buf(), e)
    };
    let old: Option<Vec<u8>> = match txn.open_table(OLD) {
        Ok(t) => {
            if t.len().map_err(|e| err("read the old reconciliation")(e.into()))? == 0 {
                None
            } else {
                t.get("latest")
                    .map_err(|e| err("read the old reconciliation")(e.into()))?
                    .map(|v| v.value().to_vec())
            }
        }
        Err(TableError::TableDoesNotExist(_)) => return Ok(()),
        Err(e) => return Err(err("open the old reconciliation")(e.into())),
    };
    let old = old.and_then(|bytes| {
        tables::decode::<Reconciliation>(inner_path, "reconciliation", &bytes)
            .inspect_err(|e| {
                tracing::warn!("the stored reconciliation is dropped and will be recomputed: {e}")
            })
            .ok()
    });
    if let Some(rec) = old {
        write_rows_at_open(inner_path, txn, rec)?;
    }
    txn.delete_table(OLD).map_err(|e| err("remove the old reconciliation")(e.into()))?;
    Ok(())
}

/// [`migrate`] as the schema step 1 → 2 (`store/mod.rs`).
pub(crate) fn migrate_step(
    txn: &WriteTransaction,
    path: &std::path::Path,
) -> Result<(), StoreError> {
    migrate(path, txn)
}

/// [`write_all`] for [`migrate`], which runs before the store handle exists.
fn write_rows_at_open(
    path: &std::path::Path,
    txn: &WriteTransaction,
    rec: Reconciliation,
) -> Result<(), StoreError> {
    let err =
        |action: &'static str| move |e: redb::Error| StoreError::db(action, path.to_path_buf(), e);
    let mut rows =
        txn.open_table(ROWS).map_err(|e| err("open the reconciliation rows")(e.into()))?;
    let mut evidence =
        txn.open_table(EVIDENCE).map_err(|e| err("open the reconciliation evidence")(e.into()))?;
    let head = rec.head();
    let base = Base {
        computed_at: Some(head.computed_at),
        ..Base::next(Base::default(), head.vendor_run, head.billing_run)
    };
    for mut row in rec.rows {
        let k = row_key(&row.key);
        let (value, ev) = encode_row(&base, &mut row);
        rows.insert(k.as_slice(), value.as_slice())
            .map_err(|e| err("write a reconciliation row")(e.into()))?;
        evidence
            .insert(k.as_slice(), ev.as_slice())
            .map_err(|e| err("write a row's evidence")(e.into()))?;
    }
    let mut meta =
        txn.open_table(META).map_err(|e| err("open the reconciliation table")(e.into()))?;
    meta.insert(BASE, tables::encode(&base).as_slice())
        .map_err(|e| err("write the reconciliation summary")(e.into()))?;
    meta.insert(HEAD, tables::encode(&head).as_slice())
        .map_err(|e| err("write the reconciliation summary")(e.into()))?;
    meta.insert(CUSTOMERS, tables::encode(&rec.customers).as_slice())
        .map_err(|e| err("write the customers' mapping states")(e.into()))?;
    Ok(())
}

#[cfg(test)]
#[path = "accrual_tests.rs"]
mod accrual_tests;

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use chrono::{DateTime, TimeZone, Utc};

    use super::*;
    use crate::config::Mapping;
    use crate::model::{Account, BilledLine, BilledSnapshot, CustomerUsage, UsageSnapshot};
    use crate::reconcile::{Inputs, Settings, SourceStatus, compute, compute_each};

    pub(crate) const MAPPING: &str = r#"
[customers]
1 = "A1"
2 = "A2"
3 = "A3"
[products.CloudFilter]
psa_product = "MP-CF"
"#;

    pub(crate) fn at(hour: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 27, hour, 0, 0).unwrap()
    }

    /// Customers 1..=3 (mapped) and 4 (unmapped) with these CloudFilter counts.
    pub(crate) fn usage(run: RunId, hour: u32, counts: [u64; 4]) -> UsageSnapshot {
        let customers = (1..=4u64)
            .map(|id| CustomerUsage {
                id,
                name: format!("Customer {id}"),
                counts: BTreeMap::from([("CloudFilter".to_string(), counts[id as usize - 1])]),
            })
            .collect();
        UsageSnapshot { run_id: run, observed_at: at(hour), customers }
    }

    pub(crate) fn billed(run: RunId, hour: u32) -> BilledSnapshot {
        let line = |account: &str, qty: f64| BilledLine {
            account_id: account.into(),
            product_id: "MP-CF".into(),
            quantity: qty,
            unit_price: Some(2.0),
            counted: true,
            note: None,
            source_ref: format!("{account}/MP-CF"),
            line: None,
        };
        BilledSnapshot {
            run_id: run,
            observed_at: at(hour),
            accounts: ["A1", "A2", "A3"]
                .iter()
                .map(|id| Account { id: id.to_string(), name: format!("Account {id}") })
                .collect(),
            lines: vec![line("A1", 10.0), line("A2", 10.0), line("A3", 10.0)],
        }
    }

    pub(crate) fn inputs<'a>(
        u: &'a UsageSnapshot,
        b: &'a BilledSnapshot,
        m: &'a Mapping,
        hour: u32,
        previous: Option<&'a Reconciliation>,
    ) -> Inputs<'a> {
        Inputs {
            usage: Some(u),
            vendor: SourceStatus::default(),
            billed: Some(b),
            billing: SourceStatus::default(),
            mapping: m,
            settings: Settings { max_age: Duration::from_secs(2 * 3600), debounce_runs: 2 },
            now: at(hour),
            previous_at: None,
            previous,
        }
    }

    /// Every stored row and evidence value, raw.
    pub(crate) fn raw(store: &Store) -> Vec<(Vec<u8>, Vec<u8>)> {
        let inner = &*store.inner;
        let txn = inner.read().unwrap();
        let mut out = Vec::new();
        for def in [ROWS, EVIDENCE] {
            let table = txn.open_table(def).unwrap();
            for entry in table.iter().unwrap() {
                let (k, v) = entry.unwrap();
                out.push((k.value().to_vec(), v.value().to_vec()));
            }
        }
        out
    }

    #[tokio::test]
    async fn unchanged_rows_are_not_rewritten_yet_read_back_as_the_engine_computes_them() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let m = Mapping::parse(std::path::Path::new("mapping.toml"), MAPPING).unwrap();
        let b1 = billed(2, 9);
        let b2 = billed(5, 11);
        // (vendor snapshot, billed snapshot, hour): a first run with discrepancies (pending at
        // debounce 2), the same counts again (raised), a billing-only recompute, unchanged
        // counts once more, then a change of one customer.
        let steps = [
            (usage(1, 9, [10, 12, 10, 3]), &b1, 9),
            (usage(3, 10, [10, 12, 10, 3]), &b1, 10),
            (usage(3, 10, [10, 12, 10, 3]), &b2, 11),
            (usage(6, 12, [10, 12, 10, 3]), &b2, 12),
            (usage(7, 13, [10, 12, 9, 3]), &b2, 13),
        ];
        let mut expected: Option<Reconciliation> = None;
        let mut before = Vec::new();
        for (i, (u, b, hour)) in steps.iter().enumerate() {
            let want = compute(&inputs(u, b, &m, *hour, expected.as_ref()));
            let (u2, b2, m2, h) = (u.clone(), (*b).clone(), m.clone(), *hour);
            let previous_at = expected.as_ref().map(|e| e.computed_at);
            store
                .replace_reconciliation(Some(u.run_id), at(h), move |prior, sink| {
                    let inp = Inputs { previous_at, ..inputs(&u2, &b2, &m2, h, None) };
                    compute_each(&inp, prior, sink)
                })
                .await
                .unwrap();
            let got = store.latest_reconciliation().await.unwrap().unwrap();
            assert_eq!(got, want, "step {i}: the stored rows read back as computed");
            let now = raw(&store);
            match i {
                // Same counts in a new vendor run: every row's content is the same, and so are
                // its stored bytes (the seen counts and run ids come from the head).
                1 | 3 => {
                    let rewritten = now.iter().filter(|e| !before.contains(*e)).count();
                    assert_eq!(
                        rewritten,
                        usize::from(i == 1),
                        "step {i}: only the row raised from pending"
                    );
                }
                // One customer's count changed: its row (and evidence) only.
                4 => {
                    let rewritten = now.iter().filter(|e| !before.contains(*e)).count();
                    assert_eq!(rewritten, 2, "step {i}: the changed row and its evidence");
                }
                _ => {}
            }
            before = now;
            expected = Some(want);
        }
        let last = expected.unwrap();
        let a2 =
            last.rows.iter().find(|r| r.customer_name.is_none() && r.vendor_quantity == Some(12));
        let a2 = a2.expect("the under-billed row of A2");
        assert_eq!((a2.status, a2.seen_runs), (crate::reconcile::Status::UnderBilled, 4));
    }
}
