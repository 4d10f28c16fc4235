//! 10,000 customers generate with modest memory (one test per binary so RSS is its own).

use mpsync_sim::Dataset;

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[test]
fn ten_thousand_customers_fit_in_modest_memory() {
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
