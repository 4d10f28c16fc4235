//! End to end: `mpsync sim --keys-dir` plants every kind of discrepancy, the real daemon polls
//! it, and `/v1/reconciliation` serves exactly the rows the generator's ground truth predicts —
//! with `pending` until the second vendor run (debounce 2), after a customer rename, through a
//! ConnectWise outage (`stale`, never a discrepancy) and after a mapping reload on SIGHUP. Then
//! the daemon stops and `mpsync reconcile` prints the same rows as JSON and CSV.

use std::collections::BTreeMap;

use mpsync::config::Mapping;
use mpsync::reconcile::{RowKey, Status, normalize_name};
use mpsync_sim::Dataset;
use mpsync_sim::connectwise::{BillingData, PLANTED_STATUSES};
use serde_json::Value;

use crate::support::common::{mpsync, wait_for};
use crate::support::daemon::{DEADLINE, Daemon};
use crate::support::e2e::{
    Expect, Rows, SimProcess, assert_rows, billing_stale, first_seen, pin_for_test, planted_rows,
    rows_of, served,
};
use crate::support::sync::{
    metric, runs, start_daemon, trigger_sync, wait_reconciled_from_latest_runs,
};

const SEED: u64 = 5;
const CUSTOMERS: u32 = 60;
/// Vendor runs a discrepancy must be seen in before it is raised.
const DEBOUNCE: u32 = 2;

/// Waits until no run is going, `n` vendor and `n` billing runs have finished, and the stored
/// reconciliation was computed from the outcome of the newest of each: the snapshots of the
/// newest successful runs, and whether the newest run of each kind failed. Returns it.
fn settle(d: &Daemon, n: usize) -> Value {
    wait_for(DEADLINE, &format!("{n} vendor and billing runs to finish"), || {
        let all = runs(d);
        let count = |k: &str| all.iter().filter(|r| r["kind"] == k).count();
        let idle = all.iter().all(|r| r["outcome"] != "running");
        (idle && count("vendor") == n && count("billing") == n).then_some(())
    });
    wait_reconciled_from_latest_runs(d)
}

/// `POST /v1/sync` starts a vendor and a billing run.
fn sync_now(d: &Daemon) {
    let started = trigger_sync(d).json()["started"].clone();
    assert_eq!(started, serde_json::json!(["vendor", "billing"]));
}

/// The served row of `key`.
fn row<'a>(doc: &'a Value, key: &RowKey) -> &'a Value {
    let want = serde_json::to_value(key).unwrap();
    let fields = want.as_object().unwrap();
    doc["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| fields.iter().all(|(k, v)| &r[k] == v))
        .unwrap_or_else(|| panic!("no row {key:?}"))
}

/// The account `/v1/customers` suggests for `customer` and its stanza — checked against the
/// ground truth: the one live company whose normalized name is the customer's.
fn suggested_stanza(
    d: &Daemon,
    billing: &BillingData,
    ds: &Dataset,
    customer: u64,
) -> (String, String) {
    let name = ds.customer_name(customer).unwrap();
    let company: Vec<_> = billing
        .companies
        .iter()
        .filter(|c| !c.deleted_flag && normalize_name(&c.name) == normalize_name(name))
        .collect();
    assert_eq!(company.len(), 1, "one company is named like {name:?}");
    let account = company[0].id.to_string();
    let customers = d.get("/v1/customers").json();
    let listed = customers["customers"].as_array().unwrap().iter().find(|c| c["id"] == customer);
    let suggestion = &listed.expect("the unmapped customer is listed")["suggestions"][0];
    assert_eq!(suggestion["account"], account.as_str(), "{suggestion}");
    let stanza = suggestion["stanza"].as_str().unwrap();
    assert!(stanza.starts_with(&format!("{customer} = \"{account}\"  # ")), "{stanza}");
    (account, stanza.to_owned())
}

/// A mapped product that `counts` (the customer about to be mapped) uses and no suppression
/// names: its usage then goes to the unmapped-product row, the rest to the new account.
fn product_to_drop(mapping: &Mapping, counts: &BTreeMap<String, u64>) -> String {
    let used: Vec<&String> = counts.iter().filter(|(_, n)| **n > 0).map(|(p, _)| p).collect();
    assert!(used.len() >= 2, "the customer uses several products: {counts:?}");
    let named = |p: &str| mapping.suppressions.iter().any(|s| s.product.as_deref() == Some(p));
    used.into_iter()
        .find(|p| mapping.products.contains_key(*p) && !named(p))
        .expect("a product to drop")
        .clone()
}

