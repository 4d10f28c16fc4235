//! Helpers for the end-to-end sync tests: an in-process simulator on its own tokio runtime,
//! a config that points the real `mpsync run` at it, POST requests, `/metrics` parsing and
//! in-process reads of the store while no daemon holds it.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use mpsync::store::Store;
use mpsync_sim::{Fault, FaultKind, SimControl, SimHandle, SimOptions, SimServer};
use serde_json::Value;

use crate::support::common::{TestDir, mpsync, wait_for};
use crate::support::daemon::{DEADLINE, Daemon, Reply};

/// A simulator served from its own multi-threaded runtime, so the (blocking) test thread can
/// drive the real binary while the simulator answers. Dropping it stops the server.
pub struct Sim {
    pub rt: tokio::runtime::Runtime,
    handle: Option<SimHandle>,
}

impl Sim {
    /// Starts a simulator with `customers` customers generated from `seed`.
    pub fn start(seed: u64, customers: u32) -> Sim {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("build the simulator runtime");
        let opts = SimOptions { seed, customers, ..SimOptions::default() };
        let handle = rt.block_on(SimServer::start(opts)).expect("start the simulator");
        Sim { rt, handle: Some(handle) }
    }

    fn handle(&self) -> &SimHandle {
        self.handle.as_ref().expect("simulator running")
    }

    pub fn control(&self) -> &SimControl {
        self.handle().control()
    }

    pub fn base_url(&self) -> String {
        self.handle().base_url()
    }

    /// Installs a fault (inside the runtime: faults keep tokio timers); returns its id.
    pub fn add_fault(&self, fault: Fault) -> u64 {
        let control = self.control().clone();
        self.rt.block_on(async move { control.add_fault(fault) })
    }

    /// Adds latency to every Mailprotector answer; returns the fault id.
    pub fn latency(&self, ms: u64) -> u64 {
        self.add_fault(Fault::new(FaultKind::Latency { ms, jitter_ms: 0 }))
    }

    /// Ground truth now: customer id → (name, counts per product).
    pub fn truth(&self) -> BTreeMap<u64, (String, BTreeMap<String, u64>)> {
        let counts = self.control().expected_counts();
        let data = self.control().read();
        counts
            .into_iter()
            .map(|(id, c)| (id, (data.customer_name(id).unwrap_or_default().to_owned(), c)))
            .collect()
    }

    /// Opens the store in-process, off the runtime (the daemon must not be running: the file
    /// is locked while it does). Drop it before starting a daemon again.
    pub fn open_store(&self, state_dir: &Path) -> Store {
        let dir = state_dir.to_path_buf();
        self.rt
            .block_on(async move { tokio::task::spawn_blocking(move || Store::open(&dir)).await })
            .expect("the open task ended")
            .unwrap_or_else(|e| panic!("the store does not open: {e}"))
    }

    /// Runs `fut` to completion on the simulator's runtime (store reads).
    pub fn block_on<F: std::future::Future>(&self, fut: F) -> F::Output {
        self.rt.block_on(fut)
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        if let Some(h) = self.handle.take() {
            let _ = self.rt.block_on(async {
                tokio::time::timeout(Duration::from_secs(10), h.shutdown()).await
            });
        }
    }
}

/// Customers as a snapshot or `/v1/customers` shows them: id → (name, counts).
pub type Customers = BTreeMap<u64, (String, BTreeMap<String, u64>)>;

/// The customers array of `/v1/customers` (or a serialized snapshot) as a map.
pub fn customers_of(json: &Value) -> Customers {
    let arr = json["customers"].as_array().unwrap_or_else(|| panic!("no customers: {json}"));
    arr.iter()
        .map(|c| {
            let counts = c["counts"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.as_u64().unwrap()))
                .collect();
            (c["id"].as_u64().unwrap(), (c["name"].as_str().unwrap().to_owned(), counts))
        })
        .collect()
}

/// The config of a daemon pointed at `sim`: vendor poll on `schedule`, a rate budget high
/// enough that the simulator's latency (not the limiter) sets a run's length.
pub fn write_config(dir: &TestDir, listen: &str, sim: &Sim, schedule: &str) -> PathBuf {
    let key = dir.secret("mailprotector-api-key", &sim.control().reseller_key());
    let toml = format!(
        r#"[daemon]
listen = "{listen}"
state_dir = "{state}"
shutdown_grace = "10s"
log = "info"

[mailprotector]
base_url = "{base}"
api_key_file = "{key}"
reseller_id = {reseller}
schedule = "{schedule}"
rate_limit = 1000.0
burst = 100
max_in_flight = 4
timeout = "10s"
"#,
        state = dir.state_dir().display(),
        base = sim.base_url(),
        key = key.display(),
        reseller = sim.control().reseller_id(),
    );
    dir.config(&toml)
}

