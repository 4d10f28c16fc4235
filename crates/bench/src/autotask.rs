//! The Autotask billing read against the simulated database: at each size, one read by the
//! real source (zone lookup included) with the given client budget, and what it cost against
//! the database's 10,000 requests an hour — the share every other integration no longer has.

use std::fmt::Write as _;
use std::time::Duration;

use anyhow::{Context, Result};
use chrono::Utc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use mpsync::billing::{AutotaskSource, BilledSource};
use mpsync::config::{AutotaskConfig, Secret, UpstreamLimits};
use mpsync_sim::{SimOptions, SimServer};

/// Measures every size; returns the Markdown section.
pub async fn run(sizes: &[u32], seed: u64, rps: f64, command: &str) -> Result<String> {
    let mut out = String::new();
    writeln!(out, "## Autotask billing read\n")?;
    writeln!(out, "Command: `{command}`\n")?;
    writeln!(
        out,
        "Client budget {rps} request/s (burst 10, 3 in flight per entity); simulated database \
         threshold 10,000 requests an hour (latency tiers from 50%).\n"
    )?;
    writeln!(
        out,
        "| companies | contracts | contract services | requests | wall time | share of the hour |"
    )?;
    writeln!(out, "|---:|---:|---:|---:|---:|---:|")?;
    for &n in sizes {
        let sim = SimServer::start(SimOptions { customers: n, seed, ..SimOptions::default() })
            .await
            .context("starting the simulator")?;
        let at = sim.control().autotask();
        let (companies, contracts, services) = {
            let d = at.read();
            let len = |e: &str| d.rows.get(e).map_or(0, Vec::len);
            (len("Companies"), len("Contracts"), len("ContractServices"))
        };
        let creds = at.credentials();
        let cfg = AutotaskConfig {
            base_url: None,
            zone_lookup_url: format!("{}/ATServicesRest/", sim.base_url()).parse()?,
            username: creds.username.clone(),
            integration_code: Secret::new(creds.integration_code.clone(), "bench"),
            secret: Secret::new(creds.secret.clone(), "bench"),
            adjustment_effective: Default::default(),
            limits: UpstreamLimits {
                rate_limit: rps,
                burst: 10,
                max_in_flight: 3,
                timeout: Duration::from_secs(30),
                connect_timeout: Duration::from_secs(5),
            },
        };
        let source = AutotaskSource::new(&cfg)?;
        let started = Instant::now();
        let report = source.fetch(Utc::now(), &CancellationToken::new()).await;
        let wall = started.elapsed().as_secs_f64();
        let billed = report.outcome.context("the Autotask read failed")?;
        let requests: u64 = report.stats.iter().map(|s| s.total_requests()).sum();
        let (used, limit) = at.threshold_use();
        writeln!(
            out,
            "| {companies} | {contracts} | {services} | {requests} ({used} counted by the \
             threshold) | {wall:.1} s | {:.2}% |",
            100.0 * used as f64 / limit as f64
        )?;
        eprintln!("autotask: {n} customers, {} lines read in {wall:.1}s", billed.lines.len());
        sim.shutdown().await;
    }
    Ok(out)
}
