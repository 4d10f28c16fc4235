//! 10,000 customers generate with modest memory. RSS belongs to the whole process and the
//! other tests of this binary allocate while this one runs, so the test measures in a child
//! process of the test binary that runs only this test.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use mpsync_sim::Dataset;

/// Set in the child that measures.
const CHILD: &str = "MPSYNC_SIM_SCALE_CHILD";

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// Runs this test binary again with only `test` (a function of this module) and
/// `CHILD` set; panics with its output unless it ran that one test and it passed.
fn run_alone_in_a_child(test: &str) {
    // The test's name inside the binary: this module's path without the crate's name.
    let module = module_path!().split_once("::").map_or(module_path!(), |(_, m)| m);
    let name = format!("{module}::{test}");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", &name, "--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(300);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{name} did not finish in its own process within 300 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let out = child.wait_with_output().unwrap();
    let (stdout, stderr) =
        (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(status.success(), "{name} failed in its own process:\n{stdout}\n{stderr}");
    assert!(stdout.contains("test result: ok. 1 passed"), "{name} did not run:\n{stdout}");
    eprint!("{stderr}");
}

#[test]
fn ten_thousand_customers_fit_in_modest_memory() {
    if std::env::var_os(CHILD).is_none() {
        return run_alone_in_a_child("ten_thousand_customers_fit_in_modest_memory");
    }
    let before = rss_kib();
    let ds = Dataset::generate(2026, 10_000);
    let after = rss_kib();
    assert_eq!(ds.main_customers().len(), 10_000);
    let t = ds.user_totals();
    let (users, aliases) = (t.users, t.aliases);
    assert!((300_000..=900_000).contains(&users), "about 500k users, got {users}");
    assert!(aliases > 10_000, "aliases present: {aliases}");
    assert!(t.mailing_lists > 1_000 && t.unlicensed_users > 1_000, "{t:?}");
    let grown_mib = after.saturating_sub(before) / 1024;
    eprintln!("10k customers: {t:?}, {grown_mib} MiB");
    assert!(grown_mib < 48, "dataset took {grown_mib} MiB of RSS");
    // The user index for the whole reseller pages without materialising everyone.
    let truth = ds.expected_counts();
    assert_eq!(truth.len(), 10_000);
}
