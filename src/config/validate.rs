//! The validated layer: from the read schema (`raw`) to the [`Config`] the program trusts.
//! Applies defaults, the rules that tie keys together (a remote listen address needs a token,
//! a billing source needs its own settings), reads the secrets the chosen sources need, and
//! adds every problem to the ones found while reading, each with its key path.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub(crate) use super::check::Check;
use super::check::secret;
use super::hosts;
use super::layers::Origin;
use super::leaf::{SourceKind, log_filter_of};
use super::raw::*;
use super::schedule::Schedule;
use super::secret::Secret;
use super::types::*;

const DEFAULT_STATE_DIR: &str = "/var/lib/mpsync";

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn url(s: &str) -> url::Url {
    url::Url::parse(s).expect("built-in default URLs parse")
}

fn cron(s: &str) -> Schedule {
    Schedule::parse(s).expect("built-in default schedules parse")
}

/// A secret that was not loaded (not needed, or missing and reported).
fn unloaded() -> Secret {
    Secret::new("", "(not loaded)")
}

/// Builds the validated config from the read schema. Returns the config even when problems
/// were found (bad values replaced by defaults); the caller decides by `c.problems`.
pub(crate) fn validate(raw: RawConfig, c: &mut Check<'_>, source: PathBuf) -> Config {
    let mailprotector = mailprotector(raw.mailprotector, c);
    Config {
        source_path: Some(source),
        daemon: daemon(raw.daemon, c),
        store: StoreConfig {
            snapshot_retention: raw.store.snapshot_retention.unwrap_or(secs(30 * 86_400)),
            history_retention: raw.store.history_retention.unwrap_or(secs(400 * 86_400)),
        },
        billing: billing(raw.billing, c),
        gradient: gradient(raw.gradient, &mailprotector, c),
        mailprotector,
        reconcile: ReconcileConfig {
            mapping_file: (raw.reconcile.mapping_file)
                .unwrap_or_else(|| PathBuf::from("/etc/mpsync/mapping.toml")),
            max_age: raw.reconcile.max_age.unwrap_or(secs(2 * 3600)),
            debounce_runs: raw.reconcile.debounce_runs.unwrap_or(1),
        },
        write_back: WriteBackConfig {
            max_changes_per_apply: raw.write_back.max_changes_per_apply.unwrap_or(25),
        },
        notify: super::notify::channels(raw.notify, c),
    }
}

fn daemon(r: RawDaemon, c: &mut Check<'_>) -> DaemonConfig {
    let listen = r.listen.unwrap_or_else(|| "127.0.0.1:9847".parse().expect("default address"));
    let allow_remote = r.allow_remote.unwrap_or(false);
    let access_token = access_token(c, r.access_token_file, allow_remote);
    if hosts::is_remote(listen) && !allow_remote {
        remote_listen(c, listen);
    }
    let state_dir = r.state_dir.unwrap_or_else(|| match c.env_var("STATE_DIRECTORY") {
        // systemd joins several StateDirectory= entries with ':'; ours is the first.
        Some(dirs) => {
            c.prov.derive_default("daemon.state_dir", "STATE_DIRECTORY");
            PathBuf::from(dirs.split(':').next().unwrap_or(dirs))
        }
        None => PathBuf::from(DEFAULT_STATE_DIR),
    });
    let mut log = r.log.unwrap_or_else(|| "info".to_string());
    // RUST_LOG wins over daemon.log (file or MPSYNC_DAEMON__LOG), but not over --log.
    let from_cli = c.prov.origin("daemon.log") == Origin::Cli;
    if let (false, Some(rust_log)) = (from_cli, c.env_var("RUST_LOG")) {
        match log_filter_of(rust_log) {
            Ok(filter) => {
                log = filter;
                c.prov.derive_override("daemon.log", "RUST_LOG");
            }
            Err(msg) => c.problem("RUST_LOG", format!("{msg}; fix or unset RUST_LOG")),
        }
    }
    DaemonConfig {
        listen,
        allow_remote,
        allowed_hosts: r.allowed_hosts.unwrap_or_default(),
        access_token,
        state_dir,
        log,
        log_format: r.log_format.unwrap_or(LogFormat::Text),
        shutdown_grace: r.shutdown_grace.unwrap_or(secs(20)),
    }
}

