//! Leaf values of the schema. Each reader is a serde `deserialize_with` function for an
//! `Option` field: it captures the value as given ([`Raw`]) and turns it into a typed value,
//! or into a message that shows what was found and what is expected.
//!
//! Numbers and booleans ask the deserializer for their type, which applies the one typing rule
//! by where the value came from (see `de`); the readers here only see a number, a boolean, or
//! text that is not one.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};

use super::schedule::Schedule;
use super::types::{AdjustmentEffective, LogFormat, NotifyKindName, SmtpTls};
use crate::config::Invalid;
use crate::model::event_kind::EventKind;
use crate::model::status::Status;
use crate::model::user_types::CountedTypes;

/// A value as given, before it is judged.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Raw {
    /// The key is not set (a reader gives `None`).
    Absent,
    Empty,
    Bool(bool),
    Int(i128),
    Float(f64),
    Text(String),
    Table,
    List(Vec<Raw>),
}

impl Raw {
    /// How the value is shown in a message: text quoted, numbers as written, containers by
    /// kind. Only ever called for non-secret keys (secrets are never values, only paths).
    pub(crate) fn show(&self) -> String {
        match self {
            Raw::Absent => "nothing".into(),
            Raw::Empty => "an empty value".into(),
            Raw::Bool(b) => b.to_string(),
            Raw::Int(n) => n.to_string(),
            Raw::Float(f) => f.to_string(),
            Raw::Text(s) => format!("{s:?}"),
            Raw::Table => "a table".into(),
            Raw::List(_) => "an array".into(),
        }
    }
}

/// Captures any value as a [`Raw`].
struct Capture;

/// `fn visit_x<E>(self, v: T) -> Result<Raw, E> { Ok(raw) }` for each listed `visit_x`.
macro_rules! capture {
    ($($visit:ident($($v:ident: $t:ty)?) => $raw:expr;)*) => {$(
        fn $visit<E>(self, $($v: $t)?) -> Result<Raw, E> {
            Ok($raw)
        }
    )*};
}

