//! Kill -9 during reconciliations (the pattern of `store_crash`): the test binary re-executes
//! itself as a writer child that recomputes the reconciliation the way the daemon does
//! (`Store::replace_reconciliation` with the pure engine, row by row in one transaction) from
//! inputs that open, change, resolve and remove discrepancies every few steps. The parent
//! SIGKILLs it at random moments (a random number of commits, then 0-40 ms); after every kill the event log and the rows must agree:
//! every open discrepancy has exactly one `discrepancy_opened` and no `discrepancy_resolved`,
//! every opened one without a resolution is still an open row, nothing is there twice, ids have
//! no hole, and nothing the child saw committed is lost. `EVENTS_CRASH_ITERATIONS` raises the
//! default of 15.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use chrono::{DateTime, Utc};
use mpsync::config::Mapping;
use mpsync::events::{Event, EventKind};
use mpsync::model::{Account, BilledLine, BilledSnapshot, CustomerUsage, UsageSnapshot};
use mpsync::reconcile::{Filter, Inputs, RowKey, Settings, SourceStatus, compute_each};
use mpsync::store::Store;

use crate::support::common::{KillOnDrop, test_name};
use crate::support::store::{at, state_dir};

const ACCOUNTS: u64 = 6;

fn mapping() -> Mapping {
    let mut text = String::from("[customers]\n");
    for id in 1..=ACCOUNTS {
        text.push_str(&format!("{id} = \"A{id}\"\n"));
    }
    text.push_str("[products.CloudFilter]\npsa_product = \"MP-CF\"\n");
    Mapping::parse(std::path::Path::new("mapping.toml"), &text).unwrap()
}

/// The inputs of step `i`: each account's count cycles through match and under-billed at its
/// own pace; account 6's line and usage vanish every other 4 steps (its row goes away).
fn snapshots(i: i64) -> (UsageSnapshot, BilledSnapshot) {
    let count = |k: i64| 10 + ((i + k) / (k + 1)) % 3;
    let gone = |k: u64| k == ACCOUNTS && (i / 4) % 2 == 1;
    let customers = (1..=ACCOUNTS)
        .map(|k| CustomerUsage {
            id: k,
            name: format!("Customer {k}"),
            counts: BTreeMap::from([(
                "CloudFilter".into(),
                if gone(k) { 0 } else { count(k as i64) as u64 },
            )]),
        })
        .collect();
    let lines = (1..=ACCOUNTS)
        .filter(|k| !gone(*k))
        .map(|k| BilledLine {
            account_id: format!("A{k}"),
            product_id: "MP-CF".into(),
            quantity: 10.0,
            unit_price: Some(3.0),
            counted: true,
            note: None,
            source_ref: format!("line {k}"),
            line: None,
        })
        .collect();
    let accounts =
        (1..=ACCOUNTS).map(|k| Account { id: format!("A{k}"), name: format!("Account {k}") });
    let run = i as u64 + 1;
    (
        UsageSnapshot { run_id: run, observed_at: at(i), customers },
        BilledSnapshot { run_id: run, observed_at: at(i), accounts: accounts.collect(), lines },
    )
}

/// One recomputation at step `i` (one minute after step `i - 1`).
async fn reconcile(store: &Store, i: i64) {
    let (usage, billed) = snapshots(i);
    let m = mapping();
    store
        .replace_reconciliation(Some(usage.run_id), at(i), move |prior, sink| {
            let inp = Inputs {
                usage: Some(&usage),
                vendor: SourceStatus::default(),
                billed: Some(&billed),
                billing: SourceStatus::default(),
                mapping: &m,
                settings: Settings { max_age: Duration::from_secs(3600), debounce_runs: 1 },
                now: at(i),
                previous_at: Some(at(i - 1)),
                previous: None,
            };
            compute_each(&inp, prior, sink)
        })
        .await
        .unwrap();
}

/// The child: recomputes forever from where the store left off, printing each commit.
async fn writer(state: &std::path::Path) {
    let store = Store::open(state).expect("child opens the store");
    let start = match store.reconciliation_head().await.unwrap() {
        Some(h) => (h.computed_at - at(0)).num_minutes() + 1,
        None => 0,
    };
    println!("READY");
    for i in start.. {
        reconcile(&store, i).await;
        println!("COMMITTED {i} {}", store.last_event_id().await.unwrap());
    }
}

