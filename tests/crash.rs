//! Crash safety (issue 4): the real daemon polls the simulator every second and is killed with
//! SIGKILL at random moments — mid-collection, right after a commit — then restarted, over and
//! over. After every kill the store must open, keep every committed run, and hold a latest
//! snapshot that is exactly what one finished run saw; after every restart no run may be left
//! running; and the count history may only grow.
//!
//! `CRASH_ITERATIONS=N` runs N kills (default 20); `CRASH_SEED=S` picks another sequence.
//! (Not `MPSYNC_*`: the config loader reads those as config keys.)

use std::collections::{BTreeMap, BTreeSet};

use mpsync::model::{RunId, RunKind, RunOutcome};
use mpsync::store::Store;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::support::common::{TestDir, wait_for};
use crate::support::daemon::{DEADLINE, Daemon};
use crate::support::sync::{Customers, Sim, runs, start_daemon, write_config};

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// What the test knows about the store between kills.
#[derive(Default)]
struct Seen {
    /// Finished runs and their outcomes: a committed run must never change or disappear.
    finished: BTreeMap<RunId, RunOutcome>,
    /// The largest run id seen so far.
    max_id: RunId,
    /// For the runs of each daemon life: (first id of that life, simulator state index).
    lives: Vec<(RunId, usize)>,
    /// History per (customer, product) as (run id, count), and renames per customer.
    history: BTreeMap<(u64, String), Vec<(RunId, u64)>>,
    renames: BTreeMap<u64, Vec<(RunId, String)>>,
    /// Requests one run makes (learned from the latest ok run), to aim the kills.
    per_run: u64,
}

impl Seen {
    /// The simulator state the daemon life that created `run` was polling.
    fn state_of(&self, run: RunId) -> usize {
        self.lives.iter().rev().find(|(first, _)| run >= *first).expect("a known life").1
    }
}

/// Changes the simulated data a little (only while no daemon runs, so every run sees one state).
fn mutate(sim: &Sim, rng: &mut StdRng, step: usize) {
    let (customers, groups) = {
        let data = sim.control().read();
        let main: BTreeSet<u64> = data.main_customers().into_iter().collect();
        let groups: Vec<u64> = data
            .groups()
            .keys()
            .copied()
            .filter(|g| data.customer_of_group(*g).is_some_and(|c| main.contains(&c)))
            .collect();
        (main.into_iter().collect::<Vec<_>>(), groups)
    };
    let group = groups[rng.random_range(0..groups.len())];
    match rng.random_range(0..3) {
        0 => drop(sim.control().add_users(group, rng.random_range(1..6)).unwrap()),
        1 => drop(sim.control().remove_users(group, rng.random_range(1..4)).unwrap()),
        _ => {
            let c = customers[rng.random_range(0..customers.len())];
            sim.control().rename_customer(c, &format!("Renamed {step} Ltd")).unwrap();
        }
    }
}

/// Every check that needs the store itself, with the daemon dead. Returns the runs it found
/// still marked running (the restart must abort them).
fn check_store(sim: &Sim, store: &Store, states: &[Customers], seen: &mut Seen) -> Vec<RunId> {
    let all = sim.block_on(store.recent_runs(usize::MAX, None)).unwrap();
    let ids: Vec<RunId> = all.iter().map(|r| r.id).collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "run ids are unique and ordered: {ids:?}");
    let max = ids.first().copied().unwrap_or(0);
    assert!(max >= seen.max_id, "run ids went backwards: {max} after {}", seen.max_id);
    seen.max_id = max;
    let by_id: BTreeMap<RunId, _> = all.iter().map(|r| (r.id, r)).collect();
    for (id, outcome) in &seen.finished {
        let now = by_id.get(id).map(|r| r.outcome);
        assert_eq!(now, Some(*outcome), "committed run {id} changed or vanished");
    }
    let mut running = Vec::new();
    for r in &all {
        assert_eq!(r.kind, RunKind::Vendor);
        match r.outcome {
            RunOutcome::Running => running.push(r.id),
            outcome => {
                assert!(r.finished_at.is_some_and(|f| f >= r.started_at), "{r:?}");
                seen.finished.insert(r.id, outcome);
            }
        }
    }
    assert!(running.len() <= 1, "at most the run the kill interrupted: {running:?}");

    let last_ok = all.iter().find(|r| r.outcome == RunOutcome::Ok);
    let latest = sim.block_on(store.latest_usage_snapshot()).unwrap();
    let Some(last_ok) = last_ok else {
        assert!(latest.is_none(), "a snapshot without a successful run");
        return running;
    };
    seen.per_run = last_ok.requests.values().sum::<u64>().max(4);
    let latest = latest.expect("a successful run left a snapshot");
    assert_eq!(latest.run_id, last_ok.id, "the latest snapshot belongs to the last ok run");
    let cids: Vec<u64> = latest.customers.iter().map(|c| c.id).collect();
    assert!(cids.windows(2).all(|w| w[0] < w[1]), "customers sorted, no duplicates: {cids:?}");
    let got: Customers =
        latest.customers.iter().map(|c| (c.id, (c.name.clone(), c.counts.clone()))).collect();
    let state = seen.state_of(last_ok.id);
    assert_eq!(got, states[state], "run {} saw simulator state {state}", last_ok.id);
    let stored = last_ok.snapshot.expect("an ok vendor run names its snapshot");
    let rebuilt = sim.block_on(store.snapshot(stored)).unwrap().expect("its snapshot is kept");
    assert_eq!(rebuilt.customers, latest.customers, "snapshot {stored} = latest content");

    // History only grows, and its last point is the latest snapshot's count.
    let customers: BTreeSet<u64> = states.iter().flat_map(|s| s.keys().copied()).collect();
    let products: BTreeSet<String> =
        states.iter().flat_map(|s| s.values().flat_map(|(_, c)| c.keys().cloned())).collect();
    for &c in &customers {
        for p in &products {
            let points: Vec<(RunId, u64)> = sim
                .block_on(store.history(c, p))
                .unwrap()
                .iter()
                .map(|h| (h.run_id, h.count))
                .collect();
            assert!(points.windows(2).all(|w| w[0].0 < w[1].0), "{c}/{p}: {points:?}");
            let now = got.get(&c).and_then(|(_, counts)| counts.get(p)).copied().unwrap_or(0);
            assert_eq!(points.last().map_or(0, |p| p.1), now, "{c}/{p}: {points:?}");
            let before = seen.history.insert((c, p.clone()), points.clone()).unwrap_or_default();
            assert!(points.starts_with(&before), "{c}/{p} lost history: {before:?} → {points:?}");
        }
        let renames: Vec<(RunId, String)> = sim
            .block_on(store.renames(c))
            .unwrap()
            .into_iter()
            .map(|r| (r.run_id, r.new_name))
            .collect();
        if let Some((_, name)) = renames.last() {
            assert_eq!(Some(name), got.get(&c).map(|(n, _)| n), "customer {c}");
        }
        let before = seen.renames.insert(c, renames.clone()).unwrap_or_default();
        assert!(renames.starts_with(&before), "{c} lost renames: {before:?} → {renames:?}");
    }
    running
}

