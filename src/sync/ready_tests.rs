//! Engine tests of a job that is not ready: skipped and counted, never a failed run, no
//! backoff, and started again as soon as another job succeeds.

use std::sync::atomic::AtomicBool;

use super::*;

/// The push's shape: not ready until a vendor run set `have_snapshot`.
struct WaitsForSnapshot {
    have_snapshot: Arc<AtomicBool>,
    runs: AtomicU32,
}

impl Job for WaitsForSnapshot {
    fn run(&self, _ctx: RunContext) -> BoxFuture<'_, JobResult> {
        Box::pin(async move {
            self.runs.fetch_add(1, Ordering::SeqCst);
            JobResult { outcome: Ok(JobOutput::Plain), requests: BTreeMap::new(), stats: vec![] }
        })
    }

    fn ready(&self) -> BoxFuture<'_, Result<(), NotReady>> {
        Box::pin(async move {
            if self.have_snapshot.load(Ordering::SeqCst) {
                Ok(())
            } else {
                Err(NotReady::NoVendorSnapshot)
            }
        })
    }
}

/// A vendor poll that, once let through, leaves a snapshot.
struct Poll {
    gate: Arc<Semaphore>,
    have_snapshot: Arc<AtomicBool>,
}

impl Job for Poll {
    fn run(&self, _ctx: RunContext) -> BoxFuture<'_, JobResult> {
        Box::pin(async move {
            self.gate.acquire().await.unwrap().forget();
            self.have_snapshot.store(true, Ordering::SeqCst);
            JobResult { outcome: Ok(JobOutput::Plain), requests: BTreeMap::new(), stats: vec![] }
        })
    }
}

#[derive(Default)]
struct Seen {
    counts: CountingObserver,
    waiting_for: Mutex<Vec<String>>,
    backoffs: AtomicU32,
}

impl RunObserver for Seen {
    fn finished(&self, k: RunKind, r: &RunRecord, d: Duration) {
        self.counts.finished(k, r, d);
    }
    fn skipped(&self, k: RunKind, why: &SkipReason) {
        if let SkipReason::NotReady(w) = why {
            self.waiting_for.lock().unwrap().push(format!("{k}: {w}"));
        }
        self.counts.skipped(k, why);
    }
    fn backing_off(&self, _k: RunKind, _f: u32, _w: Duration) {
        self.backoffs.fetch_add(1, Ordering::SeqCst);
    }
}

#[tokio::test(start_paused = true)]
async fn a_job_not_ready_is_a_recorded_skip_and_runs_when_another_job_succeeds() {
    let have_snapshot = Arc::new(AtomicBool::new(false));
    let push = Arc::new(WaitsForSnapshot { have_snapshot: have_snapshot.clone(), runs: 0.into() });
    let poll = Arc::new(Poll { gate: Arc::new(Semaphore::new(0)), have_snapshot });
    let schedule = Schedule::parse("0 0 6 * * *").unwrap();
    let specs = vec![
        JobSpec { kind: RunKind::Vendor, schedule: schedule.clone(), job: poll.clone() },
        JobSpec { kind: RunKind::Push, schedule, job: push.clone() },
    ];
    let ledger = Arc::new(MemLedger::default());
    let seen = Arc::new(Seen::default());
    let opts = EngineOptions { catch_up: false, now: Arc::new(t0), seed: 3, ..Default::default() };
    let (engine, handle) = Engine::new(specs, ledger.clone(), seen.clone(), opts);
    let (cancel, tracker) = (CancellationToken::new(), TaskTracker::new());
    tracker.spawn(engine.run(cancel.clone(), tracker.clone()));

    assert_eq!(handle.trigger_now(RunKind::Push).await, TriggerOutcome::Started);
    let skips = || seen.counts.skipped_not_ready.load(Ordering::SeqCst);
    wait_until("the not-ready skip", || skips() == 1).await;
    assert_eq!(
        *seen.waiting_for.lock().unwrap(),
        [format!("push: {WAITING_FOR_SNAPSHOT}")],
        "the skip says what the job waits for"
    );
    assert!(ledger.outcomes().is_empty(), "a skip is not a run");
    // No backoff: the next tick asks again at once.
    handle.tick(RunKind::Push);
    wait_until("a second not-ready skip", || skips() == 2).await;
    assert_eq!(seen.counts.skipped_backoff.load(Ordering::SeqCst), 0);
    assert_eq!(seen.backoffs.load(Ordering::SeqCst), 0);

    // The vendor poll succeeds: the waiting push starts by itself, with no tick.
    assert_eq!(handle.trigger_now(RunKind::Vendor).await, TriggerOutcome::Started);
    poll.gate.add_permits(1);
    wait_until("the push ran", || push.runs.load(Ordering::SeqCst) == 1).await;
    wait_until("both recorded", || seen.counts.finished.load(Ordering::SeqCst) == 2).await;
    let kinds: Vec<(RunKind, RunOutcome)> =
        ledger.runs.lock().unwrap().iter().map(|r| (r.kind, r.outcome)).collect();
    assert_eq!(kinds, [(RunKind::Vendor, RunOutcome::Ok), (RunKind::Push, RunOutcome::Ok)]);
    // Only a waiting job is started that way: another vendor success starts no push.
    handle.trigger_now(RunKind::Vendor).await;
    poll.gate.add_permits(1);
    wait_until("third run recorded", || seen.counts.finished.load(Ordering::SeqCst) == 3).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(push.runs.load(Ordering::SeqCst), 1);
    cancel.cancel();
    tracker.close();
    tracker.wait().await;
}
