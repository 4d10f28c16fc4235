//! `mpsync reconcile` and the mapping part of `mpsync check`, through the real binary.

use std::path::{Path, PathBuf};
use std::process::Output;

use mpsync::store::Store;

use crate::support::common::{TestDir, mpsync};
use crate::support::reconcile;

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

/// Saves the sample reconciliation into the test's store, then closes the store.
fn seed_store(t: &TestDir) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let store = Store::open(&t.state_dir()).unwrap();
        store.save_reconciliation(&reconcile::sample()).await.unwrap();
    });
}

#[test]
fn without_a_store_it_says_there_is_no_reconciliation_yet_and_creates_nothing() {
    let t = TestDir::new();
    let cfg = config(&t);
    let out = run(&cfg, &["reconcile"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stdout.contains("no reconciliation yet"), "{stdout}");
    assert!(!t.state_dir().join(mpsync::store::FILE_NAME).exists(), "a read created the store");

    let out = run(&cfg, &["reconcile", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((out.status.code(), v["rows"].as_array().map(Vec::len)), (Some(0), Some(0)));
}

#[test]
fn table_json_and_csv_show_the_stored_rows_and_status_filters_them() {
    let t = TestDir::new();
    let cfg = config(&t);
    seed_store(&t);

    let out = run(&cfg, &["reconcile"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stdout.contains("vendor run 7, billing run 8"), "{stdout}");
    let leak =
        stdout.lines().find(|l| l.starts_with("under_billed")).expect("an under_billed line");
    assert!(
        leak.contains("A2 Leak Company") && leak.contains("MP-CF") && leak.contains("7.00"),
        "{leak}"
    );
    assert!(stdout.contains("5 rows: "), "{stdout}");
    assert!(stdout.contains("monthly impact: under-billed 7.00, over-billed 0.00"), "{stdout}");

    let out = run(&cfg, &["reconcile", "--format", "json", "--status", "unbilled,match"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let statuses: Vec<&str> =
        v["rows"].as_array().unwrap().iter().map(|r| r["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, vec!["match", "unbilled"]);
    assert_eq!(v["summary"]["rows"], 5);

    let out = run(&cfg, &["reconcile", "--format", "csv", "--status", "under_billed"]);
    let (stdout, _) = text(&out);
    let lines: Vec<&str> = stdout.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    assert!(lines[0].starts_with("kind,status,account,"));
    assert!(lines[1].starts_with("service,under_billed,A2,Leak Company,MP-CF,"), "{}", lines[1]);
}

#[test]
fn an_unknown_status_is_a_usage_error_naming_the_valid_ones() {
    let t = TestDir::new();
    let out = run(&config(&t), &["reconcile", "--status", "overbilled"]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(64), "{stderr}");
    assert!(stderr.contains("\"overbilled\"") && stderr.contains("over_billed"), "{stderr}");
}

#[test]
fn a_store_held_by_another_process_exits_75_saying_so() {
    let t = TestDir::new();
    let cfg = config(&t);
    seed_store(&t);
    let held = Store::open(&t.state_dir()).unwrap();
    let out = run(&cfg, &["reconcile"]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(75), "{stderr}");
    assert!(stderr.contains("in use"), "{stderr}");
    assert!(stderr.contains("curl http://127.0.0.1:1/v1/reconciliation"), "{stderr}");
    drop(held);
}

/// Adds a CSV billing source and a mapping file to the test config.
fn with_billing(t: &TestDir, mapping: &str) -> PathBuf {
    let cfg = config(t);
    let map = t.path().join("mapping.toml");
    std::fs::write(&map, mapping).unwrap();
    let csv = t.path().join("billed.csv");
    std::fs::write(&csv, "account_id,product_id,quantity\n").unwrap();
    let mut text = std::fs::read_to_string(&cfg).unwrap();
    text.push_str(&format!(
        "\n[billing]\nsource = \"csv\"\n[billing.csv]\npath = \"{}\"\n[reconcile]\nmapping_file = \"{}\"\n",
        csv.display(),
        map.display()
    ));
    t.config(&text)
}

fn mapping_line(stdout: &str) -> String {
    let start =
        stdout.find("\nmapping").unwrap_or_else(|| panic!("no mapping check in:\n{stdout}"));
    stdout[start + 1..].to_string()
}

#[test]
fn check_validates_the_mapping_with_line_numbers() {
    let t = TestDir::new();
    let cfg = with_billing(&t, "[customers]\n329 = \"250\"\nabc = \"251\"\n");
    let out = run(&cfg, &["check"]);
    let (stdout, stderr) = text(&out);
    assert_ne!(out.status.code(), Some(0), "{stdout}{stderr}");
    let m = mapping_line(&stdout);
    assert!(m.starts_with("mapping") && m.contains("FAILED"), "{m}");
    assert!(
        m.contains("line 3: customers.\"abc\": a Mailprotector customer id must be a number"),
        "{m}"
    );
}

#[test]
fn check_reports_the_mapping_expired_suppressions_and_suggestions() {
    let t = TestDir::new();
    let cfg = with_billing(
        &t,
        "[customers]\n1 = \"A1\"\n[products.CloudFilter]\npsa_product = \"MP-CF\"\n\
         [[suppress]]\ncustomer = 1\nreason = \"old trial\"\nuntil = 2020-01-31\n",
    );
    seed_store(&t);
    let out = run(&cfg, &["check"]);
    let (stdout, stderr) = text(&out);
    let m = mapping_line(&stdout);
    assert!(m.starts_with("mapping") && m.contains(" ok "), "{m}\n{stderr}");
    assert!(m.contains("1 customers → 1 accounts"), "{m}");
    assert!(
        m.contains("expired suppression on line 5 (customer 1, all products, until 2020-01-31)"),
        "{m}"
    );
    assert!(m.contains("329 = \"250\"  # Acme, Inc. ↔ ACME Inc"), "{m}");
}

/// A customer as a test writes it: id, name, users per product.
type Seen<'a> = (u64, &'a str, &'a [(&'a str, u64)]);

/// Stores one vendor run that saw these customers.
fn seed_vendor_run(t: &TestDir, customers: &[Seen<'_>]) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let store = Store::open(&t.state_dir()).unwrap();
        let at: chrono::DateTime<chrono::Utc> = "2026-03-01T10:00:00Z".parse().unwrap();
        let id = store.begin_run(mpsync::model::RunKind::Vendor, at).await.unwrap();
        let customers = customers
            .iter()
            .map(|(id, name, counts)| mpsync::model::CustomerUsage {
                id: *id,
                name: (*name).to_owned(),
                counts: counts.iter().map(|(p, n)| ((*p).to_owned(), *n)).collect(),
            })
            .collect();
        store.commit_vendor_run(id, at, Default::default(), customers).await.unwrap();
    });
}

const TYPOS: &str = "[customers]\n329 = \"250\"\n392 = \"251\"\n\
                     [products.CloudFiltr]\npsa_product = \"MP-CF\"\n\
                     [products.SafeSend]\npsa_product = \"MP-SS\"\n";

/// A mapped product nobody uses that is no known product, and a mapped customer the vendor
/// never listed, are warned about with the nearest name seen; the check still passes, in the
/// table and in JSON.
#[test]
fn check_warns_about_mapped_names_the_vendor_never_showed() {
    let t = TestDir::new();
    let cfg = with_billing(&t, TYPOS);
    seed_vendor_run(
        &t,
        &[(329, "Acme", &[("CloudFilter", 5), ("SafeSend", 2)]), (394, "Cobalt", &[])],
    );
    let out = run(&cfg, &["check"]);
    let (stdout, stderr) = text(&out);
    let m = mapping_line(&stdout);
    assert!(m.starts_with("mapping") && m.contains(" warn "), "{m}\n{stderr}");
    let warnings: Vec<&str> = m.lines().filter(|l| l.starts_with("  warning: ")).collect();
    assert_eq!(warnings.len(), 2, "{m}");
    assert!(
        warnings[0].contains(
            "product \"CloudFiltr\" is mapped (to PSA product \"MP-CF\") but no \
                              customer uses it in the latest vendor run (run 1,"
        ) && warnings[0].ends_with("did you mean CloudFilter?"),
        "{}",
        warnings[0]
    );
    assert!(
        warnings[1].contains("customer 392 is mapped (to account \"251\")")
            && warnings[1].ends_with("did you mean 394 (Cobalt)?"),
        "{}",
        warnings[1]
    );

    let out = run(&cfg, &["check", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mapping = v["checks"].as_array().unwrap().iter().find(|c| c["name"] == "mapping").unwrap();
    assert_eq!(mapping["ok"], true, "{mapping}");
    let w = mapping["warnings"].as_array().unwrap();
    assert_eq!(w.len(), 2, "{mapping}");
    assert!(w[0].as_str().unwrap().ends_with("did you mean CloudFilter?"), "{mapping}");
}

/// Warnings alone never fail the check: with every other check passing it exits 0. Before
/// the first vendor run, products are compared with the product vocabulary.
#[test]
fn check_with_only_warnings_exits_zero_and_uses_the_vocabulary_before_any_run() {
    // The simulator stands in for Mailprotector, so every other check passes.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let sim = rt.block_on(mpsync_sim::SimServer::start(mpsync_sim::SimOptions::default())).unwrap();
    let (reseller, key) = {
        let ds = sim.control().read();
        (ds.reseller_id(), ds.reseller_key().to_owned())
    };
    let t = TestDir::new();
    let cfg = with_billing(&t, TYPOS);
    t.secret("mailprotector-api-key", &key);
    let csv = "account_id,account_name,product_id,quantity\n250,Acme,MP-CF,5\n";
    std::fs::write(t.path().join("billed.csv"), csv).unwrap();
    let text_cfg = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("http://127.0.0.1:1", &sim.base_url())
        .replace("reseller_id = 188", &format!("reseller_id = {reseller}"));
    let cfg = t.config(&text_cfg);
    let out = run(&cfg, &["check"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    let m = mapping_line(&stdout);
    let warnings: Vec<&str> = m.lines().filter(|l| l.starts_with("  warning: ")).collect();
    assert_eq!(warnings.len(), 1, "customers cannot be judged before a run: {m}");
    assert!(
        warnings[0].contains(
            "\"CloudFiltr\" is mapped (to PSA product \"MP-CF\") but there is no \
                              vendor run yet to compare with"
        ) && warnings[0].ends_with("did you mean CloudFilter?"),
        "{m}"
    );
}

#[test]
fn check_names_a_missing_mapping_file_and_how_to_create_it() {
    let t = TestDir::new();
    let cfg = with_billing(&t, "");
    std::fs::remove_file(t.path().join("mapping.toml")).unwrap();
    let out = run(&cfg, &["check"]);
    let (stdout, _) = text(&out);
    let m = mapping_line(&stdout);
    assert!(m.contains("does not exist") && m.contains("config/mapping.toml"), "{m}");
    assert_eq!(out.status.code(), Some(78));
}

#[test]
fn the_latest_saved_reconciliation_is_read_back_before_and_after_reopening() {
    let t = TestDir::new();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let first = reconcile::sample();
    let mut second = first.clone();
    second.rows.truncate(1);
    rt.block_on(async {
        let store = Store::open(&t.state_dir()).unwrap();
        assert_eq!(store.latest_reconciliation().await.unwrap(), None);
        store.save_reconciliation(&first).await.unwrap();
        assert_eq!(store.latest_reconciliation().await.unwrap().as_ref(), Some(&first));
        // A second save replaces what readers of the same handle see.
        store.save_reconciliation(&second).await.unwrap();
        assert_eq!(store.latest_reconciliation().await.unwrap().as_ref(), Some(&second));
    });
    rt.block_on(async {
        let store = Store::open(&t.state_dir()).unwrap();
        assert_eq!(store.latest_reconciliation().await.unwrap(), Some(second.clone()));
    });
}
