//! End to end on HaloPSA: `mpsync sim --psa halopsa --keys-dir` plants every kind of
//! discrepancy in a simulated HaloPSA (the same truth as the ConnectWise one, plus Halo's own
//! traps: a line Halo computes, inactive lines, disabled and ended invoices, an inactive
//! client, negative invoice ids), the real daemon fetches a token and polls it, and
//! `/v1/reconciliation` serves exactly the rows the ground truth predicts; through a HaloPSA
//! outage every row that needs billing is `stale` (never a discrepancy) and nothing is lost;
//! after it, the rows come back.

use mpsync::reconcile::{Status, normalize_name};
use mpsync_sim::Dataset;
use mpsync_sim::connectwise::{BillingData, PLANTED_STATUSES};
use mpsync_sim::halopsa::{HaloData, Resource};
use serde_json::Value;

use crate::support::common::wait_for;
use crate::support::daemon::{DEADLINE, Daemon};
use crate::support::e2e::{
    SimProcess, assert_rows, billing_stale, pin_for_test, planted_rows, served,
};
use crate::support::sync::{runs, start_daemon, trigger_sync, wait_reconciled_from_latest_runs};

const SEED: u64 = 11;
const CUSTOMERS: u32 = 60;

fn settle(d: &Daemon, n: usize) -> Value {
    wait_for(DEADLINE, &format!("{n} vendor and billing runs to finish"), || {
        let all = runs(d);
        let count = |k: &str| all.iter().filter(|r| r["kind"] == k).count();
        let idle = all.iter().all(|r| r["outcome"] != "running");
        (idle && count("vendor") == n && count("billing") == n).then_some(())
    });
    wait_reconciled_from_latest_runs(d)
}

#[test]
fn planted_statuses_come_out_of_halopsa_and_an_outage_makes_them_stale_not_lost() {
    let dir = tempfile::tempdir().unwrap();
    let sim = SimProcess::start_psa(dir.path(), SEED, CUSTOMERS, "halopsa");
    pin_for_test(&sim.config, 1);
    let config: toml::Table = std::fs::read_to_string(&sim.config).unwrap().parse().unwrap();
    assert_eq!(config["billing"]["source"].as_str(), Some("halopsa"));
    assert!(config["billing"]["halopsa"].get("scope").is_none(), "the least scope by default");
    let ds = Dataset::generate(SEED, CUSTOMERS);
    let halo = HaloData::generate(&BillingData::generate(&ds, SEED));
    for status in PLANTED_STATUSES {
        assert!(!halo.planted_with(status).is_empty(), "no {status} row planted");
    }
    let settled = planted_rows(&halo.planted);
    let d = start_daemon(&sim.config);

    let doc = settle(&d, 1);
    assert_rows(&served(&doc), &settled, "after the first runs");
    let by_status = &doc["summary"]["by_status"];
    for status in PLANTED_STATUSES {
        assert!(by_status[status].as_u64() > Some(0), "{status}: {by_status}");
    }
    // The row billed by a line Halo computes is over-billed and its evidence says so.
    let auto = halo.plants.iter().find(|p| p.kind == "auto_calculated_line").unwrap();
    let rows = doc["rows"].as_array().cloned().unwrap_or_default();
    let (row, evidence) = rows
        .iter()
        .find_map(|r| {
            let lines = r["evidence"]["lines"].as_array()?;
            let e = lines.iter().find(|e| {
                e["line"]["psa"] == "halopsa" && e["line"]["line"].as_i64() == auto.line_id
            })?;
            Some((r, e))
        })
        .unwrap_or_else(|| panic!("no row shows line {:?}", auto.line_id));
    assert_eq!(row["status"], "over_billed", "{row}");
    assert_eq!(evidence["line"]["computed"], true, "{evidence}");
    assert_eq!(evidence["counted"], true, "{evidence}");
    let note = evidence["note"].as_str().unwrap_or_default();
    assert!(note.contains("Halo computes this line's quantity"), "{evidence}");

    // The unmapped customer is suggested the one active Halo client named like it (normalized).
    let unmapped = halo.planted_with("unmapped_customer");
    let customer = unmapped.first().and_then(|p| p.customer_ids.first().copied()).unwrap();
    let name = ds.customer_name(customer).unwrap();
    let clients: Vec<&Value> = halo.rows[&Resource::Client]
        .iter()
        .filter(|c| c["inactive"] != true)
        .filter(|c| normalize_name(c["name"].as_str().unwrap_or("")) == normalize_name(name))
        .collect();
    assert_eq!(clients.len(), 1, "one active Halo client is named like {name:?}");
    let client = clients[0]["id"].as_i64().unwrap().to_string();
    let customers = d.get("/v1/customers").json();
    let listed = customers["customers"].as_array().unwrap().iter().find(|c| c["id"] == customer);
    let suggestion = &listed.expect("the unmapped customer is listed")["suggestions"][0];
    assert_eq!(suggestion["account"], client.as_str(), "{suggestion}");
    let stanza = suggestion["stanza"].as_str().unwrap();
    assert!(stanza.starts_with(&format!("{customer} = \"{client}\"  # ")), "{stanza}");

    // A HaloPSA outage: the billing run fails naming HaloPSA; rows needing billing are stale,
    // the unmapped rows stand.
    sim.halopsa_outage(503);
    trigger_sync(&d);
    let doc = settle(&d, 2);
    let last = runs(&d);
    let failed = last.iter().find(|r| r["kind"] == "billing").unwrap();
    assert_eq!(failed["outcome"], "failed", "{failed}");
    let reason = failed["error"].as_str().unwrap_or_default();
    assert!(reason.contains("halopsa") && reason.contains("503"), "{reason}");
    assert_rows(&served(&doc), &billing_stale(&settled), "during the HaloPSA outage");
    assert!(
        served(&doc)
            .values()
            .all(|e| !(e.status == Status::UnderBilled || e.status == Status::OverBilled))
    );

    // Recovery: the next billing run restores every row.
    sim.clear_faults();
    trigger_sync(&d);
    let doc = settle(&d, 3);
    assert_rows(&served(&doc), &settled, "after the outage");
}

