//! The validated layer: walk the merged tree section by section, apply defaults, parse every
//! leaf, read the secrets that the chosen sources need, and collect every problem at once.
//! The key lists here and config/mpsync.toml must stay in exact agreement (a test checks it).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use config::{Map, Value};

use super::fields::{self as f};
use super::secret::{SecretSource, read_secret};
use super::section::{Ctx, Section};
use super::*;

/// Top-level sections.
pub(crate) const SECTIONS: &[&str] =
    &["daemon", "store", "mailprotector", "billing", "gradient", "reconcile"];
const DAEMON: &[&str] = &[
    "listen",
    "allow_remote",
    "allowed_hosts",
    "access_token_file",
    "state_dir",
    "log",
    "log_format",
    "shutdown_grace",
];
const STORE: &[&str] = &["snapshot_retention", "history_retention"];
const MAILPROTECTOR: &[&str] = &[
    "base_url",
    "api_key_file",
    "reseller_id",
    "schedule",
    "rate_limit",
    "burst",
    "max_in_flight",
    "timeout",
    "connect_timeout",
    "services_refresh",
    "count_each_product",
    "count_user_types",
    "counts",
];
const COUNT: &[&str] = &["name", "any_of"];
const BILLING: &[&str] = &["source", "schedule", "connectwise", "csv"];
const CONNECTWISE: &[&str] = &[
    "base_url",
    "company_id",
    "public_key_file",
    "private_key_file",
    "client_id",
    "rate_limit",
    "burst",
    "max_in_flight",
    "timeout",
    "connect_timeout",
];
const CSV: &[&str] = &["path"];
const GRADIENT: &[&str] = &[
    "enabled",
    "base_url",
    "vendor_key_file",
    "partner_key_file",
    "schedule",
    "dry_run",
    "services",
    "rate_limit",
    "burst",
    "max_in_flight",
    "timeout",
    "connect_timeout",
];
const GRADIENT_SERVICE: &[&str] = &["category", "subcategory", "description"];
const RECONCILE: &[&str] = &["mapping_file", "max_age", "debounce_runs"];

/// Every known leaf key as a dotted path (tables of `[[mailprotector.counts]]` as one key).
#[cfg(test)]
pub(crate) fn known_keys() -> Vec<String> {
    let mut out = Vec::new();
    let mut add = |sec: &str, keys: &[&str], skip: &[&str]| {
        out.extend(keys.iter().filter(|k| !skip.contains(k)).map(|k| format!("{sec}.{k}")));
    };
    add("daemon", DAEMON, &[]);
    add("store", STORE, &[]);
    add("mailprotector", MAILPROTECTOR, &[]);
    add("billing", BILLING, &["connectwise", "csv"]);
    add("billing.connectwise", CONNECTWISE, &[]);
    add("billing.csv", CSV, &[]);
    add("gradient", GRADIENT, &[]);
    add("reconcile", RECONCILE, &[]);
    out
}

/// For a key written outside any section: the section(s) it belongs in.
fn section_of(key: &str) -> Option<String> {
    let schema: [(&str, &[&str]); 8] = [
        ("daemon", DAEMON),
        ("store", STORE),
        ("mailprotector", MAILPROTECTOR),
        ("billing", BILLING),
        ("billing.connectwise", CONNECTWISE),
        ("billing.csv", CSV),
        ("gradient", GRADIENT),
        ("reconcile", RECONCILE),
    ];
    let homes: Vec<String> = schema
        .iter()
        .filter(|(_, keys)| keys.contains(&key))
        .map(|(sec, _)| format!("[{sec}]"))
        .collect();
    (!homes.is_empty())
        .then(|| format!("keys go inside a section: put it under {}", homes.join(" or ")))
}

const DEFAULT_STATE_DIR: &str = "/var/lib/mpsync";
const DEFAULT_SCHEDULE_VENDOR: &str = "0 */30 * * * *";
const DEFAULT_SCHEDULE_BILLING: &str = "0 5 * * * *";
const DEFAULT_SCHEDULE_GRADIENT: &str = "0 0 6 * * *";

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn url(s: &str) -> url::Url {
    url::Url::parse(s).expect("built-in default URLs parse")
}

fn cron(s: &str) -> Schedule {
    Schedule::parse(s).expect("built-in default schedules parse")
}

