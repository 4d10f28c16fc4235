//! `mpsync-bench`: the benchmark harness behind BENCHMARKS.md. For each size it serves a
//! seeded simulator (server rate limit, per-request latency) in this process and measures, in
//! fresh child processes of this binary, a cold and a warm sync by the real client and a
//! naive sequential baseline; at one size it also runs the real daemon and loads its HTTP
//! endpoints while it syncs. Results go to stdout and BENCHMARKS.md.
//!
//! Run: `cargo build --release -p mpsync -p mpsync-bench && target/release/mpsync-bench`
//! (`--quick` for small sizes; `--help` for every knob).

mod autotask;
mod halopsa;
mod http;
mod naive;
mod real;
mod report;
mod setup;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;

use mpsync_sim::{SimOptions, SimServer};

use setup::{ChildReport, ClientLimits, Counts};

/// Benchmarks mpsync against its simulator and writes BENCHMARKS.md.
#[derive(Debug, Clone, Parser)]
#[command(name = "mpsync-bench")]
pub struct Args {
    /// Small sizes (50 and 200 customers, HTTP load at 200) for a quick check.
    #[arg(long)]
    pub quick: bool,
    /// Customer counts to sync (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub sizes: Vec<u32>,
    /// Customers for the HTTP-load measurement (must be one of the sizes; 0 skips it).
    #[arg(long)]
    pub http_customers: Option<u32>,
    /// Server-side rate limit of the simulator, requests/s (bucket depth ceil(rps)).
    #[arg(long, default_value_t = 400.0)]
    pub server_rps: f64,
    /// Client-side rate limit (mailprotector.rate_limit), requests/s.
    #[arg(long, default_value_t = 400.0)]
    pub client_rps: f64,
    /// Client burst (mailprotector.burst).
    #[arg(long, default_value_t = 20)]
    pub burst: u32,
    /// Client requests in flight (mailprotector.max_in_flight).
    #[arg(long, default_value_t = 8)]
    pub in_flight: usize,
    /// Fixed latency the simulator adds to every answer, ms.
    #[arg(long, default_value_t = 2)]
    pub latency_ms: u64,
    /// Extra uniform random latency (0..=jitter), ms.
    #[arg(long, default_value_t = 3)]
    pub jitter_ms: u64,
    /// Dataset seed.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Skip the naive baseline.
    #[arg(long)]
    pub no_naive: bool,
    /// The daemon binary for the HTTP measurement (default: `mpsync` beside this binary).
    #[arg(long)]
    pub daemon: Option<PathBuf>,
    /// Load tasks on /v1/health.
    #[arg(long, default_value_t = 2)]
    pub health_tasks: usize,
    /// Load tasks on the data endpoint (/v1/reconciliation, else /v1/customers).
    #[arg(long, default_value_t = 1)]
    pub data_tasks: usize,
    /// Load tasks on /readyz (0: the probe is not loaded).
    #[arg(long, default_value_t = 0)]
    pub probe_tasks: usize,
    /// Client-side rate limit of the HTTP measurement's ConnectWise billing source, requests/s
    /// (it shares the simulator's server limit with the vendor run).
    #[arg(long, default_value_t = 100.0)]
    pub billing_rps: f64,
    /// Where to write the report ("-" for stdout only).
    #[arg(long, default_value = "BENCHMARKS.md")]
    pub out: String,
    /// Simulated hourly steady-state runs after the warm run (rolling service-list refresh;
    /// each run's clock is one hour after the previous one). 0 skips them.
    #[arg(long, default_value_t = 0)]
    pub steady_runs: u32,
    /// Sizes at which the steady-state runs are made (default: every size).
    #[arg(long, value_delimiter = ',')]
    pub steady_sizes: Vec<u32>,
    /// Internal: hours added to the child's clock.
    #[arg(long, hide = true, default_value_t = 0)]
    pub clock_hours: i64,
    /// Only the Autotask billing read at each size (the default budget, 1 request/s, unless
    /// --autotask-rps): requests, wall time and share of the simulated database's hourly
    /// threshold, printed as a Markdown section.
    #[arg(long)]
    pub autotask: bool,
    /// Client rate limit of the Autotask measurement, requests/s.
    #[arg(long, default_value_t = 1.0)]
    pub autotask_rps: f64,
    /// Only the HaloPSA billing read at each size, under the simulated rolling limit of 300
    /// and of 700 requests per 5 minutes, with `includelines` honoured and ignored (one GET
    /// per invoice): requests per endpoint, tokens, 429s and wall time, printed as a Markdown
    /// section.
    #[arg(long)]
    pub halopsa: bool,
    /// How much faster than real time the `includelines`-ignored reads run (the client's
    /// budget and token clock, and the simulator's clock, alike); their wall time is reported
    /// on that clock.
    #[arg(long, default_value_t = 100.0)]
    pub halopsa_speedup: f64,
    /// Only the whole daemon under read load at each size (no client children, no naive
    /// baseline): its VmHWM after each step, printed as a Markdown section (BENCHMARKS.md is
    /// not rewritten).
    #[arg(long)]
    pub daemon_only: bool,
    /// Internal: run as a measurement child (`sync` or `naive`).
    #[arg(long, hide = true)]
    pub child: Option<String>,
    /// Internal: the child's config.
    #[arg(long, hide = true)]
    pub config: Option<PathBuf>,
    /// Internal: the sync child's kept state.
    #[arg(long, hide = true)]
    pub state: Option<PathBuf>,
    /// Internal: where the child writes its counts.
    #[arg(long, hide = true)]
    pub counts_out: Option<PathBuf>,
}

