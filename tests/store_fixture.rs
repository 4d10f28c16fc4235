//! File-format stability: a store written by schema version 1 (checked in under
//! `tests/fixtures/`) must keep opening and reading the same with every later build and redb
//! patch release (pitfalls B2-6). `STORE_WRITE_FIXTURE=1` regenerates it (only when the
//! schema version changes: add a new fixture, keep the old one).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use mpsync::model::{CachedServices, RunKind, RunOutcome};
use mpsync::store::Store;

use crate::support::store::*;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/store_v1.redb")
}

fn services() -> HashMap<u64, CachedServices> {
    HashMap::from([(
        77,
        CachedServices {
            products: vec!["CloudFilter".into(), "SafeSend".into()],
            fetched_at: at(0),
        },
    )])
}

async fn write_fixture(state: &Path) {
    let store = Store::open(state).unwrap();
    vendor_run(
        &store,
        0,
        vec![customer(1, "Acme", &[("CloudFilter", 10)]), customer(2, "Bolt", &[("SafeSend", 3)])],
    )
    .await;
    vendor_run(
        &store,
        30,
        vec![
            customer(1, "Acme Ltd", &[("CloudFilter", 12)]),
            customer(2, "Bolt", &[("SafeSend", 3)]),
        ],
    )
    .await;
    let failed = store.begin_run(RunKind::Vendor, at(60)).await.unwrap();
    store.fail_run(failed, at(61), "upstream 503".into(), requests()).await.unwrap();
    let push = store.begin_run(RunKind::Push, at(62)).await.unwrap();
    store.commit_run(push, at(63), requests(), RunOutcome::Ok).await.unwrap();
    store.save_service_cache(services()).await.unwrap();
    store.put_meta("walk", &vec![1u64, 2]).await.unwrap();
    store.begin_run(RunKind::Vendor, at(90)).await.unwrap(); // left running, as after a crash
}

#[tokio::test]
async fn schema_v1_fixture_still_opens_and_reads() {
    if std::env::var_os("STORE_WRITE_FIXTURE").is_some() {
        let (_tmp, state) = state_dir();
        write_fixture(&state).await;
        std::fs::copy(state.join("mpsync.redb"), fixture()).unwrap();
    }
    let (_tmp, state) = state_dir();
    std::fs::create_dir_all(&state).unwrap();
    std::fs::copy(fixture(), state.join("mpsync.redb")).expect("fixture present");
    let store = Store::open(&state).expect("a v1 store opens");

    assert_eq!(store.abort_leftover_runs(at(100)).await.unwrap(), vec![5]);
    let latest = store.latest_usage_snapshot().await.unwrap().unwrap();
    assert_eq!((latest.run_id, latest.observed_at), (2, at(31)));
    assert_eq!(
        latest.customers,
        vec![
            customer(1, "Acme Ltd", &[("CloudFilter", 12)]),
            customer(2, "Bolt", &[("SafeSend", 3)])
        ]
    );
    let first = store.snapshot(1).await.unwrap().unwrap();
    assert_eq!(first.customers[0], customer(1, "Acme", &[("CloudFilter", 10)]));
    let h: Vec<_> = store
        .history(1, "CloudFilter")
        .await
        .unwrap()
        .iter()
        .map(|p| (p.run_id, p.count))
        .collect();
    assert_eq!(h, vec![(1, 10), (2, 12)]);
    assert_eq!(store.renames(1).await.unwrap()[0].new_name, "Acme Ltd");
    let outcomes: Vec<_> =
        store.recent_runs(10, None).await.unwrap().iter().map(|r| r.outcome).collect();
    use RunOutcome::*;
    assert_eq!(outcomes, vec![Aborted, Ok, Failed, Ok, Ok]);
    assert_eq!(store.last_success(RunKind::Push).await.unwrap().unwrap().id, 4);
    assert_eq!(store.load_service_cache().await.unwrap(), services());
    assert_eq!(store.get_meta::<Vec<u64>>("walk").await.unwrap(), Some(vec![1, 2]));
    assert!(store.begin_run(RunKind::Vendor, at(120)).await.unwrap() > 5);
}