/// Starts `mpsync --config <config> run --listen 127.0.0.1:0` and waits until it is ready
/// (and has said where it listens).
pub fn start_daemon(config: &Path) -> Daemon {
    let mut cmd = mpsync();
    cmd.arg("--config").arg(config).arg("run").arg("--listen").arg("127.0.0.1:0");
    let mut d = Daemon::spawn(cmd);
    d.wait_ready();
    d
}

/// One `POST` with an empty body and `Connection: close`.
pub fn post(addr: &str, path: &str) -> Reply {
    let mut s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    s.set_read_timeout(Some(DEADLINE)).unwrap();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    Reply { status, head: head.to_owned(), body: body.to_owned() }
}

/// Every run `/v1/runs` lists (newest first).
pub fn runs(d: &Daemon) -> Vec<Value> {
    let r = d.get("/v1/runs?limit=1000");
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()["runs"].as_array().unwrap().clone()
}

/// Waits until the served reconciliation was computed from the latest runs: the snapshots
/// of the newest successful vendor and billing runs, and whether the newest finished run of
/// each failed (as the daemon's reconciler judges it). Returns that document. A time
/// comparison is not enough: a recompute that began after a run's `finished_at` may still
/// have read the store before that run was committed.
pub fn wait_reconciled_from_latest_runs(d: &Daemon) -> Value {
    // Newest first.
    let all = runs(d);
    let last_ok = |k: &str| {
        all.iter().find(|r| r["kind"] == k && r["outcome"] == "ok").and_then(|r| r["id"].as_u64())
    };
    let failed = |k: &str| {
        all.iter()
            .find(|r| r["kind"] == k && r["outcome"] != "running")
            .is_some_and(|r| r["outcome"] == "failed" || r["outcome"] == "aborted")
    };
    let want = (last_ok("vendor"), last_ok("billing"), failed("vendor"), failed("billing"));
    wait_for(DEADLINE, &format!("a reconciliation of the latest runs {want:?}"), || {
        let doc = d.get("/v1/reconciliation?evidence=true&limit=5000").json();
        let s = &doc["summary"];
        let got = (
            doc["vendor_run"].as_u64(),
            doc["billing_run"].as_u64(),
            s["vendor"]["last_run_failed"].as_bool().unwrap_or(false),
            s["billing"]["last_run_failed"].as_bool().unwrap_or(false),
        );
        (got == want).then_some(doc)
    })
}

/// Waits until run `id` has finished and returns it.
pub fn wait_run_finished(d: &Daemon, id: u64) -> Value {
    wait_for(DEADLINE, &format!("run {id} to finish"), || {
        runs(d).into_iter().find(|r| r["id"] == id && r["outcome"] != "running")
    })
}

/// Waits until a vendor run with id > `after` has finished; returns it.
pub fn wait_next_run(d: &Daemon, after: u64) -> Value {
    wait_for(DEADLINE, &format!("a run after {after} to finish"), || {
        runs(d)
            .into_iter()
            .filter(|r| r["id"].as_u64().unwrap() > after)
            .find(|r| r["outcome"] != "running")
    })
}

/// The value of one metric sample: `name` with every label pair of `labels` (0 when absent).
pub fn metric(body: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    body.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let (metric, rest) = series.split_once('{').unwrap_or((series, ""));
            (metric == name && labels.iter().all(|(k, v)| rest.contains(&format!("{k}=\"{v}\""))))
                .then(|| value.parse::<f64>().ok())
                .flatten()
        })
        .sum()
}

/// `POST /v1/sync` until it is accepted (202). The engine learns that a run ended just after
/// the store recorded it, so a trigger right after `/v1/runs` shows the end may still get 409.
pub fn trigger_sync(d: &Daemon) -> Reply {
    wait_for(DEADLINE, "POST /v1/sync to be accepted", || {
        let r = post(&d.addr, "/v1/sync");
        assert!(matches!(r.status, 202 | 409), "{r:?}");
        (r.status == 202).then_some(r)
    })
}
