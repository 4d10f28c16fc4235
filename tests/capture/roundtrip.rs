//! A capture of the simulator (40 customers, ConnectWise billing, Gradient) replays to the
//! same per-customer counts and the same billed lines as a cold sync against the simulator,
//! reads nothing but GETs, and holds none of the simulator's names.

use std::collections::BTreeMap;

use mpsync::sim::{SimOptions, SimServer};
use serde_json::Value;

use crate::support::{capture, replay_counts, start_replay, stored, sync_once, text};

fn json_file(path: &std::path::Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// `id → name` of a listing's items in a bundle file (first matching path).
fn names(file: &Value, path: &str) -> BTreeMap<u64, String> {
    let ex = file["exchanges"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["request"]["path"] == path)
        .unwrap_or_else(|| panic!("no {path} in the bundle"));
    ex["response"]["body"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["id"].as_u64().unwrap(), i["name"].as_str().unwrap().to_owned()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_capture_of_the_simulator_replays_to_the_same_counts_and_billed_lines() {
    let sim = SimServer::start(SimOptions { seed: 11, customers: 40, ..SimOptions::default() })
        .await
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let config = mpsync::commands::write_sim_config(
        &tmp.path().join("sim"),
        sim.control(),
        &sim.base_url(),
        Some(500.0),
    )
    .unwrap();

    let bundle = tmp.path().join("bundle");
    let out = capture(&config, &bundle, &[]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let shown = std::fs::canonicalize(&bundle).unwrap();
    assert!(stdout.contains(&format!("wrote {} (pseudonymized", shown.display())), "{stdout}");

    // Read-only: the simulators saw GETs only, and the bundle holds each request they saw.
    let seen = sim.control().requests();
    assert!(seen.by_endpoint.keys().all(|k| k.starts_with("GET ")), "{seen:?}");
    let gradient = sim.control().gradient();
    assert_eq!(gradient.write_requests(), 0);
    let manifest = json_file(&bundle.join("manifest.json"));
    let requests = |i: usize| manifest["upstreams"][i]["requests"].as_u64().unwrap();
    let names_in_manifest: Vec<&str> =
        (0..3).map(|i| manifest["upstreams"][i]["name"].as_str().unwrap()).collect();
    assert_eq!(names_in_manifest, ["mailprotector", "connectwise", "gradient"]);
    assert_eq!(requests(0) + requests(1), seen.total, "every Mailprotector and ConnectWise read");
    assert_eq!(requests(2), 3, "GET /organization, GET /, GET /organization/accounts");
    assert_eq!(gradient.requests().total, 3);
    assert_eq!(manifest["pseudonymized"], true);
    for (i, name) in names_in_manifest.iter().enumerate() {
        let line = format!("  {name:<14} {:>6} requests", requests(i));
        assert!(stdout.contains(&line), "{line:?} in {stdout}");
    }

    // Pseudonymized: no customer or domain name of the simulator is left, and a company named
    // like its customer in the PSA still carries the same (pseudonymous) name.
    let mp = json_file(&bundle.join("mailprotector.json"));
    let cw = json_file(&bundle.join("connectwise.json"));
    let all = [&mp, &cw, &json_file(&bundle.join("gradient.json"))]
        .map(|v| v.to_string().to_lowercase())
        .join("\n");
    let (customers, domains) = {
        let ds = sim.control().read();
        let c: BTreeMap<u64, String> =
            ds.customers().iter().map(|(id, c)| (*id, c.name.clone())).collect();
        let d: Vec<String> = ds.domains().values().map(|d| d.name.clone()).collect();
        (c, d)
    };
    for name in customers.values().chain(&domains) {
        assert!(!all.contains(&name.to_lowercase()), "{name:?} is in the bundle");
    }
    let pseudo_customers = names(&mp, "/resellers/188/customers");
    let pseudo_companies = names(&cw, "/company/companies");
    let companies = sim.control().connectwise().read().companies.clone();
    let mut same_name = 0;
    for company in &companies {
        if let Some((cid, _)) = customers.iter().find(|(_, n)| **n == company.name) {
            assert_eq!(pseudo_companies[&company.id], pseudo_customers[cid], "{}", company.name);
            same_name += 1;
        } else {
            assert!(!pseudo_customers.values().any(|n| *n == pseudo_companies[&company.id]));
        }
    }
    assert!(same_name >= 10, "many companies are named like their customer ({same_name})");

    // The captured run: a cold sync against the simulator itself.
    let captured = sync_once(&config).await;
    let expected = stored(tmp.path().join("sim/state")).await;

    // The replayed run: a cold sync against `mpsync sim --replay` with the config it wrote.
    let keys = tmp.path().join("replay");
    let (_replay, replay_config, base) = start_replay(&bundle, &keys);
    let replayed = sync_once(&replay_config).await;
    let got = stored(keys.join("state")).await;

    assert_eq!(replayed["runs"][0]["kind"], "vendor");
    assert_eq!(replayed["runs"][0]["outcome"], "ok");
    assert_eq!(replayed["runs"][0]["customers_counted"], captured["runs"][0]["customers_counted"]);
    assert_eq!(replayed["runs"][0]["totals"], captured["runs"][0]["totals"]);
    assert_eq!(got.counts, expected.counts, "the same count for every customer and product");
    assert_eq!(got.counts.len(), 40);
    assert_eq!(got.accounts, expected.accounts);
    assert_eq!(got.lines, expected.lines, "the same billed lines");
    assert!(got.lines.len() >= 40, "{} lines", got.lines.len());
    let push = &replayed["runs"][2];
    assert_eq!((push["kind"].as_str(), push["outcome"].as_str()), (Some("push"), Some("ok")));

    // Every request of the replayed sync was in the bundle.
    let counts = replay_counts(&base).await;
    assert_eq!(counts["not_captured"], 0, "{counts:#}");
    let sent: u64 = replayed["runs"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["requests"].as_object().unwrap().values())
        .map(|u| u["total"].as_u64().unwrap())
        .sum();
    assert_eq!(counts["answered"], sent);
    assert_eq!(sent, requests(0) + requests(1) + requests(2), "the same reads as the capture");
}
