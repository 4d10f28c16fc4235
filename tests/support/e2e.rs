//! Helpers for the end-to-end reconciliation test: `mpsync sim --keys-dir` as a child process
//! (driven over `/_sim`), its written config pinned for a test, and the rows the planted ground
//! truth predicts, in a form that compares whole row sets with a readable difference.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::mpsc;

use mpsync::reconcile::{Row, RowKey, Status};
use mpsync_sim::connectwise::{PRODUCTS, Planted};
use reqwest::Method;
use serde_json::Value;

use crate::support::common::{mpsync, wait_for};
use crate::support::daemon::DEADLINE;
use crate::support::sim::Api;

/// Once a year: only the start-up catch-up and `POST /v1/sync` start runs.
pub const YEARLY: &str = "0 0 0 1 1 *";

/// `mpsync sim --keys-dir DIR` running in a child process (killed on drop).
pub struct SimProcess {
    child: Child,
    rt: tokio::runtime::Runtime,
    api: Api,
    /// The `mpsync.toml` it wrote.
    pub config: PathBuf,
    /// The `mapping.toml` it wrote.
    pub mapping: PathBuf,
}

impl SimProcess {
    /// Starts the simulator on a free port with `customers` customers from `seed` and waits
    /// until it has written every file into `dir`.
    pub fn start(dir: &Path, seed: u64, customers: u32) -> SimProcess {
        SimProcess::start_psa(dir, seed, customers, "connectwise")
    }

    /// [`SimProcess::start`] with `--psa psa` (`connectwise` or `autotask`).
    pub fn start_psa(dir: &Path, seed: u64, customers: u32, psa: &str) -> SimProcess {
        let mut child = mpsync()
            .args(["sim", "--listen", "127.0.0.1:0", "--customers", &customers.to_string()])
            .args(["--psa", psa])
            .args(["--seed", &seed.to_string()])
            // The written config matches this budget, so runs take well under a second.
            .args(["--rate-limit", "1000"])
            .arg("--keys-dir")
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start mpsync sim");
        let (tx, rx) = mpsc::channel();
        let stdout = child.stdout.take().expect("piped stdout");
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut seen = Vec::new();
        // The Gradient keys are the last files it writes.
        wait_for(DEADLINE, "mpsync sim to write its keys directory", || {
            seen.extend(rx.try_iter());
            if let Ok(Some(status)) = child.try_wait() {
                panic!("mpsync sim exited with {status}: {seen:?}");
            }
            seen.iter().any(|l| l.contains("enabled [gradient] section")).then_some(())
        });
        let config = dir.join("mpsync.toml");
        let table: toml::Table = std::fs::read_to_string(&config).unwrap().parse().unwrap();
        let base = table["mailprotector"]["base_url"].as_str().expect("base_url").to_owned();
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let mapping = PathBuf::from(table["reconcile"]["mapping_file"].as_str().unwrap());
        SimProcess { child, rt, api: Api::at(&base, None), config, mapping }
    }

    /// One control call under `/_sim`; panics unless it succeeds. Returns the JSON answer.
    pub fn control(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let a = self.rt.block_on(self.api.send(method.clone(), path, body));
        assert!(a.status.is_success(), "{method} {path}: {} {}", a.status, a.text);
        a.json
    }

    /// Renames a Mailprotector customer.
    pub fn rename_customer(&self, customer: u64, name: &str) {
        let body = serde_json::json!({"op": "rename_customer", "customer": customer, "name": name});
        self.control(Method::POST, "/_sim/mutations", Some(body));
    }

    /// Makes every ConnectWise endpoint answer `status` (the Mailprotector API is untouched).
    pub fn connectwise_outage(&self, status: u16) {
        for fault in mpsync_sim::connectwise::outage(status) {
            let body = serde_json::to_value(&fault).unwrap();
            self.control(Method::POST, "/_sim/faults", Some(body));
        }
    }

