//! The stored write-back plan through `GET /v1/plan` (in process, over a test store) and
//! `mpsync plan` (the real binary): none yet, the latest and a superseded one by id, the
//! filters, JSON, CSV and the table, the refusals; and `mpsync check`'s write-back line.

use std::path::{Path, PathBuf};
use std::process::Output;

use axum::http::StatusCode;
use chrono::Utc;
use mpsync::config::Mapping;
use mpsync::health::Health;
use mpsync::model::LineRef;
use mpsync::store::Store;
use mpsync::writeback::Plan;
use serde_json::Value;

use crate::support::api::{self, Reply, app, open};
use crate::support::common::{TestDir, mpsync};
use crate::support::reconcile::{MAPPING, at, sample};

/// The sample reconciliation's mapping with CloudFilter opted in.
fn mapping() -> Mapping {
    let text = format!("{MAPPING}write_back = \"review\"\n");
    Mapping::parse(Path::new("mapping.toml"), &text).unwrap()
}

/// The plan of the sample reconciliation (its lines given ConnectWise ids): A2 10 → 12
/// (under-billed, +7.00), and A3 (unbilled, 4 users) as a manual step.
fn sample_plan() -> Plan {
    let mut rec = sample();
    for (i, row) in rec.rows.iter_mut().enumerate() {
        for line in &mut row.evidence.lines {
            line.line = Some(LineRef::Connectwise { agreement: 7, addition: 100 + i as u64 });
        }
    }
    mpsync::writeback::plan::build(&rec, &mapping(), "connectwise", true, 25, at(11))
}

/// Saves the sample plan, then one with another proposal: plan 1 superseded by plan 2.
async fn seed(store: &Store) -> (Plan, Plan) {
    let first = sample_plan();
    assert_eq!(first.changes.len(), 1, "{first:#?}");
    let one = store.save_plan(first.clone()).await.unwrap().plan().clone();
    // A later poll counts 13 users.
    let mut second = first;
    let c = &mut second.changes[0];
    (c.to, c.vendor_quantity, c.monthly_amount) = (13.0, 13, Some(10.5));
    c.reason = "Mailprotector counts 13 users of CloudFilter; the line bills 10".into();
    let two = store.save_plan(second).await.unwrap().plan().clone();
    (store.plan(one.id).await.unwrap().unwrap(), two)
}

async fn get(store: &Store, uri: &str) -> Reply {
    api::get(&app(store, &Health::new(Utc::now())), uri).await
}

fn json(r: &Reply) -> Value {
    serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", r.body))
}

#[tokio::test]
async fn before_the_first_plan_the_endpoint_says_none_yet() {
    let (_dir, store) = open();
    let r = get(&store, "/v1/plan").await;
    assert_eq!(r.status, StatusCode::OK);
    let v = json(&r);
    assert_eq!(
        (v["state"].as_str(), v["changes"].as_array().map(Vec::len)),
        (Some("none"), Some(0))
    );
    assert!(v["note"].as_str().unwrap().starts_with("no plan yet"), "{v}");
    let csv = get(&store, "/v1/plan?format=csv").await;
    assert_eq!(csv.body.lines().count(), 1, "just the header: {}", csv.body);
    let missing = get(&store, "/v1/plan?id=1").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(json(&missing)["error"], "there is no plan 1");
}

#[tokio::test]
async fn the_endpoint_serves_the_latest_plan_or_one_by_id_with_its_state_and_filters() {
    let (_dir, store) = open();
    let (one, two) = seed(&store).await;
    assert_eq!((one.id, one.superseded_by, two.id), (1, Some(2), 2));

    let v = json(&get(&store, "/v1/plan").await);
    assert_eq!((v["id"].as_u64(), v["state"].as_str()), (Some(2), Some("current")));
    let served: Plan = serde_json::from_value(v.clone()).unwrap();
    assert_eq!(served, two);
    let c = &v["changes"][0];
    assert_eq!((c["account"].as_str(), c["line_key"].as_str()), (Some("A2"), Some("cw:7/101")));
    assert_eq!((c["from"].as_f64(), c["to"].as_f64()), (Some(10.0), Some(13.0)));
    assert_eq!(
        c["line"],
        serde_json::json!({"psa": "connectwise", "agreement": 7, "addition": 101})
    );
    assert_eq!(v["manual"][0]["quantity"], 4);

    let old = json(&get(&store, "/v1/plan?id=1").await);
    assert_eq!(
        (old["state"].as_str(), old["superseded_by"].as_u64()),
        (Some("superseded"), Some(2))
    );
    assert_eq!(old["changes"][0]["to"], 12.0);

    let unbilled = json(&get(&store, "/v1/plan?status=unbilled").await);
    assert_eq!(unbilled["changes"], serde_json::json!([]));
    assert_eq!(unbilled["manual"][0]["account"], "A3");
    let a2 = json(&get(&store, "/v1/plan?account=leak%20company").await);
    assert_eq!(
        (a2["changes"].as_array().unwrap().len(), a2["manual"].as_array().unwrap().len()),
        (1, 0)
    );

    let csv = get(&store, "/v1/plan?format=csv&status=under_billed").await;
    assert_eq!(csv.content_type(), "text/csv; charset=utf-8");
    let lines: Vec<&str> = csv.body.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(lines.len(), 2, "{}", csv.body);
    assert!(
        lines[1].starts_with("1,A2,Leak Company,MP-CF,cw:7/101,10,13,10.50,under_billed,"),
        "{}",
        lines[1]
    );

    for (uri, want) in [
        ("/v1/plan?status=bogus", "unknown status \"bogus\""),
        ("/v1/plan?id=abc", "cannot read the query string of /v1/plan: id: invalid digit"),
        ("/v1/plan?format=xml", "unknown format \"xml\""),
    ] {
        let r = get(&store, uri).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{uri}");
        assert!(json(&r)["error"].as_str().unwrap().contains(want), "{uri}: {}", r.body);
    }
    assert_eq!(get(&store, "/v1/plan?id=9").await.status, StatusCode::NOT_FOUND);
}