/// The episode an event is about: (row, when it began).
fn episode(e: &Event) -> (RowKey, DateTime<Utc>) {
    (e.row.clone().expect("a row event"), e.since.expect("a row event's since"))
}

/// Checks that the event log and the rows agree; returns the last event id.
async fn check(store: &Store, iteration: u64) -> u64 {
    let events = store.events_after(0, usize::MAX).await.unwrap();
    let ids: Vec<u64> = events.iter().map(|e| e.id).collect();
    assert_eq!(ids, (1..=ids.len() as u64).collect::<Vec<_>>(), "iteration {iteration}: ids");
    let mut opened = BTreeSet::new();
    let mut resolved = BTreeSet::new();
    for e in &events {
        let set = match e.kind {
            EventKind::DiscrepancyOpened => &mut opened,
            EventKind::DiscrepancyResolved => &mut resolved,
            _ => continue,
        };
        assert!(set.insert(episode(e)), "iteration {iteration}: twice: {e:?}");
    }
    assert!(resolved.is_subset(&opened), "iteration {iteration}: resolved but never opened");
    let rows = store.reconciliation_rows(Filter::default(), false).await.unwrap();
    let open_rows: BTreeSet<_> = rows
        .iter()
        .filter_map(|r| {
            let e = r.episode.as_ref().filter(|e| e.is_open() && e.raised_at.is_some())?;
            Some((r.key.clone(), e.started_at))
        })
        .collect();
    let open_events: BTreeSet<_> = opened.difference(&resolved).cloned().collect();
    assert_eq!(open_rows, open_events, "iteration {iteration}: the rows and the log disagree");
    ids.len() as u64
}

#[tokio::test]
async fn sigkill_during_reconciliations_keeps_the_event_log_and_the_rows_in_agreement() {
    if let Some(dir) = std::env::var_os("EVENTS_CRASH_WRITER") {
        writer(std::path::Path::new(&dir)).await;
        return;
    }
    let iterations: u64 =
        std::env::var("EVENTS_CRASH_ITERATIONS").ok().and_then(|v| v.parse().ok()).unwrap_or(15);
    let (_tmp, state) = state_dir();
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    let mut last_seen = 0u64;
    let mut commits = 0u64;
    for iteration in 0..iterations {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let kill_after = 1 + (seed >> 33) % 8;
        let name = test_name(
            module_path!(),
            "sigkill_during_reconciliations_keeps_the_event_log_and_the_rows_in_agreement",
        );
        let child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", &name, "--nocapture"])
            .env("EVENTS_CRASH_WRITER", &state)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut child = KillOnDrop(child);
        let mut out = BufReader::new(child.0.stdout.take().unwrap());
        let (mut line, mut seen, mut ready) = (String::new(), 0, false);
        while seen < kill_after || !ready {
            line.clear();
            assert!(out.read_line(&mut line).unwrap() > 0, "iteration {iteration}: writer died");
            ready |= line.starts_with("READY");
            if let Some(rest) = line.trim().strip_prefix("COMMITTED ") {
                let last: u64 = rest.split(' ').nth(1).unwrap().parse().unwrap();
                last_seen = last_seen.max(last);
                commits += 1;
            }
            if ready {
                seen += 1;
            }
        }
        // A random 0-40 ms later (the sled pattern, pitfalls C8): somewhere inside the next
        // reconciliations, not always at the same point after a commit.
        std::thread::sleep(Duration::from_micros((seed >> 17) % 40_000));
        child.0.kill().unwrap(); // SIGKILL
        child.0.wait().unwrap();
        drop(child);

        let store = Store::open(&state).unwrap_or_else(|e| panic!("iteration {iteration}: {e}"));
        let last = check(&store, iteration).await;
        assert!(last >= last_seen, "iteration {iteration}: committed events were lost");
    }
    eprintln!("{iterations} kills: {commits} reconciliations committed, {last_seen} events");
    assert!(last_seen >= iterations, "the writer made transitions ({last_seen} events)");
}
