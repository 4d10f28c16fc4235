//! Runs and snapshots: lifecycle, failure isolation, dedup, and the steady-state cost.

use std::collections::{BTreeMap, HashMap};

use mpsync::model::{CachedServices, RunKind, RunOutcome};
use mpsync::store::{Store, StoreError};

use crate::support::store::*;

#[tokio::test]
async fn leftover_running_runs_are_aborted_at_next_start() {
    let (_tmp, state) = state_dir();
    let store = Store::open(&state).unwrap();
    let good = vendor_run(&store, 0, dataset(5)).await;
    let crashed = store.begin_run(RunKind::Vendor, at(10)).await.unwrap();
    drop(store); // the "crash": the run never finished

    let store = Store::open(&state).unwrap();
    assert_eq!(store.run(crashed).await.unwrap().unwrap().outcome, RunOutcome::Running);
    assert_eq!(store.abort_leftover_runs(at(20)).await.unwrap(), vec![crashed]);
    let rec = store.run(crashed).await.unwrap().unwrap();
    assert_eq!(rec.outcome, RunOutcome::Aborted);
    assert_eq!(rec.finished_at, Some(at(20)));
    assert!(rec.error.unwrap().contains("stopped during this run"));
    assert!(store.abort_leftover_runs(at(21)).await.unwrap().is_empty(), "only once");
    let snap = store.latest_usage_snapshot().await.unwrap().unwrap();
    assert_eq!(snap.run_id, good.id, "an aborted run changes no snapshot");
    // An aborted run cannot be committed late.
    let err = store.commit_vendor_run(crashed, at(22), requests(), dataset(1)).await.unwrap_err();
    assert!(matches!(err, StoreError::RunNotRunning { outcome: RunOutcome::Aborted, .. }));
}

#[tokio::test]
async fn failed_run_leaves_latest_snapshot_and_last_success_unchanged() {
    let (_tmp, state) = state_dir();
    let store = Store::open(&state).unwrap();
    let good = vendor_run(&store, 0, dataset(4)).await;
    let id = store.begin_run(RunKind::Vendor, at(30)).await.unwrap();
    let failed = store
        .fail_run(id, at(31), "Mailprotector answered 503 three times".into(), requests())
        .await
        .unwrap();
    assert_eq!(failed.outcome, RunOutcome::Failed);
    assert_eq!(failed.snapshot, None);
    assert_eq!(failed.requests, requests());

    let snap = store.latest_usage_snapshot().await.unwrap().unwrap();
    assert_eq!((snap.run_id, snap.observed_at), (good.id, at(1)));
    assert_eq!(snap.customers, dataset(4));
    assert_eq!(store.last_success(RunKind::Vendor).await.unwrap().unwrap().id, good.id);
    let err = store.fail_run(id, at(32), "again".into(), BTreeMap::new()).await.unwrap_err();
    assert!(matches!(err, StoreError::RunNotRunning { outcome: RunOutcome::Failed, .. }));
}

#[tokio::test]
async fn unchanged_content_points_at_existing_snapshot() {
    let (_tmp, state) = state_dir();
    let store = Store::open(&state).unwrap();
    let first = vendor_run(&store, 0, dataset(3)).await;
    assert_eq!(first.snapshot, Some(first.id));
    let same = vendor_run(&store, 30, dataset(3)).await;
    assert_eq!(same.snapshot, Some(first.id), "identical content is not stored again");
    let latest = store.latest_usage_snapshot().await.unwrap().unwrap();
    assert_eq!((latest.run_id, latest.observed_at), (same.id, at(31)));

    let mut changed = dataset(3);
    changed[1].counts.insert("SafeSend".into(), 99);
    let third = vendor_run(&store, 60, changed.clone()).await;
    assert_eq!(third.snapshot, Some(third.id));
    assert_eq!(store.latest_usage_snapshot().await.unwrap().unwrap().customers, changed);
    // The older snapshot is still rebuilt exactly.
    let old = store.snapshot(first.id).await.unwrap().unwrap();
    assert_eq!((old.run_id, old.observed_at, old.customers), (first.id, at(1), dataset(3)));
    assert!(store.snapshot(same.id).await.unwrap().is_none(), "no snapshot of its own");
}

#[tokio::test]
async fn steady_state_run_adds_only_its_run_record() {
    let (_tmp, state) = state_dir();
    let store = Store::open(&state).unwrap();
    vendor_run(&store, 0, dataset(200)).await;
    let mut changed = dataset(200);
    changed[7].counts.insert("Bracket".into(), 1234);
    vendor_run(&store, 30, changed.clone()).await;
    let before = store.row_counts().await.unwrap();
    let rec = vendor_run(&store, 60, changed).await;
    let after = store.row_counts().await.unwrap();
    for (table, n) in &before {
        let expected = if table == "runs_v1" { n + 1 } else { *n };
        assert_eq!(after[table], expected, "rows in {table}: {before:?} → {after:?}");
    }
    assert_eq!(before.len(), mpsync::store::table_names().len(), "every table exists");
    assert_eq!(before.len(), after.len());
    assert!(before["usage_snapshots_v1"] == 2 && before["usage_history_v1"] > 0);
    assert_eq!(rec.outcome, RunOutcome::Ok);
}

