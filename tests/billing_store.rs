//! Billed snapshots in the store: one transaction per billing run, unchanged content stored
//! once, failed runs never change the latest billed snapshot, and a commit cut short by an
//! I/O failure leaves the previous state whole.

use std::collections::BTreeMap;
use std::io;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use mpsync::model::{Account, BilledLine, RunKind, RunOutcome};
use mpsync::store::{Store, StoreError};
use mpsync::sync::{JobOutput, RunLedger};

use crate::support::store::{at, state_dir};

fn account(id: &str, name: &str) -> Account {
    Account { id: id.into(), name: name.into() }
}

fn line(account: &str, product: &str, qty: f64, src: &str) -> BilledLine {
    BilledLine {
        account_id: account.into(),
        product_id: product.into(),
        quantity: qty,
        unit_price: Some(2.5),
        counted: true,
        note: None,
        source_ref: src.into(),
        line: None,
    }
}

fn content_a() -> (Vec<Account>, Vec<BilledLine>) {
    (
        vec![account("250", "Acme"), account("7", "Beta")],
        vec![
            line("250", "MP-CF", 56.0, "agreement 1 addition 1"),
            line("7", "MP-SS", 3.0, "agreement 2 addition 5"),
        ],
    )
}

fn content_b() -> (Vec<Account>, Vec<BilledLine>) {
    let (accounts, mut lines) = content_a();
    lines[0].quantity = 60.0;
    (accounts, lines)
}

fn billing_requests() -> BTreeMap<String, u64> {
    BTreeMap::from([("connectwise GET /company/companies".to_string(), 1)])
}

async fn billing_run(
    store: &Store,
    minutes: i64,
    content: (Vec<Account>, Vec<BilledLine>),
) -> mpsync::model::RunRecord {
    let id = store.begin_run(RunKind::Billing, at(minutes)).await.unwrap();
    store
        .commit_billing_run(id, at(minutes + 1), billing_requests(), content.0, content.1)
        .await
        .unwrap()
}

#[tokio::test]
async fn unchanged_content_is_stored_once_and_each_run_points_at_it() {
    let (_dir, state) = state_dir();
    let store = tokio::task::spawn_blocking(move || Store::open(&state)).await.unwrap().unwrap();
    assert_eq!(store.latest_billed_snapshot().await.unwrap(), None, "no billing run yet");

    let first = billing_run(&store, 0, content_a()).await;
    assert_eq!(first.outcome, RunOutcome::Ok);
    assert_eq!(first.snapshot, Some(first.id));
    assert_eq!(first.requests, billing_requests());

    // The same content read in another order is the same snapshot.
    let (mut accounts, mut lines) = content_a();
    accounts.reverse();
    lines.reverse();
    let second = billing_run(&store, 10, (accounts, lines)).await;
    assert_eq!(second.snapshot, Some(first.id), "unchanged content points at the first snapshot");
    let latest = store.latest_billed_snapshot().await.unwrap().unwrap();
    assert_eq!(latest.run_id, second.id);
    assert_eq!(latest.observed_at, at(11), "observed at the end of the latest ok run");
    let (accounts, lines) = content_a();
    assert_eq!(latest.accounts, accounts);
    assert_eq!(latest.lines, lines);

    let third = billing_run(&store, 20, content_b()).await;
    assert_eq!(third.snapshot, Some(third.id));
    let latest = store.latest_billed_snapshot().await.unwrap().unwrap();
    assert_eq!((latest.run_id, latest.lines[0].quantity), (third.id, 60.0));
    // The older content is still there under its own id.
    let old = store.billed_snapshot(first.id).await.unwrap().unwrap();
    assert_eq!((old.lines[0].quantity, old.observed_at), (56.0, at(1)));
    assert_eq!(store.billed_snapshot(second.id).await.unwrap(), None, "run 2 stored nothing");
    let rows = store.row_counts().await.unwrap();
    assert_eq!(rows.get("billed_snapshots_v1"), Some(&2));
}

#[tokio::test]
async fn a_failed_billing_run_keeps_the_previous_snapshot() {
    let (_dir, state) = state_dir();
    let store = tokio::task::spawn_blocking(move || Store::open(&state)).await.unwrap().unwrap();
    let ok = billing_run(&store, 0, content_a()).await;
    let id = store.begin_run(RunKind::Billing, at(10)).await.unwrap();
    let failed = store
        .fail_run(id, at(11), "connectwise is unavailable".into(), billing_requests())
        .await
        .unwrap();
    assert_eq!(failed.outcome, RunOutcome::Failed);
    assert_eq!(failed.snapshot, None);
    let latest = store.latest_billed_snapshot().await.unwrap().unwrap();
    assert_eq!((latest.run_id, latest.observed_at), (ok.id, at(1)));
    assert_eq!(latest.lines, content_a().1);
}

