//! The HaloPSA billing read against the simulated Halo under its rolling limit (300 and 700
//! requests per 5 minutes: the record does not settle which applies): at each size, one read
//! by the real client with the budget `mpsync sim --psa halopsa` config loads (the daemon's
//! defaults), once as the daemon reads (`includelines=true` on the invoice list) and once with
//! the server ignoring `includelines` (one `GET /RecurringInvoice/{id}` per invoice).
//!
//! The fallback at thousands of invoices takes hours at the default budget, so it runs on a
//! sped-up clock: the client's budget is `speedup` times the configured rate (same burst), its
//! token clock runs `speedup` times as fast, and the simulator's clock (tokens, rolling window)
//! is advanced to match. The wall time reported is on that clock (real seconds × `speedup`):
//! what the read would take for real, the server's answer times included (scaled too, so an
//! upper bound). The list read runs in real time.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use chrono::Utc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use mpsync::billing::halopsa::token::Clock;
use mpsync::billing::halopsa::{HaloClient, collect, retry_policy};
use mpsync::cli::Psa;
use mpsync::config::{BillingSource, HalopsaConfig, LoadOptions, load};
use mpsync_sim::halopsa::{ENDPOINTS, HaloSim, Resource};
use mpsync_sim::{SimOptions, SimServer};

/// The rolling limits measured (requests per 5 minutes).
const LIMITS: [u64; 2] = [300, 700];

/// One read's numbers.
struct Measure {
    /// Requests the simulator counted, per Halo route pattern.
    by_endpoint: BTreeMap<String, u64>,
    /// Requests the client made (token requests included).
    requests: u64,
    /// 429s the client received.
    rate_limited: u64,
    /// The most requests the simulator counted in its rolling window at any moment.
    peak_window: u64,
    /// Wall time on the (possibly sped-up) clock, seconds.
    wall: f64,
    /// Billed lines read.
    lines: usize,
}

/// Measures every size under each limit; returns the Markdown section.
pub async fn run(sizes: &[u32], seed: u64, speedup: f64, command: &str) -> Result<String> {
    if !(speedup.is_finite() && speedup >= 1.0) {
        bail!("--halopsa-speedup must be at least 1, got {speedup}");
    }
    let mut out = String::new();
    let mut budget = String::new();
    writeln!(out, "## HaloPSA billing read\n")?;
    writeln!(out, "Command: `{command}`\n")?;
    let mut rows = String::new();
    for limit in LIMITS {
        for &n in sizes {
            for fallback in [false, true] {
                let speed = if fallback { speedup } else { 1.0 };
                let (m, counts, cfg) = one(n, seed, limit, fallback, speed).await?;
                if budget.is_empty() {
                    let l = &cfg.limits;
                    budget = format!(
                        "Client budget as `mpsync sim --psa halopsa` configures it (the daemon's \
                         defaults): {} request/s, burst {}, {} in flight, token requests \
                         included; at most {} requests in any 5 minutes.\n",
                        l.rate_limit,
                        l.burst,
                        l.max_in_flight,
                        l.burst as f64 + l.rate_limit * 300.0
                    );
                }
                let get = |e: &str| m.by_endpoint.get(e).copied().unwrap_or(0);
                let sim_total: u64 = m.by_endpoint.values().sum();
                writeln!(
                    rows,
                    "| {limit} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                    counts.0,
                    counts.1,
                    counts.2,
                    if fallback { "ignored: one GET per invoice" } else { "honoured" },
                    get("GET /Client"),
                    get("GET /ClientContract"),
                    get("GET /RecurringInvoice"),
                    get("GET /RecurringInvoice/{id}"),
                    get("POST /auth/token"),
                    format_args!("{sim_total} ({} by the client)", m.requests),
                    m.rate_limited,
                    m.peak_window,
                    wall(m.wall, speed),
                )?;
                eprintln!(
                    "halopsa: limit {limit}, {n} customers, includelines {}: {} lines, {} \
                     requests, {:.1}s",
                    if fallback { "ignored" } else { "honoured" },
                    m.lines,
                    sim_total,
                    m.wall
                );
            }
        }
    }
    writeln!(out, "{budget}")?;
    writeln!(
        out,
        "| limit / 5 min | clients | contracts | recurring invoices | `includelines` | \
         `GET /Client` | `GET /ClientContract` | `GET /RecurringInvoice` | \
         `GET /RecurringInvoice/{{id}}` | tokens | requests | 429s | peak in a window | wall time |"
    )?;
    writeln!(out, "|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")?;
    out.push_str(&rows);
    Ok(out)
}

