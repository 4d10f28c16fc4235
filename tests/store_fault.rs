//! Storage fault injection: a redb backend whose writes start failing after N operations.
//! Whatever N, a failed commit leaves the previous snapshot intact and readable after reopen.

use std::fs::OpenOptions;
use std::io;
use std::ops::Bound;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use mpsync::model::{CustomerUsage, RunKind};
use mpsync::store::Store;
use redb::backends::FileBackend;
use redb::{BackendError, StorageBackend};

use crate::support::store::*;

/// A file backend whose mutating operations (write, set_len, sync) fail once `budget` of them
/// have been spent, like a disk that fills up or dies mid-commit.
#[derive(Debug)]
struct FailingBackend {
    inner: FileBackend,
    budget: Arc<AtomicI64>,
}

impl FailingBackend {
    fn spend(&self) -> io::Result<()> {
        if self.budget.fetch_sub(1, Ordering::SeqCst) <= 0 {
            return Err(io::Error::other("injected write failure"));
        }
        Ok(())
    }
}

impl StorageBackend for FailingBackend {
    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }
    fn read(&self, offset: u64, out: &mut [u8]) -> io::Result<()> {
        self.inner.read(offset, out)
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.spend()?;
        self.inner.set_len(len)
    }
    fn sync_data(&self) -> io::Result<()> {
        self.spend()?;
        self.inner.sync_data()
    }
    fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        self.spend()?;
        self.inner.write(offset, data)
    }
    fn close(&self) -> io::Result<()> {
        self.inner.close()
    }
    fn try_lock_range(&self, s: Bound<u64>, e: Bound<u64>) -> Result<bool, BackendError> {
        self.inner.try_lock_range(s, e)
    }
    fn try_lock_shared_range(&self, s: Bound<u64>, e: Bound<u64>) -> Result<bool, BackendError> {
        self.inner.try_lock_shared_range(s, e)
    }
    fn lock_range(&self, s: Bound<u64>, e: Bound<u64>) -> Result<(), BackendError> {
        self.inner.lock_range(s, e)
    }
    fn lock_shared_range(&self, s: Bound<u64>, e: Bound<u64>) -> Result<(), BackendError> {
        self.inner.lock_shared_range(s, e)
    }
    fn unlock_range(&self, s: Bound<u64>, e: Bound<u64>) -> Result<(), BackendError> {
        self.inner.unlock_range(s, e)
    }
    fn query_lock_range(&self, s: Bound<u64>, e: Bound<u64>) -> Result<bool, BackendError> {
        self.inner.query_lock_range(s, e)
    }
}

fn changed(mut data: Vec<CustomerUsage>) -> Vec<CustomerUsage> {
    for c in data.iter_mut().step_by(3) {
        *c.counts.get_mut("CloudFilter").unwrap() += 100;
        c.name.push_str(" (renamed)");
    }
    data.truncate(data.len() - 2);
    data
}

/// Opens the file at `state` through the failing backend and tries to commit snapshot B.
/// Returns the run id and whether the commit reported success.
async fn attempt(state: &std::path::Path, budget: i64) -> (Option<u64>, bool) {
    let path = state.join("mpsync.redb");
    let file = OpenOptions::new().read(true).write(true).open(&path).unwrap();
    let backend = FailingBackend {
        inner: FileBackend::new(file).unwrap(),
        budget: Arc::new(AtomicI64::new(budget)),
    };
    let Ok(store) = Store::open_with_backend(&path, backend) else {
        return (None, false);
    };
    let Ok(id) = store.begin_run(RunKind::Vendor, at(100)).await else {
        return (None, false);
    };
    let ok = store.commit_vendor_run(id, at(101), requests(), changed(dataset(60))).await.is_ok();
    (Some(id), ok)
}