#[tokio::test]
async fn the_ledger_commits_billing_output_and_refuses_other_kinds() {
    let (_dir, state) = state_dir();
    let store = tokio::task::spawn_blocking(move || Store::open(&state)).await.unwrap().unwrap();
    let id = RunLedger::begin(&store, RunKind::Billing, at(0)).await.unwrap();
    let (accounts, lines) = content_a();
    let rec = RunLedger::complete(
        &store,
        id,
        at(1),
        billing_requests(),
        JobOutput::Billing { accounts, lines },
    )
    .await
    .unwrap();
    assert_eq!((rec.outcome, rec.snapshot), (RunOutcome::Ok, Some(id)));
    assert_eq!(store.latest_billed_snapshot().await.unwrap().unwrap().run_id, id);

    // A vendor run cannot be finished as a billing run; nothing is written.
    let vendor = store.begin_run(RunKind::Vendor, at(5)).await.unwrap();
    let (accounts, lines) = content_b();
    let err = store
        .commit_billing_run(vendor, at(6), BTreeMap::new(), accounts, lines)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::WrongKind { .. }), "{err}");
    assert_eq!(store.run(vendor).await.unwrap().unwrap().outcome, RunOutcome::Running);
    assert_eq!(store.latest_billed_snapshot().await.unwrap().unwrap().lines, content_a().1);
}

/// An in-memory storage whose writes start failing after a countdown; the bytes survive the
/// failed database so a new one can be opened on them (like a restart after an I/O error).
#[derive(Debug, Clone)]
struct Flaky {
    bytes: Arc<Mutex<Vec<u8>>>,
    writes_left: Arc<AtomicI64>,
}

impl Flaky {
    fn new() -> Flaky {
        Flaky { bytes: Arc::default(), writes_left: Arc::new(AtomicI64::new(i64::MAX)) }
    }
    fn reopen(&self) -> Flaky {
        Flaky { bytes: self.bytes.clone(), writes_left: Arc::new(AtomicI64::new(i64::MAX)) }
    }
    fn tick(&self) -> io::Result<()> {
        if self.writes_left.fetch_sub(1, Ordering::SeqCst) <= 0 {
            return Err(io::Error::other("injected write failure"));
        }
        Ok(())
    }
}

impl redb::StorageBackend for Flaky {
    fn len(&self) -> io::Result<u64> {
        Ok(self.bytes.lock().unwrap().len() as u64)
    }
    fn read(&self, offset: u64, out: &mut [u8]) -> io::Result<()> {
        let b = self.bytes.lock().unwrap();
        let start = offset as usize;
        let src =
            b.get(start..start + out.len()).ok_or_else(|| io::Error::other("read past end"))?;
        out.copy_from_slice(src);
        Ok(())
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.tick()?;
        self.bytes.lock().unwrap().resize(len as usize, 0);
        Ok(())
    }
    fn sync_data(&self) -> io::Result<()> {
        self.tick()
    }
    fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        self.tick()?;
        let mut b = self.bytes.lock().unwrap();
        let start = offset as usize;
        b[start..start + data.len()].copy_from_slice(data);
        Ok(())
    }
}

/// The in-memory store, named as a file in `dir`: the store keeps its side record (why a
/// run's end could not be written) next to that name, so it must not be the working directory.
fn open_on(dir: &std::path::Path, backend: Flaky) -> Store {
    Store::open_with_backend(&dir.join("flaky.redb"), backend).expect("open store")
}

#[tokio::test]
async fn a_commit_cut_short_at_any_write_leaves_the_previous_state_whole() {
    let dir = tempfile::tempdir().unwrap();
    let mut cut_short = 0;
    for budget in 0..200i64 {
        let storage = Flaky::new();
        let store = open_on(dir.path(), storage.clone());
        let first = billing_run(&store, 0, content_a()).await;
        let id = store.begin_run(RunKind::Billing, at(10)).await.unwrap();
        storage.writes_left.store(budget, Ordering::SeqCst);
        let (accounts, lines) = content_b();
        let result =
            store.commit_billing_run(id, at(11), billing_requests(), accounts, lines).await;
        drop(store);
        let store = open_on(dir.path(), storage.reopen());
        let latest = store.latest_billed_snapshot().await.unwrap().unwrap();
        let run = store.run(id).await.unwrap().unwrap();
        match result {
            Err(_) => {
                cut_short += 1;
                // Either nothing of the commit is visible, or (when only the final sync
                // failed) all of it: never a run without its snapshot or the reverse.
                let before = (RunOutcome::Running, None, first.id, content_a().1);
                let after = (RunOutcome::Ok, Some(id), id, content_b().1);
                let seen = (run.outcome, run.snapshot, latest.run_id, latest.lines.clone());
                assert!(seen == before || seen == after, "budget {budget}: mixed state {seen:?}");
            }
            Ok(rec) => {
                assert_eq!(rec.outcome, RunOutcome::Ok);
                assert_eq!((latest.run_id, latest.lines.clone()), (id, content_b().1));
                assert!(cut_short > 0, "the injected failures never hit the commit");
                return;
            }
        }
    }
    panic!("the commit never succeeded within 200 writes");
}