/// `mpsync -c CONFIG check`: its exit code and its table.
fn check(config: &std::path::Path) -> (Option<i32>, String) {
    let out = crate::support::common::mpsync().arg("-c").arg(config).arg("check").output().unwrap();
    (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn check_names_the_scope_the_application_lacks_and_the_write_scope_once_a_product_opts_in() {
    let dir = tempfile::tempdir().unwrap();
    let sim = SimProcess::start_psa(dir.path(), SEED, 20, "halopsa");
    let (code, table) = check(&sim.config);
    assert_eq!(code, Some(0), "{table}");
    assert!(table.contains("GET /RecurringInvoice (read:invoices"), "{table}");

    let grant = |scopes: &[&str]| {
        let body = serde_json::json!({ "granted_scopes": scopes });
        sim.control(reqwest::Method::POST, "/_sim/halopsa/settings", Some(body));
    };
    grant(&["read:customers", "read:contracts", "read:invoices", "edit:invoices"]);
    let (code, table) = check(&sim.config);
    assert_eq!(code, Some(69), "{table}");
    let billing = table.lines().find(|l| l.starts_with("billing")).unwrap_or_default();
    assert!(billing.contains("FAILED") && billing.contains("not granted read:items"), "{table}");
    assert!(billing.contains("Configuration > Integrations > HaloPSA API"), "{table}");

    // Reads granted, no edit: fine until a product opts in to write-back.
    grant(&["read:customers", "read:contracts", "read:items", "read:invoices"]);
    assert_eq!(check(&sim.config).0, Some(0));
    let mapping = std::fs::read_to_string(&sim.mapping).unwrap();
    let opted = mapping.replacen(
        "[products.CloudFilter]\n",
        "[products.CloudFilter]\nwrite_back = \"review\"\n",
        1,
    );
    assert_ne!(opted, mapping, "the mapping has a CloudFilter table");
    std::fs::write(&sim.mapping, opted).unwrap();
    let (code, table) = check(&sim.config);
    assert_eq!(code, Some(69), "{table}");
    assert!(table.contains("not granted edit:invoices"), "{table}");
}
