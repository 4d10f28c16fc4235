//! What every measurement shares: the generated config pointing at a simulator, the child
//! process protocol (one JSON line on stdout), memory readings from `/proc` and the machine
//! description written into BENCHMARKS.md.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

/// Per customer, per product: users (zero counts omitted), as the sim's ground truth has it.
pub type Counts = BTreeMap<u64, BTreeMap<String, u64>>;

/// Client-side settings shared by the real client, the naive baseline and the daemon.
#[derive(Debug, Clone)]
pub struct ClientLimits {
    /// Requests per second.
    pub rps: f64,
    /// Burst above the steady rate.
    pub burst: u32,
    /// Requests in flight at once (the real client only; the naive one is sequential).
    pub in_flight: usize,
}

/// Writes `dir/mailprotector-api-key` (0600) and `dir/mpsync.toml` pointing at `sim_url`.
/// The daemon listens on 127.0.0.1:0 and logs warnings, and the line naming the address it
/// bound (the children never listen). Returns the config path.
pub fn write_config(
    dir: &Path,
    sim_url: &str,
    reseller_id: u64,
    key: &str,
    limits: &ClientLimits,
) -> Result<PathBuf> {
    let key_path = dir.join("mailprotector-api-key");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&key_path)
        .with_context(|| format!("writing {}", key_path.display()))?;
    writeln!(f, "{key}")?;
    let state = dir.join("state");
    std::fs::create_dir_all(&state)?;
    let q = |s: &str| toml::Value::String(s.to_owned()).to_string();
    // The schedule is far away (1 January): runs start only by catch-up or POST /v1/sync.
    let text = format!(
        "[daemon]\nlisten = \"127.0.0.1:0\"\nstate_dir = {state}\nlog = \"warn,mpsync::app=info\"\n\n\
         [mailprotector]\nbase_url = {url}\napi_key_file = {key}\nreseller_id = {reseller_id}\n\
         schedule = \"0 0 0 1 1 *\"\nrate_limit = {rps:?}\nburst = {burst}\nmax_in_flight = {inflight}\n\
         services_refresh = \"24h\"\n",
        state = q(&state.to_string_lossy()),
        url = q(sim_url),
        key = q(&key_path.to_string_lossy()),
        rps = limits.rps,
        burst = limits.burst,
        inflight = limits.in_flight,
    );
    let path = dir.join("mpsync.toml");
    std::fs::write(&path, text)?;
    Ok(path)
}

/// Loads the generated config the way the daemon does (no environment overrides).
pub fn load_config(path: &Path) -> Result<mpsync::config::Config> {
    let opts = mpsync::config::LoadOptions {
        path: path.to_owned(),
        env: Default::default(),
        overrides: Vec::new(),
    };
    mpsync::config::load(&opts).map_err(|e| anyhow::anyhow!("{e:#}"))
}

/// What a child process reports (one JSON line on stdout).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ChildReport {
    /// Wall time of the sync itself (config loading and process start excluded), seconds.
    pub wall_s: f64,
    /// Requests the client counted, per endpoint pattern.
    pub requests: BTreeMap<String, u64>,
    /// Attempts after the first of a call.
    pub retries: u64,
    /// 429 answers received.
    pub rate_limited: u64,
    /// The walk taken (real client only).
    pub walk: Option<String>,
    /// Service lists read rather than served from the cache.
    pub services_fetched: u64,
    /// Customers counted.
    pub customers: usize,
    /// Peak resident set size of the child (VmHWM), kB.
    pub vm_hwm_kb: u64,
}

impl ChildReport {
    /// All requests the client counted.
    pub fn total(&self) -> u64 {
        self.requests.values().sum()
    }
}

/// Runs this binary as `--child <mode>` with `args` and parses its report line.
pub async fn run_child(mode: &str, args: Vec<String>) -> Result<ChildReport> {
    let exe = std::env::current_exe().context("locating the bench binary")?;
    let mode = mode.to_owned();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(exe)
            .arg("--child")
            .arg(&mode)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .output()
    })
    .await??;
    if !out.status.success() {
        bail!("child process failed: {}", out.status);
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let line =
        text.lines().rev().find(|l| l.starts_with('{')).context("child printed no report")?;
    Ok(serde_json::from_str(line)?)
}

/// A `VmXxx:` value (kB) from a `/proc/<pid>/status` file.
pub fn proc_status_kb(pid: &str, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines().find(|l| l.starts_with(field))?.split_whitespace().nth(1)?.parse().ok()
}

/// This process's peak RSS so far (VmHWM), kB.
pub fn self_hwm_kb() -> u64 {
    proc_status_kb("self", "VmHWM:").unwrap_or(0)
}

/// Writes counts, dropping zero entries (the ground truth omits them).
pub fn write_counts(path: &Path, counts: &Counts) -> Result<()> {
    let cleaned: Counts = counts
        .iter()
        .map(|(c, m)| {
            (*c, m.iter().filter(|(_, n)| **n > 0).map(|(k, v)| (k.clone(), *v)).collect())
        })
        .collect();
    std::fs::write(path, serde_json::to_vec(&cleaned)?)?;
    Ok(())
}

/// Customers whose counts differ from the ground truth (missing or extra customers included).
pub fn mismatches(path: &Path, truth: &Counts) -> Result<usize> {
    let got: Counts = serde_json::from_slice(&std::fs::read(path)?)?;
    let keys: std::collections::BTreeSet<u64> = got.keys().chain(truth.keys()).copied().collect();
    Ok(keys.into_iter().filter(|k| got.get(k) != truth.get(k)).count())
}

/// The machine, for BENCHMARKS.md.
#[derive(Debug, Clone)]
pub struct Machine {
    /// CPUs available to this process.
    pub nproc: usize,
    /// `model name` from /proc/cpuinfo.
    pub cpu: String,
    /// MemTotal, MiB.
    pub mem_mib: u64,
    /// `rustc --version`.
    pub rustc: String,
    /// Kernel release.
    pub kernel: String,
}

impl Machine {
    /// Reads /proc and asks rustc.
    pub fn probe() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split(':').nth(1))
            .map_or_else(|| "unknown".to_owned(), |s| s.trim().to_owned());
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let mem_kb: u64 = meminfo
            .lines()
            .find(|l| l.starts_with("MemTotal:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let cmd = |c: &str, a: &str| {
            Command::new(c)
                .arg(a)
                .output()
                .ok()
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
                .unwrap_or_else(|| "unknown".into())
        };
        Machine {
            nproc: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cpu,
            mem_mib: mem_kb / 1024,
            rustc: cmd("rustc", "--version"),
            kernel: cmd("uname", "-r"),
        }
    }
}

/// The 1-, 5- and 15-minute load averages.
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}
