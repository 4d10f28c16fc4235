//! History keeps only changes and renames; pruning keeps the latest of everything.

use std::time::Duration;

use mpsync::model::RunKind;
use mpsync::store::{HistoryPoint, PruneStats, Rename, Store};

use crate::support::store::*;

const DAY: i64 = 24 * 60;

fn points(h: &[HistoryPoint]) -> Vec<(u64, u64)> {
    h.iter().map(|p| (p.run_id, p.count)).collect()
}

#[tokio::test]
async fn history_holds_only_changes_and_renames() {
    let (_tmp, state) = state_dir();
    let store = Store::open(&state).unwrap();
    let c = |name: &str, counts: &[(&str, u64)]| {
        vec![customer(7, name, counts), customer(8, "Other", &[("CloudFilter", 1)])]
    };
    let r1 = vendor_run(&store, 0, c("Acme", &[("CloudFilter", 10), ("SafeSend", 2)])).await.id;
    let _r2 = vendor_run(&store, 30, c("Acme", &[("CloudFilter", 10), ("SafeSend", 2)])).await.id;
    let r3 = vendor_run(&store, 60, c("Acme", &[("CloudFilter", 12), ("SafeSend", 2)])).await.id;
    let r4 = vendor_run(&store, 90, c("Acme Ltd", &[("CloudFilter", 12)])).await.id;
    let r5 = vendor_run(&store, 120, vec![customer(8, "Other", &[("CloudFilter", 1)])]).await.id;

    let cf = store.history(7, "CloudFilter").await.unwrap();
    assert_eq!(points(&cf), vec![(r1, 10), (r3, 12), (r5, 0)], "customer gone → 0");
    assert_eq!(cf[1].observed_at, at(61), "observed at the run's end");
    let ss = store.history(7, "SafeSend").await.unwrap();
    assert_eq!(points(&ss), vec![(r1, 2), (r4, 0)], "product gone → 0");
    assert_eq!(points(&store.history(8, "CloudFilter").await.unwrap()), vec![(r1, 1)]);
    assert!(store.history(7, "Bracket").await.unwrap().is_empty());
    assert_eq!(
        store.renames(7).await.unwrap(),
        vec![Rename {
            run_id: r4,
            observed_at: at(91),
            old_name: "Acme".into(),
            new_name: "Acme Ltd".into()
        }]
    );
    assert!(store.renames(8).await.unwrap().is_empty());
}

#[tokio::test]
async fn prune_drops_old_data_but_keeps_the_latest() {
    let (_tmp, state) = state_dir();
    let store = Store::open(&state).unwrap();
    let r1 = vendor_run(
        &store,
        0,
        vec![customer(1, "A", &[("CF", 10)]), customer(2, "B", &[("CF", 5), ("SS", 1)])],
    )
    .await
    .id;
    let failed = store.begin_run(RunKind::Vendor, at(DAY)).await.unwrap();
    store.fail_run(failed, at(DAY + 1), "timeout".into(), requests()).await.unwrap();
    let r2 = vendor_run(
        &store,
        5 * DAY,
        vec![customer(1, "A", &[("CF", 11)]), customer(2, "B2", &[("CF", 5), ("SS", 1)])],
    )
    .await
    .id;
    let r3 = vendor_run(
        &store,
        12 * DAY,
        vec![customer(1, "A", &[("CF", 11)]), customer(2, "B2", &[("CF", 5)])],
    )
    .await
    .id;
    let day20 = vec![customer(1, "A", &[("CF", 12)]), customer(2, "B3", &[("CF", 5)])];
    let r4 = vendor_run(&store, 20 * DAY, day20.clone()).await.id;
    let r5 = vendor_run(&store, 20 * DAY + 720, day20.clone()).await;
    assert_eq!(r5.snapshot, Some(r4));

    let days = |d: u64| Duration::from_secs(d * 86_400);
    let stats = store.prune(at(21 * DAY), days(2), days(10)).await.unwrap();
    assert_eq!(
        stats,
        PruneStats {
            snapshots: 3,
            billed_snapshots: 0,
            history_points: 3,
            renames: 1,
            runs: 3,
            events: 0
        }
    );
    let latest = store.latest_usage_snapshot().await.unwrap().unwrap();
    assert_eq!((latest.run_id, latest.customers.clone()), (r5.id, day20.clone()));
    assert_eq!(store.snapshot(r4).await.unwrap().unwrap().customers, day20);
    for old in [r1, r2, r3] {
        assert!(store.snapshot(old).await.unwrap().is_none(), "snapshot {old} past the window");
    }
    assert_eq!(points(&store.history(1, "CF").await.unwrap()), vec![(r4, 12)]);
    assert_eq!(points(&store.history(2, "CF").await.unwrap()), vec![(r1, 5)], "latest point kept");
    assert_eq!(points(&store.history(2, "SS").await.unwrap()), vec![(r3, 0)]);
    assert_eq!(store.renames(2).await.unwrap().len(), 1);
    for gone in [r1, failed, r2] {
        assert!(store.run(gone).await.unwrap().is_none(), "run {gone} past retention");
    }
    assert!(store.run(r3).await.unwrap().is_some());

    // Much later: the old 0 point goes, the last success of each kind stays, the latest
    // snapshot stays however old it is.
    let stats = store.prune(at(400 * DAY), days(2), days(10)).await.unwrap();
    assert_eq!(
        stats,
        PruneStats {
            snapshots: 0,
            billed_snapshots: 0,
            history_points: 1,
            renames: 1,
            runs: 2,
            events: 0
        }
    );
    assert!(store.history(2, "SS").await.unwrap().is_empty());
    assert_eq!(points(&store.history(1, "CF").await.unwrap()), vec![(r4, 12)]);
    assert_eq!(store.last_success(RunKind::Vendor).await.unwrap().unwrap().id, r5.id);
    assert_eq!(store.latest_usage_snapshot().await.unwrap().unwrap().customers, day20);
    assert_eq!(store.snapshot(r4).await.unwrap().unwrap().customers, day20);
    // Nothing left to prune: a second call is a no-op.
    assert_eq!(store.prune(at(400 * DAY), days(2), days(10)).await.unwrap(), PruneStats::default());
}