impl<'de> Visitor<'de> for Capture {
    type Value = Raw;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any value")
    }

    capture! {
        visit_none() => Raw::Absent;
        visit_unit() => Raw::Empty;
        visit_bool(b: bool) => Raw::Bool(b);
        visit_i64(n: i64) => Raw::Int(n.into());
        visit_i128(n: i128) => Raw::Int(n);
        visit_u64(n: u64) => Raw::Int(n.into());
        visit_u128(n: u128) => i128::try_from(n).map_or(Raw::Float(n as f64), Raw::Int);
        visit_f64(f: f64) => Raw::Float(f);
        visit_str(s: &str) => Raw::Text(s.to_owned());
        visit_string(s: String) => Raw::Text(s);
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Raw, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Raw>()? {
            items.push(item);
        }
        Ok(Raw::List(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Raw, A::Error> {
        while map.next_entry::<de::IgnoredAny, de::IgnoredAny>()?.is_some() {}
        Ok(Raw::Table)
    }
}

impl<'de> serde::Deserialize<'de> for Raw {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Raw, D::Error> {
        d.deserialize_any(Capture)
    }
}

/// An optional leaf judged: absent stays `None`, a given value becomes `T` or the message.
fn judged<T, E: de::Error>(
    raw: Result<Raw, E>,
    judge: impl FnOnce(&Raw) -> Result<T, Invalid>,
) -> Result<Option<T>, E> {
    match raw? {
        Raw::Absent => Ok(None),
        v => judge(&v).map(Some).map_err(E::custom),
    }
}

/// Reads an optional leaf of any type and judges it.
pub(crate) fn leaf<'de, D: Deserializer<'de>, T>(
    d: D,
    judge: impl FnOnce(&Raw) -> Result<T, Invalid>,
) -> Result<Option<T>, D::Error> {
    judged(d.deserialize_any(Capture), judge)
}

/// Defines `deserialize_with` readers: `name: Type = deserialize_x, judge;`, where
/// `deserialize_x` asks for the type (a number or boolean the environment gives as text is
/// read as that type; see `de`).
macro_rules! readers {
    ($($(#[$doc:meta])* $name:ident: $t:ty = $ask:ident, $judge:expr;)*) => {$(
        $(#[$doc])*
        pub(crate) fn $name<'de, D: Deserializer<'de>>(d: D) -> Result<Option<$t>, D::Error> {
            judged(d.$ask(Capture), $judge)
        }
    )*};
}

readers! {
    /// A non-empty text.
    text: String = deserialize_any, non_empty;
    /// `true`/`false`.
    flag: bool = deserialize_bool, boolean;
    /// A whole number ≥ 1.
    whole: u64 = deserialize_u64, |v| whole_min(v, 1);
    /// A whole number ≥ 1 that fits `u32`.
    whole_u32: u32 = deserialize_u64, |v| {
        let n = whole_min(v, 1)?;
        u32::try_from(n).map_err(|_| Invalid(format!("{n} is too large; expected at most {}", u32::MAX)))
    };
    /// Changes one write-back apply may make: 1 to [`MAX_CHANGES_PER_APPLY`].
    changes_per_apply: u32 = deserialize_u64, |v| match whole_min(v, 1)? {
        n if n > MAX_CHANGES_PER_APPLY => Err(Invalid(format!(
            "{n} is too many; use at most {MAX_CHANGES_PER_APPLY} (a bigger correction is applied \
             in several runs of `mpsync apply`)"
        ))),
        n => Ok(n as u32),
    };
    /// Requests in flight at once: 1 to [`MAX_IN_FLIGHT`].
    in_flight: usize = deserialize_u64, |v| match whole_min(v, 1)? {
        // A semaphore has a permit ceiling, and no upstream wants thousands at once.
        n if n > MAX_IN_FLIGHT => Err(Invalid(format!("{n} is too many; use at most {MAX_IN_FLIGHT}"))),
        n => Ok(n as usize),
    };
    /// A request rate (see [`positive`]).
    rate: f64 = deserialize_f64, positive;
    /// A duration greater than zero.
    duration: Duration = deserialize_any, |v| duration_of(v, false);
    /// A duration, zero allowed.
    duration_or_zero: Duration = deserialize_any, |v| duration_of(v, true);
    /// A 6-field cron schedule.
    schedule: Schedule = deserialize_any, |v| Schedule::parse(&string(v)?);
    /// An `ip:port` address.
    socket_addr: SocketAddr = deserialize_any, socket_addr_of;
    /// An `http(s)` URL of a host.
    base_url: url::Url = deserialize_any, base_url_of;
    /// A filesystem path.
    path: PathBuf = deserialize_any, path_of;
    /// The absolute path of a secret file.
    secret_path: PathBuf = deserialize_any, secret_path_of;
    /// A tracing filter.
    log_filter: String = deserialize_any, |v| log_filter_of(&string(v)?);
    /// `"text"` or `"json"`.
    log_format: LogFormat = deserialize_any, |v| match string(v)?.trim() {
        "text" => Ok(LogFormat::Text),
        "json" => Ok(LogFormat::Json),
        _ => Err(Invalid(format!("{} is not a log format; use \"text\" or \"json\"", v.show()))),
    };
    /// `billing.autotask.adjustment_effective`.
    adjustment_effective: AdjustmentEffective = deserialize_any, |v| match string(v)?.trim() {
        "next_period" => Ok(AdjustmentEffective::NextPeriod),
        "today" => Ok(AdjustmentEffective::Today),
        _ => Err(Invalid(format!(
            "{} is not an effective-date policy; use \"next_period\" (the first day of the next \
             billing period) or \"today\" (for contracts that prorate)",
            v.show()
        ))),
    };
    /// `billing.source`.
    billing_source: SourceKind = deserialize_any, |v| match string(v)?.trim() {
        "none" => Ok(SourceKind::None),
        "connectwise" => Ok(SourceKind::Connectwise),
        "autotask" => Ok(SourceKind::Autotask),
        "halopsa" => Ok(SourceKind::Halopsa),
        "csv" => Ok(SourceKind::Csv),
        _ => Err(Invalid(format!(
            "{} is not a billing source; use \"connectwise\", \"autotask\", \"halopsa\", \"csv\" or \"none\"",
            v.show()
        ))),
    };
    /// `billing.halopsa.scope`: space-separated OAuth scopes such as `read:invoices`.
    halo_scope: String = deserialize_any, halo_scope_of;
    /// `count_user_types`: a non-empty list of user type names or ids.
    user_types: CountedTypes = deserialize_any, user_type_list;
    /// A non-empty list of product names.
    products: Vec<String> = deserialize_any, product_list;
    /// One of Gradient's service categories.
    category: String = deserialize_any, |v| one_of(v, &crate::model::gradient_categories::CATEGORIES);
    /// A `[[notify]]` channel name: letters, digits, `-` and `_` (it names a credential
    /// file, a health check and a metric label).
    channel_name: String = deserialize_any, channel_name_of;
    /// `notify.kind`.
    notify_kind: NotifyKindName = deserialize_any, |v| match string(v)?.trim() {
        "webhook" => Ok(NotifyKindName::Webhook),
        "teams" => Ok(NotifyKindName::Teams),
        "slack" => Ok(NotifyKindName::Slack),
        "email" => Ok(NotifyKindName::Email),
        _ => Err(Invalid(format!(
            "{} is not a notification kind; use \"webhook\", \"teams\", \"slack\" or \"email\"",
            v.show()
        ))),
    };
    /// `notify.tls`.
    smtp_tls: SmtpTls = deserialize_any, |v| match string(v)?.trim() {
        "starttls" => Ok(SmtpTls::Starttls),
        "tls" => Ok(SmtpTls::Tls),
        "none" => Ok(SmtpTls::None),
        _ => Err(Invalid(format!(
            "{} is not a TLS mode; use \"starttls\" (port 587), \"tls\" (implicit TLS, port \
             465) or \"none\" (a relay on this host only)",
            v.show()
        ))),
    };
    /// A TCP port, 1 to 65535.
    port: u16 = deserialize_u64, |v| {
        let n = whole_min(v, 1)?;
        u16::try_from(n).map_err(|_| Invalid(format!("{n} is not a port; use 1 to 65535")))
    };
    /// An amount of money ≥ 0.
    amount: f64 = deserialize_f64, |v| match v {
        Raw::Float(f) if f.is_finite() && *f >= 0.0 => Ok(*f),
        Raw::Int(n) if *n >= 0 => Ok(*n as f64),
        _ => Err(Invalid(format!("{} is not an amount ≥ 0, e.g. 50.0", v.show()))),
    };
    /// A non-empty list of non-empty texts.
    texts: Vec<String> = deserialize_any, |v| non_empty_list(v, "values such as [\"a\"]");
    /// A non-empty list of event kind names.
    event_kinds: Vec<EventKind> = deserialize_any, |v| named_list(v, EventKind::parse, &EventKind::ALL.map(EventKind::as_str));
    /// A non-empty list of reconciliation status names.
    statuses: Vec<Status> = deserialize_any, |v| named_list(v, Status::parse, &Status::ALL.map(Status::as_str));
    /// One of Gradient's service subcategories.
    subcategory: String = deserialize_any, |v| one_of(v, &crate::model::gradient_categories::SUBCATEGORIES);
}

/// The billing source chosen by `billing.source`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SourceKind {
    None,
    Connectwise,
    Autotask,
    Halopsa,
    Csv,
}

/// The largest `[write_back] max_changes_per_apply` accepted.
const MAX_CHANGES_PER_APPLY: u64 = 10_000;

/// The most requests in flight at once that the config accepts.
const MAX_IN_FLIGHT: u64 = 1000;

/// The smallest request rate accepted, in requests per second.
const MIN_RATE: f64 = 0.001;

/// A text value.
pub(crate) fn string(v: &Raw) -> Result<String, Invalid> {
    match v {
        Raw::Text(s) => Ok(s.clone()),
        _ => Err(Invalid(format!("expected a string in quotes, got {}", v.show()))),
    }
}

/// A non-empty text value, trimmed.
pub(crate) fn non_empty(v: &Raw) -> Result<String, Invalid> {
    let s = string(v)?;
    if s.trim().is_empty() {
        return Err("is empty; expected a non-empty string".into());
    }
    Ok(s.trim().to_string())
}

fn boolean(v: &Raw) -> Result<bool, Invalid> {
    match v {
        Raw::Bool(b) => Ok(*b),
        _ => Err(Invalid(format!("{} is not a boolean; use true or false", v.show()))),
    }
}

/// A whole number at least `min` (and, as TOML writes integers, at most `i64::MAX`).
fn whole_min(v: &Raw, min: u64) -> Result<u64, Invalid> {
    match v {
        Raw::Int(n) if *n > i128::from(i64::MAX) => {
            Err(Invalid(format!("{n} is too large; expected at most {}", i64::MAX)))
        }
        Raw::Int(n) if *n >= i128::from(min) => Ok(*n as u64),
        _ => Err(Invalid(format!("{} is not a whole number ≥ {min}", v.show()))),
    }
}

/// A request rate: a number greater than zero (integers accepted), at least [`MIN_RATE`].
fn positive(v: &Raw) -> Result<f64, Invalid> {
    let n = match v {
        Raw::Float(f) => Some(*f),
        Raw::Int(n) => Some(*n as f64),
        _ => None,
    };
    match n {
        // Below one request per 1000 s the limiter's period stops making sense (and a
        // vanishing rate would overflow it); no upstream wants that.
        Some(n) if n.is_finite() && n > 0.0 && n < MIN_RATE => Err(Invalid(format!(
            "{} is too small; use at least {MIN_RATE} requests per second",
            v.show()
        ))),
        Some(n) if n.is_finite() && n > 0.0 => Ok(n),
        _ => Err(Invalid(format!("{} is not a number greater than 0, e.g. 5.0", v.show()))),
    }
}

/// A duration with a unit ("30s", "5m", "2h", "30d"); `allow_zero` admits "0s".
fn duration_of(v: &Raw, allow_zero: bool) -> Result<Duration, Invalid> {
    let text = match v {
        Raw::Text(s) => s.trim(),
        Raw::Int(_) | Raw::Float(_) => {
            return Err(Invalid(format!(
                "{} is not a duration; use a string with a unit, e.g. \"{}s\"",
                v.show(),
                v.show()
            )));
        }
        _ => {
            return Err(Invalid(format!(
                "expected a duration with a unit, e.g. \"30s\", got {}",
                v.show()
            )));
        }
    };
    match humantime::parse_duration(text) {
        Ok(d) if d.is_zero() && !allow_zero => {
            Err(Invalid(format!("{} must be greater than 0, e.g. \"30s\"", v.show())))
        }
        Ok(d) => Ok(d),
        Err(_) if !text.is_empty() && text.chars().all(|c| c.is_ascii_digit()) => {
            Err(Invalid(format!("{} is not a duration; use a unit, e.g. \"{text}s\"", v.show())))
        }
        Err(e) => Err(Invalid(format!(
            "{} is not a duration ({e}); use a number with a unit, e.g. \"30s\", \"5m\", \"2h\"",
            v.show()
        ))),
    }
}

fn socket_addr_of(v: &Raw) -> Result<SocketAddr, Invalid> {
    string(v)?.trim().parse::<SocketAddr>().map_err(|_| {
        Invalid(format!(
            "{} is not an ip:port address; e.g. \"127.0.0.1:9847\" or \"[::1]:9847\"",
            v.show()
        ))
    })
}

/// An `http`/`https` URL with a host and no query or fragment.
fn base_url_of(v: &Raw) -> Result<url::Url, Invalid> {
    let url = url::Url::parse(string(v)?.trim()).map_err(|e| {
        Invalid(format!(
            "{} is not a URL ({e}); expected e.g. \"https://api.example.com\"",
            v.show()
        ))
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Invalid(format!(
            "{} must start with https:// (or http:// for a local test)",
            v.show()
        )));
    }
    if url.host().is_none() {
        return Err(Invalid(format!("{} has no host", v.show())));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(Invalid(format!(
            "{} must not have a query or fragment; give only the host",
            v.show()
        )));
    }
    Ok(url)
}

/// Space-separated scope names (`read:customers edit:invoices`, `all`), each of letters,
/// digits, `:`, `_`, `-` and `.`; normalised to single spaces.
fn halo_scope_of(v: &Raw) -> Result<String, Invalid> {
    let s = non_empty(v)?;
    let words: Vec<&str> = s.split_whitespace().collect();
    if let Some(bad) = words.iter().find(|w| {
        !w.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, ':' | '_' | '-' | '.'))
    }) {
        return Err(Invalid(format!(
            "{bad:?} is not a scope name; list scopes separated by spaces, e.g. \"read:customers \
             read:contracts read:items read:invoices\""
        )));
    }
    Ok(words.join(" "))
}

fn path_of(v: &Raw) -> Result<PathBuf, Invalid> {
    Ok(PathBuf::from(
        non_empty(v).map_err(|_| Invalid(format!("expected a file path, got {}", v.show())))?,
    ))
}

/// The absolute path of a secret file. A value that is not an absolute path is never echoed:
/// an operator who pasted the key itself into `*_file` must not see it in logs.
fn secret_path_of(v: &Raw) -> Result<PathBuf, Invalid> {
    match v {
        Raw::Text(s) if Path::new(s.trim()).is_absolute() => Ok(PathBuf::from(s.trim())),
        _ => Err("must be the absolute path of the file holding the secret, e.g. \
                  \"/etc/mpsync/mailprotector-api-key\" (the value is not shown, in case it is \
                  the secret itself)"
            .into()),
    }
}

/// A tracing filter ("info", "warn,mpsync=debug"), checked to parse.
pub(crate) fn log_filter_of(text: &str) -> Result<String, Invalid> {
    let t = text.trim();
    if t.is_empty() {
        return Err(
            "is empty; use a level such as \"info\" or a filter like \"warn,mpsync=debug\"".into(),
        );
    }
    tracing_subscriber::EnvFilter::builder().parse(t).map(|_| t.to_string()).map_err(|e| {
        Invalid(format!(
            "{t:?} is not a valid log filter ({e}); use a level (error, warn, info, debug, trace) \
             or target=level pairs, e.g. \"warn,mpsync=debug\""
        ))
    })
}

/// A string that must be exactly one of `allowed` (case-sensitive, as the receiving API
/// checks it); the error names the closest allowed value, or lists them all when few.
fn one_of(v: &Raw, allowed: &[&str]) -> Result<String, Invalid> {
    let given = string(v)?;
    if allowed.contains(&given.as_str()) {
        return Ok(given);
    }
    let lower = given.to_lowercase();
    let distance = |a: &&&str| strsim::levenshtein(&lower, &a.to_lowercase());
    let near = allowed
        .iter()
        .find(|a| a.to_lowercase() == lower)
        .or_else(|| allowed.iter().filter(|a| distance(a) <= 3).min_by_key(distance));
    Err(Invalid(match near {
        Some(a) => {
            format!("{} is not an allowed value (case matters); did you mean {a:?}?", v.show())
        }
        None if allowed.len() <= 10 => {
            format!("{} is not an allowed value; use one of: {}", v.show(), allowed.join(", "))
        }
        None => format!(
            "{} is not an allowed value; see the list in the README (Gradient service categories)",
            v.show()
        ),
    }))
}

fn user_type_list(v: &Raw) -> Result<CountedTypes, Invalid> {
    let Raw::List(items) = v else {
        return Err(Invalid(format!(
            "expected a list of user types such as [\"user\"], got {}",
            v.show()
        )));
    };
    let mut ids = Vec::new();
    for item in items {
        let entry = match whole_min(item, 0) {
            Ok(id) => id.to_string(),
            Err(_) => non_empty(item)?,
        };
        ids.push(CountedTypes::parse_entry(&entry).map_err(|e| Invalid(e.to_string()))?);
    }
    CountedTypes::new(ids).ok_or_else(|| {
        "is empty; list at least one user type, e.g. [\"user\"] (nobody would be counted)".into()
    })
}

fn channel_name_of(v: &Raw) -> Result<String, Invalid> {
    let s = non_empty(v)?;
    if s.len() > 64 || !s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        return Err(Invalid(format!(
            "{} is not a channel name; use at most 64 letters, digits, '-' and '_' (it names \
             the credential notify-<name>-url and the health check notify:<name>)",
            v.show()
        )));
    }
    Ok(s)
}