/// Builds the validated config from the merged tree. Returns the config even when problems
/// were found (invalid values replaced by defaults); the caller decides by `ctx`'s problems.
pub(crate) fn validate(mut root: Map<String, Value>, ctx: &Ctx<'_>, source: PathBuf) -> Config {
    let daemon = daemon(top_sub(&mut root, ctx, "daemon", DAEMON));
    let store = store(top_sub(&mut root, ctx, "store", STORE));
    let mailprotector = mailprotector(top_sub(&mut root, ctx, "mailprotector", MAILPROTECTOR));
    let billing = billing(top_sub(&mut root, ctx, "billing", BILLING));
    let gradient = gradient(top_sub(&mut root, ctx, "gradient", GRADIENT), &mailprotector);
    let reconcile = reconcile(top_sub(&mut root, ctx, "reconcile", RECONCILE));
    // What is left at the top level is unknown; report it through a root section.
    Section::new(ctx, "", Some(Value::from(root)), SECTIONS).with_hint(section_of).finish();
    Config { source_path: Some(source), daemon, store, mailprotector, billing, gradient, reconcile }
}

fn top_sub<'c, 'e>(
    root: &mut Map<String, Value>,
    ctx: &'c Ctx<'e>,
    name: &str,
    known: &'static [&'static str],
) -> Section<'c, 'e> {
    Section::new(ctx, name, root.remove(name), known)
}

fn daemon(mut s: Section<'_, '_>) -> DaemonConfig {
    let ctx = s.ctx();
    let listen = s.or("listen", "127.0.0.1:9847".parse().expect("default address"), f::socket_addr);
    let (allow_remote, allowed_hosts, access_token) = http_access(&mut s, listen);
    let state_default = match ctx.env_var("STATE_DIRECTORY") {
        // systemd joins several StateDirectory= entries with ':'; ours is the first.
        Some(dirs) => {
            ctx.prov.borrow_mut().derive_default("daemon.state_dir", "STATE_DIRECTORY");
            PathBuf::from(dirs.split(':').next().unwrap_or(dirs))
        }
        None => PathBuf::from(DEFAULT_STATE_DIR),
    };
    let state_dir = s.or("state_dir", state_default, f::path);
    let mut log = s.or("log", "info".to_string(), |v| f::log_filter(&f::string(v)?));
    // RUST_LOG wins over daemon.log (file or MPSYNC_DAEMON__LOG), but not over --log.
    let from_cli = ctx.prov.borrow().origin("daemon.log") == super::raw::Origin::Cli;
    if let (false, Some(rust_log)) = (from_cli, ctx.env_var("RUST_LOG")) {
        match f::log_filter(rust_log) {
            Ok(filter) => {
                log = filter;
                ctx.prov.borrow_mut().derive_override("daemon.log", "RUST_LOG");
            }
            Err(msg) => ctx.problem("RUST_LOG", format!("{msg}; fix or unset RUST_LOG")),
        }
    }
    let log_format = s.or("log_format", LogFormat::Text, |v| match f::string(v)?.trim() {
        "text" => Ok(LogFormat::Text),
        "json" => Ok(LogFormat::Json),
        _ => Err(format!("{} is not a log format; use \"text\" or \"json\"", f::show(v))),
    });
    let shutdown_grace = s.or("shutdown_grace", secs(20), |v| f::duration(v, false));
    s.finish();
    DaemonConfig {
        listen,
        allow_remote,
        allowed_hosts,
        access_token,
        state_dir,
        log,
        log_format,
        shutdown_grace,
    }
}

/// The shortest access token accepted: guessing one must stay out of reach.
const MIN_TOKEN_CHARS: usize = 16;

