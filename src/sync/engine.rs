//! The engine loop: receives triggers (cron ticks, `POST /v1/sync`, catch-up, backoff retries),
//! starts at most one run per job, and beats the heartbeat on every turn so a stalled loop
//! stops the systemd watchdog. A job that is not ready (the push before the first vendor
//! snapshot) is skipped, not failed, and tried again as soon as another job succeeds.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::{Rng, SeedableRng, rngs::StdRng};
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::backoff::failure_backoff;
use super::error::JobError;
use super::job::{Job, JobResult, RunContext, RunLedger, RunObserver, SkipReason};
use crate::config::Schedule;
use crate::model::{RunKind, RunOutcome, RunRecord};

/// One scheduled job.
#[derive(Clone)]
pub struct JobSpec {
    /// Which job.
    pub kind: RunKind,
    /// When it runs.
    pub schedule: Schedule,
    /// What it does.
    pub job: Arc<dyn Job>,
}

/// How the engine tells time and proves it is alive.
#[derive(Clone)]
pub struct EngineOptions {
    /// How often the loop turns when nothing happens (beats the heartbeat each turn).
    pub tick: Duration,
    /// Run jobs whose last success is older than one period right after start-up.
    pub catch_up: bool,
    /// The wall clock (records, catch-up); injectable for tests.
    pub now: Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>,
    /// Called on every turn of the loop.
    pub beat: Arc<dyn Fn() + Send + Sync>,
    /// Seed of the backoff jitter.
    pub seed: u64,
    /// Why the engine's token was cancelled (a cancelled run is recorded with it).
    pub stop: super::StopReason,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            tick: Duration::from_secs(1),
            catch_up: true,
            now: Arc::new(Utc::now),
            beat: Arc::new(|| {}),
            seed: rand::random(),
            stop: super::StopReason::default(),
        }
    }
}

/// What became of a trigger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TriggerOutcome {
    /// A run started (or, for a job that turns out not ready, was skipped as
    /// [`SkipReason::NotReady`] and recorded by the observer).
    Started,
    /// Skipped: the job was running or backing off.
    Skipped(SkipReason),
    /// No such job is configured.
    NotConfigured,
    /// The engine is shutting down.
    ShuttingDown,
}

/// Where a trigger came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Tick,
    Manual,
    CatchUp,
    Retry,
}

enum Command {
    Trigger {
        kind: RunKind,
        source: Source,
        reply: Option<oneshot::Sender<TriggerOutcome>>,
    },
    #[cfg(test)]
    Stall(oneshot::Receiver<()>),
}

/// A cheap handle to the running engine (HTTP handlers and cron ticks use it).
#[derive(Clone)]
pub struct EngineHandle {
    tx: mpsc::Sender<Command>,
}

impl EngineHandle {
    /// Starts a run of `kind` now unless one is running (manual triggers ignore backoff).
    pub async fn trigger_now(&self, kind: RunKind) -> TriggerOutcome {
        self.send(kind, Source::Manual).await
    }

    /// A scheduled tick for `kind`; never blocks the caller.
    pub fn tick(&self, kind: RunKind) {
        let _ = self.tx.try_send(Command::Trigger { kind, source: Source::Tick, reply: None });
    }

    async fn send(&self, kind: RunKind, source: Source) -> TriggerOutcome {
        let (reply, rx) = oneshot::channel();
        let cmd = Command::Trigger { kind, source, reply: Some(reply) };
        if self.tx.send(cmd).await.is_err() {
            return TriggerOutcome::ShuttingDown;
        }
        rx.await.unwrap_or(TriggerOutcome::ShuttingDown)
    }

    /// Test hook: blocks the engine loop until the returned sender is dropped or used.
    #[cfg(test)]
    pub(crate) async fn stall(&self) -> oneshot::Sender<()> {
        let (tx, rx) = oneshot::channel();
        let _ = self.tx.send(Command::Stall(rx)).await;
        tx
    }
}

