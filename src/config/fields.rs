//! Leaf parsers for config values. Each turns one merged value into a typed one or a message
//! that shows what was found and what is expected.
//!
//! One typing rule for numbers and booleans, decided by where the value came from: values
//! from the environment and the command line are always text, so there a number or boolean
//! is accepted as text (`MPSYNC_MAILPROTECTOR__RESELLER_ID=188`); in the TOML file the type
//! is written, so a quoted number (`reseller_id = "188"`) is refused with the fix. The
//! section reader tags each value with its source ([`tag_source`]) before parsing it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use config::{Value, ValueKind};

use super::Schedule;

/// How a value is shown in a message: strings quoted, numbers as written, containers by kind.
/// Only ever called for non-secret keys (secrets are never config values, only file paths).
pub(crate) fn show(v: &Value) -> String {
    match &v.kind {
        ValueKind::Nil => "an empty value".into(),
        ValueKind::Boolean(b) => b.to_string(),
        ValueKind::I64(n) => n.to_string(),
        ValueKind::I128(n) => n.to_string(),
        ValueKind::U64(n) => n.to_string(),
        ValueKind::U128(n) => n.to_string(),
        ValueKind::Float(f) => f.to_string(),
        ValueKind::String(s) => format!("{s:?}"),
        ValueKind::Table(_) => "a table".into(),
        ValueKind::Array(_) => "an array".into(),
    }
}

/// The `origin` a value from the environment or the command line carries (see
/// [`tag_source`]); any other origin means the TOML file, whose values are typed.
const FROM_TEXT: &str = "mpsync:text";

/// The `origin` prefix of a value from the file, followed by its key as written there.
const FROM_FILE: &str = "mpsync:file:";

/// Tags `v` with where it came from, for the typing rule of the leaf parsers: `as_text` for
/// an environment variable or a command-line flag (always text), else the file, where `key`
/// is the key as written (the fix in a message names it).
pub(crate) fn tag_source(v: Value, key: &str, as_text: bool) -> Value {
    let origin = if as_text { FROM_TEXT.to_owned() } else { format!("{FROM_FILE}{key}") };
    Value::new(Some(&origin), v.kind)
}

/// Text that stands for a number or boolean: accepted when the value came from the
/// environment or the command line, refused (with the fix) when written in quotes in the file.
fn typed_text<T>(
    v: &Value,
    s: &str,
    parse: impl Fn(&str) -> Option<T>,
) -> Result<T, Option<String>> {
    let parsed = parse(s.trim());
    if v.origin() == Some(FROM_TEXT) {
        return parsed.ok_or(None);
    }
    match parsed {
        // The text would be a fine value, but the file says it is a string: name the fix.
        Some(_) => {
            let fix = match v.origin().and_then(|o| o.strip_prefix(FROM_FILE)) {
                Some(key) => format!("{key} = {}", s.trim()),
                None => s.trim().to_owned(),
            };
            Err(Some(format!(
                "{} is in quotes, so the file gives it as text; write it without quotes: {fix}",
                show(v)
            )))
        }
        None => Err(None),
    }
}

/// A text value.
pub(crate) fn string(v: &Value) -> Result<String, String> {
    match &v.kind {
        ValueKind::String(s) => Ok(s.clone()),
        _ => Err(format!("expected a string in quotes, got {}", show(v))),
    }
}

/// A non-empty text value.
pub(crate) fn non_empty(v: &Value) -> Result<String, String> {
    let s = string(v)?;
    if s.trim().is_empty() {
        return Err("is empty; expected a non-empty string".into());
    }
    Ok(s.trim().to_string())
}

/// `true`/`false` (as text only from the environment or the command line).
pub(crate) fn boolean(v: &Value) -> Result<bool, String> {
    let not_bool = || format!("{} is not a boolean; use true or false", show(v));
    match &v.kind {
        ValueKind::Boolean(b) => Ok(*b),
        ValueKind::String(s) => typed_text(v, s, |t| match t.to_ascii_lowercase().as_str() {
            "true" => Some(true),
            "false" => Some(false),
            _ => None,
        })
        .map_err(|fix| fix.unwrap_or_else(not_bool)),
        _ => Err(not_bool()),
    }
}

/// A whole number, at least `min` (as text only from the environment or the command line).
pub(crate) fn whole(v: &Value, min: u64) -> Result<u64, String> {
    let n = match &v.kind {
        ValueKind::I64(n) => u64::try_from(*n).ok(),
        ValueKind::U64(n) => Some(*n),
        ValueKind::I128(n) => u64::try_from(*n).ok(),
        ValueKind::U128(n) => u64::try_from(*n).ok(),
        ValueKind::String(s) => match typed_text(v, s, |t| t.parse::<u64>().ok()) {
            Ok(n) => Some(n),
            Err(Some(fix)) => return Err(fix),
            Err(None) => None,
        },
        _ => None,
    };
    match n {
        Some(n) if n >= min => Ok(n),
        _ => Err(format!("{} is not a whole number ≥ {min}", show(v))),
    }
}