/// One sync measurement, with the simulator's view beside the client's.
#[derive(Debug, Clone)]
pub struct SyncMeasure {
    /// What the child reported.
    pub child: ChildReport,
    /// Requests the simulator counted during it.
    pub sim_requests: u64,
    /// 429s the simulator sent.
    pub sim_429: u64,
    /// Service-list requests the simulator counted.
    pub sim_services: u64,
    /// Customers whose counts differ from the ground truth.
    pub mismatches: usize,
}

/// Everything measured at one size.
#[derive(Debug, Clone)]
pub struct SizeResult {
    /// Customers generated.
    pub customers: u32,
    /// Domains and user groups in the dataset.
    pub domains: usize,
    /// User groups in the dataset.
    pub groups: usize,
    /// First run: empty cache.
    pub cold: SyncMeasure,
    /// Second run: cache and walk sizes of the first.
    pub warm: SyncMeasure,
    /// The naive baseline.
    pub naive: Option<SyncMeasure>,
    /// Simulated hourly runs after the warm one: (hour, requests, service lists read).
    pub steady: Vec<(i64, u64, u64)>,
    /// The HTTP measurement, when taken at this size.
    pub http: Option<http::HttpResult>,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    if let Some(mode) = args.child.clone() {
        return rt.block_on(child(&mode, &args));
    }
    rt.block_on(parent(args))
}

async fn child(mode: &str, args: &Args) -> Result<()> {
    let config = args.config.as_deref().context("--config")?;
    let counts = args.counts_out.as_deref().context("--counts-out")?;
    let report = match mode {
        "sync" => {
            let state = args.state.as_deref().context("--state")?;
            real::run(config, state, counts, args.clock_hours).await?
        }
        "naive" => naive::run(config, counts).await?,
        other => anyhow::bail!("unknown child mode {other:?}"),
    };
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}