struct JobState {
    spec: JobSpec,
    running: bool,
    failures: u32,
    retry_at: Option<Instant>,
    /// Its last trigger found it not ready: start it again when another job succeeds.
    waiting: bool,
}

/// How a triggered job ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RunEnd {
    Ok,
    Failed,
    NotReady,
}

/// The engine: owns the job states; run it with [`Engine::run`].
pub struct Engine {
    jobs: HashMap<RunKind, JobState>,
    ledger: Arc<dyn RunLedger>,
    observer: Arc<dyn RunObserver>,
    opts: EngineOptions,
    rx: mpsc::Receiver<Command>,
    done_tx: mpsc::Sender<(RunKind, RunEnd)>,
    done_rx: mpsc::Receiver<(RunKind, RunEnd)>,
    rng: StdRng,
}

impl Engine {
    /// Builds an engine for `jobs` and a handle to trigger it.
    pub fn new(
        jobs: Vec<JobSpec>,
        ledger: Arc<dyn RunLedger>,
        observer: Arc<dyn RunObserver>,
        opts: EngineOptions,
    ) -> (Engine, EngineHandle) {
        let (tx, rx) = mpsc::channel(64);
        let (done_tx, done_rx) = mpsc::channel(16);
        let rng = StdRng::seed_from_u64(opts.seed);
        let jobs = jobs
            .into_iter()
            .map(|spec| {
                let st =
                    JobState { spec, running: false, failures: 0, retry_at: None, waiting: false };
                (st.spec.kind, st)
            })
            .collect();
        let engine = Engine { jobs, ledger, observer, opts, rx, done_tx, done_rx, rng };
        (engine, EngineHandle { tx })
    }

    /// Runs the loop until `cancel` fires. Runs are spawned on `tracker` and get a child of
    /// `cancel`, so the caller's `tracker.wait()` (with its grace period) drains them.
    pub async fn run(mut self, cancel: CancellationToken, tracker: TaskTracker) {
        if self.opts.catch_up {
            self.catch_up(&cancel, &tracker).await;
        }
        let mut interval = tokio::time::interval(self.opts.tick);
        interval.set_missed_tick_behavior(MissedTickBehavior::Skip);
        loop {
            (self.opts.beat)();
            let next_retry = self.next_retry();
            // Biased: a finished run is recorded as finished before the next trigger is
            // judged, so a manual sync right after a run ends is not refused as overlapping.
            tokio::select! {
                biased;
                _ = cancel.cancelled() => break,
                Some((kind, end)) = self.done_rx.recv() => self.on_done(kind, end, &cancel, &tracker),
                Some(cmd) = self.rx.recv() => match cmd {
                    Command::Trigger { kind, source, reply } => {
                        let outcome = self.trigger(kind, source, &cancel, &tracker);
                        if let Some(reply) = reply {
                            let _ = reply.send(outcome);
                        }
                    }
                    #[cfg(test)]
                    Command::Stall(rx) => { let _ = rx.await; }
                },
                _ = sleep_until_opt(next_retry.map(|(_, at)| at)) => {
                    if let Some((kind, _)) = next_retry {
                        self.trigger(kind, Source::Retry, &cancel, &tracker);
                    }
                }
                _ = interval.tick() => {}
            }
        }
        tracing::info!("sync engine stopped; waiting for running jobs to reach a safe point");
    }

    async fn catch_up(&mut self, cancel: &CancellationToken, tracker: &TaskTracker) {
        let now = (self.opts.now)();
        let mut due = Vec::new();
        for (kind, st) in &self.jobs {
            let period = schedule_period(&st.spec.schedule, now);
            match self.ledger.last_success(*kind).await {
                Ok(Some(at))
                    if now.signed_duration_since(at).to_std().unwrap_or_default() <= period => {}
                Ok(last) => {
                    let age = last.map_or_else(
                        || "never succeeded".to_string(),
                        |at| format!("last success {at}"),
                    );
                    tracing::info!(job = %kind, "catching up: {age}, older than one period; running now");
                    due.push(*kind);
                }
                Err(e) => {
                    tracing::warn!(job = %kind, "cannot read the last success for catch-up: {e}")
                }
            }
        }
        due.sort();
        for kind in due {
            self.trigger(kind, Source::CatchUp, cancel, tracker);
        }
    }