    /// Makes every Autotask endpoint answer `status` (the Mailprotector API is untouched).
    pub fn autotask_outage(&self, status: u16) {
        for fault in mpsync_sim::autotask::outage(status) {
            let body = serde_json::to_value(&fault).unwrap();
            self.control(Method::POST, "/_sim/faults", Some(body));
        }
    }

    /// Every HaloPSA route answers `status` (the token endpoint included).
    pub fn halopsa_outage(&self, status: u16) {
        for fault in mpsync_sim::halopsa::outage(status) {
            let body = serde_json::to_value(&fault).unwrap();
            self.control(Method::POST, "/_sim/faults", Some(body));
        }
    }

    /// Removes every fault.
    pub fn clear_faults(&self) {
        self.control(Method::DELETE, "/_sim/faults", None);
    }
}

impl Drop for SimProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Rewrites the config `mpsync sim` wrote so that only the test starts runs: both polls once a
/// year, no Gradient push, and `debounce_runs` as given.
pub fn pin_for_test(config: &Path, debounce_runs: u32) {
    let mut t: toml::Table = std::fs::read_to_string(config).unwrap().parse().unwrap();
    let section = |t: &toml::Table, name: &str| -> toml::Table {
        t.get(name).and_then(toml::Value::as_table).cloned().unwrap_or_default()
    };
    for (name, key, value) in [
        ("mailprotector", "schedule", toml::Value::from(YEARLY)),
        ("billing", "schedule", toml::Value::from(YEARLY)),
        ("gradient", "enabled", toml::Value::from(false)),
        ("reconcile", "debounce_runs", toml::Value::from(i64::from(debounce_runs))),
    ] {
        let mut s = section(&t, name);
        s.insert(key.to_owned(), value);
        t.insert(name.to_owned(), toml::Value::Table(s));
    }
    std::fs::write(config, toml::to_string(&t).unwrap()).unwrap();
}

/// What a row must say: status (and the discrepancy a `pending` row waits on), quantities,
/// delta, unit price and monthly impact in cents.
#[derive(Debug, Clone, PartialEq)]
pub struct Expect {
    /// The status shown.
    pub status: Status,
    /// For `pending`: the discrepancy it waits to raise.
    pub pending: Option<Status>,
    /// Users per the vendor.
    pub vendor: Option<u64>,
    /// Units billed over counted lines.
    pub billed: Option<f64>,
    /// vendor − billed (fresh rows only).
    pub delta: Option<f64>,
    /// Price per unit per month.
    pub unit_price: Option<f64>,
    /// delta × unit price, in cents.
    pub impact_cents: Option<i64>,
}

/// Rows by key.
pub type Rows = BTreeMap<RowKey, Expect>;

fn cents(x: f64) -> i64 {
    (x * 100.0).round() as i64
}

impl Expect {
    /// What `row` says.
    pub fn of(row: &Row) -> Expect {
        Expect {
            status: row.status,
            pending: row.pending_status,
            vendor: row.vendor_quantity,
            billed: row.billed_quantity,
            delta: row.delta,
            unit_price: row.unit_price,
            impact_cents: row.monthly_impact.map(cents),
        }
    }

    /// A fresh service row: `vendor` users, `billed` units of `psa_product` (none: unbilled).
    /// The PSA product is a ConnectWise product identifier or the HaloPSA item id of one.
    pub fn service(status: Status, psa_product: &str, vendor: u64, billed: Option<f64>) -> Expect {
        let named = |p: &&(&str, &str, f64, u64, f64)| {
            p.1 == psa_product
                || mpsync_sim::halopsa::item_id(p.1).is_some_and(|i| i.to_string() == psa_product)
        };
        let price = billed.and_then(|_| PRODUCTS.iter().find(named)).map(|p| p.2);
        let delta = vendor as f64 - billed.unwrap_or(0.0);
        Expect {
            status,
            pending: None,
            vendor: Some(vendor),
            billed,
            delta: Some(delta),
            unit_price: price,
            impact_cents: price.map(|p| cents(delta * p)),
        }
    }

