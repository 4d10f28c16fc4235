//! Helpers for the Gradient tests: a simulator, a client on its keys, fast retries.

use std::time::Duration;

use mpsync::config::{Secret, UpstreamLimits};
use mpsync::gradient::GradientClient;
use mpsync::upstream::RetryPolicy;
use mpsync_sim::{SimHandle, SimOptions, SimServer};

/// A simulator with `customers` customers.
pub async fn sim(customers: u32) -> SimHandle {
    SimServer::start(SimOptions { seed: 11, customers, ..SimOptions::default() })
        .await
        .expect("the simulator starts")
}

/// Limits for tests: `rps` per second, one second of burst, `in_flight` at once.
pub fn limits(rps: f64, in_flight: usize) -> UpstreamLimits {
    UpstreamLimits {
        rate_limit: rps,
        burst: rps.ceil() as u32,
        max_in_flight: in_flight,
        timeout: Duration::from_secs(10),
        connect_timeout: Duration::from_secs(2),
    }
}

/// Retries with short waits, so failure paths finish quickly.
pub fn quick_retry() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 3,
        max_rate_limited_attempts: 5,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(50),
        default_rate_limit_pause: Duration::from_millis(50),
        max_rate_limit_pause: Duration::from_millis(200),
        deadline: Duration::from_secs(20),
    }
}

/// A client on the simulator's keys (or a wrong partner key).
pub fn client(sim: &SimHandle, partner: Option<&str>) -> GradientClient {
    let g = sim.control().gradient();
    let vendor = Secret::new(g.vendor_key(), "/keys/gradient-vendor-key");
    let partner = Secret::new(
        partner.map_or_else(|| g.partner_key(), str::to_owned),
        "/keys/gradient-partner-key",
    );
    let base = sim.base_url().parse().expect("the simulator URL parses");
    GradientClient::from_keys(&base, &vendor, &partner, limits(80.0, 4), quick_retry())
        .expect("the client builds")
}

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use mpsync::gradient::{LAST_PUSH_KEY, PushReport};
use mpsync::model::{CustomerUsage, RunKind, RunRecord};
use mpsync::store::Store;
use mpsync::sync::{Job, JobError, PushJob, RunContext};
use tokio_util::sync::CancellationToken;

/// The vendor snapshot a complete poll of the simulator yields now (its ground truth).
pub fn usage(sim: &SimHandle) -> Vec<CustomerUsage> {
    let ds = sim.control().read();
    let truth = ds.expected_counts();
    ds.main_customers()
        .into_iter()
        .map(|id| CustomerUsage {
            id,
            name: ds.customer_name(id).unwrap_or_default().to_owned(),
            counts: truth.get(&id).cloned().unwrap_or_default(),
        })
        .collect()
}

/// A fresh store in its own temporary directory (kept alive by the returned guard).
pub async fn store() -> (Store, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = dir.path().to_path_buf();
    let store = tokio::task::spawn_blocking(move || Store::open(&path))
        .await
        .expect("the open task ends")
        .expect("the store opens");
    (store, dir)
}

/// Records a complete vendor run observed at `at` with `customers`.
pub async fn vendor_run(store: &Store, at: DateTime<Utc>, customers: Vec<CustomerUsage>) {
    let id = store.begin_run(RunKind::Vendor, at).await.unwrap();
    store.commit_vendor_run(id, at, BTreeMap::new(), customers).await.unwrap();
}

/// Records a failed vendor run at `at`.
pub async fn failed_vendor_run(store: &Store, at: DateTime<Utc>) {
    let id = store.begin_run(RunKind::Vendor, at).await.unwrap();
    store.fail_run(id, at, "mailprotector is unavailable".into(), BTreeMap::new()).await.unwrap();
}

/// Runs one push as the engine does (recorded as a push run) and returns its record and the
/// report it left (if it got that far).
pub async fn push(store: &Store, job: &PushJob) -> (RunRecord, Option<PushReport>) {
    let now = Utc::now();
    let run_id = store.begin_run(RunKind::Push, now).await.unwrap();
    let ctx = RunContext { run_id, started_at: now, cancel: CancellationToken::new() };
    let result = job.run(ctx).await;
    let record = match result.outcome {
        Ok(_) => store
            .commit_run(run_id, Utc::now(), result.requests, mpsync::model::RunOutcome::Ok)
            .await
            .unwrap(),
        Err(JobError::Cancelled) => {
            let why = mpsync::sync::StopReason::default().cancelled_run();
            store.cancel_run(run_id, Utc::now(), why, result.requests).await.unwrap()
        }
        // The engine records a failed run with its error's text.
        Err(e) => store.fail_run(run_id, Utc::now(), e.to_string(), result.requests).await.unwrap(),
    };
    let report: Option<PushReport> = store.get_meta(LAST_PUSH_KEY).await.unwrap();
    (record, report.filter(|r| r.run_id == run_id))
}

/// A push job on the simulator with `rps`/`in_flight` limits.
pub fn push_job(
    sim: &SimHandle,
    store: &Store,
    rps: f64,
    in_flight: usize,
    dry_run: bool,
) -> PushJob {
    let g = sim.control().gradient();
    let vendor = Secret::new(g.vendor_key(), "/keys/gradient-vendor-key");
    let partner = Secret::new(g.partner_key(), "/keys/gradient-partner-key");
    let base = sim.base_url().parse().expect("the simulator URL parses");
    let client =
        GradientClient::from_keys(&base, &vendor, &partner, limits(rps, in_flight), quick_retry())
            .expect("the client builds");
    PushJob::new(client, store.clone(), Duration::from_secs(2 * 3600), dry_run)
}
