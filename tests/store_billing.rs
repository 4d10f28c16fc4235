//! Billed snapshots: committed with their run, deduplicated by content, pruned but never the
//! latest, untouched by failed runs.

use std::time::Duration;

use mpsync::model::{Account, BilledLine, RunKind};
use mpsync::store::{Store, StoreError};

use crate::support::store::*;

fn account(id: &str) -> Account {
    Account { id: id.into(), name: format!("Account {id}") }
}

fn line(account: &str, product: &str, quantity: f64) -> BilledLine {
    BilledLine {
        account_id: account.into(),
        product_id: product.into(),
        quantity,
        unit_price: Some(1.5),
        counted: true,
        note: None,
        source_ref: format!("agreement 1 addition {account}-{product}"),
        line: None,
    }
}

async fn billing_run(
    store: &Store,
    minutes: i64,
    accounts: Vec<Account>,
    lines: Vec<BilledLine>,
) -> mpsync::model::RunRecord {
    let id = store.begin_run(RunKind::Billing, at(minutes)).await.unwrap();
    store.commit_billing_run(id, at(minutes + 1), requests(), accounts, lines).await.unwrap()
}

#[tokio::test]
async fn billed_snapshots_are_deduplicated_and_survive_failures() {
    let (_tmp, state) = state_dir();
    let store = Store::open(&state).unwrap();
    assert!(store.latest_billed_snapshot().await.unwrap().is_none());
    let accounts = vec![account("b"), account("a")];
    let lines = vec![line("b", "MP-CF", 3.0), line("a", "MP-CF", 10.0), line("a", "MP-SS", 2.0)];
    let first = billing_run(&store, 0, accounts.clone(), lines.clone()).await;
    assert_eq!(first.snapshot, Some(first.id));

    // Same content listed in another order: no new snapshot.
    let mut shuffled = lines.clone();
    shuffled.reverse();
    let same = billing_run(&store, 60, accounts.iter().rev().cloned().collect(), shuffled).await;
    assert_eq!(same.snapshot, Some(first.id));
    let latest = store.latest_billed_snapshot().await.unwrap().unwrap();
    assert_eq!((latest.run_id, latest.observed_at), (same.id, at(61)));
    assert_eq!(latest.accounts, vec![account("a"), account("b")], "canonical order");
    assert_eq!(latest.lines[0], line("a", "MP-CF", 10.0));
    assert_eq!(latest.lines.len(), 3);

    // A failed billing run changes nothing readers see.
    let failed = store.begin_run(RunKind::Billing, at(120)).await.unwrap();
    store.fail_run(failed, at(121), "ConnectWise 401".into(), requests()).await.unwrap();
    assert_eq!(store.latest_billed_snapshot().await.unwrap().unwrap(), latest);

    let changed = vec![line("a", "MP-CF", 11.0)];
    let third = billing_run(&store, 180, accounts.clone(), changed.clone()).await;
    assert_eq!(third.snapshot, Some(third.id));
    assert_eq!(store.latest_billed_snapshot().await.unwrap().unwrap().lines, changed);
    assert_eq!(store.billed_snapshot(first.id).await.unwrap().unwrap().lines.len(), 3);
    assert_eq!(store.last_success(RunKind::Billing).await.unwrap().unwrap().id, third.id);

    // Pruning drops the old content but never the latest.
    let stats = store
        .prune(at(10 * 24 * 60), Duration::from_secs(86_400), Duration::from_secs(400 * 86_400))
        .await
        .unwrap();
    assert_eq!(stats.billed_snapshots, 1);
    assert!(store.billed_snapshot(first.id).await.unwrap().is_none());
    assert_eq!(store.latest_billed_snapshot().await.unwrap().unwrap().lines, changed);
    // The usage snapshot is independent of billing.
    assert!(store.latest_usage_snapshot().await.unwrap().is_none());
}

#[tokio::test]
async fn billing_commit_checks_the_run_kind() {
    let (_tmp, state) = state_dir();
    let store = Store::open(&state).unwrap();
    let vendor = store.begin_run(RunKind::Vendor, at(0)).await.unwrap();
    let err =
        store.commit_billing_run(vendor, at(1), requests(), vec![], vec![]).await.unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::WrongKind { actual: RunKind::Vendor, expected: RunKind::Billing, .. }
        ),
        "{err:?}"
    );
    let billing = store.begin_run(RunKind::Billing, at(2)).await.unwrap();
    let err = store.commit_vendor_run(billing, at(3), requests(), vec![]).await.unwrap_err();
    assert!(matches!(err, StoreError::WrongKind { actual: RunKind::Billing, .. }), "{err:?}");
    assert!(store.latest_billed_snapshot().await.unwrap().is_none());
}
