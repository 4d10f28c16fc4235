//! The leaf readers: on captured values, and (for the typing rule, which depends on the
//! layer) through the real layers and deserializer with a small schema.

use std::collections::HashMap;

use serde::Deserialize;

use super::*;
use crate::config::de;
use crate::config::layers::{LoadOptions, merge_text};
use crate::config::types::format_duration;

fn s(text: &str) -> Raw {
    Raw::Text(text.into())
}
fn i(n: i64) -> Raw {
    Raw::Int(n.into())
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Typed {
    #[serde(deserialize_with = "whole")]
    reseller_id: Option<u64>,
    #[serde(deserialize_with = "whole_u32")]
    burst: Option<u32>,
    #[serde(deserialize_with = "rate")]
    rate_limit: Option<f64>,
    #[serde(deserialize_with = "flag")]
    enabled: Option<bool>,
    /// Entries of an array have no key of their own.
    ids: Vec<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Root {
    t: Typed,
}

/// `[t]` with `file_lines` in the file and `env` variables; the first problem's message.
fn read(file_lines: &str, env: &[(&str, &str)]) -> Result<Typed, String> {
    let env: HashMap<String, String> =
        env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let opts = LoadOptions { path: "t.toml".into(), env, overrides: Vec::new() };
    let (root, prov) = merge_text(&opts, &format!("[t]\n{file_lines}\n")).expect("valid TOML");
    let (read, problems) = de::read::<Root>(root, &prov);
    problems.first().map_or(Ok(read.t), |p| Err(p.message.clone()))
}

/// `t.KEY` set to `text` by the environment variable `MPSYNC_T__KEY`.
fn env<T>(key: &str, text: &str, get: fn(Typed) -> Option<T>) -> Result<T, String> {
    let var = format!("MPSYNC_T__{}", key.to_uppercase());
    read("", &[(&var, text)]).map(|t| get(t).expect("the value was read"))
}

/// `KEY = "text"`, in quotes in the file.
fn quoted<T>(key: &str, text: &str, get: fn(Typed) -> Option<T>) -> Result<T, String> {
    read(&format!("{key} = {text:?}"), &[]).map(|t| get(t).expect("the value was read"))
}

#[test]
fn durations_need_a_unit() {
    assert_eq!(duration_of(&s("30s"), false).unwrap(), Duration::from_secs(30));
    assert_eq!(duration_of(&s("400d"), false).unwrap(), Duration::from_secs(400 * 86_400));
    let e = duration_of(&s("30"), false).unwrap_err();
    assert_eq!(e, "\"30\" is not a duration; use a unit, e.g. \"30s\"");
    let e = duration_of(&i(30), false).unwrap_err();
    assert!(e.contains("use a string with a unit, e.g. \"30s\""), "{e}");
    assert!(duration_of(&s("soon"), false).unwrap_err().contains("\"5m\""));
    assert!(duration_of(&s("0s"), false).unwrap_err().contains("greater than 0"));
    assert_eq!(duration_of(&s("0s"), true).unwrap(), Duration::ZERO);
}

#[test]
fn numbers_and_booleans_arrive_as_text_from_the_environment() {
    let id = |t: Typed| t.reseller_id;
    assert_eq!(env("reseller_id", "188", id).unwrap(), 188);
    assert_eq!(env("reseller_id", " 188 ", id).unwrap(), 188);
    assert_eq!(whole_min(&i(4), 1).unwrap(), 4);
    assert!(whole_min(&i(0), 1).unwrap_err().contains("≥ 1"));
    assert!(env("reseller_id", "0", id).unwrap_err().contains("≥ 1"));
    assert!(env("reseller_id", "four", id).unwrap_err().contains("\"four\""));
    assert!(whole_min(&i(-3), 0).is_err());
    let enabled = |t: Typed| t.enabled;
    assert!(env("enabled", "TRUE", enabled).unwrap());
    assert!(env("enabled", "yes", enabled).unwrap_err().contains("true or false"));
    let rate_limit = |t: Typed| t.rate_limit;
    assert_eq!(env("rate_limit", "2.5", rate_limit).unwrap(), 2.5);
    assert_eq!(positive(&i(5)).unwrap(), 5.0);
    assert!(env("rate_limit", "0", rate_limit).is_err());
    assert!(env("rate_limit", "NaN", rate_limit).is_err());
    assert!(env("rate_limit", "1e-30", rate_limit).unwrap_err().contains("too small"));
    let burst = |t: Typed| t.burst;
    let e = read(&format!("burst = {}", i64::from(u32::MAX) + 1), &[]).unwrap_err();
    assert!(e.contains("too large"), "{e}");
    assert_eq!(env("burst", "7", burst).unwrap(), 7);
}

#[test]
fn a_quoted_number_or_boolean_in_the_file_is_refused_with_the_fix() {
    assert_eq!(
        quoted("reseller_id", "188", |t| t.reseller_id).unwrap_err(),
        "\"188\" is in quotes, so the file gives it as text; write it without quotes: \
         reseller_id = 188"
    );
    assert!(quoted("burst", "5", |t| t.burst).unwrap_err().ends_with("burst = 5"));
    let e = quoted("rate_limit", "2.5", |t| t.rate_limit).unwrap_err();
    assert!(e.ends_with("rate_limit = 2.5"), "{e}");
    assert!(quoted("enabled", "true", |t| t.enabled).unwrap_err().ends_with("enabled = true"));
    // Text that is not a number at all keeps the plain message (no bogus fix).
    let e = quoted("reseller_id", "seven", |t| t.reseller_id).unwrap_err();
    assert_eq!(e, "\"seven\" is not a whole number ≥ 1");
    assert!(quoted("enabled", "yes", |t| t.enabled).unwrap_err().contains("true or false"));
    // A value without a key of its own (an array entry) is held to the file's rule too.
    let e = read("ids = [\"188\"]", &[]).unwrap_err();
    assert!(e.ends_with("write it without quotes: 188"), "{e}");
}

#[test]
fn addresses_and_urls() {
    assert!(socket_addr_of(&s("127.0.0.1:9847")).is_ok());
    assert!(socket_addr_of(&s("localhost:9847")).unwrap_err().contains("ip:port"));
    assert!(base_url_of(&s("https://emailservice.io")).is_ok());
    assert!(base_url_of(&s("ftp://x.example")).unwrap_err().contains("https://"));
    assert!(base_url_of(&s("https://x.example/?a=1")).unwrap_err().contains("query"));
    assert!(base_url_of(&s("not a url")).unwrap_err().contains("not a URL"));
}

#[test]
fn secret_paths_must_be_absolute_and_are_never_echoed() {
    assert_eq!(secret_path_of(&s("/etc/k")).unwrap(), PathBuf::from("/etc/k"));
    let e = secret_path_of(&s("sk_live_0123456789")).unwrap_err();
    assert!(e.contains("absolute path") && !e.contains("sk_live"), "{e}");
    assert!(secret_path_of(&i(5)).is_err());
}

#[test]
fn log_filters_are_checked() {
    assert_eq!(log_filter_of("info").unwrap(), "info");
    assert!(log_filter_of("warn,mpsync=debug").is_ok());
    assert!(log_filter_of("mpsync=loud").unwrap_err().contains("not a valid log filter"));
    assert!(log_filter_of("  ").is_err());
}

#[test]
fn durations_print_with_the_largest_exact_unit() {
    assert_eq!(format_duration(Duration::from_secs(30)), "30s");
    assert_eq!(format_duration(Duration::from_secs(90)), "90s");
    assert_eq!(format_duration(Duration::from_secs(7200)), "2h");
    assert_eq!(format_duration(Duration::from_secs(86_400)), "24h");
    assert_eq!(format_duration(Duration::from_secs(400 * 86_400)), "400d");
    assert_eq!(format_duration(Duration::from_millis(1500)), "1500ms");
}

mod props {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// What `mpsync config` prints for a duration parses back to the same duration.
        #[test]
        fn printed_durations_parse_back(ms in 1u64..100_000_000_000) {
            let d = Duration::from_millis(ms);
            let text = format_duration(d);
            prop_assert_eq!(duration_of(&s(&text), false).unwrap(), d, "{}", text);
        }

        /// Any text either parses as a duration or yields a message naming the value.
        #[test]
        fn duration_errors_quote_the_value(text in "[a-z0-9 ]{0,12}") {
            if let Err(e) = duration_of(&s(&text), true) {
                prop_assert!(e.contains(&format!("{text:?}")) || text.trim().is_empty(), "{}", e);
            }
        }
    }
}