/// The rows after mapping `customer` to `account` and dropping `dropped`'s mapping: the rows
/// kept from `settled` (plus the new unmapped-product row) and the account's new rows.
fn after_reload(
    settled: &Rows,
    ds: &Dataset,
    mapping: &Mapping,
    customer: u64,
    account: &str,
    dropped: &str,
) -> (Rows, Rows) {
    let psa_of = |product: &str| mapping.products[product].psa_product.clone();
    let gone = psa_of(dropped);
    let mut kept: Rows = settled
        .iter()
        .filter(|(k, _)| match k {
            RowKey::Service { psa_product, .. } => *psa_product != gone,
            RowKey::UnmappedCustomer { customer: c } => *c != customer,
            RowKey::UnmappedProduct { .. } => true,
        })
        .map(|(k, e)| (k.clone(), e.clone()))
        .collect();
    let counts = ds.expected_counts();
    let users: u64 = counts
        .iter()
        .filter(|(c, _)| !mapping.exclude_customers.contains(c))
        .filter_map(|(_, m)| m.get(dropped))
        .sum();
    let row = Expect::unmapped(Status::UnmappedProduct, Some(users));
    kept.insert(RowKey::UnmappedProduct { product: dropped.to_owned() }, row);
    let new_rows = counts[&customer]
        .iter()
        .filter(|(p, n)| **n > 0 && p.as_str() != dropped)
        .map(|(product, &n)| {
            let key = RowKey::Service { account: account.to_owned(), psa_product: psa_of(product) };
            (key, Expect::service(Status::Unbilled, &psa_of(product), n, None))
        })
        .collect();
    (kept, new_rows)
}