/// A whole number that fits `u32`, at least `min`.
pub(crate) fn whole_u32(v: &Value, min: u64) -> Result<u32, String> {
    let n = whole(v, min)?;
    u32::try_from(n).map_err(|_| format!("{n} is too large; expected at most {}", u32::MAX))
}

/// A request rate: a number greater than zero (integers accepted), at least [`MIN_RATE`]
/// (as text only from the environment or the command line).
pub(crate) fn positive(v: &Value) -> Result<f64, String> {
    let n = match &v.kind {
        ValueKind::Float(f) => Some(*f),
        ValueKind::I64(n) => Some(*n as f64),
        ValueKind::U64(n) => Some(*n as f64),
        ValueKind::String(s) => {
            let number = |t: &str| t.parse::<f64>().ok().filter(|n| n.is_finite());
            match typed_text(v, s, number) {
                Ok(n) => Some(n),
                Err(Some(fix)) => return Err(fix),
                Err(None) => None,
            }
        }
        _ => None,
    };
    match n {
        // Below one request per 1000 s the limiter's period stops making sense (and a
        // vanishing rate would overflow it); no upstream wants that.
        Some(n) if n.is_finite() && n > 0.0 && n < MIN_RATE => {
            Err(format!("{} is too small; use at least {MIN_RATE} requests per second", show(v)))
        }
        Some(n) if n.is_finite() && n > 0.0 => Ok(n),
        _ => Err(format!("{} is not a number greater than 0, e.g. 5.0", show(v))),
    }
}

/// The smallest request rate accepted, in requests per second.
const MIN_RATE: f64 = 0.001;

/// A duration with a unit ("30s", "5m", "2h", "30d"); `allow_zero` admits "0s".
pub(crate) fn duration(v: &Value, allow_zero: bool) -> Result<Duration, String> {
    let text = match &v.kind {
        ValueKind::String(s) => s.trim(),
        ValueKind::I64(_) | ValueKind::U64(_) | ValueKind::Float(_) => {
            return Err(format!(
                "{} is not a duration; use a string with a unit, e.g. \"{}s\"",
                show(v),
                show(v)
            ));
        }
        _ => return Err(format!("expected a duration with a unit, e.g. \"30s\", got {}", show(v))),
    };
    match humantime::parse_duration(text) {
        Ok(d) if d.is_zero() && !allow_zero => {
            Err(format!("{} must be greater than 0, e.g. \"30s\"", show(v)))
        }
        Ok(d) => Ok(d),
        Err(_) if !text.is_empty() && text.chars().all(|c| c.is_ascii_digit()) => {
            Err(format!("{} is not a duration; use a unit, e.g. \"{text}s\"", show(v)))
        }
        Err(e) => Err(format!(
            "{} is not a duration ({e}); use a number with a unit, e.g. \"30s\", \"5m\", \"2h\"",
            show(v)
        )),
    }
}

/// A 6-field cron schedule.
pub(crate) fn schedule(v: &Value) -> Result<Schedule, String> {
    Schedule::parse(&string(v)?)
}

/// An `ip:port` socket address.
pub(crate) fn socket_addr(v: &Value) -> Result<SocketAddr, String> {
    let s = string(v)?;
    s.trim().parse::<SocketAddr>().map_err(|_| {
        format!("{} is not an ip:port address; e.g. \"127.0.0.1:9847\" or \"[::1]:9847\"", show(v))
    })
}

/// An `http`/`https` URL with a host and no query or fragment.
pub(crate) fn base_url(v: &Value) -> Result<url::Url, String> {
    let s = string(v)?;
    let url = url::Url::parse(s.trim()).map_err(|e| {
        format!("{} is not a URL ({e}); expected e.g. \"https://api.example.com\"", show(v))
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("{} must start with https:// (or http:// for a local test)", show(v)));
    }
    if url.host().is_none() {
        return Err(format!("{} has no host", show(v)));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!("{} must not have a query or fragment; give only the host", show(v)));
    }
    Ok(url)
}

/// A filesystem path.
pub(crate) fn path(v: &Value) -> Result<PathBuf, String> {
    Ok(PathBuf::from(non_empty(v).map_err(|_| format!("expected a file path, got {}", show(v)))?))
}