/// The shortest access token accepted: guessing one must stay out of reach.
const MIN_TOKEN_CHARS: usize = 16;

/// The access token, read only with `allow_remote` (then required): the endpoint serves
/// customer names and billing, and answers any web page that reaches it.
fn access_token(c: &mut Check<'_>, file: Option<PathBuf>, allow_remote: bool) -> Option<Secret> {
    const KEY: &str = "daemon.access_token_file";
    let token = secret(c, KEY, file, allow_remote)?;
    let t = token.expose();
    if t.chars().count() >= MIN_TOKEN_CHARS && t.bytes().all(|b| b.is_ascii_graphic()) {
        return Some(token);
    }
    let at = token.origin();
    c.problem(
        KEY,
        format!(
            "the token in {at} is too weak or has spaces: use at least {MIN_TOKEN_CHARS} \
             printable characters without spaces, e.g. `openssl rand -hex 32 > {at}`"
        ),
    );
    None
}

/// A `listen` other hosts can reach is refused unless `allow_remote` is on.
fn remote_listen(c: &mut Check<'_>, listen: SocketAddr) {
    let by = match c.prov.origin("daemon.listen") {
        Origin::Env(var) => format!(" (set by environment variable {var})"),
        Origin::Cli => " (set on the command line)".to_string(),
        _ => String::new(),
    };
    c.problem(
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

/// The limits of one upstream from its section `$r` (the three sections share the limit keys,
/// not a type): the keys as given, else the built-in rate and burst and the shared defaults.
macro_rules! limits {
    ($r:expr, $rate_limit:expr, $burst:expr) => {
        UpstreamLimits {
            rate_limit: $r.rate_limit.unwrap_or($rate_limit),
            burst: $r.burst.unwrap_or($burst),
            max_in_flight: $r.max_in_flight.unwrap_or(4),
            timeout: $r.timeout.unwrap_or(secs(30)),
            connect_timeout: $r.connect_timeout.unwrap_or(secs(5)),
        }
    };
}

fn mailprotector(r: RawMailprotector, c: &mut Check<'_>) -> MailprotectorConfig {
    let api_key = secret(c, "mailprotector.api_key_file", r.api_key_file, true);
    let reseller_id = c.required(
        "mailprotector.reseller_id",
        r.reseller_id,
        "required: your Mailprotector reseller id, the number in the console URL of your reseller \
         overview (…/resellers/<id>); set reseller_id in [mailprotector]",
    );
    let mut counts: Vec<CountDefinition> = Vec::new();
    for (i, count) in r.counts.into_iter().enumerate() {
        let key = |k: &str| format!("mailprotector.counts[{i}].{k}");
        let name =
            c.required(&key("name"), count.name, "required: the name the count is reported under");
        let any_of = c.required(
            &key("any_of"),
            count.any_of,
            "required: the products that make a user group count, e.g. [\"CloudFilter\", \"Bracket\"]",
        );
        let name = name.unwrap_or_default();
        if !name.is_empty() && counts.iter().any(|d| d.name == name) {
            c.problem(key("name"), format!("{name:?} is used by two counts; names must be unique"));
        }
        counts.push(CountDefinition { name, any_of: any_of.unwrap_or_default() });
    }
    MailprotectorConfig {
        base_url: r.base_url.unwrap_or_else(|| url("https://emailservice.io")),
        api_key: api_key.unwrap_or_else(unloaded),
        reseller_id: reseller_id.unwrap_or(0),
        schedule: r.schedule.unwrap_or_else(|| cron("0 */30 * * * *")),
        limits: limits!(r, 5.0, 5),
        services_refresh: r.services_refresh.unwrap_or(secs(86_400)),
        count_each_product: r.count_each_product.unwrap_or(true),
        count_user_types: r.count_user_types.unwrap_or_default(),
        counts,
    }
}

fn billing(r: RawBilling, c: &mut Check<'_>) -> BillingConfig {
    let kind = r.source.unwrap_or(SourceKind::None);
    let cw = connectwise(r.connectwise, kind == SourceKind::Connectwise, c);
    let at = autotask(r.autotask, kind == SourceKind::Autotask, c);
    let halo = halopsa(r.halopsa, kind == SourceKind::Halopsa, c);
    let source = match kind {
        SourceKind::None => BillingSource::None,
        SourceKind::Connectwise => BillingSource::Connectwise(Box::new(cw)),
        SourceKind::Autotask => BillingSource::Autotask(Box::new(at)),
        SourceKind::Halopsa => BillingSource::Halopsa(Box::new(halo)),
        SourceKind::Csv => {
            let path = c.required(
                "billing.csv.path",
                r.csv.path,
                "required when billing.source = \"csv\": the CSV export of billed lines",
            );
            BillingSource::Csv(CsvConfig { path: path.unwrap_or_default() })
        }
    };
    BillingConfig { source, schedule: r.schedule.unwrap_or_else(|| cron("0 5 * * * *")) }
}

/// `[billing.connectwise]`; its ids and keys are required only when it is the source.
fn connectwise(r: RawConnectwise, used: bool, c: &mut Check<'_>) -> ConnectwiseConfig {
    let text = |c: &mut Check<'_>, key: &str, value: Option<String>, what: &str| {
        let msg = format!("required when billing.source = \"connectwise\": {what}");
        if used { c.required(key, value, &msg) } else { value }.unwrap_or_default()
    };
    let company_id = text(
        c,
        "billing.connectwise.company_id",
        r.company_id,
        "your ConnectWise company (login) id",
    );
    let client_id = text(
        c,
        "billing.connectwise.client_id",
        r.client_id,
        "the integration's clientId GUID from developer.connectwise.com",
    );
    let public_key = secret(c, "billing.connectwise.public_key_file", r.public_key_file, used);
    let private_key = secret(c, "billing.connectwise.private_key_file", r.private_key_file, used);
    ConnectwiseConfig {
        base_url: r.base_url.unwrap_or_else(|| url("https://api-na.myconnectwise.net")),
        company_id,
        public_key: public_key.unwrap_or_else(unloaded),
        private_key: private_key.unwrap_or_else(unloaded),
        client_id,
        limits: limits!(r, 10.0, 10),
    }
}

/// `[billing.autotask]`; the user name and both secrets are required only when it is the
/// source. The default budget is 1 request/s (burst 10, 3 in flight, the API's thread limit
/// per entity): at most 3,600 of the 10,000 requests an hour the whole database shares.
fn autotask(r: RawAutotask, used: bool, c: &mut Check<'_>) -> AutotaskConfig {
    let key = "billing.autotask.username";
    let msg = "required when billing.source = \"autotask\": the API-only user's user name \
               (Admin → Resources/Users, security level API User)";
    let username = if used { c.required(key, r.username, msg) } else { r.username };
    let integration_code =
        secret(c, "billing.autotask.integration_code_file", r.integration_code_file, used);
    let secret_value = secret(c, "billing.autotask.secret_file", r.secret_file, used);
    AutotaskConfig {
        base_url: r.base_url,
        zone_lookup_url: (r.zone_lookup_url)
            .unwrap_or_else(|| url("https://webservices2.autotask.net/ATServicesRest/")),
        username: username.unwrap_or_default(),
        integration_code: integration_code.unwrap_or_else(unloaded),
        secret: secret_value.unwrap_or_else(unloaded),
        adjustment_effective: r.adjustment_effective.unwrap_or_default(),
        limits: UpstreamLimits {
            rate_limit: r.rate_limit.unwrap_or(1.0),
            burst: r.burst.unwrap_or(10),
            max_in_flight: r.max_in_flight.unwrap_or(3),
            timeout: r.timeout.unwrap_or(secs(30)),
            connect_timeout: r.connect_timeout.unwrap_or(secs(5)),
        },
    }
}

/// `[billing.halopsa]`; `base_url`, `client_id` and the secret are required only when it is
/// the source. The default budget is 0.9 requests/s with a burst of 20 and 2 in flight: a
/// GCRA admits at most burst + 300 × rate = 290 requests in any 5 minutes, under the 300 per
/// rolling 5 minutes Halo's hosted tenants allow (token requests included, with room to
/// spare).
fn halopsa(r: RawHalopsa, used: bool, c: &mut Check<'_>) -> HalopsaConfig {
    let req = |c: &mut Check<'_>, key: &str, v: Option<String>, what: &str| {
        let msg = format!("required when billing.source = \"halopsa\": {what}");
        if used { c.required(key, v, &msg) } else { v }.unwrap_or_default()
    };
    let base_url = if used {
        c.required(
            "billing.halopsa.base_url",
            r.base_url,
            "required when billing.source = \"halopsa\": your Halo instance's address, e.g. \
             \"https://acme.halopsa.com\" (Configuration > Integrations > HaloPSA API shows it \
             as the resource server without /api)",
        )
    } else {
        r.base_url
    };
    let base_url = base_url.unwrap_or_else(|| url("https://halopsa.invalid"));
    let client_id = req(
        c,
        "billing.halopsa.client_id",
        r.client_id,
        "the API application's Client ID (Configuration > Integrations > HaloPSA API > View \
         Applications; authentication method Client ID and Secret (Services))",
    );
    let client_secret = secret(c, "billing.halopsa.client_secret_file", r.client_secret_file, used);
    let auth_url = r.auth_url.unwrap_or_else(|| {
        let mut u = base_url.clone();
        let path = format!("{}/auth", u.path().trim_end_matches('/'));
        u.set_path(&path);
        u
    });
    HalopsaConfig {
        base_url,
        auth_url,
        tenant: r.tenant,
        client_id,
        client_secret: client_secret.unwrap_or_else(unloaded),
        scope: r.scope,
        limits: UpstreamLimits {
            rate_limit: r.rate_limit.unwrap_or(0.9),
            burst: r.burst.unwrap_or(20),
            max_in_flight: r.max_in_flight.unwrap_or(2),
            timeout: r.timeout.unwrap_or(secs(60)),
            connect_timeout: r.connect_timeout.unwrap_or(secs(5)),
        },
    }
}

