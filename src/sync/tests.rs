//! Engine tests under paused tokio time, with an in-memory ledger and scripted jobs.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::*;
use crate::config::Schedule;
use crate::model::{RunId, RunKind, RunOutcome, RunRecord};
use crate::store::StoreError;
use crate::upstream::UpstreamError;

/// A job failure as an outage of Mailprotector on `endpoint` leaves it.
fn upstream_down(endpoint: &str) -> JobError {
    JobError::Upstream(UpstreamError::Unavailable {
        upstream: "mailprotector".into(),
        endpoint: endpoint.into(),
        attempts: 4,
        detail: "503 Service Unavailable".into(),
    })
}

#[derive(Default)]
struct MemLedger {
    runs: Mutex<Vec<RunRecord>>,
    last_success: Mutex<Option<DateTime<Utc>>>,
    fail_commits: std::sync::atomic::AtomicBool,
}

impl MemLedger {
    fn outcomes(&self) -> Vec<RunOutcome> {
        self.runs.lock().unwrap().iter().map(|r| r.outcome).collect()
    }
    fn finish(
        &self,
        id: RunId,
        at: DateTime<Utc>,
        outcome: RunOutcome,
        error: Option<String>,
    ) -> RunRecord {
        let mut runs = self.runs.lock().unwrap();
        let r = runs.iter_mut().find(|r| r.id == id).unwrap();
        r.finished_at = Some(at);
        r.outcome = outcome;
        r.error = error;
        r.clone()
    }
}

impl RunLedger for MemLedger {
    fn begin(&self, kind: RunKind, at: DateTime<Utc>) -> BoxFuture<'_, Result<RunId, StoreError>> {
        Box::pin(async move {
            let mut runs = self.runs.lock().unwrap();
            let id = runs.len() as RunId + 1;
            runs.push(RunRecord {
                id,
                kind,
                started_at: at,
                finished_at: None,
                outcome: RunOutcome::Running,
                requests: BTreeMap::new(),
                error: None,
                snapshot: None,
                counting: None,
            });
            Ok(id)
        })
    }
    fn complete(
        &self,
        id: RunId,
        at: DateTime<Utc>,
        _r: BTreeMap<String, u64>,
        _o: JobOutput,
    ) -> BoxFuture<'_, Result<RunRecord, StoreError>> {
        Box::pin(async move {
            if self.fail_commits.load(Ordering::SeqCst) {
                return Err(StoreError::Io {
                    action: "commit the run end",
                    path: "mem.redb".into(),
                    source: std::io::Error::new(std::io::ErrorKind::StorageFull, "disk full"),
                });
            }
            *self.last_success.lock().unwrap() = Some(at);
            Ok(self.finish(id, at, RunOutcome::Ok, None))
        })
    }
    fn fail(
        &self,
        id: RunId,
        at: DateTime<Utc>,
        reason: String,
        _r: BTreeMap<String, u64>,
    ) -> BoxFuture<'_, Result<RunRecord, StoreError>> {
        Box::pin(async move { Ok(self.finish(id, at, RunOutcome::Failed, Some(reason))) })
    }
    fn cancel(
        &self,
        id: RunId,
        at: DateTime<Utc>,
        reason: String,
        _r: BTreeMap<String, u64>,
    ) -> BoxFuture<'_, Result<RunRecord, StoreError>> {
        Box::pin(async move { Ok(self.finish(id, at, RunOutcome::Cancelled, Some(reason))) })
    }
    fn last_success(
        &self,
        _kind: RunKind,
    ) -> BoxFuture<'_, Result<Option<DateTime<Utc>>, StoreError>> {
        Box::pin(async move { Ok(*self.last_success.lock().unwrap()) })
    }
}

/// A job whose runs block until the test releases a permit; it records concurrency.
struct GatedJob {
    gate: Arc<Semaphore>,
    active: AtomicUsize,
    max_active: AtomicUsize,
    calls: AtomicU32,
    fail_first: u32,
    panic: bool,
}