    /// An unmapped customer (no vendor quantity) or product row.
    pub fn unmapped(status: Status, vendor: Option<u64>) -> Expect {
        Expect {
            status,
            pending: None,
            vendor,
            billed: None,
            delta: None,
            unit_price: None,
            impact_cents: None,
        }
    }
}

/// The rows the generator's ground truth predicts with fresh inputs and every discrepancy
/// seen often enough to be raised.
pub fn planted_rows(planted: &[Planted]) -> Rows {
    planted
        .iter()
        .map(|p| {
            let status = Status::parse(p.expected_status).expect("a known status");
            match (status, &p.account_id, &p.psa_product) {
                (Status::UnmappedCustomer, _, _) => (
                    RowKey::UnmappedCustomer { customer: p.customer_ids[0] },
                    Expect::unmapped(status, None),
                ),
                (Status::UnmappedProduct, _, _) => (
                    RowKey::UnmappedProduct { product: p.product.clone().expect("product") },
                    Expect::unmapped(status, Some(p.vendor_qty)),
                ),
                (_, Some(account), Some(psa)) => {
                    let billed = (status != Status::Unbilled).then_some(p.billed_qty);
                    (
                        RowKey::Service { account: account.clone(), psa_product: psa.clone() },
                        Expect::service(status, psa, p.vendor_qty, billed),
                    )
                }
                other => panic!("planted row without a key: {other:?}"),
            }
        })
        .collect()
}

/// `rows` after only one vendor run saw them: every discrepancy is `pending` on it.
pub fn first_seen(rows: &Rows) -> Rows {
    let mut out = rows.clone();
    for e in out.values_mut().filter(|e| e.status.is_discrepancy()) {
        e.pending = Some(e.status);
        e.status = Status::Pending;
    }
    out
}

/// `rows` while the billing input is stale: every service row is `stale` with no delta or
/// impact (its quantities are still shown); unmapped rows need no billing and stay.
pub fn billing_stale(rows: &Rows) -> Rows {
    let mut out = rows.clone();
    for (_, e) in out.iter_mut().filter(|(k, _)| matches!(k, RowKey::Service { .. })) {
        e.status = Status::Stale;
        e.pending = None;
        e.delta = None;
        e.impact_cents = None;
    }
    out
}

/// The rows of a `/v1/reconciliation` (or `mpsync reconcile --format json`) document.
pub fn rows_of(doc: &Value) -> Vec<Row> {
    serde_json::from_value(doc["rows"].clone())
        .unwrap_or_else(|e| panic!("rows do not parse ({e}): {doc}"))
}

/// The served rows as [`Rows`]; a key served twice is a failure.
pub fn served(doc: &Value) -> Rows {
    let rows = rows_of(doc);
    let out: Rows = rows.iter().map(|r| (r.key.clone(), Expect::of(r))).collect();
    assert_eq!(out.len(), rows.len(), "a row key is served twice");
    out
}

/// Asserts `got == want`, naming every missing, unexpected and different row.
pub fn assert_rows(got: &Rows, want: &Rows, when: &str) {
    let mut problems = Vec::new();
    for (k, w) in want {
        match got.get(k) {
            None => problems.push(format!("missing {k:?}: want {w:?}")),
            Some(g) if g != w => problems.push(format!("{k:?}:\n    got  {g:?}\n    want {w:?}")),
            Some(_) => {}
        }
    }
    for (k, g) in got.iter().filter(|(k, _)| !want.contains_key(*k)) {
        problems.push(format!("unexpected {k:?}: {g:?}"));
    }
    assert!(
        problems.is_empty(),
        "{when}: {} of {} rows wrong:\n  {}",
        problems.len(),
        want.len(),
        problems.join("\n  ")
    );
}
