//! The config loader (`mpsync check`'s first step) on arbitrary and damaged text.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use super::harness::{check_config, config_text};
use mpsync::config::LogFormat;
use proptest::prelude::*;

use super::mutate::{apply, damage};

const EXAMPLE: &str = include_str!("../../config/mpsync.toml");

/// A private (mode 600) secret file, as the loader demands.
fn secret_file(dir: &Path) -> String {
    let p = dir.join("mailprotector-api-key");
    std::fs::write(&p, "key-from-file\n").unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    p.display().to_string()
}

/// Settings a generated valid config holds; the loaded config must hold the same.
#[derive(Debug, Clone)]
struct Valid {
    reseller_id: u64,
    port: u16,
    json_logs: bool,
    rate_limit: f64,
    burst: u32,
    max_in_flight: usize,
    timeout_s: u64,
    debounce_runs: u32,
    counts: Vec<(String, Vec<String>)>,
}

fn valid() -> impl Strategy<Value = Valid> {
    (
        (1..=i64::MAX as u64, 1u16.., any::<bool>(), 0.001f64..10_000.0),
        (1u32..100_000, 1usize..=1000, 1u64..100_000, 1u32..1000),
        proptest::collection::btree_map(
            "[A-Za-z]([A-Za-z0-9 ]{0,10}[A-Za-z0-9])?",
            proptest::collection::vec("[A-Za-z]{1,10}", 1..4),
            0..3,
        ),
    )
        .prop_map(
            |(
                (reseller_id, port, json_logs, rate_limit),
                (burst, max_in_flight, timeout_s, debounce_runs),
                counts,
            )| Valid {
                reseller_id,
                port,
                json_logs,
                rate_limit,
                burst,
                max_in_flight,
                timeout_s,
                debounce_runs,
                counts: counts.into_iter().collect(),
            },
        )
}

fn render(v: &Valid, key_file: &str) -> String {
    let mut t = format!(
        "[daemon]\nlisten = \"127.0.0.1:{}\"\nlog_format = \"{}\"\n\n[mailprotector]\n\
         api_key_file = {key_file:?}\nreseller_id = {}\nrate_limit = {:?}\nburst = {}\n\
         max_in_flight = {}\ntimeout = \"{}s\"\n\n[reconcile]\ndebounce_runs = {}\n",
        v.port,
        if v.json_logs { "json" } else { "text" },
        v.reseller_id,
        v.rate_limit,
        v.burst,
        v.max_in_flight,
        v.timeout_s,
        v.debounce_runs,
    );
    for (name, any_of) in &v.counts {
        t.push_str(&format!("\n[[mailprotector.counts]]\nname = {name:?}\nany_of = {any_of:?}\n"));
    }
    t
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn arbitrary_bytes_are_refused_without_panicking(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        check_config(&bytes);
    }

    #[test]
    fn toml_like_text_is_refused_or_accepted_without_panicking(text in "[\\[\\]a-z_.=\"'0-9 \n#{},:-]{0,300}") {
        check_config(text.as_bytes());
    }

    #[test]
    fn a_damaged_example_names_the_key_of_every_problem(damages in proptest::collection::vec(damage(), 1..4)) {
        check_config(apply(EXAMPLE, &damages).as_bytes());
    }
}

#[test]
fn generated_configs_load_as_written_and_survive_damage() {
    let dir = tempfile::tempdir().unwrap();
    let key_file = secret_file(dir.path());
    let cases = ProptestConfig::with_cases(48);
    proptest!(cases, |(v in valid(), damages in proptest::collection::vec(damage(), 1..3))| {
        let text = render(&v, &key_file);
        let (cfg, rendered) = config_text(&text).map_err(|e| TestCaseError::fail(format!("{e:#}\n{text}")))?;
        prop_assert_eq!(cfg.mailprotector.reseller_id, v.reseller_id);
        prop_assert_eq!(cfg.daemon.listen.port(), v.port);
        prop_assert_eq!(cfg.daemon.log_format, if v.json_logs { LogFormat::Json } else { LogFormat::Text });
        prop_assert_eq!(cfg.mailprotector.limits.rate_limit, v.rate_limit);
        prop_assert_eq!(cfg.mailprotector.limits.burst, v.burst);
        prop_assert_eq!(cfg.mailprotector.limits.max_in_flight, v.max_in_flight);
        prop_assert_eq!(cfg.mailprotector.limits.timeout.as_secs(), v.timeout_s);
        prop_assert_eq!(cfg.reconcile.debounce_runs, v.debounce_runs);
        let counts: Vec<(String, Vec<String>)> =
            cfg.mailprotector.counts.iter().map(|c| (c.name.clone(), c.any_of.clone())).collect();
        prop_assert_eq!(&counts, &v.counts);
        prop_assert_eq!(cfg.mailprotector.api_key.expose(), "key-from-file");
        prop_assert!(!rendered.contains("key-from-file"), "the secret is shown: {}", rendered);
        check_config(apply(&text, &damages).as_bytes());
    });
}

#[test]
fn a_wrong_type_is_one_problem_naming_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let key_file = secret_file(dir.path());
    let text = format!(
        "[mailprotector]\napi_key_file = {key_file:?}\nreseller_id = \"seven\"\nburst = 1.5\n"
    );
    let err = config_text(&text).unwrap_err();
    let mut keys: Vec<&str> = err.problems.iter().map(|p| p.key.as_str()).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["mailprotector.burst", "mailprotector.reseller_id"], "{err:#}");
}