impl GatedJob {
    fn new(fail_first: u32) -> Arc<GatedJob> {
        Arc::new(GatedJob {
            gate: Arc::new(Semaphore::new(0)),
            active: AtomicUsize::new(0),
            max_active: AtomicUsize::new(0),
            calls: AtomicU32::new(0),
            fail_first,
            panic: false,
        })
    }
}

impl Job for GatedJob {
    fn run(&self, ctx: RunContext) -> BoxFuture<'_, JobResult> {
        Box::pin(async move {
            let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
            let now = self.active.fetch_add(1, Ordering::SeqCst) + 1;
            self.max_active.fetch_max(now, Ordering::SeqCst);
            if self.panic {
                panic!("scripted panic");
            }
            let outcome = tokio::select! {
                p = self.gate.acquire() => { p.unwrap().forget(); if n <= self.fail_first { Err(upstream_down("GET /resellers/{id}/customers")) } else { Ok(JobOutput::Plain) } }
                _ = ctx.cancel.cancelled() => Err(JobError::Cancelled),
            };
            self.active.fetch_sub(1, Ordering::SeqCst);
            JobResult { outcome, requests: BTreeMap::new(), stats: vec![] }
        })
    }
}

#[derive(Default)]
struct CountingObserver {
    skipped_overlap: AtomicU32,
    skipped_backoff: AtomicU32,
    skipped_not_ready: AtomicU32,
    finished: AtomicU32,
}

impl RunObserver for CountingObserver {
    fn finished(&self, _k: RunKind, _r: &RunRecord, _d: Duration) {
        self.finished.fetch_add(1, Ordering::SeqCst);
    }
    fn skipped(&self, _k: RunKind, why: &SkipReason) {
        match why {
            SkipReason::Overlap => &self.skipped_overlap,
            SkipReason::Backoff => &self.skipped_backoff,
            SkipReason::NotReady(_) => &self.skipped_not_ready,
        }
        .fetch_add(1, Ordering::SeqCst);
    }
}

struct Rig {
    handle: EngineHandle,
    ledger: Arc<MemLedger>,
    observer: Arc<CountingObserver>,
    cancel: CancellationToken,
    tracker: TaskTracker,
    beats: Arc<AtomicU32>,
}

fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-03-01T10:10:00Z").unwrap().with_timezone(&Utc)
}

fn start(job: Arc<GatedJob>, ledger: Arc<MemLedger>, catch_up: bool) -> Rig {
    let observer = Arc::new(CountingObserver::default());
    let beats = Arc::new(AtomicU32::new(0));
    let b = beats.clone();
    let opts = EngineOptions {
        tick: Duration::from_secs(1),
        catch_up,
        now: Arc::new(t0),
        beat: Arc::new(move || {
            b.fetch_add(1, Ordering::SeqCst);
        }),
        seed: 7,
        stop: StopReason::default(),
    };
    let spec = JobSpec {
        kind: RunKind::Vendor,
        schedule: Schedule::parse("0 */30 * * * *").unwrap(),
        job,
    };
    let (engine, handle) = Engine::new(vec![spec], ledger.clone(), observer.clone(), opts);
    let cancel = CancellationToken::new();
    let tracker = TaskTracker::new();
    tracker.spawn(engine.run(cancel.clone(), tracker.clone()));
    Rig { handle, ledger, observer, cancel, tracker, beats }
}

async fn settle() {
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
}

async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    // Paused time: up to ten virtual hours in 100 ms steps, which costs little real time.
    for _ in 0..360_000 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("condition never held: {what}");
}

impl Rig {
    async fn stop(self) {
        self.cancel.cancel();
        self.tracker.close();
        tokio::time::timeout(Duration::from_secs(30), self.tracker.wait())
            .await
            .expect("drained within grace");
    }
}