/// `allow_remote`, `allowed_hosts` and the access token. A `listen` other hosts can reach is
/// refused unless `allow_remote` is on, and `allow_remote` needs a token: the endpoint serves
/// customer names and billing, and answers any web page that reaches it.
fn http_access(
    s: &mut Section<'_, '_>,
    listen: std::net::SocketAddr,
) -> (bool, Vec<String>, Option<Secret>) {
    let ctx = s.ctx();
    let allow_remote = s.or("allow_remote", false, f::boolean);
    let allowed_hosts = s.or("allowed_hosts", Vec::new(), super::hosts::allowed_hosts);
    let token = secret(
        s,
        "access_token_file",
        "mpsync-access-token",
        "with daemon.allow_remote = true, the access token of the HTTP endpoint",
        allow_remote,
    );
    let token = token.filter(|t| {
        let ok = t.expose().chars().count() >= MIN_TOKEN_CHARS
            && t.expose().bytes().all(|b| b.is_ascii_graphic());
        if !ok {
            ctx.problem(
                s.key("access_token_file"),
                format!(
                    "the token in {} is too weak or has spaces: use at least {MIN_TOKEN_CHARS} \
                     printable characters without spaces, e.g. `openssl rand -hex 32 > {}`",
                    t.origin(),
                    t.origin()
                ),
            );
        }
        ok
    });
    if super::hosts::is_remote(listen) && !allow_remote {
        let by = match ctx.prov.borrow().origin("daemon.listen") {
            super::raw::Origin::Env(var) => format!(" (set by environment variable {var})"),
            super::raw::Origin::Cli => " (set on the command line)".to_string(),
            _ => String::new(),
        };
        ctx.problem(
            "daemon.listen",
            format!(
                "{listen}{by} lets other hosts connect, and the endpoint serves customer names \
                 and billing to anyone who reaches it. Keep 127.0.0.1:{port} and reach it \
                 through an SSH tunnel or a reverse proxy with TLS and authentication, or set \
                 daemon.allow_remote = true with daemon.access_token_file (a token every request \
                 must send)",
                port = listen.port()
            ),
        );
    }
    (allow_remote, allowed_hosts, token)
}

fn store(mut s: Section<'_, '_>) -> StoreConfig {
    let snapshot_retention =
        s.or("snapshot_retention", secs(30 * 86_400), |v| f::duration(v, false));
    let history_retention =
        s.or("history_retention", secs(400 * 86_400), |v| f::duration(v, false));
    s.finish();
    StoreConfig { snapshot_retention, history_retention }
}

/// The most requests in flight at once that the config accepts.
const MAX_IN_FLIGHT: u64 = 1000;

/// Built-in limits of one upstream.
struct LimitDefaults {
    rate_limit: f64,
    burst: u32,
}

fn limits(s: &mut Section<'_, '_>, d: LimitDefaults) -> UpstreamLimits {
    UpstreamLimits {
        rate_limit: s.or("rate_limit", d.rate_limit, f::positive),
        burst: s.or("burst", d.burst, |v| f::whole_u32(v, 1)),
        max_in_flight: s.or("max_in_flight", 4, |v| match f::whole(v, 1)? {
            // A semaphore has a permit ceiling, and no upstream wants thousands of requests at once.
            n if n > MAX_IN_FLIGHT => Err(format!("{n} is too many; use at most {MAX_IN_FLIGHT}")),
            n => Ok(n as usize),
        }),
        timeout: s.or("timeout", secs(30), |v| f::duration(v, false)),
        connect_timeout: s.or("connect_timeout", secs(5), |v| f::duration(v, false)),
    }
}

/// Reads the secret named by `key_file` (or the systemd credential `credential`) when `needed`;
/// otherwise only checks the key's type. `what` names the secret for the operator.
fn secret(
    s: &mut Section<'_, '_>,
    key_file: &str,
    credential: &str,
    what: &str,
    needed: bool,
) -> Option<Secret> {
    let key = s.key(key_file);
    let given = s.table_has(key_file);
    let path = s.opt(key_file, f::secret_path);
    if !needed || (given && path.is_none()) {
        return None;
    }
    let ctx = s.ctx();
    let source = match (path, ctx.env_var("CREDENTIALS_DIRECTORY")) {
        (Some(p), _) => SecretSource::File(p),
        (None, Some(dir)) => SecretSource::Credential(PathBuf::from(dir).join(credential)),
        (None, None) => {
            ctx.problem(
                &key,
                format!(
                    "not set: {what} is needed; set {key} to a file holding it (chmod 600), or run \
                     under systemd with LoadCredential={credential}:/path/to/file"
                ),
            );
            return None;
        }
    };
    match read_secret(&key, &source) {
        Ok(secret) => Some(secret),
        Err(msg) => {
            ctx.problem(&key, msg);
            None
        }
    }
}

