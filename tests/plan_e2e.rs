//! End to end: `mpsync sim --keys-dir` plants every kind of discrepancy; with every product
//! opted in (`write_back = "review"`), `mpsync sync --once` builds a plan whose changes are
//! exactly the planted under-billed, over-billed and billed-without-usage rows (each on the
//! row's counted line, from the billed to the counted quantity, large drops held), the
//! unbilled rows are manual steps, and a daemon on the same store serves the same plan at
//! `GET /v1/plan`. A row the PSA bills on two lines is listed, not guessed at, until a
//! pasted `[[line]]` picks one: then a new plan replaces the old one, which says so. With CSV
//! billing, `mpsync plan --csv` lists the changes to type in by hand.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Output;

use mpsync::config::Mapping;
use mpsync::reconcile::Status;
use mpsync_sim::Dataset;
use mpsync_sim::connectwise::{BillingData, PRODUCTS, Planted};
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::common::{mpsync, wait_for};
use crate::support::daemon::{DEADLINE, Daemon};
use crate::support::e2e::{SimProcess, pin_for_test};
use crate::support::sync::{runs, start_daemon, trigger_sync, wait_reconciled_from_latest_runs};

const SEED: u64 = 7;
const CUSTOMERS: u32 = 40;

/// The statuses a plan changes.
const PLANNED: [&str; 3] = ["under_billed", "over_billed", "billed_without_usage"];

fn run(config: &Path, args: &[&str]) -> Output {
    mpsync().arg("-c").arg(config).args(args).output().expect("run mpsync")
}

/// The fields of one CSV line (RFC 4180 quotes).
fn fields(line: &str) -> Vec<String> {
    let (mut out, mut field, mut quoted) = (Vec::new(), String::new(), false);
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => out.push(std::mem::take(&mut field)),
            (c, _) => field.push(c),
        }
    }
    out.push(field);
    out
}

fn stdout_json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// Opts every mapped product in with `write_back = "review"`.
fn opt_in(mapping: &Path) {
    let mut t: toml::Table = std::fs::read_to_string(mapping).unwrap().parse().unwrap();
    let products = t.get_mut("products").and_then(toml::Value::as_table_mut).expect("[products]");
    for (_, p) in products.iter_mut() {
        p.as_table_mut().unwrap().insert("write_back".into(), "review".into());
    }
    std::fs::write(mapping, toml::to_string(&t).unwrap()).unwrap();
}

/// A change as compared across outputs: (account, PSA product) → (line, from, to, held).
type Changes = BTreeMap<(String, String), (String, f64, f64, bool)>;

fn changes_of(plan: &Value) -> Changes {
    plan["changes"]
        .as_array()
        .unwrap_or_else(|| panic!("no changes: {plan}"))
        .iter()
        .map(|c| {
            (
                (
                    c["account"].as_str().unwrap().to_owned(),
                    c["psa_product"].as_str().unwrap().to_owned(),
                ),
                (
                    c["line_key"].as_str().unwrap().to_owned(),
                    c["from"].as_f64().unwrap(),
                    c["to"].as_f64().unwrap(),
                    c.get("held").is_some(),
                ),
            )
        })
        .collect()
}

fn key(p: &Planted) -> (String, String) {
    (p.account_id.clone().unwrap(), p.psa_product.clone().unwrap())
}

/// What the ground truth predicts, with each row's counted line taken from `rec` (the
/// reconciliation rows served next to the plan): from the billed to the counted quantity,
/// a drop of more than the default 20% held.
fn expected(planted: &[Planted], rec: &Value, line_key: impl Fn(&Value) -> String) -> Changes {
    planted
        .iter()
        .filter(|p| PLANNED.contains(&p.expected_status))
        .map(|p| {
            let (account, psa) = key(p);
            let row = rec["rows"]
                .as_array()
                .unwrap()
                .iter()
                .find(|r| r["account"] == account.as_str() && r["psa_product"] == psa.as_str())
                .unwrap_or_else(|| panic!("no row {account} {psa}"));
            let counted: Vec<&Value> = row["evidence"]["lines"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|l| l["counted"] == true)
                .collect();
            assert_eq!(counted.len(), 1, "one counted line planted on {account} {psa}: {row}");
            let to =
                if p.expected_status == "billed_without_usage" { 0.0 } else { p.vendor_qty as f64 };
            let held = to < p.billed_qty && (p.billed_qty - to) / p.billed_qty * 100.0 > 20.0;
            ((account, psa), (line_key(counted[0]), p.billed_qty, to, held))
        })
        .collect()
}