#[test]
fn planted_discrepancies_come_out_exactly_through_the_api_and_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let sim = SimProcess::start(dir.path(), SEED, CUSTOMERS);
    pin_for_test(&sim.config, DEBOUNCE);
    // The simulator generates the same dataset and billing from the same seed.
    let ds = Dataset::generate(SEED, CUSTOMERS);
    let billing = BillingData::generate(&ds, SEED);
    for status in PLANTED_STATUSES {
        assert!(!billing.planted_with(status).is_empty(), "no {status} row planted");
    }
    let settled = planted_rows(&billing.planted);
    let mut d = start_daemon(&sim.config);

    // 1. The start-up catch-up: one vendor and one billing run. Every discrepancy has been seen
    // in one vendor run of the two it needs: `pending`, quantities already right.
    let doc = settle(&d, 1);
    assert_rows(&served(&doc), &first_seen(&settled), "after the first vendor run");
    for r in rows_of(&doc).iter().filter(|r| r.status == Status::Pending) {
        assert_eq!((r.seen_runs, r.debounce_runs), (1, DEBOUNCE), "{:?}", r.key);
    }
    // The second vendor run raises them.
    sync_now(&d);
    let doc = settle(&d, 2);
    assert_rows(&served(&doc), &settled, "after the second vendor run");
    let by_status = &doc["summary"]["by_status"];
    for status in PLANTED_STATUSES {
        assert!(by_status[status].as_u64() > Some(0), "{status}: {by_status}");
    }
    assert_eq!((by_status["stale"].as_u64(), by_status["pending"].as_u64()), (Some(0), Some(0)));

    // 2. Rename the customer of the under-billed row: mapping is by id, so every row stays,
    // and the evidence shows the new name.
    let under = billing.planted_with("under_billed")[0];
    let customer = under.customer_ids[0];
    let key = RowKey::Service {
        account: under.account_id.clone().unwrap(),
        psa_product: under.psa_product.clone().unwrap(),
    };
    sim.rename_customer(customer, "Renamed Widgets Holdings");
    sync_now(&d);
    let doc = settle(&d, 3);
    assert_rows(&served(&doc), &settled, "after the rename");
    let evidence = &row(&doc, &key)["evidence"]["customers"];
    assert_eq!(evidence[0]["customer"], customer, "{evidence}");
    assert_eq!(evidence[0]["name"], "Renamed Widgets Holdings", "{evidence}");

    // 3. A ConnectWise outage: the billing run fails, naming ConnectWise; every row that needs
    // billing is `stale` (never a discrepancy), the unmapped rows stand, health is not `pass`.
    sim.connectwise_outage(503);
    sync_now(&d);
    let doc = settle(&d, 4);
    let last = runs(&d);
    let failed = last.iter().find(|r| r["kind"] == "billing").unwrap();
    assert_eq!(failed["outcome"], "failed", "{failed}");
    let reason = failed["error"].as_str().unwrap_or_default();
    assert!(reason.to_lowercase().contains("connectwise") && reason.contains("503"), "{reason}");
    assert_eq!(last.iter().find(|r| r["kind"] == "vendor").unwrap()["outcome"], "ok");
    let stale = billing_stale(&settled);
    assert_rows(&served(&doc), &stale, "during the ConnectWise outage");
    // The status filter serves exactly those rows.
    let filtered = served(&d.get("/v1/reconciliation?status=stale").json());
    let only: Rows = stale.clone().into_iter().filter(|(_, e)| e.status == Status::Stale).collect();
    assert_rows(&filtered, &only, "/v1/reconciliation?status=stale");
    for r in rows_of(&doc).iter().filter(|r| r.status == Status::Stale) {
        let why = r.stale_reason.as_deref().unwrap_or_default();
        assert!(why.contains("the last billing run failed") && why.contains(reason), "{why}");
    }
    let health = d.get("/v1/health");
    let h = health.json();
    assert_ne!(h["status"], "pass", "{h}");
    let check = &h["checks"]["billing:lastSuccess"][0];
    assert_eq!(check["status"], "warn", "{h}");
    assert_eq!(check["consecutiveFailures"], 1, "{h}");
    let recon = h["checks"]["reconciliation:discrepancies"][0]["output"].as_str();
    let stale_rows = stale.values().filter(|e| e.status == Status::Stale).count();
    assert!(recon.unwrap_or_default().contains(&format!("{stale_rows} rows stale")), "{h}");
    let metrics = d.get("/metrics").body;
    let gauge = |s: &str| metric(&metrics, "mpsync_reconciliation_rows", &[("status", s)]);
    assert_eq!(gauge("stale"), stale_rows as f64);
    assert_eq!(gauge("under_billed") + gauge("over_billed") + gauge("unbilled"), 0.0);
    // The fault cleared, the next runs bring every row back; the outage neither reset nor
    // advanced the debounce, so nothing goes back to `pending`.
    sim.clear_faults();
    sync_now(&d);
    let doc = settle(&d, 5);
    assert_rows(&served(&doc), &settled, "after the outage");

    // 4. Edit the mapping as an operator would: paste the stanza suggested for the unmapped
    // customer, and drop one product's mapping; then SIGHUP. The customer's row goes and its
    // usage becomes unbilled rows of its account, `pending` until a vendor run sees them again
    // (a reload is not a vendor run); the dropped product's rows become one unmapped row.
    let unmapped = billing.planted_with("unmapped_customer")[0].customer_ids[0];
    let (account, stanza) = suggested_stanza(&d, &billing, &ds, unmapped);
    let mapping = Mapping::parse(&sim.mapping, &billing.mapping_toml).unwrap();
    let dropped = product_to_drop(&mapping, &ds.expected_counts()[&unmapped]);
    let text = std::fs::read_to_string(&sim.mapping).unwrap();
    let table = format!("[products.{dropped}]\n");
    let at = text.find(&table).expect("the product's table");
    let len = text[at..].find("\n\n").expect("a blank line after the table") + 2;
    let text = format!("{}{}", &text[..at], &text[at + len..]);
    let text = text.replacen("[customers]\n", &format!("[customers]\n{stanza}\n"), 1);
    std::fs::write(&sim.mapping, text).unwrap();
    let (kept, new_rows) = after_reload(&settled, &ds, &mapping, unmapped, &account, &dropped);
    let (mut reloaded, mut remapped) = (kept.clone(), kept);
    reloaded.extend(first_seen(&new_rows));
    remapped.extend(new_rows);
    d.signal("HUP");
    d.wait_log("mapping reloaded from");
    let gone = RowKey::UnmappedCustomer { customer: unmapped };
    let doc = wait_for(DEADLINE, "the reconciliation of the reloaded mapping", || {
        let doc = d.get("/v1/reconciliation?evidence=true&limit=5000").json();
        (!served(&doc).contains_key(&gone)).then_some(doc)
    });
    assert_rows(&served(&doc), &reloaded, "after the mapping reload");
    sync_now(&d);
    let doc = settle(&d, 6);
    let last_served = d.get("/v1/reconciliation?evidence=true&limit=5000").json();
    assert_rows(&served(&doc), &remapped, "after a vendor run with the new mapping");
    let csv_served = d.get("/v1/reconciliation?format=csv").body;

    // 5. While the daemon runs the CLI cannot open the store; after SIGTERM it prints the rows
    // the daemon served last, as JSON and as CSV.
    let config = &sim.config;
    let out = mpsync().arg("-c").arg(config).args(["reconcile"]).output().unwrap();
    assert_eq!(out.status.code(), Some(75), "{}", String::from_utf8_lossy(&out.stderr));
    d.signal("TERM");
    assert_eq!(d.wait_exit().code(), Some(0), "{}", d.stderr());
    let out = mpsync().arg("-c").arg(config).args(["reconcile", "--format", "json"]).output();
    let out = out.unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let cli: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(cli["rows"], last_served["rows"], "the CLI prints the rows the daemon served");
    assert_eq!(
        (&cli["vendor_run"], &cli["billing_run"]),
        (&last_served["vendor_run"], &last_served["billing_run"])
    );
    assert_rows(&served(&cli), &remapped, "mpsync reconcile --format json");
    let out = mpsync().arg("-c").arg(config).args(["reconcile", "--format", "csv"]).output();
    let out = out.unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(String::from_utf8(out.stdout).unwrap(), csv_served);
    let lines = csv_served.split("\r\n").filter(|l| !l.is_empty()).count();
    assert_eq!(lines, remapped.len() + 1, "a header and one line per row");
}
