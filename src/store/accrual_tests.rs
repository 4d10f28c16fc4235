//! What the money of open discrepancies costs the store: rows written per recomputation.
//! Stored as a compact accumulator (the episode), an open discrepancy whose numbers do not
//! change is not rewritten, though the money it serves grows at every computation; storing the
//! money itself would rewrite every open discrepancy every time.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};

use super::tests::raw;
use super::*;
use crate::config::Mapping;
use crate::model::{Account, BilledLine, BilledSnapshot, CustomerUsage, UsageSnapshot};
use crate::reconcile::{Filter, Inputs, Settings, SourceStatus, compute_each};

/// Accounts, each with one under-billed row (12 in use, 10 billed at 2.00).
const N: u64 = 50;

fn at(minutes: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap() + chrono::Duration::minutes(minutes)
}

async fn recompute(store: &Store, m: &Mapping, minutes: i64, previous: Option<i64>) {
    let usage = UsageSnapshot {
        run_id: minutes as u64 + 1,
        observed_at: at(minutes),
        customers: (1..=N)
            .map(|k| CustomerUsage {
                id: k,
                name: format!("Customer {k}"),
                counts: BTreeMap::from([("CloudFilter".into(), 12)]),
            })
            .collect(),
    };
    let billed = BilledSnapshot {
        run_id: minutes as u64 + 1,
        observed_at: at(minutes),
        accounts: (1..=N)
            .map(|k| Account { id: format!("A{k}"), name: format!("A {k}") })
            .collect(),
        lines: (1..=N)
            .map(|k| BilledLine {
                account_id: format!("A{k}"),
                product_id: "MP-CF".into(),
                quantity: 10.0,
                unit_price: Some(2.0),
                counted: true,
                note: None,
                source_ref: format!("line {k}"),
                line: None,
            })
            .collect(),
    };
    let m = m.clone();
    store
        .replace_reconciliation(Some(usage.run_id), at(minutes), move |prior, sink| {
            let inp = Inputs {
                usage: Some(&usage),
                vendor: SourceStatus::default(),
                billed: Some(&billed),
                billing: SourceStatus::default(),
                mapping: &m,
                settings: Settings { max_age: Duration::from_secs(2 * 3600), debounce_runs: 1 },
                now: at(minutes),
                previous_at: previous.map(at),
                previous: None,
            };
            compute_each(&inp, prior, sink)
        })
        .await
        .unwrap();
}

#[tokio::test]
async fn open_discrepancies_are_not_rewritten_while_their_money_grows() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let mut text = String::from("[customers]\n");
    for k in 1..=N {
        text.push_str(&format!("{k} = \"A{k}\"\n"));
    }
    text.push_str("[products.CloudFilter]\npsa_product = \"MP-CF\"\n");
    let m = Mapping::parse(std::path::Path::new("mapping.toml"), &text).unwrap();
    let served = |rows: &[Row]| rows.iter().map(|r| r.accrued.unwrap()).sum::<f64>();

    recompute(&store, &m, 0, None).await;
    let mut before = raw(&store);
    let mut money = 0.0;
    let mut written = Vec::new();
    let mut served_before = store.reconciliation_rows(Filter::default(), false).await.unwrap();
    // A recomputation every 5 minutes for two hours, as the daemon's refresh does.
    for step in 1..=24 {
        recompute(&store, &m, step * 5, Some((step - 1) * 5)).await;
        let now = raw(&store);
        written.push(now.iter().filter(|e| !before.contains(*e)).count());
        before = now;
        let rows = store.reconciliation_rows(Filter::default(), false).await.unwrap();
        // What a store keeping the money itself would rewrite: every open discrepancy.
        let differ = rows.iter().zip(&served_before).filter(|(a, b)| a != b).count();
        assert_eq!(differ, N as usize, "step {step}");
        let total = served(&rows);
        assert!(total > money, "step {step}: the money served grows ({total} after {money})");
        money = total;
        served_before = rows;
    }
    // 50 rows × 4.00 a month × 2 hours.
    let want = N as f64 * 4.0 * 2.0 * 3600.0 / crate::reconcile::episode::MONTH;
    assert!((money - want).abs() < 1e-9, "{money} vs {want}");
    eprintln!(
        "rows (and evidence) written per recomputation with {N} open discrepancies: {written:?}"
    );
    assert!(written.iter().all(|n| *n == 0), "{written:?}");

    // After the daemon was down for 3 hours (more than max_age), every open discrepancy is
    // written once to exclude the gap, then no more.
    recompute(&store, &m, 120 + 180, Some(120)).await;
    let now = raw(&store);
    assert_eq!(now.iter().filter(|e| !before.contains(*e)).count(), N as usize);
    before = now;
    recompute(&store, &m, 305, Some(300)).await;
    // (The episode's money is read back bit for bit: serde_json's float_roundtrip.)
    assert_eq!(raw(&store).iter().filter(|e| !before.contains(*e)).count(), 0);
    let rows = store.reconciliation_rows(Filter::default(), false).await.unwrap();
    assert!(rows.iter().all(|r| r.excluded_seconds == Some(3 * 3600)));
    assert!(crate::reconcile::note(&rows[0]).contains("3 hours excluded from accrued"));
}