fn cw_key(line: &Value) -> String {
    let l = &line["line"];
    assert_eq!(l["psa"], "connectwise", "{line}");
    format!("cw:{}/{}", l["agreement"], l["addition"])
}

/// Waits until `n` vendor and billing runs have finished, the reconciliation is of the newest
/// ones, and the plan was rebuilt from it; returns (reconciliation, plan).
fn settle(d: &Daemon, n: usize) -> (Value, Value) {
    wait_for(DEADLINE, &format!("{n} vendor and billing runs to finish"), || {
        let all = runs(d);
        let count = |k: &str| all.iter().filter(|r| r["kind"] == k).count();
        let idle = all.iter().all(|r| r["outcome"] != "running");
        (idle && count("vendor") == n && count("billing") == n).then_some(())
    });
    let rec = wait_reconciled_from_latest_runs(d);
    let plan = wait_for(DEADLINE, "the plan to be rebuilt from the latest reconciliation", || {
        let plan = d.get("/v1/plan").json();
        (plan["vendor_run"] == rec["vendor_run"] && plan["billing_run"] == rec["billing_run"])
            .then_some(plan)
    });
    (rec, plan)
}

#[test]
fn the_plan_corrects_exactly_the_planted_discrepancies_through_the_cli_and_the_daemon() {
    let dir = tempfile::tempdir().unwrap();
    let sim = SimProcess::start(dir.path(), SEED, CUSTOMERS);
    pin_for_test(&sim.config, 1);
    opt_in(&sim.mapping);
    let ds = Dataset::generate(SEED, CUSTOMERS);
    let billing = BillingData::generate(&ds, SEED);
    for status in PLANNED.iter().chain(&["unbilled"]) {
        assert!(!billing.planted_with(status).is_empty(), "no {status} row planted");
    }

    // 1. One collection without the daemon builds plan 1.
    let out = run(&sim.config, &["sync", "--once", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let rec = stdout_json(&run(&sim.config, &["reconcile", "--format", "json"]));
    let plan = stdout_json(&run(&sim.config, &["plan", "--json"]));
    assert_eq!((plan["id"].as_u64(), plan["state"].as_str()), (Some(1), Some("current")), "{plan}");
    assert_eq!(
        (plan["billing"].as_str(), plan["writable"].as_bool()),
        (Some("connectwise"), Some(true))
    );
    assert_eq!(
        (&plan["vendor_run"], &plan["billing_run"]),
        (&rec["vendor_run"], &rec["billing_run"])
    );
    let want = expected(&billing.planted, &rec, cw_key);
    assert_eq!(changes_of(&plan), want);
    assert!(
        want.values().any(|c| c.3) && want.values().any(|c| !c.3),
        "held and free changes: {want:?}"
    );
    // Each change carries its money and evidence; rows count from 1.
    for (i, c) in plan["changes"].as_array().unwrap().iter().enumerate() {
        assert_eq!(c["row"], i + 1);
        let price = PRODUCTS.iter().find(|p| p.1 == c["psa_product"]).unwrap().2;
        let money = (c["to"].as_f64().unwrap() - c["from"].as_f64().unwrap()) * price;
        assert!((c["monthly_amount"].as_f64().unwrap() - money).abs() < 1e-9, "{c}");
        assert_eq!(
            (&c["vendor_run"], &c["billing_run"]),
            (&rec["vendor_run"], &rec["billing_run"])
        );
        assert!(c["reason"].as_str().unwrap().starts_with("Mailprotector counts "), "{c}");
    }
    let manual: BTreeMap<(String, String), u64> = plan["manual"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                (m["account"].as_str().unwrap().into(), m["psa_product"].as_str().unwrap().into()),
                m["quantity"].as_u64().unwrap(),
            )
        })
        .collect();
    let unbilled: BTreeMap<(String, String), u64> =
        billing.planted_with("unbilled").iter().map(|p| (key(p), p.vendor_qty)).collect();
    assert_eq!(manual, unbilled);
    assert_eq!(plan["not_planned"], json!([]), "every planted discrepancy has one line");
    let table = run(&sim.config, &["plan"]);
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(text.starts_with("plan 1 (current)"), "{text}");
    assert!(
        text.trim_end()
            .ends_with("to apply: mpsync apply 1 (add --dry-run to see the requests first)"),
        "{text}"
    );

    // 2. A daemon on the same store polls again: the same changes keep plan 1, and
    // GET /v1/plan serves what `mpsync plan` printed.
    let d = start_daemon(&sim.config);
    trigger_sync(&d);
    let (rec, served) = settle(&d, 2);
    assert_eq!(
        (served["id"].as_u64(), served["state"].as_str()),
        (Some(1), Some("current")),
        "{served}"
    );
    assert_eq!(changes_of(&served), want);
    assert_eq!(served["manual"], plan["manual"]);
    // While the daemon holds the store, `mpsync plan` asks it through its control socket.
    let asked = stdout_json(&run(&sim.config, &["plan", "--json"]));
    assert_eq!(asked, served);
    let filtered = d.get("/v1/plan?status=under_billed").json();
    let under: Vec<(String, String)> =
        billing.planted_with("under_billed").iter().map(|p| key(p)).collect();
    assert_eq!(changes_of(&filtered).into_keys().collect::<Vec<_>>(), under);

    // 3. Behind mpsync's back, one of the two lines of the row billed on two raises its
    // quantity: the row is now a discrepancy the plan lists with both lines, not a change.
    let (row, lines) = rec["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|r| {
            let counted: Vec<Value> = r["evidence"]["lines"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|l| l["counted"] == true)
                .cloned()
                .collect();
            (counted.len() == 2).then(|| (r.clone(), counted))
        })
        .expect("the generator bills one row on two lines");
    let (account, psa) = (
        row["account"].as_str().unwrap().to_owned(),
        row["psa_product"].as_str().unwrap().to_owned(),
    );
    let mapping = Mapping::load(&sim.mapping).unwrap();
    let product = mapping.products.values().find(|p| p.psa_product == psa).unwrap();
    let billed = row["billed_quantity"].as_f64().unwrap();
    let bump = product.tolerance + (billed * product.tolerance_percent / 100.0).ceil() + 2.0;
    let second = &lines[1];
    let new_qty = second["quantity"].as_f64().unwrap() + bump;
    let addition = second["line"]["addition"].as_u64().unwrap();
    let body = json!({"op": "set_addition_quantity", "addition": addition, "quantity": new_qty});
    sim.control(Method::POST, "/_sim/mutations", Some(body));
    trigger_sync(&d);
    let (_, served) = settle(&d, 3);
    assert_eq!(served["id"], 1, "the changes are the same: plan 1 stays current");
    let not = &served["not_planned"].as_array().unwrap();
    let [n] = not.as_slice() else { panic!("{served}") };
    assert_eq!(
        (n["account"].as_str(), n["psa_product"].as_str(), n["status"].as_str()),
        (Some(account.as_str()), Some(psa.as_str()), Some("over_billed"))
    );
    let listed: Vec<&str> =
        n["lines"].as_array().unwrap().iter().map(|l| l["line_key"].as_str().unwrap()).collect();
    assert_eq!(listed, [cw_key(&lines[0]), cw_key(second)]);
    let stanza = n["stanza"].as_str().unwrap();
    assert!(
        stanza
            .starts_with(&format!("[[line]]\naccount = \"{account}\"\npsa_product = \"{psa}\"\n")),
        "{stanza}"
    );

    // 4. The operator pastes the stanza naming the raised line and reloads: the next plan
    // changes that line so the row's total is the count again, and replaces plan 1.
    let pasted = stanza.replace(&cw_key(&lines[0]), &cw_key(second));
    let mut text = std::fs::read_to_string(&sim.mapping).unwrap();
    text.push('\n');
    text.push_str(&pasted);
    std::fs::write(&sim.mapping, text).unwrap();
    d.signal("HUP");
    let replaced = wait_for(DEADLINE, "a new plan after the reload", || {
        let p = d.get("/v1/plan").json();
        (p["id"] == 2).then_some(p)
    });
    d.wait_log("plan 2 replaces plan 1");
    let picked = &changes_of(&replaced)[&(account.clone(), psa.clone())];
    let vendor = row["vendor_quantity"].as_f64().unwrap();
    assert_eq!(
        picked,
        &(cw_key(second), new_qty, vendor - lines[0]["quantity"].as_f64().unwrap(), picked.3)
    );
    assert_eq!(replaced["not_planned"], json!([]));
    let old = d.get("/v1/plan?id=1").json();
    assert_eq!(
        (old["state"].as_str(), old["superseded_by"].as_u64()),
        (Some("superseded"), Some(2))
    );
    assert_eq!(d.get("/v1/plan?id=3").status, 404);
}