/// The absolute path of a secret file. A value that is not an absolute path is never echoed:
/// an operator who pasted the key itself into `*_file` must not see it in logs.
pub(crate) fn secret_path(v: &Value) -> Result<PathBuf, String> {
    match &v.kind {
        ValueKind::String(s) if Path::new(s.trim()).is_absolute() => Ok(PathBuf::from(s.trim())),
        _ => Err("must be the absolute path of the file holding the secret, e.g. \
                  \"/etc/mpsync/mailprotector-api-key\" (the value is not shown, in case it is \
                  the secret itself)"
            .into()),
    }
}

/// A tracing filter ("info", "warn,mpsync=debug"), checked to parse.
pub(crate) fn log_filter(text: &str) -> Result<String, String> {
    let t = text.trim();
    if t.is_empty() {
        return Err(
            "is empty; use a level such as \"info\" or a filter like \"warn,mpsync=debug\"".into(),
        );
    }
    tracing_subscriber::EnvFilter::builder().parse(t).map(|_| t.to_string()).map_err(|e| {
        format!(
            "{t:?} is not a valid log filter ({e}); use a level (error, warn, info, debug, trace) \
             or target=level pairs, e.g. \"warn,mpsync=debug\""
        )
    })
}

/// Formats a duration the way the config file writes it, with the largest exact unit.
pub(crate) fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 {
        return "0s".into();
    }
    if !d.subsec_nanos().is_multiple_of(1_000_000) {
        return humantime::format_duration(d).to_string();
    }
    // Days only from two days up, so "24h" stays "24h" as the example file writes it.
    for (unit, size) in [("d", 86_400_000u128), ("h", 3_600_000), ("m", 60_000), ("s", 1_000)] {
        if ms.is_multiple_of(size) && (unit != "d" || ms >= 2 * size) {
            return format!("{}{unit}", ms / size);
        }
    }
    format!("{ms}ms")
}

/// A string that must be exactly one of `allowed` (case-sensitive, as the receiving API
/// checks it); the error names the closest allowed value, or lists them all when few.
pub(crate) fn one_of(v: &Value, allowed: &[&str]) -> Result<String, String> {
    let given = string(v)?;
    if allowed.contains(&given.as_str()) {
        return Ok(given);
    }
    let lower = given.to_lowercase();
    let near = allowed.iter().find(|a| a.to_lowercase() == lower).or_else(|| {
        allowed
            .iter()
            .filter(|a| edit_distance(&lower, &a.to_lowercase()) <= 3)
            .min_by_key(|a| edit_distance(&lower, &a.to_lowercase()))
    });
    Err(match near {
        Some(a) => {
            format!("{} is not an allowed value (case matters); did you mean {a:?}?", show(v))
        }
        None if allowed.len() <= 10 => {
            format!("{} is not an allowed value; use one of: {}", show(v), allowed.join(", "))
        }
        None => format!(
            "{} is not an allowed value; see the list in the README (Gradient service categories)",
            show(v)
        ),
    })
}