#[tokio::test]
async fn vendor_commit_rejects_bad_input_without_writing() {
    let (_tmp, state) = state_dir();
    let store = Store::open(&state).unwrap();
    vendor_run(&store, 0, dataset(2)).await;
    let id = store.begin_run(RunKind::Vendor, at(5)).await.unwrap();
    let before = store.row_counts().await.unwrap();
    let dup = vec![customer(1, "a", &[]), customer(1, "b", &[])];
    let err = store.commit_vendor_run(id, at(6), requests(), dup).await.unwrap_err();
    assert!(matches!(err, StoreError::DuplicateCustomer { customer: 1, .. }), "{err:?}");
    assert_eq!(store.row_counts().await.unwrap(), before);
    assert_eq!(store.run(id).await.unwrap().unwrap().outcome, RunOutcome::Running);

    let push = store.begin_run(RunKind::Push, at(7)).await.unwrap();
    let err = store.commit_vendor_run(push, at(8), requests(), dataset(1)).await.unwrap_err();
    assert!(matches!(err, StoreError::WrongKind { actual: RunKind::Push, .. }), "{err:?}");
    let err = store.commit_run(id, at(9), requests(), RunOutcome::Ok).await.unwrap_err();
    assert!(matches!(err, StoreError::WrongKind { actual: RunKind::Vendor, .. }), "{err:?}");
    let err = store.fail_run(9999, at(9), "x".into(), requests()).await.unwrap_err();
    assert!(matches!(err, StoreError::UnknownRun { id: 9999, .. }), "{err:?}");
}

#[tokio::test]
async fn recent_runs_and_last_success_by_kind() {
    let (_tmp, state) = state_dir();
    let store = Store::open(&state).unwrap();
    let v1 = vendor_run(&store, 0, dataset(1)).await;
    let p1 = store.begin_run(RunKind::Push, at(2)).await.unwrap();
    let p1 = store.commit_run(p1, at(3), requests(), RunOutcome::Ok).await.unwrap();
    let p2 = store.begin_run(RunKind::Push, at(4)).await.unwrap();
    store.fail_run(p2, at(5), "Gradient refused the key".into(), requests()).await.unwrap();
    let v2 = store.begin_run(RunKind::Vendor, at(6)).await.unwrap();
    let why = "stopped before it completed: mpsync was shutting down (SIGTERM received)";
    store.cancel_run(v2, at(7), why.into(), BTreeMap::new()).await.unwrap();

    let ids = |runs: Vec<mpsync::model::RunRecord>| runs.iter().map(|r| r.id).collect::<Vec<_>>();
    assert_eq!(ids(store.recent_runs(10, None).await.unwrap()), vec![v2, p2, p1.id, v1.id]);
    assert_eq!(ids(store.recent_runs(2, None).await.unwrap()), vec![v2, p2]);
    assert_eq!(ids(store.recent_runs(10, Some(RunKind::Push)).await.unwrap()), vec![p2, p1.id]);
    assert_eq!(store.last_success(RunKind::Vendor).await.unwrap().unwrap().id, v1.id);
    assert_eq!(store.last_success(RunKind::Push).await.unwrap().unwrap(), p1);
    assert!(store.last_success(RunKind::Billing).await.unwrap().is_none());
    let cancelled = store.run(v2).await.unwrap().unwrap();
    assert_eq!(cancelled.outcome, RunOutcome::Cancelled);
    assert_eq!(cancelled.error.as_deref(), Some(why), "a cancelled run keeps why it stopped");
}

#[tokio::test]
async fn service_cache_is_replaced_whole_and_meta_round_trips() {
    let (_tmp, state) = state_dir();
    let store = Store::open(&state).unwrap();
    let svc = |p: &[&str]| CachedServices {
        products: p.iter().map(|s| s.to_string()).collect(),
        fetched_at: at(0),
    };
    let first = HashMap::from([(1, svc(&["CloudFilter"])), (2, svc(&["SafeSend"]))]);
    store.save_service_cache(first.clone()).await.unwrap();
    assert_eq!(store.load_service_cache().await.unwrap(), first);
    let second = HashMap::from([(3, svc(&["Bracket", "CloudFilter"]))]);
    store.save_service_cache(second.clone()).await.unwrap();
    assert_eq!(store.load_service_cache().await.unwrap(), second, "old groups are gone");

    assert_eq!(store.get_meta::<Vec<u64>>("walk_sizes").await.unwrap(), None);
    store.put_meta("walk_sizes", &vec![3u64, 4]).await.unwrap();
    drop(store);
    let store = Store::open(&state).unwrap();
    assert_eq!(store.get_meta::<Vec<u64>>("walk_sizes").await.unwrap(), Some(vec![3, 4]));
    assert_eq!(store.load_service_cache().await.unwrap(), second);
}