#[test]
fn with_csv_billing_plan_csv_lists_the_changes_to_enter_by_hand() {
    let dir = tempfile::tempdir().unwrap();
    let sim = SimProcess::start(dir.path(), SEED, CUSTOMERS);
    pin_for_test(&sim.config, 1);
    opt_in(&sim.mapping);
    let ds = Dataset::generate(SEED, CUSTOMERS);
    let billing = BillingData::generate(&ds, SEED);
    // The PSA's export: one line per billed row of the ground truth (line 1 is the header).
    let mut csv = String::from("account_id,account_name,product_id,quantity,unit_price\n");
    let mut line_of = BTreeMap::new();
    for p in
        billing.planted.iter().filter(|p| p.account_id.is_some() && p.expected_status != "unbilled")
    {
        let price = PRODUCTS.iter().find(|x| Some(x.1) == p.psa_product.as_deref()).unwrap().2;
        let (account, psa) = key(p);
        let company = billing.companies.iter().find(|c| c.id.to_string() == account).unwrap();
        let name = company.name.replace('"', "\"\"");
        csv.push_str(&format!("{account},\"{name}\",{psa},{},{price}\n", p.billed_qty));
        line_of.insert((account, psa), csv.lines().count());
    }
    let csv_path = dir.path().join("billed.csv");
    std::fs::write(&csv_path, csv).unwrap();
    let mut t: toml::Table = std::fs::read_to_string(&sim.config).unwrap().parse().unwrap();
    let b = t.get_mut("billing").and_then(toml::Value::as_table_mut).unwrap();
    b.insert("source".into(), "csv".into());
    b.remove("connectwise");
    b.insert(
        "csv".into(),
        toml::Value::Table(
            [("path".to_string(), toml::Value::from(csv_path.display().to_string()))]
                .into_iter()
                .collect(),
        ),
    );
    std::fs::write(&sim.config, toml::to_string(&t).unwrap()).unwrap();

    let out = run(&sim.config, &["sync", "--once"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let rec = stdout_json(&run(&sim.config, &["reconcile", "--format", "json"]));
    let plan = stdout_json(&run(&sim.config, &["plan", "--json"]));
    assert_eq!((plan["billing"].as_str(), plan["writable"].as_bool()), (Some("csv"), Some(false)));
    let want = expected(&billing.planted, &rec, |l| format!("csv:{}", l["line"]["line"]));
    assert_eq!(changes_of(&plan), want);
    for ((account, psa), (line, ..)) in &want {
        assert_eq!(
            line,
            &format!("csv:{}", line_of[&(account.clone(), psa.clone())]),
            "the change names its CSV line"
        );
    }

    let out = run(&sim.config, &["plan", "--csv"]);
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.split("\r\n").filter(|l| !l.is_empty());
    assert_eq!(
        lines.next(),
        Some(
            "row,account,account_name,psa_product,line,from,to,monthly_amount,status,reason,mode,held"
        )
    );
    let rows: Vec<Vec<String>> = lines.map(fields).collect();
    assert_eq!(rows.len(), want.len(), "{text}");
    for r in &rows {
        let (line, from, to, held) = &want[&(r[1].clone(), r[3].clone())];
        assert_eq!(
            (&r[4], r[5].parse::<f64>().unwrap(), r[6].parse::<f64>().unwrap()),
            (line, *from, *to),
            "{r:?}"
        );
        assert_eq!(r[8], Status::parse(&r[8]).unwrap().as_str());
        assert_eq!((r[10].as_str(), r[11].is_empty()), ("review", !held), "{r:?}");
    }
    let table = String::from_utf8_lossy(&run(&sim.config, &["plan"]).stdout).into_owned();
    assert!(table.trim_end().ends_with("apply is not available for CSV billing"), "{table}");
}
