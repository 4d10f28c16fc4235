//! The dashboard in a real headless browser: Debian's chromium driven through chromedriver
//! (W3C WebDriver) against `mpsync demo`. Loads `/`, checks that the totals and a planted
//! discrepancy are visible, filters by status through the form, and saves screenshots to
//! `<target>/test-artifacts/`.
//!
//! Without chromium this test is skipped with a message, except in CI (`CI` set), where
//! `.ci/run` installs it and a missing browser is a failure.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::support::common;
use crate::support::webdriver::{Chromedriver, Session, css_string, wait_until};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// `mpsync demo`, stopped with Ctrl-C (so it removes its temporary directory) when dropped.
struct Demo(Child);

impl Demo {
    /// `http://ADDR` of the daemon, from the dashboard line the demo prints once it serves;
    /// the rest of stdout is drained by a thread, so the demo never blocks on a full pipe.
    fn base_url(&mut self) -> String {
        let stdout = self.0.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        common::wait_for(Duration::from_secs(60), "the demo's dashboard URL", || {
            rx.try_iter().find_map(|l| {
                let url = l.trim_start().strip_prefix("dashboard:  ")?.split_whitespace().next()?;
                Some(url.trim_end_matches('/').to_owned())
            })
        })
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-INT", &self.0.id().to_string()]).status();
        if common::exited_within(&mut self.0, Duration::from_secs(20)) {
            return;
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `<target>/test-artifacts`: under `CARGO_TARGET_DIR` when set, else next to the binary
/// under test (`<target>/debug/mpsync`).
fn artifacts_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| {
        common::bin().parent().and_then(Path::parent).expect("<target>/debug/mpsync").to_owned()
    });
    target.join("test-artifacts")
}

fn save(name: &str, png: &[u8]) -> PathBuf {
    assert!(png.starts_with(b"\x89PNG"), "the screenshot is a PNG");
    let dir = artifacts_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, png).unwrap();
    println!("screenshot saved to {}", path.display());
    path
}

/// Both programs, or `None` (skip) outside CI; in CI their absence fails the test.
fn browser() -> Option<(&'static Path, &'static Path)> {
    let (chromium, driver) = (Path::new(CHROMIUM), Path::new(CHROMEDRIVER));
    if chromium.exists() && driver.exists() {
        return Some((chromium, driver));
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{CHROMIUM} or {CHROMEDRIVER} is missing in CI: .ci/run installs the Debian packages \
         chromium and chromium-driver"
    );
    println!(
        "SKIPPED tests/browser.rs: {CHROMIUM} or {CHROMEDRIVER} is not installed \
         (apt-get install chromium chromium-driver to run it)"
    );
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_shows_totals_and_a_planted_discrepancy_and_filters_in_chromium() {
    let Some((chromium, driver)) = browser() else { return };
    mpsync::upstream::install_crypto_provider();
    let mut demo = Demo(
        common::mpsync()
            .args(["demo", "--listen", "127.0.0.1:0", "--customers", "50"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start mpsync demo"),
    );
    let base = demo.base_url();
    let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();

    // The demo's first vendor and billing polls, reconciled: the planted discrepancies.
    let rec: Value = wait_until(Duration::from_secs(90), "the demo's reconciliation", || {
        let (http, url) = (http.clone(), format!("{base}/v1/reconciliation"));
        async move {
            let v: Value = http.get(url).send().await.ok()?.json().await.ok()?;
            let by = &v["summary"]["by_status"];
            (by["match"].as_u64()? > 0 && by["under_billed"].as_u64()? > 0).then_some(v)
        }
    })
    .await;
    let summary = &rec["summary"];
    let planted = rec["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["status"] == "under_billed")
        .expect("an under_billed row")
        .clone();
    let account = planted["account"].as_str().unwrap();

    let profile = tempfile::tempdir().unwrap();
    let cd =
        Chromedriver::start(driver, Duration::from_secs(20)).await.expect("chromedriver starts");
    let args: Vec<String> = [
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1400,1600",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([format!("--user-data-dir={}", profile.path().display())])
    .collect();
    let s = Session::new(&cd, chromium, &args).await.expect("a chromium session");

    s.goto(&format!("{base}/")).await.unwrap();
    // The inline stylesheet applied under the page's Content-Security-Policy (its nonce).
    let header = s.find("header").await.unwrap();
    assert_eq!(s.css(&header, "background-color").await.unwrap(), "rgba(15, 23, 42, 1)");
    // The totals are on screen and say what /v1/reconciliation says.
    let totals = s.find("#totals").await.unwrap();
    assert!(s.displayed(&totals).await.unwrap(), "the totals are visible");
    for (status, n) in summary["by_status"].as_object().unwrap() {
        let el = s.find(&format!("#count-{status}")).await.unwrap();
        assert_eq!(s.text(&el).await.unwrap(), n.to_string(), "rows {status}");
    }
    let under = s.find("#impact-under").await.unwrap();
    assert!(s.displayed(&under).await.unwrap());
    let expected = format!("{:.2}", summary["impact_under_billed"].as_f64().unwrap());
    assert_eq!(s.text(&under).await.unwrap(), expected);
    // The planted under-billed row is on screen, first, with its account and delta.
    let row_css =
        format!("#rows tr[data-status=\"under_billed\"][data-account={}]", css_string(account));
    let row = s.find(&row_css).await.unwrap();
    assert!(s.displayed(&row).await.unwrap(), "the planted discrepancy is visible");
    let text = s.text(&row).await.unwrap();
    assert!(text.contains("under billed") && text.contains(account), "{text}");
    if let Some(name) = planted["account_name"].as_str() {
        assert!(text.contains(name), "{text}");
    }
    // Its vendor quantity over time is drawn inline.
    let chart = s.find(&format!("{row_css} svg.spark")).await.unwrap();
    assert!(s.displayed(&chart).await.unwrap(), "the row's history chart is visible");
    let first = s.find_all("#rows tbody tr").await.unwrap();
    assert_eq!(
        s.attr(&first[0], "data-status").await.unwrap().as_deref(),
        Some("under_billed"),
        "money leaking comes first"
    );
    save("dashboard.png", &s.screenshot().await.unwrap());

    // Filter by a status through the form, as a user would: pick it, click Apply.
    let option = s.find("#f-status option[value=\"over_billed\"]").await.unwrap();
    s.click(&option).await.unwrap();
    s.click(&s.find("#f-apply").await.unwrap()).await.unwrap();
    wait_until(Duration::from_secs(20), "the filtered page", || async {
        s.url().await.ok().filter(|u| u.contains("status=over_billed"))
    })
    .await;
    let rows = s.find_all("#rows tbody tr[data-status]").await.unwrap();
    assert_eq!(rows.len() as u64, summary["by_status"]["over_billed"].as_u64().unwrap());
    for r in &rows {
        assert_eq!(s.attr(r, "data-status").await.unwrap().as_deref(), Some("over_billed"));
        assert!(s.displayed(r).await.unwrap());
    }
    assert!(s.find_all(&row_css).await.unwrap().is_empty(), "the under-billed row is gone");
    let selected = s.find("#f-status option[value=\"over_billed\"]").await.unwrap();
    assert_eq!(s.attr(&selected, "selected").await.unwrap().as_deref(), Some("true"));
    save("dashboard-filtered.png", &s.screenshot().await.unwrap());
    s.close().await.unwrap();
}