fn run(config: &Path, args: &[&str]) -> Output {
    mpsync().arg("-c").arg(config).args(args).output().expect("run mpsync")
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn config(t: &TestDir) -> PathBuf {
    t.valid_config("127.0.0.1:1", "http://127.0.0.1:1")
}

fn seed_store(t: &TestDir) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let store = Store::open(&t.state_dir()).unwrap();
        seed(&store).await;
    });
}

#[test]
fn without_a_store_plan_says_there_is_none_yet_and_creates_nothing() {
    let t = TestDir::new();
    let cfg = config(&t);
    let out = run(&cfg, &["plan"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stdout.starts_with("no plan yet"), "{stdout}");
    let out = run(&cfg, &["plan", "--json"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["state"], "none");
    let out = run(&cfg, &["plan", "--csv"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(stderr.contains("no plan yet"), "{stderr}");
    assert!(!t.state_dir().join(mpsync::store::FILE_NAME).exists(), "a read created the store");
    let out = run(&cfg, &["plan", "--id", "3"]);
    assert_eq!(out.status.code(), Some(64));
    assert!(text(&out).1.starts_with("mpsync plan: there is no plan 3"), "{}", text(&out).1);
}

#[test]
fn plan_prints_the_table_json_and_csv_and_filters_them() {
    let t = TestDir::new();
    let cfg = config(&t);
    seed_store(&t);

    let out = run(&cfg, &["plan"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stdout.starts_with("plan 2 (current), built from the reconciliation of 2026-11-27T10:00:00Z (vendor run 7, billing run 8)"), "{stdout}");
    let change =
        stdout.lines().find(|l| l.starts_with("1 ") && l.contains("cw:")).expect("change 1");
    for part in ["A2 Leak Company", "MP-CF", "cw:7/101", "10 → 13", "+10.50", "review"] {
        assert!(change.contains(part), "{part:?} in {change}");
    }
    assert!(
        stdout.contains("  1: Mailprotector counts 13 users of CloudFilter; the line bills 10"),
        "{stdout}"
    );
    assert!(
        stdout.contains("manual steps (1), never written by mpsync:\n  A3  MP-CF: bill 4"),
        "{stdout}"
    );
    assert!(
        stdout
            .trim_end()
            .ends_with("to apply: mpsync apply 2 (add --dry-run to see the requests first)"),
        "{stdout}"
    );

    let out = run(&cfg, &["plan", "--id", "1"]);
    let (stdout, _) = text(&out);
    assert!(stdout.starts_with("plan 1 (superseded by plan 2)"), "{stdout}");
    assert!(
        stdout.contains("plan 1 was replaced by plan 2")
            && stdout.contains("can no longer be applied"),
        "{stdout}"
    );

    let out = run(&cfg, &["plan", "--json", "--status", "under_billed"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((v["id"].as_u64(), v["state"].as_str()), (Some(2), Some("current")));
    assert_eq!(v["changes"][0]["line_key"], "cw:7/101");
    assert_eq!(v["manual"], serde_json::json!([]), "filtered out");

    let out = run(&cfg, &["plan", "--csv", "--account", "A3"]);
    let (stdout, _) = text(&out);
    assert_eq!(
        stdout.split("\r\n").filter(|l| !l.is_empty()).count(),
        1,
        "A3 has no change: {stdout}"
    );
    let out = run(&cfg, &["plan", "--csv"]);
    let (stdout, _) = text(&out);
    let lines: Vec<&str> = stdout.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(
        lines[0],
        "row,account,account_name,psa_product,line,from,to,monthly_amount,status,reason,mode,held"
    );
    assert!(
        lines[1].starts_with("1,A2,Leak Company,MP-CF,cw:7/101,10,13,10.50,under_billed,"),
        "{}",
        lines[1]
    );

    let out = run(&cfg, &["plan", "--status", "overbilled"]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(64), "{stderr}");
    assert!(stderr.starts_with("mpsync plan: --status: unknown status \"overbilled\""), "{stderr}");
    let out = run(&cfg, &["plan", "--json", "--csv"]);
    assert_eq!(out.status.code(), Some(64), "one format at a time");
}

#[test]
fn a_store_held_by_a_daemon_exits_75_naming_the_daemon_s_plan_endpoint() {
    let t = TestDir::new();
    let cfg = config(&t);
    seed_store(&t);
    let held = Store::open(&t.state_dir()).unwrap();
    let out = run(&cfg, &["plan"]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(75), "{stderr}");
    assert!(
        stderr.contains("in use") && stderr.contains("curl http://127.0.0.1:1/v1/plan"),
        "{stderr}"
    );
    drop(held);
}

/// `mpsync check` with CSV billing and a mapping that opts products in: each product's
/// policy, the [[line]] preference, and warnings for what CSV billing cannot do.
#[test]
fn check_shows_what_each_product_will_do_in_text_and_json() {
    let t = TestDir::new();
    let cfg = config(&t);
    let map = t.path().join("mapping.toml");
    std::fs::write(
        &map,
        "[customers]\n1 = \"250\"\n\
         [products.CloudFilter]\npsa_product = \"MP-CF\"\nwrite_back = \"review\"\nmin_quantity = 10\n\
         [products.SafeSend]\npsa_product = \"MP-SS\"\nwrite_back = \"auto\"\nmax_decrease_percent = 5\n\
         [products.Bracket]\npsa_product = \"MP-BR\"\n\
         [[line]]\naccount = \"250\"\npsa_product = \"MP-CF\"\nline = \"cw:12/345\"\n",
    )
    .unwrap();
    let csv = t.path().join("billed.csv");
    std::fs::write(&csv, "account_id,product_id,quantity\n").unwrap();
    let mut text_cfg = std::fs::read_to_string(&cfg).unwrap();
    text_cfg.push_str(&format!(
        "\n[billing]\nsource = \"csv\"\n[billing.csv]\npath = \"{}\"\n[reconcile]\nmapping_file = \"{}\"\n\
         [write_back]\nmax_changes_per_apply = 7\n",
        csv.display(),
        map.display()
    ));
    let cfg = t.config(&text_cfg);
    let out = run(&cfg, &["check"]);
    let (stdout, stderr) = text(&out);
    let start = stdout
        .find("\nwrite_back")
        .unwrap_or_else(|| panic!("no write_back check:\n{stdout}\n{stderr}"));
    let block: Vec<&str> = stdout[start + 1..].lines().take(8).collect();
    assert!(block[0].starts_with("write_back ") && block[0].contains(" warn "), "{block:?}");
    assert!(
        block[0].ends_with(
            "2 of 3 products opt in; at most 7 changes per apply; billing source csv has no write \
         path: `mpsync plan --csv` lists the changes to enter by hand"
        ),
        "{block:?}"
    );
    assert_eq!(block[1], "  Bracket → MP-BR: write_back off: never planned");
    assert_eq!(
        block[2],
        "  CloudFilter → MP-CF: write_back review, min_quantity 10, max_decrease 20% (changes wait \
         for `mpsync apply`; a larger drop is held for review)"
    );
    assert!(
        block[3].starts_with("  SafeSend → MP-SS: write_back auto, max_decrease 5% (the daemon"),
        "{block:?}"
    );
    assert_eq!(block[4], "  [[line]] on line 13: account 250 MP-CF changes cw:12/345");
    assert!(block[5].starts_with("  warning: SafeSend set write_back = \"auto\", but billing source csv has no write path"), "{block:?}");
    assert!(block[6].starts_with("  warning: the [[line]] on line 13 names cw:12/345, which is not a line of billing source csv"), "{block:?}");

    let out = run(&cfg, &["check", "--json"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let wb = v["checks"].as_array().unwrap().iter().find(|c| c["name"] == "write_back").unwrap();
    assert_eq!(wb["ok"], true);
    assert_eq!(wb["data"]["max_changes_per_apply"], 7);
    assert_eq!(wb["data"]["writable"], false);
    let cf = wb["data"]["products"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["product"] == "CloudFilter")
        .unwrap();
    assert_eq!(
        (
            cf["write_back"].as_str(),
            cf["min_quantity"].as_f64(),
            cf["max_decrease_percent"].as_f64()
        ),
        (Some("review"), Some(10.0), Some(20.0))
    );
    assert_eq!(wb["data"]["lines"][0]["line"], "cw:12/345");

    // A policy the mapping cannot accept fails the mapping check with its line and key.
    std::fs::write(&map, "[products.CloudFilter]\npsa_product = \"MP-CF\"\nwrite_back = \"yes\"\n")
        .unwrap();
    let out = run(&cfg, &["check"]);
    let (stdout, _) = text(&out);
    assert_eq!(out.status.code(), Some(78), "{stdout}");
    assert!(
        stdout.contains(
            "line 3: products.\"CloudFilter\".write_back: \"yes\" is not a write-back mode"
        ),
        "{stdout}"
    );
}