fn wall(secs: f64, speed: f64) -> String {
    let t = if secs >= 3600.0 {
        format!("{:.2} h", secs / 3600.0)
    } else if secs >= 120.0 {
        format!("{:.1} min", secs / 60.0)
    } else {
        format!("{secs:.1} s")
    };
    if speed > 1.0 { format!("{t} (clock ×{speed})") } else { format!("{t} (measured)") }
}

/// One read at `n` customers under `limit`; also the dataset's (clients, contracts,
/// invoices) and the config used.
async fn one(
    n: u32,
    seed: u64,
    limit: u64,
    fallback: bool,
    speed: f64,
) -> Result<(Measure, (usize, usize, usize), HalopsaConfig)> {
    let sim = SimServer::start(SimOptions { customers: n, seed, ..SimOptions::default() })
        .await
        .context("starting the simulator")?;
    let halo = sim.control().halopsa();
    halo.update_settings(|s| {
        s.rate_limit = limit;
        s.ignore_includelines = fallback;
    });
    let counts = {
        let d = halo.read();
        let len = |r: Resource| d.rows.get(&r).map_or(0, Vec::len);
        (len(Resource::Client), len(Resource::ClientContract), len(Resource::RecurringInvoice))
    };
    let dir = tempfile::tempdir()?;
    let path = mpsync::commands::write_sim_config_for(
        dir.path(),
        sim.control(),
        &sim.base_url(),
        None,
        Psa::Halopsa,
    )?;
    let loaded = load(&LoadOptions { path, env: HashMap::new(), overrides: Vec::new() })
        .map_err(|e| anyhow::anyhow!("the simulator's config does not load: {e}"))?;
    let BillingSource::Halopsa(cfg) = loaded.billing.source else {
        bail!("the simulator's config has no [billing.halopsa]");
    };
    let mut fast = (*cfg).clone();
    fast.limits.rate_limit *= speed;

    // The client's token clock and the simulator's clock run `speed` times as fast as real.
    let origin = std::time::Instant::now();
    let clock: Clock = Arc::new(move || origin + origin.elapsed().mul_f64(speed));
    let client = HaloClient::build(&fast, false, retry_policy(), clock)?;
    let done = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(AtomicU64::new(0));
    let ticker =
        tokio::spawn(tick(halo.clone(), cfg.client_id.clone(), speed, done.clone(), peak.clone()));

    let started = Instant::now();
    let scoped = client.scoped();
    let outcome = collect(&scoped, Utc::now(), &CancellationToken::new()).await;
    let wall = started.elapsed().as_secs_f64() * speed;
    done.store(true, Ordering::SeqCst);
    ticker.await?;
    let billed = outcome.map_err(|e| anyhow::anyhow!("the HaloPSA read failed: {e}"))?;
    let stats = scoped.stats();
    let counted = sim.control().requests();
    let by_endpoint =
        ENDPOINTS.iter().map(|e| (e.to_string(), counted.get(e))).filter(|(_, c)| *c > 0).collect();
    let m = Measure {
        by_endpoint,
        requests: stats.iter().map(|s| s.total_requests()).sum(),
        rate_limited: stats.iter().map(|s| s.rate_limited).sum(),
        peak_window: peak.load(Ordering::SeqCst),
        wall,
        lines: billed.lines.len(),
    };
    sim.shutdown().await;
    Ok((m, counts, *cfg))
}

/// Until `done`: moves the simulator's clock so it runs `speed` times as fast as real time,
/// and records the most requests of `client_id` in its rolling window.
async fn tick(
    halo: HaloSim,
    client_id: String,
    speed: f64,
    done: Arc<AtomicBool>,
    peak: Arc<AtomicU64>,
) {
    let origin = Instant::now();
    let mut advanced = Duration::ZERO;
    loop {
        let ahead = origin.elapsed().mul_f64(speed - 1.0);
        if ahead > advanced {
            halo.advance(ahead - advanced);
            advanced = ahead;
        }
        peak.fetch_max(halo.rate_use(&client_id).0, Ordering::SeqCst);
        if done.load(Ordering::SeqCst) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