/// Edit distance, for "did you mean" suggestions on unknown keys.
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(text: &str) -> Value {
        Value::new(None, ValueKind::String(text.into()))
    }
    /// Text from an environment variable or a flag.
    fn env(text: &str) -> Value {
        tag_source(s(text), "ignored", true)
    }
    /// Text written in quotes in the file under `key`.
    fn quoted(key: &str, text: &str) -> Value {
        tag_source(s(text), key, false)
    }
    fn i(n: i64) -> Value {
        Value::new(None, ValueKind::I64(n))
    }

    #[test]
    fn durations_need_a_unit() {
        assert_eq!(duration(&s("30s"), false).unwrap(), Duration::from_secs(30));
        assert_eq!(duration(&s("400d"), false).unwrap(), Duration::from_secs(400 * 86_400));
        let e = duration(&s("30"), false).unwrap_err();
        assert_eq!(e, "\"30\" is not a duration; use a unit, e.g. \"30s\"");
        let e = duration(&i(30), false).unwrap_err();
        assert!(e.contains("use a string with a unit, e.g. \"30s\""), "{e}");
        assert!(duration(&s("soon"), false).unwrap_err().contains("\"5m\""));
        assert!(duration(&s("0s"), false).unwrap_err().contains("greater than 0"));
        assert_eq!(duration(&s("0s"), true).unwrap(), Duration::ZERO);
    }

    #[test]
    fn numbers_and_booleans_arrive_as_text_from_the_environment() {
        assert_eq!(whole(&env("188"), 1).unwrap(), 188);
        assert_eq!(whole(&env(" 188 "), 1).unwrap(), 188);
        assert_eq!(whole(&i(4), 1).unwrap(), 4);
        assert!(whole(&i(0), 1).unwrap_err().contains("≥ 1"));
        assert!(whole(&env("0"), 1).unwrap_err().contains("≥ 1"));
        assert!(whole(&env("four"), 1).unwrap_err().contains("\"four\""));
        assert!(whole(&i(-3), 0).is_err());
        assert!(boolean(&env("TRUE")).unwrap());
        assert!(boolean(&env("yes")).unwrap_err().contains("true or false"));
        assert_eq!(positive(&env("2.5")).unwrap(), 2.5);
        assert_eq!(positive(&i(5)).unwrap(), 5.0);
        assert!(positive(&env("0")).is_err());
        assert!(positive(&env("NaN")).is_err());
        assert!(positive(&env("1e-30")).unwrap_err().contains("too small"));
        assert!(whole_u32(&i(i64::from(u32::MAX) + 1), 1).is_err());
        assert_eq!(whole_u32(&env("7"), 1).unwrap(), 7);
    }

    #[test]
    fn a_quoted_number_or_boolean_in_the_file_is_refused_with_the_fix() {
        assert_eq!(
            whole(&quoted("reseller_id", "188"), 1).unwrap_err(),
            "\"188\" is in quotes, so the file gives it as text; write it without quotes: \
             reseller_id = 188"
        );
        assert!(whole_u32(&quoted("burst", "5"), 1).unwrap_err().ends_with("burst = 5"));
        assert!(positive(&quoted("rate_limit", "2.5")).unwrap_err().ends_with("rate_limit = 2.5"));
        assert!(boolean(&quoted("enabled", "true")).unwrap_err().ends_with("enabled = true"));
        // Text that is not a number at all keeps the plain message (no bogus fix).
        let e = whole(&quoted("reseller_id", "seven"), 1).unwrap_err();
        assert_eq!(e, "\"seven\" is not a whole number ≥ 1");
        assert!(boolean(&quoted("enabled", "yes")).unwrap_err().contains("true or false"));
        // A value of unknown origin is held to the file's rule.
        assert!(whole(&s("188"), 1).unwrap_err().contains("without quotes: 188"));
    }

    #[test]
    fn addresses_and_urls() {
        assert!(socket_addr(&s("127.0.0.1:9847")).is_ok());
        assert!(socket_addr(&s("localhost:9847")).unwrap_err().contains("ip:port"));
        assert!(base_url(&s("https://emailservice.io")).is_ok());
        assert!(base_url(&s("ftp://x.example")).unwrap_err().contains("https://"));
        assert!(base_url(&s("https://x.example/?a=1")).unwrap_err().contains("query"));
        assert!(base_url(&s("not a url")).unwrap_err().contains("not a URL"));
    }

    #[test]
    fn secret_paths_must_be_absolute_and_are_never_echoed() {
        assert_eq!(secret_path(&s("/etc/k")).unwrap(), PathBuf::from("/etc/k"));
        let e = secret_path(&s("sk_live_0123456789")).unwrap_err();
        assert!(e.contains("absolute path") && !e.contains("sk_live"), "{e}");
        assert!(secret_path(&i(5)).is_err());
    }

    #[test]
    fn log_filters_are_checked() {
        assert_eq!(log_filter("info").unwrap(), "info");
        assert!(log_filter("warn,mpsync=debug").is_ok());
        assert!(log_filter("mpsync=loud").unwrap_err().contains("not a valid log filter"));
        assert!(log_filter("  ").is_err());
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

    #[test]
    fn edit_distance_counts_single_edits() {
        assert_eq!(edit_distance("listne", "listen"), 2);
        assert_eq!(edit_distance("lisen", "listen"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// What `mpsync config` prints for a duration parses back to the same duration.
        #[test]
        fn printed_durations_parse_back(ms in 1u64..100_000_000_000) {
            let d = Duration::from_millis(ms);
            let text = format_duration(d);
            let v = Value::new(None, ValueKind::String(text.clone()));
            prop_assert_eq!(duration(&v, false).unwrap(), d, "{}", text);
        }

        /// Any text either parses as a duration or yields a message naming the value.
        #[test]
        fn duration_errors_quote_the_value(text in "[a-z0-9 ]{0,12}") {
            let v = Value::new(None, ValueKind::String(text.clone()));
            if let Err(e) = duration(&v, true) {
                prop_assert!(e.contains(&format!("{text:?}")) || text.trim().is_empty(), "{}", e);
            }
        }

        #[test]
        fn edit_distance_is_symmetric(a in "[a-z_]{0,10}", b in "[a-z_]{0,10}") {
            prop_assert_eq!(edit_distance(&a, &b), edit_distance(&b, &a));
        }
    }
}