#[tokio::test(start_paused = true)]
async fn a_tick_during_a_run_is_a_counted_skip_never_a_second_run() {
    let job = GatedJob::new(0);
    let rig = start(job.clone(), Arc::new(MemLedger::default()), false);
    assert_eq!(rig.handle.trigger_now(RunKind::Vendor).await, TriggerOutcome::Started);
    settle().await;
    rig.handle.tick(RunKind::Vendor);
    rig.handle.tick(RunKind::Vendor);
    assert_eq!(
        rig.handle.trigger_now(RunKind::Vendor).await,
        TriggerOutcome::Skipped(SkipReason::Overlap)
    );
    wait_until("three skips counted", || rig.observer.skipped_overlap.load(Ordering::SeqCst) == 3)
        .await;
    job.gate.add_permits(1);
    wait_until("run finished", || rig.observer.finished.load(Ordering::SeqCst) == 1).await;
    assert_eq!(job.max_active.load(Ordering::SeqCst), 1);
    assert_eq!(rig.ledger.outcomes(), vec![RunOutcome::Ok]);
    // Once finished, the next tick runs again.
    rig.handle.tick(RunKind::Vendor);
    wait_until("second run started", || job.calls.load(Ordering::SeqCst) == 2).await;
    job.gate.add_permits(1);
    wait_until("second run finished", || rig.observer.finished.load(Ordering::SeqCst) == 2).await;
    rig.stop().await;
}

#[tokio::test(start_paused = true)]
async fn catch_up_runs_a_job_that_never_succeeded_but_not_a_fresh_one() {
    let job = GatedJob::new(0);
    job.gate.add_permits(10);
    let rig = start(job.clone(), Arc::new(MemLedger::default()), true);
    wait_until("catch-up run", || rig.observer.finished.load(Ordering::SeqCst) == 1).await;
    rig.stop().await;

    let fresh = Arc::new(MemLedger::default());
    *fresh.last_success.lock().unwrap() = Some(t0() - chrono::Duration::minutes(10));
    let job2 = GatedJob::new(0);
    let rig = start(job2.clone(), fresh.clone(), true);
    tokio::time::sleep(Duration::from_secs(120)).await;
    assert_eq!(
        job2.calls.load(Ordering::SeqCst),
        0,
        "a success 10 minutes ago is within the 30-minute period"
    );
    rig.stop().await;

    let old = Arc::new(MemLedger::default());
    *old.last_success.lock().unwrap() = Some(t0() - chrono::Duration::minutes(45));
    let job3 = GatedJob::new(0);
    job3.gate.add_permits(1);
    let rig = start(job3.clone(), old, true);
    wait_until("catch-up of a 45-minute-old success", || job3.calls.load(Ordering::SeqCst) == 1)
        .await;
    rig.stop().await;
}

#[tokio::test(start_paused = true)]
async fn failures_back_off_with_skipped_ticks_then_retry_and_reset_on_success() {
    let job = GatedJob::new(2);
    job.gate.add_permits(100);
    let rig = start(job.clone(), Arc::new(MemLedger::default()), false);
    let started = tokio::time::Instant::now();
    rig.handle.trigger_now(RunKind::Vendor).await;
    wait_until("first failure", || rig.observer.finished.load(Ordering::SeqCst) == 1).await;
    // A regular tick inside the backoff window is skipped and counted.
    rig.handle.tick(RunKind::Vendor);
    wait_until("backoff skip", || rig.observer.skipped_backoff.load(Ordering::SeqCst) == 1).await;
    assert_eq!(job.calls.load(Ordering::SeqCst), 1);
    // The retry comes by itself: after ~1 period (30 min, up to +20%), then ~2 periods.
    wait_until("second attempt", || job.calls.load(Ordering::SeqCst) == 2).await;
    let first_wait = started.elapsed();
    assert!(
        first_wait >= Duration::from_secs(1800) && first_wait < Duration::from_secs(2161),
        "{first_wait:?}"
    );
    wait_until("third attempt", || job.calls.load(Ordering::SeqCst) == 3).await;
    let second_wait = started.elapsed() - first_wait;
    assert!(
        second_wait >= Duration::from_secs(3600) && second_wait < Duration::from_secs(4321),
        "{second_wait:?}"
    );
    wait_until("third attempt recorded", || rig.observer.finished.load(Ordering::SeqCst) == 3)
        .await;
    assert_eq!(rig.ledger.outcomes(), vec![RunOutcome::Failed, RunOutcome::Failed, RunOutcome::Ok]);
    assert_eq!(
        rig.ledger.runs.lock().unwrap()[0].error.as_deref(),
        Some(
            "mailprotector is unavailable: GET /resellers/{id}/customers failed after 4 attempts \
             (503 Service Unavailable); check the base_url and the network, or try later"
        ),
        "the record keeps the job error's own text"
    );
    // Success reset the backoff: a tick now runs at once.
    rig.handle.tick(RunKind::Vendor);
    wait_until("tick after success runs", || job.calls.load(Ordering::SeqCst) == 4).await;
    rig.stop().await;
}

