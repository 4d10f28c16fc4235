//! The real client in a child process: one `collect_usage` run exactly as the daemon's vendor
//! job makes it, with the service cache and walk sizes kept in a state file between runs (a
//! missing file is a cold run, an existing one a warm run).

use std::collections::HashMap;
use std::path::Path;

use anyhow::{Context, Result};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use mpsync::mailprotector::{CollectInput, MailprotectorClient, WalkStats, collect_usage};
use mpsync::model::CachedServices;

use crate::setup::{ChildReport, Counts, load_config, self_hwm_kb, write_counts};

/// What the vendor job keeps between runs (the daemon keeps it in its store).
#[derive(Debug, Default, Serialize, Deserialize)]
struct Kept {
    cache: HashMap<u64, CachedServices>,
    walk_stats: Option<WalkStats>,
}

/// Runs one sync with the config at `config`, the kept state at `state` (read if present,
/// then replaced) and writes the counts to `counts_out`.
/// `clock_hours` moves the run's clock forward (simulated hourly runs).
pub async fn run(
    config: &Path,
    state: &Path,
    counts_out: &Path,
    clock_hours: i64,
) -> Result<ChildReport> {
    let cfg = load_config(config)?;
    let mp = cfg.mailprotector;
    let kept: Kept = match std::fs::read(state) {
        Ok(bytes) => serde_json::from_slice(&bytes).context("reading the kept state")?,
        Err(_) => Kept::default(),
    };
    let client = MailprotectorClient::new(&mp)?.scoped();
    let started = Instant::now();
    let out = collect_usage(
        &client,
        CollectInput {
            config: &mp,
            cache: &kept.cache,
            walk_stats: kept.walk_stats.clone(),
            now: Utc::now() + chrono::Duration::hours(clock_hours),
            cancel: CancellationToken::new(),
        },
    )
    .await?;
    let wall_s = started.elapsed().as_secs_f64();
    let counts: Counts = out.customers.iter().map(|c| (c.id, c.counts.clone())).collect();
    write_counts(counts_out, &counts)?;
    let customers = out.customers.len();
    let report = ChildReport {
        wall_s,
        requests: out.requests.requests.clone(),
        retries: out.requests.retries,
        rate_limited: out.requests.rate_limited,
        walk: Some(format!("{:?}", out.walk)),
        services_fetched: out.services_fetched,
        customers,
        vm_hwm_kb: 0,
    };
    let kept = Kept { cache: out.cache, walk_stats: Some(out.walk_stats) };
    std::fs::write(state, serde_json::to_vec(&kept)?)?;
    drop(kept);
    // Peak RSS is read last, so it covers everything the run held.
    Ok(ChildReport { vm_hwm_kb: self_hwm_kb(), ..report })
}