    fn next_retry(&self) -> Option<(RunKind, Instant)> {
        self.jobs
            .iter()
            .filter(|(_, st)| !st.running)
            .filter_map(|(k, st)| st.retry_at.map(|at| (*k, at)))
            .min_by_key(|(_, at)| *at)
    }

    fn trigger(
        &mut self,
        kind: RunKind,
        source: Source,
        cancel: &CancellationToken,
        tracker: &TaskTracker,
    ) -> TriggerOutcome {
        if cancel.is_cancelled() {
            return TriggerOutcome::ShuttingDown;
        }
        let Some(st) = self.jobs.get_mut(&kind) else {
            return TriggerOutcome::NotConfigured;
        };
        if st.running {
            if source == Source::Tick {
                tracing::info!(job = %kind, "tick skipped: the previous run is still going");
            }
            self.observer.skipped(kind, &SkipReason::Overlap);
            return TriggerOutcome::Skipped(SkipReason::Overlap);
        }
        if source == Source::Tick && st.retry_at.is_some_and(|at| at > Instant::now()) {
            tracing::debug!(job = %kind, "tick skipped: backing off after failures");
            self.observer.skipped(kind, &SkipReason::Backoff);
            return TriggerOutcome::Skipped(SkipReason::Backoff);
        }
        st.running = true;
        st.retry_at = None;
        st.waiting = false;
        let job = st.spec.job.clone();
        let ledger = self.ledger.clone();
        let observer = self.observer.clone();
        let now = self.opts.now.clone();
        let stop = self.opts.stop.clone();
        let done = self.done_tx.clone();
        let child = cancel.child_token();
        let inner = tracker.clone();
        tracker.spawn(async move {
            // Asked in its own task like the run, so a panic cannot wedge the job; a check
            // that panicked lets the run go ahead and record whatever happens.
            let probe = job.clone();
            let ready = inner.spawn(async move { probe.ready().await }).await.unwrap_or(Ok(()));
            let end = match ready {
                Err(why) => {
                    tracing::info!(job = %kind, "run skipped, not ready: {why}");
                    observer.skipped(kind, &SkipReason::NotReady(why));
                    RunEnd::NotReady
                }
                Ok(()) => {
                    let record = execute(
                        kind,
                        job,
                        ledger.as_ref(),
                        observer.as_ref(),
                        &*now,
                        &stop,
                        child,
                        &inner,
                    )
                    .await;
                    match record {
                        Some(r) if r.outcome == RunOutcome::Ok => RunEnd::Ok,
                        _ => RunEnd::Failed,
                    }
                }
            };
            let _ = done.send((kind, end)).await;
        });
        TriggerOutcome::Started
    }

    fn on_done(
        &mut self,
        kind: RunKind,
        end: RunEnd,
        cancel: &CancellationToken,
        tracker: &TaskTracker,
    ) {
        let now = (self.opts.now)();
        let unit: f64 = self.rng.random();
        let Some(st) = self.jobs.get_mut(&kind) else { return };
        st.running = false;
        if end == RunEnd::NotReady {
            // Not a failure: no backoff; it runs when another job succeeds (or at its next
            // tick, whichever comes first).
            st.waiting = true;
        } else if end == RunEnd::Ok {
            st.failures = 0;
            st.retry_at = None;
            let waiting: Vec<RunKind> = self
                .jobs
                .iter()
                .filter(|(k, w)| **k != kind && w.waiting && !w.running)
                .map(|(k, _)| *k)
                .collect();
            for other in waiting {
                tracing::info!(job = %other, "the {kind} run succeeded: trying the waiting {other} job again");
                self.trigger(other, Source::Retry, cancel, tracker);
            }
        } else {
            st.failures += 1;
            let wait = failure_backoff(st.failures, schedule_period(&st.spec.schedule, now), unit);
            st.retry_at = Some(Instant::now() + wait);
            tracing::warn!(job = %kind, failures = st.failures, "next attempt in {}", humantime::format_duration(round_secs(wait)));
            self.observer.backing_off(kind, st.failures, wait);
        }
    }
}

