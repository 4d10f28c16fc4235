//! Kill -9 at random points of store writes (the sled crash-test pattern, pitfalls C8): the
//! test binary re-executes itself as a writer child, which the parent SIGKILLs after a random
//! number of progress lines; after each kill the store must open, no run may stay running,
//! every run the child saw committed must be there, and the latest snapshot must be exactly the
//! content its run committed. `STORE_CRASH_ITERATIONS` raises the default of 20 iterations.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use mpsync::model::{CustomerUsage, RunKind, RunOutcome};
use mpsync::store::Store;

use crate::support::common::{KillOnDrop, test_name};
use crate::support::store::*;

/// The content a run with this id commits: pairs of runs share content, so dedup happens too.
fn content(run: u64) -> Vec<CustomerUsage> {
    let mut data = dataset(40);
    let step = run / 2;
    for c in data.iter_mut() {
        if c.id % 5 == step % 5 {
            *c.counts.get_mut("CloudFilter").unwrap() += step;
        }
        if c.id == step % 40 + 1 {
            c.name = format!("renamed at {step}");
        }
    }
    data
}

/// The child: commits vendor runs (and some failed ones) forever, printing each step.
async fn writer(state: &std::path::Path) {
    let store = Store::open(state).expect("child opens the store");
    store.abort_leftover_runs(at(0)).await.unwrap();
    println!("READY");
    for i in 0.. {
        let id = store.begin_run(RunKind::Vendor, at(i)).await.unwrap();
        println!("BEGUN {id}");
        if id % 7 == 0 {
            store.fail_run(id, at(i), "injected".into(), requests()).await.unwrap();
        } else {
            store.commit_vendor_run(id, at(i + 1), requests(), content(id)).await.unwrap();
            println!("COMMITTED {id}");
        }
    }
}

#[tokio::test]
async fn sigkill_during_writes_never_loses_or_tears_a_commit() {
    if let Some(dir) = std::env::var_os("STORE_CRASH_WRITER") {
        writer(std::path::Path::new(&dir)).await;
        return;
    }
    let iterations: u64 =
        std::env::var("STORE_CRASH_ITERATIONS").ok().and_then(|v| v.parse().ok()).unwrap_or(20);
    let (_tmp, state) = state_dir();
    let mut committed = BTreeSet::new();
    let mut last_id = 0;
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    for iteration in 0..iterations {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let kill_after = (seed >> 33) % 12; // progress lines to read before the kill
        let child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                &test_name(module_path!(), "sigkill_during_writes_never_loses_or_tears_a_commit"),
                "--nocapture",
            ])
            .env("STORE_CRASH_WRITER", &state)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut child = KillOnDrop(child);
        let mut out = BufReader::new(child.0.stdout.take().unwrap());
        let (mut line, mut seen) = (String::new(), 0);
        let mut ready = false;
        while seen < kill_after || !ready {
            line.clear();
            assert!(out.read_line(&mut line).unwrap() > 0, "iteration {iteration}: writer died");
            ready |= line.starts_with("READY");
            if let Some(id) = line.trim().strip_prefix("COMMITTED ") {
                committed.insert(id.parse::<u64>().unwrap());
            }
            if ready {
                seen += 1;
            }
        }
        child.0.kill().unwrap(); // SIGKILL, somewhere inside the next write
        child.0.wait().unwrap();
        drop(child);

        let store = Store::open(&state).unwrap_or_else(|e| panic!("iteration {iteration}: {e}"));
        for id in store.abort_leftover_runs(at(0)).await.unwrap() {
            assert!(!committed.contains(&id), "a committed run {id} came back as running");
        }
        let runs = store.recent_runs(usize::MAX, None).await.unwrap();
        assert!(runs.iter().all(|r| r.outcome != RunOutcome::Running));
        let ids: BTreeSet<u64> =
            runs.iter().filter(|r| r.outcome == RunOutcome::Ok).map(|r| r.id).collect();
        assert!(committed.is_subset(&ids), "iteration {iteration}: a reported commit was lost");
        let newest = runs.first().map_or(0, |r| r.id);
        assert!(newest >= last_id, "run ids never go backwards");
        last_id = newest;
        if let Some(latest) = store.latest_usage_snapshot().await.unwrap() {
            assert_eq!(
                latest.customers,
                content(latest.run_id),
                "iteration {iteration}: torn snapshot"
            );
            for c in &latest.customers {
                let h = store.history(c.id, "CloudFilter").await.unwrap();
                assert_eq!(h.last().unwrap().count, c.counts["CloudFilter"], "history agrees");
                assert!(h.windows(2).all(|w| w[0].run_id < w[1].run_id), "history in run order");
            }
        }
    }
    let aborted = Store::open(&state).unwrap().recent_runs(usize::MAX, None).await.unwrap();
    let aborted = aborted.iter().filter(|r| r.outcome == RunOutcome::Aborted).count();
    eprintln!(
        "{iterations} kills: {} commits seen, {aborted} runs killed mid-run, last id {last_id}",
        committed.len()
    );
    assert!(
        committed.len() as u64 >= iterations / 2,
        "the writer made progress ({})",
        committed.len()
    );
}
