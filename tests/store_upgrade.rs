//! Upgrades keep the data: a store written by schema version 1 with every kind of record (runs
//! of each kind and outcome, usage and billed snapshots, history, a reconciliation, a plan),
//! kept under `tests/fixtures/store-v1/`, opens with this build — migrated to the current
//! schema in the one transaction that opens it (1 → 2: the reconciliation kept row by row) —
//! with every run and record still there, and the new version recorded.
//!
//! `STORE_WRITE_FIXTURE=1` regenerates the fixture: do that only while the schema is still
//! version 1 (when it changes, add a `store-v2/` fixture and keep this one).

use std::path::{Path, PathBuf};

use mpsync::model::{Account, BilledLine, LineRef, RunKind, RunOutcome};
use mpsync::store::{SCHEMA_VERSION, Store};

use crate::support::reconcile::{MAPPING, sample};
use crate::support::store::*;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/store-v1/mpsync.redb")
}

fn plan() -> mpsync::writeback::Plan {
    let mut rec = sample();
    for (i, row) in rec.rows.iter_mut().enumerate() {
        for line in &mut row.evidence.lines {
            line.line = Some(LineRef::Connectwise { agreement: 7, addition: 100 + i as u64 });
        }
    }
    let text = format!("{MAPPING}write_back = \"review\"\n");
    let mapping = mpsync::config::Mapping::parse(Path::new("mapping.toml"), &text).unwrap();
    mpsync::writeback::plan::build(&rec, &mapping, "connectwise", true, 25, at(11))
}

async fn write_fixture(state: &Path) {
    assert_eq!(SCHEMA_VERSION, 1, "keep the v1 fixture as it is; add one for the new version");
    let store = Store::open(state).unwrap();
    vendor_run(&store, 0, vec![customer(1, "Acme", &[("CloudFilter", 10)])]).await;
    vendor_run(
        &store,
        30,
        vec![
            customer(1, "Acme Ltd", &[("CloudFilter", 12)]),
            customer(2, "Bolt", &[("SafeSend", 3)]),
        ],
    )
    .await;
    let billing = store.begin_run(RunKind::Billing, at(40)).await.unwrap();
    let line = BilledLine {
        account_id: "A1".into(),
        product_id: "CF".into(),
        quantity: 10.0,
        unit_price: Some(3.5),
        counted: true,
        note: None,
        source_ref: "agreement 7 addition 1".into(),
        line: None,
    };
    let account = Account { id: "A1".into(), name: "Acme".into() };
    store.commit_billing_run(billing, at(41), requests(), vec![account], vec![line]).await.unwrap();
    let failed = store.begin_run(RunKind::Vendor, at(60)).await.unwrap();
    store.fail_run(failed, at(61), "upstream 503".into(), requests()).await.unwrap();
    store.save_reconciliation(&sample()).await.unwrap();
    store.save_plan(plan()).await.unwrap();
}

#[tokio::test]
async fn a_v1_store_opens_with_every_run_and_record() {
    if std::env::var_os("STORE_WRITE_FIXTURE").is_some() {
        let (_tmp, state) = state_dir();
        write_fixture(&state).await;
        std::fs::create_dir_all(fixture().parent().unwrap()).unwrap();
        std::fs::copy(state.join("mpsync.redb"), fixture()).unwrap();
    }
    let (_tmp, state) = state_dir();
    std::fs::create_dir_all(&state).unwrap();
    std::fs::copy(fixture(), state.join("mpsync.redb")).expect("fixture present");
    let store = Store::open(&state).expect("a v1 store opens (and is upgraded if older)");

    let runs: Vec<_> = store
        .recent_runs(100, None)
        .await
        .unwrap()
        .iter()
        .map(|r| (r.id, r.kind, r.outcome))
        .collect();
    use RunKind::*;
    use RunOutcome::*;
    assert_eq!(
        runs,
        vec![(4, Vendor, Failed), (3, Billing, Ok), (2, Vendor, Ok), (1, Vendor, Ok)],
        "every run kept"
    );
    let latest = store.latest_usage_snapshot().await.unwrap().unwrap();
    assert_eq!(latest.run_id, 2);
    assert_eq!(latest.customers.len(), 2);
    assert_eq!(store.snapshot(1).await.unwrap().unwrap().customers[0].name, "Acme");
    let billed = store.latest_billed_snapshot().await.unwrap().unwrap();
    assert_eq!((billed.run_id, billed.lines.len()), (3, 1));
    let rec = store.latest_reconciliation().await.unwrap().expect("the reconciliation kept");
    // A reconciliation stored before discrepancy episodes existed has none: the next
    // computation starts them (and their money) from then on.
    let mut want = sample().rows;
    for r in &mut want {
        (r.episode, r.accrued, r.excluded_seconds) = (None, None, None);
    }
    assert_eq!(rec.rows, want);
    let plan = store.latest_plan().await.unwrap().expect("the plan kept");
    assert_eq!((plan.id, plan.changes.len()), (1, 1));
    assert!(store.begin_run(RunKind::Vendor, at(120)).await.unwrap() > 4);
    let tables = store.row_counts().await.unwrap();
    assert!(!tables.contains_key("reconciliation_v1"), "the old layout is gone: {tables:?}");
    assert!(tables["reconciliation_rows_v2"] > 0, "{tables:?}");
    drop(store);

    // The file now says the current version.
    let db = redb::Database::open(state.join("mpsync.redb")).unwrap();
    let txn = redb::ReadableDatabase::begin_read(&db).unwrap();
    let meta: redb::TableDefinition<&str, u64> = redb::TableDefinition::new("meta");
    let version = txn.open_table(meta).unwrap().get("schema_version").unwrap().unwrap().value();
    assert_eq!(version, u64::from(SCHEMA_VERSION));
    const { assert!(SCHEMA_VERSION >= 2, "the fixture is older than this build's schema") };
}
