//! The daemon under read load while it syncs: the real `mpsync run` binary as a child process
//! against the simulator, `/v1/health` and a store-backed endpoint hammered by a closed-loop
//! load generator (tokio tasks, one keep-alive client, loopback only) until the vendor run
//! ends, bounded in requests and time.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::Value;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::setup::proc_status_kb;

/// Longest a single phase may load the daemon.
const PHASE_LIMIT: Duration = Duration::from_secs(600);
/// Most requests one load task sends in one phase.
const TASK_LIMIT: usize = 2_000_000;

/// Latencies of one endpoint in one phase.
#[derive(Debug, Clone)]
pub struct EndpointLoad {
    /// The path loaded.
    pub path: String,
    /// Concurrent tasks.
    pub tasks: usize,
    /// Answers received.
    pub count: usize,
    /// Answers that were not 2xx, or transport errors.
    pub errors: usize,
    /// Latency percentiles and max, milliseconds.
    pub p50_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Slowest.
    pub max_ms: f64,
    /// Answers per second over the phase.
    pub rps: f64,
}

/// One phase: a vendor run (or idle time) with the load running.
#[derive(Debug, Clone)]
pub struct Phase {
    /// What the daemon was doing.
    pub name: String,
    /// How long the load ran, seconds.
    pub duration_s: f64,
    /// The vendor run that ended the phase: (id, outcome, duration s, requests).
    pub run: Option<(u64, String, f64, u64)>,
    /// Per endpoint.
    pub endpoints: Vec<EndpointLoad>,
}

/// The whole HTTP measurement.
#[derive(Debug, Clone)]
pub struct HttpResult {
    /// The phases in order.
    pub phases: Vec<Phase>,
    /// The daemon's peak RSS (VmHWM) at the end, kB.
    pub daemon_hwm_kb: u64,
    /// The endpoint loaded besides health.
    pub data_path: String,
    /// The daemon binary that was measured.
    pub daemon: String,
    /// What `/v1/reconciliation` served once billing and reconciliation were in:
    /// (rows in all, JSON bytes of the first page), or `None` when it never held rows.
    pub reconciliation: Option<(usize, usize)>,
    /// The daemon's peak RSS (VmHWM, kB) after each step, in order.
    pub hwm_steps: Vec<(String, u64)>,
    /// The full CSV export after the load: (rows, bytes, seconds), and VmHWM after it (kB).
    pub csv_export: Option<(usize, usize, f64)>,
}

/// Kills the daemon if the measurement ends early.
struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The `mpsync` binary next to this one (`target/release/mpsync` beside `mpsync-bench`).
pub fn default_daemon() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join("mpsync")))
        .unwrap_or_else(|| PathBuf::from("mpsync"))
}

/// Settings of the load.
#[derive(Debug, Clone)]
pub struct LoadPlan {
    /// The daemon binary.
    pub daemon: PathBuf,
    /// Tasks on `/v1/health`.
    pub health_tasks: usize,
    /// Tasks on the data endpoint.
    pub data_tasks: usize,
    /// Tasks on `/readyz` (the probe a kubelet or load balancer calls).
    pub probe_tasks: usize,
    /// Seconds of load with no run, for reference.
    pub idle_s: u64,
}