fn mailprotector(mut s: Section<'_, '_>) -> MailprotectorConfig {
    let base_url = s.or("base_url", url("https://emailservice.io"), f::base_url);
    let api_key =
        secret(&mut s, "api_key_file", "mailprotector-api-key", "the Mailprotector API key", true);
    let reseller_id = s.req(
        "reseller_id",
        0,
        "required: your Mailprotector reseller id, the number in the console URL of your reseller \
         overview (…/resellers/<id>); set reseller_id in [mailprotector]",
        |v| f::whole(v, 1),
    );
    let schedule = s.or("schedule", cron(DEFAULT_SCHEDULE_VENDOR), f::schedule);
    let limits = limits(&mut s, LimitDefaults { rate_limit: 5.0, burst: 5 });
    let services_refresh = s.or("services_refresh", secs(86_400), |v| f::duration(v, true));
    let count_each_product = s.or("count_each_product", true, f::boolean);
    let count_user_types = s.or("count_user_types", CountedTypes::default(), user_type_list);
    let mut counts: Vec<CountDefinition> = Vec::new();
    for mut c in s.tables("counts", COUNT) {
        let name = c.req(
            "name",
            String::new(),
            "required: the name the count is reported under",
            f::non_empty,
        );
        let any_of = c.req("any_of", Vec::new(), "required: the products that make a user group count, e.g. [\"CloudFilter\", \"Bracket\"]", product_list);
        if !name.is_empty() && counts.iter().any(|d| d.name == name) {
            c.ctx().problem(
                c.key("name"),
                format!("{name:?} is used by two counts; names must be unique"),
            );
        }
        c.finish();
        counts.push(CountDefinition { name, any_of });
    }
    s.finish();
    MailprotectorConfig {
        base_url,
        api_key: api_key.unwrap_or_else(|| Secret::new("", "(not loaded)")),
        reseller_id,
        schedule,
        limits,
        services_refresh,
        count_each_product,
        count_user_types,
        counts,
    }
}

/// `count_user_types`: a non-empty list of user type names or ids.
fn user_type_list(v: &Value) -> Result<CountedTypes, String> {
    let items = v.clone().into_array().map_err(|_| {
        format!("expected a list of user types such as [\"user\"], got {}", f::show(v))
    })?;
    let mut ids = Vec::new();
    for item in &items {
        let entry = match f::whole(item, 0) {
            Ok(id) => id.to_string(),
            Err(_) => f::non_empty(item)?,
        };
        ids.push(CountedTypes::parse_entry(&entry)?);
    }
    CountedTypes::new(ids).ok_or_else(|| {
        "is empty; list at least one user type, e.g. [\"user\"] (nobody would be counted)".into()
    })
}

fn product_list(v: &Value) -> Result<Vec<String>, String> {
    let items = v
        .clone()
        .into_array()
        .map_err(|_| format!("expected a list of product names, got {}", f::show(v)))?;
    let names: Vec<String> = items.iter().map(f::non_empty).collect::<Result<_, _>>()?;
    if names.is_empty() {
        return Err("is empty; list at least one product, e.g. [\"CloudFilter\"]".into());
    }
    Ok(names)
}

#[derive(PartialEq, Eq, Clone, Copy)]
enum SourceKind {
    None,
    Connectwise,
    Csv,
}

fn billing(mut s: Section<'_, '_>) -> BillingConfig {
    let kind = s.or("source", SourceKind::None, |v| match f::string(v)?.trim() {
        "none" => Ok(SourceKind::None),
        "connectwise" => Ok(SourceKind::Connectwise),
        "csv" => Ok(SourceKind::Csv),
        _ => Err(format!(
            "{} is not a billing source; use \"connectwise\", \"csv\" or \"none\"",
            f::show(v)
        )),
    });
    let schedule = s.or("schedule", cron(DEFAULT_SCHEDULE_BILLING), f::schedule);
    let cw = connectwise(s.sub("connectwise", CONNECTWISE), kind == SourceKind::Connectwise);
    let mut csv = s.sub("csv", CSV);
    let path = if kind == SourceKind::Csv {
        Some(csv.req(
            "path",
            PathBuf::new(),
            "required when billing.source = \"csv\": the CSV export of billed lines",
            f::path,
        ))
    } else {
        csv.opt("path", f::path)
    };
    csv.finish();
    s.finish();
    let source = match kind {
        SourceKind::None => BillingSource::None,
        SourceKind::Connectwise => BillingSource::Connectwise(Box::new(cw)),
        SourceKind::Csv => BillingSource::Csv(CsvConfig { path: path.unwrap_or_default() }),
    };
    BillingConfig { source, schedule }
}