#[tokio::test(start_paused = true)]
async fn shutdown_cancels_a_running_job_and_records_it_cancelled() {
    let job = GatedJob::new(0);
    let rig = start(job.clone(), Arc::new(MemLedger::default()), false);
    rig.handle.trigger_now(RunKind::Vendor).await;
    wait_until("run started", || job.calls.load(Ordering::SeqCst) == 1).await;
    let ledger = rig.ledger.clone();
    rig.stop().await;
    assert_eq!(ledger.outcomes(), vec![RunOutcome::Cancelled]);
    // Nobody said why: the record still says what stopped it and that nothing was kept.
    assert_eq!(
        ledger.runs.lock().unwrap()[0].error.as_deref(),
        Some(
            "stopped before it completed: mpsync was shutting down; nothing it collected was stored"
        )
    );
}

#[tokio::test(start_paused = true)]
async fn a_panicking_job_is_recorded_failed_and_does_not_wedge_the_job() {
    let job = Arc::new(GatedJob { panic: true, ..Arc::try_unwrap(GatedJob::new(0)).ok().unwrap() });
    let rig = start(job.clone(), Arc::new(MemLedger::default()), false);
    rig.handle.trigger_now(RunKind::Vendor).await;
    wait_until("panic recorded", || rig.observer.finished.load(Ordering::SeqCst) == 1).await;
    assert_eq!(rig.ledger.outcomes(), vec![RunOutcome::Failed]);
    assert!(rig.ledger.runs.lock().unwrap()[0].error.as_deref().unwrap().contains("panicked"));
    // Not wedged: a manual trigger starts another run.
    assert_eq!(rig.handle.trigger_now(RunKind::Vendor).await, TriggerOutcome::Started);
    rig.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_failed_commit_is_recorded_as_a_failed_run() {
    let job = GatedJob::new(0);
    job.gate.add_permits(1);
    let ledger = Arc::new(MemLedger::default());
    ledger.fail_commits.store(true, Ordering::SeqCst);
    let rig = start(job, ledger.clone(), false);
    rig.handle.trigger_now(RunKind::Vendor).await;
    wait_until("recorded", || rig.observer.finished.load(Ordering::SeqCst) == 1).await;
    assert_eq!(ledger.outcomes(), vec![RunOutcome::Failed]);
    let error = ledger.runs.lock().unwrap()[0].error.clone().unwrap();
    assert!(
        error.starts_with(
            "cannot commit the vendor run: cannot commit the run end mem.redb: disk full."
        ),
        "the record names the store's own error: {error}"
    );
    rig.stop().await;
}

#[tokio::test(start_paused = true)]
async fn unknown_jobs_are_not_configured() {
    let rig = start(GatedJob::new(0), Arc::new(MemLedger::default()), false);
    assert_eq!(rig.handle.trigger_now(RunKind::Push).await, TriggerOutcome::NotConfigured);
    rig.stop().await;
}

#[tokio::test(start_paused = true)]
async fn the_heartbeat_stops_when_the_loop_is_blocked() {
    let rig = start(GatedJob::new(0), Arc::new(MemLedger::default()), false);
    tokio::time::sleep(Duration::from_secs(5)).await;
    let before = rig.beats.load(Ordering::SeqCst);
    assert!(before >= 4, "the loop beats every tick: {before}");
    let release = rig.handle.stall().await;
    settle().await;
    let stalled_at = rig.beats.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert!(rig.beats.load(Ordering::SeqCst) <= stalled_at + 1, "a blocked loop must not beat");
    drop(release);
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(rig.beats.load(Ordering::SeqCst) >= stalled_at + 4, "beats resume once unblocked");
    rig.stop().await;
}

/// A vendor job that returns scripted outcomes in order.
struct ScriptedVendor {
    script: Mutex<Vec<Result<Vec<crate::model::CustomerUsage>, JobError>>>,
}

impl Job for ScriptedVendor {
    fn run(&self, _ctx: RunContext) -> BoxFuture<'_, JobResult> {
        Box::pin(async move {
            let next = self.script.lock().unwrap().remove(0);
            let mut requests = BTreeMap::new();
            requests.insert("mailprotector GET /resellers/{id}/customers".to_string(), 3);
            JobResult {
                outcome: next.map(|customers| JobOutput::Vendor { customers, counting: None }),
                requests,
                stats: vec![],
            }
        })
    }
}