/// Starts the daemon with `config`, learns where it listens, loads it during a cold run, a
/// warm run and an idle period, and stops it.
pub async fn measure(config: &Path, dir: &Path, plan: &LoadPlan) -> Result<HttpResult> {
    let log_path = dir.join("daemon.log");
    let log = std::fs::File::create(&log_path)?;
    let child = Command::new(&plan.daemon)
        .arg("-c")
        .arg(config)
        .arg("run")
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .with_context(|| format!("starting {}", plan.daemon.display()))?;
    let daemon = Daemon(child);
    let pid = daemon.0.id().to_string();
    let base = format!("http://{}", wait_ready(&log_path).await?);
    mpsync::upstream::install_crypto_provider();
    let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build()?;
    wait_live(&http, &base).await?;
    let data_path = if http.get(format!("{base}/v1/reconciliation")).send().await?.status() == 404 {
        "/v1/customers"
    } else {
        "/v1/reconciliation"
    };
    let mut phases = Vec::new();
    // Catch-up starts the first (cold) vendor run at start-up; the trigger finds it running
    // (409) or starts it (202).
    let prev = latest_run(&http, &base).await?.map(|r| r.0);
    trigger(&http, &base).await?;
    let mut hwm_steps = Vec::new();
    let mut hwm = |step: &str| {
        hwm_steps.push((step.to_owned(), proc_status_kb(&pid, "VmHWM:").unwrap_or(0)));
    };
    hwm("started");
    phases.push(
        phase(
            "cold vendor run (first sync)",
            &http,
            &base,
            data_path,
            plan,
            prev.map(|p| p.saturating_sub(1)),
        )
        .await?,
    );
    hwm("cold vendor run");
    let last = phases[0].run.as_ref().map(|r| r.0);
    // The billing run (started by catch-up beside the cold vendor run) must finish and the
    // reconciliation be computed from both runs before the warm phase, so its reads serve
    // every row compared (a reconciliation of the vendor run alone already has every row,
    // all stale).
    let reconciliation = if data_path == "/v1/reconciliation" {
        let billing = wait_run(&http, &base, "billing", None).await?;
        Some(wait_reconciliation(&http, &base, last.unwrap_or(0), billing).await?)
    } else {
        None
    };
    hwm("billing run and first reconciliation");
    let billing_before = latest_run_of(&http, &base, "billing").await?.map(|r| r.0);
    // Starts the warm vendor run and a second billing run beside it, as a schedule would.
    trigger(&http, &base).await?;
    phases
        .push(phase("warm vendor run (steady state)", &http, &base, data_path, plan, last).await?);
    hwm("warm vendor run, under read load");
    if reconciliation.is_some()
        && let Some(warm) = phases[1].run.as_ref().map(|r| r.0)
    {
        // Both warm runs reconciled: the vendor run's recompute, then the billing run's.
        let billing = wait_run(&http, &base, "billing", billing_before).await?;
        wait_recomputed(&http, &base, warm, billing).await?;
        hwm("recompute after the warm runs");
    }
    phases.push(idle(&base, data_path, plan).await?);
    hwm("idle read load");
    let csv_export = if reconciliation.is_some() {
        let started = Instant::now();
        let mut resp = http.get(format!("{base}/v1/reconciliation?format=csv")).send().await?;
        let (mut bytes, mut lines) = (0usize, 0usize);
        while let Some(chunk) = resp.chunk().await? {
            bytes += chunk.len();
            lines += chunk.iter().filter(|b| **b == b'\n').count();
        }
        let secs = started.elapsed().as_secs_f64();
        hwm("full CSV export");
        eprintln!("  CSV export: {} rows, {bytes} bytes, {secs:.2}s", lines.saturating_sub(1));
        Some((lines.saturating_sub(1), bytes, secs))
    } else {
        None
    };
    let daemon_hwm_kb = proc_status_kb(&pid, "VmHWM:").unwrap_or(0);
    // A clean stop: SIGTERM via kill(1) (no unsafe code here), then the guard's SIGKILL.
    let _ = Command::new("kill").arg("-TERM").arg(&pid).status();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut daemon = daemon;
    while Instant::now() < deadline {
        if daemon.0.try_wait()?.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let shown = plan.daemon.display().to_string();
    let cwd = std::env::current_dir().map(|d| d.display().to_string() + "/").unwrap_or_default();
    let daemon = shown.strip_prefix(&cwd).unwrap_or(&shown).to_owned();
    Ok(HttpResult {
        phases,
        daemon_hwm_kb,
        data_path: data_path.to_owned(),
        daemon,
        reconciliation,
        hwm_steps,
        csv_export,
    })
}

/// Waits (bounded) until `/v1/reconciliation` uses vendor run `vendor` and billing run
/// `billing` (or newer) and holds rows; returns (rows, body bytes of its first page).
async fn wait_reconciliation(
    http: &reqwest::Client,
    base: &str,
    vendor: u64,
    billing: u64,
) -> Result<(usize, usize)> {
    wait_recomputed(http, base, vendor, billing).await?;
    let body = http.get(format!("{base}/v1/reconciliation")).send().await?.bytes().await?;
    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let rows = v["summary"]["rows"].as_u64().unwrap_or(0) as usize;
    if rows == 0 {
        bail!("the reconciliation of vendor run {vendor} and billing run {billing} has no rows");
    }
    eprintln!("  reconciliation: {rows} rows, {} bytes", body.len());
    Ok((rows, body.len()))
}

/// Waits (bounded) until the served reconciliation names vendor run `vendor` and billing
/// run `billing` (or newer ones).
async fn wait_recomputed(
    http: &reqwest::Client,
    base: &str,
    vendor: u64,
    billing: u64,
) -> Result<()> {
    let started = Instant::now();
    loop {
        let v: Value =
            http.get(format!("{base}/v1/reconciliation?limit=1")).send().await?.json().await?;
        if v["vendor_run"].as_u64().is_some_and(|r| r >= vendor)
            && v["billing_run"].as_u64().is_some_and(|r| r >= billing)
        {
            return Ok(());
        }
        if started.elapsed() > PHASE_LIMIT {
            bail!(
                "no reconciliation of vendor run {vendor} and billing run {billing} within \
                 {PHASE_LIMIT:?} (see daemon.log)"
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits (bounded) until a run of `kind` newer than `after` has finished; returns its id.
/// A failed run is an error: the steps after it would measure something else.
async fn wait_run(
    http: &reqwest::Client,
    base: &str,
    kind: &str,
    after: Option<u64>,
) -> Result<u64> {
    let started = Instant::now();
    loop {
        if let Some((id, true, outcome, _, _)) = latest_run_of(http, base, kind).await?
            && after.is_none_or(|a| id > a)
        {
            if outcome != "ok" {
                bail!("{kind} run {id} ended {outcome} (see daemon.log)");
            }
            return Ok(id);
        }
        if started.elapsed() > PHASE_LIMIT {
            bail!("no {kind} run finished within {PHASE_LIMIT:?} (see daemon.log)");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The address in the daemon's `mpsync ready on http://ADDR` line (it listens on port 0).
async fn wait_ready(log: &Path) -> Result<String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        // A whole line only: the daemon may be half-way through writing it.
        if let Some((_, rest)) = text.split_once("mpsync ready on http://")
            && let Some((line, _)) = rest.split_once('\n')
            && let Some(addr) = line.split_whitespace().next()
        {
            return Ok(addr.to_owned());
        }
        if Instant::now() > deadline {
            bail!("the daemon did not say where it listens within 60 s (see {})", log.display());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn wait_live(http: &reqwest::Client, base: &str) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(r) = http.get(format!("{base}/livez")).send().await
            && r.status().is_success()
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("the daemon did not answer /livez within 60 s (see daemon.log)");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn trigger(http: &reqwest::Client, base: &str) -> Result<()> {
    let r = http.post(format!("{base}/v1/sync")).send().await?;
    match r.status().as_u16() {
        202 | 409 => Ok(()),
        s => bail!("POST /v1/sync answered {s}: {}", r.text().await.unwrap_or_default()),
    }
}

/// The latest vendor run: (id, finished, outcome, duration s, requests).
async fn latest_run(
    http: &reqwest::Client,
    base: &str,
) -> Result<Option<(u64, bool, String, f64, u64)>> {
    latest_run_of(http, base, "vendor").await
}

/// The latest run of `kind`: (id, finished, outcome, duration s, requests).
async fn latest_run_of(
    http: &reqwest::Client,
    base: &str,
    kind: &str,
) -> Result<Option<(u64, bool, String, f64, u64)>> {
    let v: Value =
        http.get(format!("{base}/v1/runs?kind={kind}&limit=1")).send().await?.json().await?;
    let Some(r) = v["runs"].get(0) else { return Ok(None) };
    Ok(Some((
        r["id"].as_u64().unwrap_or(0),
        !r["finished_at"].is_null(),
        r["outcome"].as_str().unwrap_or("?").to_owned(),
        r["duration_seconds"].as_f64().unwrap_or(0.0),
        r["requests_total"].as_u64().unwrap_or(0),
    )))
}

/// Loads until a vendor run newer than `after` has finished.
async fn phase(
    name: &str,
    http: &reqwest::Client,
    base: &str,
    data_path: &str,
    plan: &LoadPlan,
    after: Option<u64>,
) -> Result<Phase> {
    let stop = CancellationToken::new();
    let load = start_load(base, data_path, plan, stop.clone());
    let started = Instant::now();
    let mut run = None;
    while started.elapsed() < PHASE_LIMIT {
        tokio::time::sleep(Duration::from_millis(200)).await;
        if let Some((id, true, outcome, secs, reqs)) = latest_run(http, base).await?
            && after.is_none_or(|a| id > a)
        {
            run = Some((id, outcome, secs, reqs));
            break;
        }
    }
    stop.cancel();
    let duration_s = started.elapsed().as_secs_f64();
    let endpoints = finish_load(load, duration_s).await?;
    Ok(Phase { name: name.to_owned(), duration_s, run, endpoints })
}

async fn idle(base: &str, data_path: &str, plan: &LoadPlan) -> Result<Phase> {
    let stop = CancellationToken::new();
    let load = start_load(base, data_path, plan, stop.clone());
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(plan.idle_s)).await;
    stop.cancel();
    let duration_s = started.elapsed().as_secs_f64();
    let endpoints = finish_load(load, duration_s).await?;
    Ok(Phase { name: "idle (no run)".into(), duration_s, run: None, endpoints })
}

type Samples = Vec<(u32, bool)>;
type Load = Vec<(String, usize, Vec<tokio::task::JoinHandle<Samples>>)>;

fn start_load(base: &str, data_path: &str, plan: &LoadPlan, stop: CancellationToken) -> Load {
    // One keep-alive client shared by the tasks: each task keeps its own pooled connection.
    let client = Arc::new(
        reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(64)
            .build()
            .unwrap_or_default(),
    );
    let mut out = Vec::new();
    let endpoints = [
        ("/v1/health", plan.health_tasks),
        ("/readyz", plan.probe_tasks),
        (data_path, plan.data_tasks),
    ];
    // An endpoint without tasks is not loaded (and not reported).
    for (path, tasks) in endpoints.into_iter().filter(|(_, n)| *n > 0) {
        let handles = (0..tasks)
            .map(|_| {
                let (client, stop, url) = (client.clone(), stop.clone(), format!("{base}{path}"));
                tokio::spawn(async move {
                    let mut samples = Vec::new();
                    while !stop.is_cancelled() && samples.len() < TASK_LIMIT {
                        let t = Instant::now();
                        let ok = match client.get(&url).send().await {
                            // The body is read to the end so the connection is reused.
                            Ok(r) => r.status().is_success() & r.bytes().await.is_ok(),
                            Err(_) => false,
                        };
                        samples.push((t.elapsed().as_micros().min(u32::MAX as u128) as u32, ok));
                    }
                    samples
                })
            })
            .collect();
        out.push((path.to_owned(), tasks, handles));
    }
    out
}

async fn finish_load(load: Load, duration_s: f64) -> Result<Vec<EndpointLoad>> {
    let mut out = Vec::new();
    for (path, tasks, handles) in load {
        let mut samples: Samples = Vec::new();
        for h in handles {
            samples.extend(h.await?);
        }
        let errors = samples.iter().filter(|s| !s.1).count();
        let mut lat: Vec<u32> = samples.iter().map(|s| s.0).collect();
        lat.sort_unstable();
        let pct = |p: f64| {
            if lat.is_empty() {
                return 0.0;
            }
            let i = ((lat.len() as f64 * p).ceil() as usize).clamp(1, lat.len()) - 1;
            f64::from(lat[i]) / 1000.0
        };
        out.push(EndpointLoad {
            path,
            tasks,
            count: lat.len(),
            errors,
            p50_ms: pct(0.50),
            p99_ms: pct(0.99),
            max_ms: lat.last().map_or(0.0, |m| f64::from(*m) / 1000.0),
            rps: lat.len() as f64 / duration_s.max(1e-9),
        });
    }
    Ok(out)
}