fn connectwise(mut s: Section<'_, '_>, used: bool) -> ConnectwiseConfig {
    let base_url = s.or("base_url", url("https://api-na.myconnectwise.net"), f::base_url);
    let text = |s: &mut Section<'_, '_>, key: &str, what: &str| {
        if used {
            let msg = format!("required when billing.source = \"connectwise\": {what}");
            s.req(key, String::new(), &msg, f::non_empty)
        } else {
            s.opt(key, f::non_empty).unwrap_or_default()
        }
    };
    let company_id = text(&mut s, "company_id", "your ConnectWise company (login) id");
    let client_id =
        text(&mut s, "client_id", "the integration's clientId GUID from developer.connectwise.com");
    let public_key = secret(
        &mut s,
        "public_key_file",
        "connectwise-public-key",
        "the API member's public key",
        used,
    );
    let private_key = secret(
        &mut s,
        "private_key_file",
        "connectwise-private-key",
        "the API member's private key",
        used,
    );
    let limits = limits(&mut s, LimitDefaults { rate_limit: 10.0, burst: 10 });
    s.finish();
    let unloaded = || Secret::new("", "(not loaded)");
    ConnectwiseConfig {
        base_url,
        company_id,
        public_key: public_key.unwrap_or_else(unloaded),
        private_key: private_key.unwrap_or_else(unloaded),
        client_id,
        limits,
    }
}

fn gradient(mut s: Section<'_, '_>, mp: &MailprotectorConfig) -> GradientConfig {
    let enabled = s.or("enabled", false, f::boolean);
    let base_url = s.or("base_url", url("https://app.usegradient.com"), f::base_url);
    let vendor_key = secret(
        &mut s,
        "vendor_key_file",
        "gradient-vendor-key",
        "the Gradient vendor API key",
        enabled,
    );
    let partner_key = secret(
        &mut s,
        "partner_key_file",
        "gradient-partner-key",
        "the Gradient partner API key",
        enabled,
    );
    let schedule = s.or("schedule", cron(DEFAULT_SCHEDULE_GRADIENT), f::schedule);
    let dry_run = s.or("dry_run", false, f::boolean);
    let limits = limits(&mut s, LimitDefaults { rate_limit: 20.0, burst: 20 });
    let services = gradient_services(&mut s, mp);
    s.finish();
    GradientConfig {
        enabled,
        base_url,
        vendor_key,
        partner_key,
        schedule,
        dry_run,
        limits,
        services,
    }
}

/// `[gradient.services.<name>]`: category and subcategory checked against Gradient's enums
/// (case-sensitive, as the API checks them); a product name in the wrong case is refused,
/// because the override would silently never apply.
fn gradient_services(
    s: &mut Section<'_, '_>,
    mp: &MailprotectorConfig,
) -> BTreeMap<String, GradientService> {
    use crate::gradient::{CATEGORIES, SUBCATEGORIES};
    let mut out = BTreeMap::new();
    let table = s.key("services");
    for (name, mut t) in s.named_tables("services", GRADIENT_SERVICE) {
        let canonical = crate::mailprotector::products::canonical(&name);
        let is_count = mp.counts.iter().any(|c| c.name == name);
        if canonical != name && !is_count {
            t.ctx().problem(
                format!("{table}.{name}"),
                format!("{name:?} is not how the product is named; write [gradient.services.{canonical}]"),
            );
        }
        let missing = |what: &str| format!("required: the Gradient {what} to file {name} under");
        let category =
            t.req("category", String::new(), &missing("category"), |v| f::one_of(v, &CATEGORIES));
        let subcategory = t.req("subcategory", String::new(), &missing("subcategory"), |v| {
            f::one_of(v, &SUBCATEGORIES)
        });
        let description = t.opt("description", f::non_empty);
        t.finish();
        out.insert(name, GradientService { category, subcategory, description });
    }
    out
}

fn reconcile(mut s: Section<'_, '_>) -> ReconcileConfig {
    let mapping_file = s.or("mapping_file", PathBuf::from("/etc/mpsync/mapping.toml"), f::path);
    let max_age = s.or("max_age", secs(2 * 3600), |v| f::duration(v, false));
    let debounce_runs = s.or("debounce_runs", 1, |v| f::whole_u32(v, 1));
    s.finish();
    ReconcileConfig { mapping_file, max_age, debounce_runs }
}