async fn parent(mut args: Args) -> Result<()> {
    if args.sizes.is_empty() {
        args.sizes = if args.quick { vec![50, 200] } else { vec![200, 2_000, 10_000] };
    }
    if args.autotask {
        let command = std::env::args().collect::<Vec<_>>().join(" ");
        print!("{}", autotask::run(&args.sizes, args.seed, args.autotask_rps, &command).await?);
        return Ok(());
    }
    if args.halopsa {
        let command = std::env::args().collect::<Vec<_>>().join(" ");
        print!("{}", halopsa::run(&args.sizes, args.seed, args.halopsa_speedup, &command).await?);
        return Ok(());
    }
    if args.daemon_only {
        let command = std::env::args().collect::<Vec<_>>().join(" ");
        let mut lat = String::new();
        let mut out =
            format!("Command: `{command}`\n\n| customers | step | VmHWM |\n|---|---|---|\n");
        for &n in &args.sizes {
            eprintln!("mpsync-bench: the daemon at {n} customers");
            let h = daemon_at(&args, n).await?;
            for (step, kb) in &h.hwm_steps {
                out += &format!("| {n} | {step} | {:.1} MiB |\n", *kb as f64 / 1024.0);
            }
            for p in &h.phases {
                for e in &p.endpoints {
                    lat += &format!(
                        "| {n} | {} | {} | {} | {:.2} / {:.2} ms |\n",
                        p.name, e.path, e.count, e.p50_ms, e.p99_ms
                    );
                }
            }
        }
        out += "\n| customers | phase | endpoint | answers | p50 / p99 |\n|---|---|---|---|---|\n";
        print!("{out}{lat}");
        return Ok(());
    }
    let http_at = args.http_customers.unwrap_or(if args.quick { 200 } else { 10_000 });
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    let started_at = chrono::Utc::now();
    let load_before = setup::loadavg();
    let mut results = Vec::new();
    for &n in &args.sizes {
        eprintln!("mpsync-bench: {n} customers");
        results.push(one_size(&args, n, n == http_at).await?);
    }
    let env = report::Env {
        command,
        started_at,
        finished_at: chrono::Utc::now(),
        load_before,
        load_after: setup::loadavg(),
        machine: setup::Machine::probe(),
    };
    let text = report::render(&args, &env, &results);
    println!("{text}");
    if args.out != "-" {
        // Sections an earlier report kept below the marker (measurements taken with other
        // settings, with their own commands) survive the rewrite.
        let kept = std::fs::read_to_string(&args.out)
            .ok()
            .and_then(|old| old.find(report::KEPT_MARKER).map(|i| old[i..].to_owned()));
        let text = match kept {
            Some(kept) => format!("{}\n{kept}", text.trim_end()),
            None => text,
        };
        std::fs::write(&args.out, &text).with_context(|| format!("writing {}", args.out))?;
        eprintln!("mpsync-bench: wrote {}", args.out);
    }
    Ok(())
}

async fn one_size(args: &Args, n: u32, with_http: bool) -> Result<SizeResult> {
    let opts = SimOptions {
        customers: n,
        seed: args.seed,
        latency: Duration::from_millis(args.latency_ms),
        jitter: Duration::from_millis(args.jitter_ms),
        rate_limit: Some(args.server_rps),
        ..SimOptions::default()
    };
    let sim = SimServer::start(opts).await?;
    let (rid, key, truth, domains, groups) = {
        let ds = sim.control().read();
        (
            ds.reseller_id(),
            ds.reseller_key().to_owned(),
            ds.expected_counts(),
            ds.domains().len(),
            ds.groups().len(),
        )
    };
    let dir = tempfile::Builder::new().prefix("mpsync-bench-").tempdir()?;
    let limits =
        ClientLimits { rps: args.client_rps, burst: args.burst, in_flight: args.in_flight };
    let config = setup::write_config(dir.path(), &sim.base_url(), rid, &key, &limits)?;
    let state = dir.path().join("kept.json");
    let measure = |mode: &'static str, name: &'static str, hours: i64| {
        let (config, state, truth, control) =
            (config.clone(), state.clone(), truth.clone(), sim.control().clone());
        let counts = dir.path().join(format!("{name}-counts.json"));
        async move { measure(mode, &config, &state, &counts, &truth, &control, hours).await }
    };
    let cold = measure("sync", "cold", 0).await?;
    eprintln!("  cold: {:.2}s, {} requests", cold.child.wall_s, cold.child.total());
    let warm = measure("sync", "warm", 0).await?;
    eprintln!("  warm: {:.2}s, {} requests", warm.child.wall_s, warm.child.total());
    let mut steady = Vec::new();
    if args.steady_runs > 0 && (args.steady_sizes.is_empty() || args.steady_sizes.contains(&n)) {
        for hour in 1..=i64::from(args.steady_runs) {
            let m = measure("sync", "steady", hour).await?;
            if m.mismatches > 0 {
                anyhow::bail!("steady run at hour {hour}: {} customers miscounted", m.mismatches);
            }
            steady.push((hour, m.child.total(), m.child.services_fetched));
        }
        eprintln!(
            "  {} steady runs: {:?}",
            steady.len(),
            steady.iter().map(|s| s.1).collect::<Vec<_>>()
        );
    }
    let naive = if args.no_naive {
        None
    } else {
        let m = measure("naive", "naive", 0).await?;
        eprintln!("  naive: {:.2}s, {} requests", m.child.wall_s, m.child.total());
        Some(m)
    };
    let http =
        if with_http { Some(http_phase(args, &sim, &config, dir.path()).await?) } else { None };
    sim.shutdown().await;
    Ok(SizeResult { customers: n, domains, groups, cold, warm, naive, steady, http })
}