/// Runs one job through its whole lifecycle: record the start, run, commit the output or
/// record the failure (a cancelled run with `stop`'s reason). Returns the final record
/// (`None` if the store could not record it).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn execute(
    kind: RunKind,
    job: Arc<dyn Job>,
    ledger: &dyn RunLedger,
    observer: &dyn RunObserver,
    now: &(dyn Fn() -> DateTime<Utc> + Send + Sync),
    stop: &super::StopReason,
    cancel: CancellationToken,
    tracker: &TaskTracker,
) -> Option<RunRecord> {
    let started_at = now();
    let clock = Instant::now();
    let run_id = match ledger.begin(kind, started_at).await {
        Ok(id) => id,
        Err(e) => {
            let reason = format!("cannot record the start of a {kind} run: {e}");
            tracing::error!(job = %kind, "{reason}");
            observer.unrecorded(kind, &reason);
            return None;
        }
    };
    observer.started(kind, run_id);
    tracing::info!(job = %kind, run = run_id, "run started");
    let ctx = RunContext { run_id, started_at, cancel };
    // The job runs in its own task so a panic is caught here instead of wedging the job.
    let result = match tracker.spawn(async move { job.run(ctx).await }).await {
        Ok(result) => result,
        Err(source) => JobResult {
            outcome: Err(JobError::Panicked { kind, source }),
            requests: BTreeMap::new(),
            stats: Vec::new(),
        },
    };
    observer.upstream_stats(kind, &result.stats);
    let finished_at = now();
    let recorded = match result.outcome {
        Ok(output) => ledger.complete(run_id, finished_at, result.requests.clone(), output).await,
        Err(JobError::Cancelled) => {
            ledger.cancel(run_id, finished_at, stop.cancelled_run(), result.requests.clone()).await
        }
        // The record keeps the error's text; its type has done its work (the exit status of
        // a one-shot run, the backoff of a scheduled one).
        Err(e) => ledger.fail(run_id, finished_at, e.to_string(), result.requests.clone()).await,
    };
    let record = match recorded {
        Ok(record) => record,
        Err(e) => {
            // The output could not be committed: the run failed; try to say so in the store.
            let reason = format!("cannot commit the {kind} run: {e}");
            match ledger.fail(run_id, finished_at, reason.clone(), result.requests).await {
                Ok(record) => record,
                Err(e2) => {
                    tracing::error!(job = %kind, run = run_id, "{reason}; recording the failure also failed: {e2}");
                    observer.unrecorded(kind, &reason);
                    return None;
                }
            }
        }
    };
    let why = record.error.as_deref().unwrap_or("no reason was recorded");
    match record.outcome {
        RunOutcome::Ok => tracing::info!(job = %kind, run = run_id, "run succeeded"),
        // A shutdown is routine, not a failure: say what stopped the run, at info.
        RunOutcome::Cancelled => {
            tracing::info!(job = %kind, run = run_id, outcome = "cancelled", "run cancelled: {why}")
        }
        outcome => {
            tracing::warn!(job = %kind, run = run_id, outcome = outcome.as_str(), "run did not succeed: {why}")
        }
    }
    observer.finished(kind, &record, clock.elapsed());
    Some(record)
}

/// The time between the schedule's slots around `now` (at least one second).
pub(crate) fn schedule_period(schedule: &Schedule, now: DateTime<Utc>) -> Duration {
    let next = schedule.next_after(now);
    let prev = schedule.previous_at_or_before(now);
    match (prev, next) {
        (Some(p), Some(n)) => n.signed_duration_since(p).to_std().unwrap_or(Duration::from_secs(1)),
        _ => Duration::from_secs(3600),
    }
    .max(Duration::from_secs(1))
}

fn round_secs(d: Duration) -> Duration {
    Duration::from_secs(d.as_secs())
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