/// A non-empty list of non-empty texts (`what` shows the expected form).
fn non_empty_list(v: &Raw, what: &str) -> Result<Vec<String>, Invalid> {
    let Raw::List(items) = v else {
        return Err(Invalid(format!("expected a list of {what}, got {}", v.show())));
    };
    let out: Vec<String> = items.iter().map(non_empty).collect::<Result<_, _>>()?;
    if out.is_empty() {
        return Err("is empty; list at least one, or leave the key out".into());
    }
    Ok(out)
}

/// A non-empty list of names, each one of `allowed` (read by `parse`).
fn named_list<T>(
    v: &Raw,
    parse: fn(&str) -> Option<T>,
    allowed: &[&str],
) -> Result<Vec<T>, Invalid> {
    let names = non_empty_list(v, &format!("names such as [\"{}\"]", allowed[0]))?;
    names
        .iter()
        .map(|n| {
            parse(n).ok_or_else(|| Invalid(format!("{n:?} is not one of: {}", allowed.join(", "))))
        })
        .collect()
}

fn product_list(v: &Raw) -> Result<Vec<String>, Invalid> {
    let Raw::List(items) = v else {
        return Err(Invalid(format!("expected a list of product names, got {}", v.show())));
    };
    let names: Vec<String> = items.iter().map(non_empty).collect::<Result<_, _>>()?;
    if names.is_empty() {
        return Err("is empty; list at least one product, e.g. [\"CloudFilter\"]".into());
    }
    Ok(names)
}

#[cfg(test)]
#[path = "leaf_tests.rs"]
mod tests;