#[tokio::test]
async fn failed_commit_keeps_previous_snapshot_for_every_failure_point() {
    let (mut failed, mut succeeded) = (0, 0);
    for budget in 0..400 {
        let (_tmp, state) = state_dir();
        let store = Store::open(&state).unwrap();
        let a = vendor_run(&store, 0, dataset(60)).await;
        drop(store);

        let (b, committed) = attempt(&state, budget).await;
        if std::env::var_os("STORE_FAULT_VERBOSE").is_some() {
            eprintln!("budget {budget}: run {b:?} committed {committed}");
        }

        let store = Store::open(&state).unwrap_or_else(|e| {
            panic!("budget {budget}: store must reopen after a failed write: {e}")
        });
        let latest = store.latest_usage_snapshot().await.unwrap().expect("a snapshot survives");
        if committed {
            succeeded += 1;
            assert_eq!(Some(latest.run_id), b, "budget {budget}: a reported commit is durable");
            assert_eq!(latest.customers, changed(dataset(60)));
        } else {
            failed += 1;
            // A commit reported as failed may still have reached the disk whole (the failure hit
            // after the durable point) but never in part.
            if latest.run_id == a.id {
                assert_eq!(
                    latest.customers,
                    dataset(60),
                    "budget {budget}: previous snapshot intact"
                );
            } else {
                assert_eq!(Some(latest.run_id), b, "budget {budget}");
                assert_eq!(
                    latest.customers,
                    changed(dataset(60)),
                    "budget {budget}: torn snapshot"
                );
            }
        }
        // The previous snapshot is still rebuildable, and leftovers are cleaned up normally.
        assert_eq!(store.snapshot(a.id).await.unwrap().unwrap().customers, dataset(60));
        store.abort_leftover_runs(at(200)).await.unwrap();
        assert!(store.recent_runs(10, None).await.unwrap().iter().all(|r| r.finished_at.is_some()));
        if committed && succeeded >= 3 {
            break;
        }
    }
    eprintln!("fault loop: {failed} failed commits, {succeeded} successful");
    assert!(failed >= 10, "the loop must inject failures at many points (failed {failed})");
    assert!(succeeded >= 1, "with a big enough budget the commit must succeed");
}

/// A run whose end cannot be written (every write fails from some point on, as on a full
/// disk) stays running in the store; the next open aborts it with the store's write error
/// (kept in the side record next to the store), not as a crash. The record is emptied once
/// used: a later run that really was interrupted gets the crash text.
#[tokio::test]
async fn a_run_whose_end_cannot_be_written_is_aborted_with_that_reason_at_the_next_open() {
    for budget in 0..400 {
        let (_tmp, state) = state_dir();
        let store = Store::open(&state).unwrap();
        vendor_run(&store, 0, dataset(20)).await;
        drop(store);

        let path = state.join("mpsync.redb");
        let file = OpenOptions::new().read(true).write(true).open(&path).unwrap();
        let backend = FailingBackend {
            inner: FileBackend::new(file).unwrap(),
            budget: Arc::new(AtomicI64::new(budget)),
        };
        let Ok(store) = Store::open_with_backend(&path, backend) else { continue };
        let Ok(id) = store.begin_run(RunKind::Vendor, at(100)).await else { continue };
        if store.commit_vendor_run(id, at(101), requests(), dataset(20)).await.is_ok() {
            continue;
        }
        // As the engine does after a failed commit: try to record the failure (refused too).
        let failed = store.fail_run(id, at(101), "cannot commit".into(), requests()).await;
        assert!(failed.is_err(), "budget {budget}: writes stay refused after a failed one");
        drop(store);

        let store = Store::open(&state).unwrap();
        assert_eq!(store.abort_leftover_runs(at(200)).await.unwrap(), vec![id]);
        let error = store.run(id).await.unwrap().unwrap().error.unwrap();
        assert!(
            error.starts_with(
                "the store could not be written: injected write failure (disk full or a \
                 file-size limit, or a disk error); writes stopped at: "
            ) && error.contains("mpsync.redb")
                && error.ends_with(
                    "The end of this run was not recorded and nothing it collected was stored"
                ),
            "budget {budget}: {error}"
        );

        let interrupted = store.begin_run(RunKind::Vendor, at(300)).await.unwrap();
        drop(store);
        let store = Store::open(&state).unwrap();
        assert_eq!(store.abort_leftover_runs(at(400)).await.unwrap(), vec![interrupted]);
        let error = store.run(interrupted).await.unwrap().unwrap().error.unwrap();
        assert!(error.starts_with("mpsync stopped during this run (crash"), "{error}");
        return;
    }
    panic!("no write budget let the run start and then refused its end");
}