fn gradient(r: RawGradient, mp: &MailprotectorConfig, c: &mut Check<'_>) -> GradientConfig {
    let enabled = r.enabled.unwrap_or(false);
    let vendor_key = secret(c, "gradient.vendor_key_file", r.vendor_key_file, enabled);
    let partner_key = secret(c, "gradient.partner_key_file", r.partner_key_file, enabled);
    GradientConfig {
        enabled,
        base_url: r.base_url.unwrap_or_else(|| url("https://app.usegradient.com")),
        vendor_key,
        partner_key,
        schedule: r.schedule.unwrap_or_else(|| cron("0 0 6 * * *")),
        dry_run: r.dry_run.unwrap_or(false),
        limits: limits!(r, 20.0, 20),
        services: gradient_services(r.services, mp, c),
    }
}

/// `[gradient.services.<name>]`: a product name in the wrong case is refused, because the
/// override would silently never apply. (The categories are checked as they are read.)
fn gradient_services(
    services: BTreeMap<String, RawService>,
    mp: &MailprotectorConfig,
    c: &mut Check<'_>,
) -> BTreeMap<String, GradientService> {
    let mut out = BTreeMap::new();
    for (name, s) in services {
        let table = format!("gradient.services.{name}");
        let canonical = crate::model::products::canonical(&name);
        if canonical != name && !mp.counts.iter().any(|d| d.name == name) {
            c.problem(
                &table,
                format!("{name:?} is not how the product is named; write [gradient.services.{canonical}]"),
            );
        }
        let missing = |what: &str| format!("required: the Gradient {what} to file {name} under");
        let category = c.required(&format!("{table}.category"), s.category, &missing("category"));
        let subcategory =
            c.required(&format!("{table}.subcategory"), s.subcategory, &missing("subcategory"));
        let service = GradientService {
            category: category.unwrap_or_default(),
            subcategory: subcategory.unwrap_or_default(),
            description: s.description,
        };
        out.insert(name, service);
    }
    out
}