/// Waits for a random moment of the daemon's work, then SIGKILLs it.
fn kill_at_random_moment(sim: &Sim, d: &mut Daemon, rng: &mut StdRng, per_run: u64) {
    if rng.random_bool(0.25) {
        // Right after a commit: the next run is beginning while the last one just landed.
        let done = d.stderr().matches("run succeeded").count();
        wait_for(DEADLINE, "a run to succeed", || {
            (d.stderr().matches("run succeeded").count() > done).then_some(())
        });
    } else {
        // Somewhere inside a run: after a random number of upstream requests.
        let target = sim.control().requests().total + rng.random_range(0..per_run * 2);
        wait_for(DEADLINE, "the simulator to answer more requests", || {
            (sim.control().requests().total >= target).then_some(())
        });
    }
    d.signal("KILL");
    let status = d.wait_exit();
    assert_eq!(std::os::unix::process::ExitStatusExt::signal(&status), Some(9), "{status}");
}

#[test]
fn sigkill_at_random_moments_loses_nothing_committed_and_corrupts_nothing() {
    let iterations: usize = env_or("CRASH_ITERATIONS", 20);
    let seed: u64 = env_or("CRASH_SEED", 0xC0FFEE);
    let mut rng = StdRng::seed_from_u64(seed);
    let sim = Sim::start(seed, 40);
    sim.latency(5);
    let dir = TestDir::new();
    let config = write_config(&dir, "127.0.0.1:9", &sim, "* * * * * *");
    let mut states = vec![sim.truth()];
    let mut seen = Seen { per_run: 40, ..Seen::default() };
    let mut leftover: Vec<RunId> = Vec::new();

    for i in 0..iterations {
        let context = format!("iteration {i} of {iterations}, CRASH_SEED={seed}");
        eprintln!("crash test: {context}");
        if i > 0 && rng.random_bool(0.4) {
            mutate(&sim, &mut rng, i);
            states.push(sim.truth());
        }
        seen.lives.push((seen.max_id + 1, states.len() - 1));
        let mut d = start_daemon(&config);
        // Start-up marked the runs the last kill interrupted as aborted, before anything else.
        let listed = runs(&d);
        for id in &leftover {
            let r = listed.iter().find(|r| r["id"] == *id).expect("the interrupted run is kept");
            assert_eq!(r["outcome"], "aborted", "{context}: {r}");
        }
        assert!(
            listed
                .iter()
                .filter(|r| r["outcome"] == "running")
                .all(|r| r["id"].as_u64().unwrap() > seen.max_id),
            "{context}: only new runs may be running: {listed:?}"
        );
        kill_at_random_moment(&sim, &mut d, &mut rng, seen.per_run);
        drop(d);

        let store = sim.open_store(&dir.state_dir());
        leftover = check_store(&sim, &store, &states, &mut seen);
        drop(store);
    }
    let ok = seen.finished.values().filter(|o| **o == RunOutcome::Ok).count();
    let aborted = seen.finished.values().filter(|o| **o == RunOutcome::Aborted).count();
    eprintln!(
        "crash test: {iterations} kills, {} runs ({ok} ok, {aborted} aborted), {} data states",
        seen.finished.len(),
        states.len()
    );
    assert!(ok >= 1 && aborted >= 1, "kills hit finished and running runs: {:?}", seen.finished);
}
