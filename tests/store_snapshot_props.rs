//! Property: every stored snapshot is rebuilt exactly as committed, whatever the sequence of
//! additions, removals, count changes and renames, and the history's last points agree.

use std::collections::BTreeMap;

use mpsync::model::CustomerUsage;
use mpsync::store::Store;
use proptest::prelude::*;

use crate::support::store::*;

fn customers() -> impl Strategy<Value = Vec<CustomerUsage>> {
    // Few ids, products and names so runs often repeat, rename, and drop things.
    proptest::collection::btree_map(
        1u64..8,
        (0usize..3, proptest::collection::btree_map(0usize..3, 0u64..4, 0..3)),
        0..6,
    )
    .prop_map(|m| {
        m.into_iter()
            .map(|(id, (name, counts))| CustomerUsage {
                id,
                name: format!("name{name}"),
                counts: counts.into_iter().map(|(p, n)| (format!("P{p}"), n)).collect(),
            })
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
    #[test]
    fn snapshots_rebuild_exactly(runs in proptest::collection::vec(customers(), 1..8)) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let (_tmp, state) = state_dir();
            let store = Store::open(&state).unwrap();
            let mut stored: BTreeMap<u64, Vec<CustomerUsage>> = BTreeMap::new();
            let mut last = None;
            for (i, data) in runs.iter().enumerate() {
                let rec = vendor_run(&store, i as i64 * 30, data.clone()).await;
                let snap = rec.snapshot.unwrap();
                if snap == rec.id {
                    prop_assert_ne!(Some(data), last.as_ref(), "a new snapshot means new content");
                    stored.insert(snap, data.clone());
                } else {
                    prop_assert_eq!(Some(data), last.as_ref(), "reuse means same content");
                }
                last = Some(data.clone());
            }
            for (id, data) in &stored {
                let got = store.snapshot(*id).await.unwrap().unwrap();
                prop_assert_eq!(&got.customers, data);
            }
            let latest = store.latest_usage_snapshot().await.unwrap().unwrap();
            prop_assert_eq!(Some(&latest.customers), last.as_ref());
            // The last history point of each (customer, product) is the latest count.
            for c in latest.customers.iter() {
                for (p, n) in &c.counts {
                    let h = store.history(c.id, p).await.unwrap();
                    prop_assert_eq!(h.last().map_or(0, |pt| pt.count), *n);
                }
            }
            Ok(())
        })?;
    }
}
