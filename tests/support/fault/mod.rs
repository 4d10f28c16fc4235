//! The fault matrix's machinery: the in-process simulators (Mailprotector, ConnectWise or
//! Autotask, Gradient) with the config `mpsync sim [--psa autotask] --keys-dir` writes, the real daemon against them
//! (optionally under a file-size limit or a fake wall clock), and what a case observes: runs,
//! reconciliation rows, customers, history and health.

mod case;
mod daemon;

use std::collections::BTreeMap;
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use mpsync::cli::Psa;
use serde_json::Value;

pub use case::{Case, Health, Inject, Outcome, Stale, run};
pub use daemon::Wrap;

use crate::support::common::{TestDir, wait_for};
use crate::support::daemon::{DEADLINE, Daemon};
use crate::support::sync::{Customers, Sim, customers_of, runs};

/// Customers in the generated dataset: small, so a case is about the fault, not the volume.
pub const CUSTOMERS: u32 = 20;

/// A simulator, its generated config and (usually) a daemon against it.
pub struct Fixture {
    pub sim: Sim,
    /// Holds the config, its secrets and the state dir; removed when the fixture drops.
    pub dir: TestDir,
    pub config: PathBuf,
    /// `MPSYNC_*` overrides the daemon is started with.
    pub env: Vec<(String, String)>,
    /// The libfaketime offset file (used when the daemon runs under [`Wrap::FakeClock`]).
    pub clock: PathBuf,
    pub daemon: Option<Daemon>,
}

/// One reconciliation row as far as "wrong or not" goes.
#[derive(Debug, Clone, PartialEq)]
pub struct RowView {
    pub status: String,
    pub vendor_quantity: Option<u64>,
    pub billed_quantity: Option<f64>,
    /// A service row (uses billing) rather than an unmapped customer or product.
    pub service: bool,
}

/// What the daemon serves at one moment.
#[derive(Debug, Clone)]
pub struct Observed {
    /// `/v1/runs`, newest first.
    pub runs: Vec<Value>,
    /// `/v1/reconciliation` rows by their key.
    pub rows: BTreeMap<String, RowView>,
    /// `/v1/customers`.
    pub customers: Customers,
    /// `/v1/history` points of one (customer, product).
    pub history: Vec<Value>,
}

impl Fixture {
    /// A simulator with the full `--keys-dir` config (Gradient only when `gradient`), and
    /// schedules that never fire during a test: runs come from the start-up catch-up and
    /// `POST /v1/sync` only (the Gradient push, which has no trigger, runs every second).
    pub fn new(seed: u64, gradient: bool, extra_env: &[(&str, &str)]) -> Fixture {
        Fixture::with_psa(seed, gradient, extra_env, Psa::Connectwise)
    }

    /// [`Fixture::new`] with billing from the simulated `psa`.
    pub fn with_psa(seed: u64, gradient: bool, extra_env: &[(&str, &str)], psa: Psa) -> Fixture {
        let sim = Sim::start(seed, CUSTOMERS);
        let dir = TestDir::new();
        let config = mpsync::commands::write_sim_config_for(
            dir.path(),
            sim.control(),
            &sim.base_url(),
            None,
            psa,
        )
        .expect("write the simulator config");
        const NEVER: &str = "0 0 0 1 1 *";
        let mut env: Vec<(String, String)> = vec![
            ("MPSYNC_DAEMON__SHUTDOWN_GRACE".into(), "10s".into()),
            ("MPSYNC_MAILPROTECTOR__SCHEDULE".into(), NEVER.into()),
            ("MPSYNC_MAILPROTECTOR__RATE_LIMIT".into(), "500".into()),
            ("MPSYNC_MAILPROTECTOR__BURST".into(), "50".into()),
            ("MPSYNC_BILLING__SCHEDULE".into(), NEVER.into()),
            ("MPSYNC_GRADIENT__ENABLED".into(), gradient.to_string()),
            ("MPSYNC_GRADIENT__SCHEDULE".into(), "* * * * * *".into()),
        ];
        env.extend(extra_env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let clock = dir.path().join("faketime");
        std::fs::write(&clock, "+0\n").expect("write the clock offset");
        Fixture { sim, dir, config, env, clock, daemon: None }
    }

    /// The running daemon.
    pub fn d(&self) -> &Daemon {
        self.daemon.as_ref().expect("a daemon is running")
    }

    /// Reads what the daemon serves now, the history of `(customer, product)`.
    pub fn observe(&self, sample: &(u64, String)) -> Observed {
        let d = self.d();
        let rec = get_json(d, "/v1/reconciliation?evidence=true&limit=5000");
        let rows = rec["rows"]
            .as_array()
            .unwrap_or_else(|| panic!("no reconciliation rows: {rec}"))
            .iter()
            .map(|r| {
                let view = RowView {
                    status: r["status"].as_str().unwrap().to_owned(),
                    vendor_quantity: r["vendor_quantity"].as_u64(),
                    billed_quantity: r["billed_quantity"].as_f64(),
                    service: r["kind"] == "service",
                };
                (row_key(r), view)
            })
            .collect();
        // The reconciliation says when it was computed, as a timestamp.
        let _: DateTime<Utc> = rec["computed_at"].as_str().unwrap().parse().unwrap();
        let customers = customers_of(&get_json(d, "/v1/customers"));
        let path = format!("/v1/history?customer={}&product={}", sample.0, sample.1);
        let history = get_json(d, &path)["points"].as_array().unwrap().clone();
        Observed { runs: runs(d), rows, customers, history }
    }

    /// A (customer, product) with users, for the history check.
    pub fn sample(&self) -> (u64, String) {
        let customers = customers_of(&get_json(self.d(), "/v1/customers"));
        customers
            .iter()
            .find_map(|(id, (_, counts))| {
                counts.iter().find(|(_, n)| **n > 0).map(|(p, _)| (*id, p.clone()))
            })
            .expect("a customer with users")
    }

    /// Waits until a run of each of `kinds` newer than `after` has finished, then until the
    /// reconciliation was recomputed after them; returns those runs (in `kinds` order).
    pub fn settle(&self, after: u64, kinds: &[&str]) -> Vec<Value> {
        let d = self.d();
        let found = wait_for(DEADLINE * 2, &format!("{kinds:?} runs after {after}"), || {
            let all = runs(d);
            let found: Vec<Value> = kinds
                .iter()
                .filter_map(|k| {
                    all.iter()
                        .filter(|r| r["kind"] == *k && r["id"].as_u64().unwrap() > after)
                        .find(|r| r["outcome"] != "running")
                        .cloned()
                })
                .collect();
            (found.len() == kinds.len()).then_some(found)
        });
        if kinds.iter().any(|k| *k != "push") {
            crate::support::sync::wait_reconciled_from_latest_runs(self.d());
        }
        found
    }

    /// The newest run id so far (0 when none).
    pub fn last_run_id(&self) -> u64 {
        runs(self.d()).iter().filter_map(|r| r["id"].as_u64()).max().unwrap_or(0)
    }
}

/// A row's identity (its flattened key): kind plus account and product, customer or product.
fn row_key(row: &Value) -> String {
    let part = |k: &str| match &row[k] {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        v => v.to_string(),
    };
    let key =
        [part("kind"), part("account"), part("psa_product"), part("customer"), part("product")];
    key.join("|")
}

/// GET `path` as JSON, asserting 200.
pub fn get_json(d: &Daemon, path: &str) -> Value {
    let r = d.get(path);
    assert_eq!(r.status, 200, "GET {path}: {}", r.body);
    r.json()
}