async fn measure(
    mode: &str,
    config: &std::path::Path,
    state: &std::path::Path,
    counts: &std::path::Path,
    truth: &Counts,
    control: &mpsync_sim::SimControl,
    clock_hours: i64,
) -> Result<SyncMeasure> {
    control.reset_requests();
    let args = vec![
        "--clock-hours".into(),
        clock_hours.to_string(),
        "--config".into(),
        config.display().to_string(),
        "--state".into(),
        state.display().to_string(),
        "--counts-out".into(),
        counts.display().to_string(),
    ];
    let child = setup::run_child(mode, args).await?;
    let seen = control.requests();
    Ok(SyncMeasure {
        sim_requests: seen.total,
        sim_429: seen.status(429),
        sim_services: seen.get("GET /user_groups/{id}/services"),
        mismatches: setup::mismatches(counts, truth)?,
        child,
    })
}

/// The daemon alone (billing, mapping and read load as in the full run) at `n` customers.
async fn daemon_at(args: &Args, n: u32) -> Result<http::HttpResult> {
    let opts = SimOptions {
        customers: n,
        seed: args.seed,
        latency: Duration::from_millis(args.latency_ms),
        jitter: Duration::from_millis(args.jitter_ms),
        rate_limit: Some(args.server_rps),
        ..SimOptions::default()
    };
    let sim = SimServer::start(opts).await?;
    let (rid, key) = {
        let ds = sim.control().read();
        (ds.reseller_id(), ds.reseller_key().to_owned())
    };
    let dir = tempfile::Builder::new().prefix("mpsync-bench-").tempdir()?;
    let limits =
        ClientLimits { rps: args.client_rps, burst: args.burst, in_flight: args.in_flight };
    let config = setup::write_config(dir.path(), &sim.base_url(), rid, &key, &limits)?;
    let out = http_phase(args, &sim, &config, dir.path()).await?;
    sim.shutdown().await;
    Ok(out)
}

async fn http_phase(
    args: &Args,
    sim: &mpsync_sim::SimHandle,
    config: &std::path::Path,
    dir: &std::path::Path,
) -> Result<http::HttpResult> {
    let plan = http::LoadPlan {
        daemon: args.daemon.clone().unwrap_or_else(http::default_daemon),
        health_tasks: args.health_tasks,
        data_tasks: args.data_tasks,
        probe_tasks: args.probe_tasks,
        idle_s: 5,
    };
    eprintln!("  HTTP load on {} during a sync", plan.daemon.display());
    // The daemon also reads billing from the simulated ConnectWise (with the generated
    // mapping), so /v1/reconciliation serves a real reconciliation of every customer.
    let billing = sim.control().connectwise().read().clone();
    mpsync::commands::write_billing_files(dir, &sim.base_url(), &billing, Some(args.billing_rps))?;
    sim.control().reset_requests();
    http::measure(config, dir, &plan).await
}