fn usage(id: u64, users: u64) -> crate::model::CustomerUsage {
    crate::model::CustomerUsage {
        id,
        name: format!("Customer {id}"),
        counts: [("CloudFilter".to_string(), users)].into_iter().collect(),
    }
}

#[tokio::test]
async fn with_the_real_store_a_failed_run_changes_no_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let store = tokio::task::spawn_blocking({
        let p = dir.path().to_path_buf();
        move || crate::store::Store::open(&p)
    })
    .await
    .unwrap()
    .unwrap();
    let job = Arc::new(ScriptedVendor {
        script: Mutex::new(vec![
            Ok(vec![usage(1, 10), usage(2, 20)]),
            Err(upstream_down("GET /domains/{id}/user_groups")),
            Ok(vec![usage(1, 11), usage(2, 20)]),
        ]),
    });
    let observer = Arc::new(CountingObserver::default());
    let opts = EngineOptions { catch_up: false, seed: 1, ..EngineOptions::default() };
    let spec = JobSpec {
        kind: RunKind::Vendor,
        schedule: Schedule::parse("0 */30 * * * *").unwrap(),
        job,
    };
    let (engine, handle) = Engine::new(vec![spec], Arc::new(store.clone()), observer.clone(), opts);
    let cancel = CancellationToken::new();
    let tracker = TaskTracker::new();
    tracker.spawn(engine.run(cancel.clone(), tracker.clone()));

    let mut seen = Vec::new();
    for expected in 1..=3u32 {
        assert_eq!(handle.trigger_now(RunKind::Vendor).await, TriggerOutcome::Started);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while observer.finished.load(Ordering::SeqCst) < expected {
            assert!(tokio::time::Instant::now() < deadline, "run {expected} never finished");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        seen.push(store.latest_usage_snapshot().await.unwrap().unwrap());
    }
    assert_eq!(seen[0].customers[0].counts["CloudFilter"], 10);
    assert_eq!(seen[1], seen[0], "the failed run left the latest snapshot as it was");
    assert_eq!(seen[2].customers[0].counts["CloudFilter"], 11);
    let runs = store.recent_runs(10, None).await.unwrap();
    let mut outcomes: Vec<_> = runs.iter().map(|r| (r.id, r.outcome)).collect();
    outcomes.sort_by_key(|o| o.0);
    assert_eq!(
        outcomes.iter().map(|o| o.1).collect::<Vec<_>>(),
        vec![RunOutcome::Ok, RunOutcome::Failed, RunOutcome::Ok]
    );
    let failed = runs.iter().find(|r| r.outcome == RunOutcome::Failed).unwrap();
    assert!(failed.error.as_deref().unwrap().contains("503"));
    assert_eq!(
        failed.requests.values().sum::<u64>(),
        3,
        "requests are recorded for failed runs too"
    );
    cancel.cancel();
    tracker.close();
    tracker.wait().await;
}

#[path = "ready_tests.rs"]
mod ready;
