//! The validated configuration that the rest of the program trusts. Its `Serialize` is the
//! `mpsync config` view: file key names, durations as the file writes them ("30s", "400d"),
//! limits inline in their section, secrets as `<redacted>`, only the chosen billing source.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

use super::schedule::Schedule;
use super::secret::Secret;
use crate::model::user_types::CountedTypes;

/// The validated configuration. Every value here has been checked; secrets have been read.
#[derive(Debug, Clone, Serialize)]
pub struct Config {
    /// Where the config was read from (`None` when no file exists and defaults were used).
    #[serde(skip)]
    pub source_path: Option<PathBuf>,
    /// `[daemon]`.
    pub daemon: DaemonConfig,
    /// `[store]`.
    pub store: StoreConfig,
    /// `[mailprotector]`.
    pub mailprotector: MailprotectorConfig,
    /// `[billing]`.
    pub billing: BillingConfig,
    /// `[gradient]`.
    pub gradient: GradientConfig,
    /// `[reconcile]`.
    pub reconcile: ReconcileConfig,
    /// `[write_back]`.
    pub write_back: WriteBackConfig,
    /// `[[notify]]`: the notification channels, in file order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notify: Vec<NotifyConfig>,
}

/// `[daemon]`: the process itself.
#[derive(Debug, Clone, Serialize)]
pub struct DaemonConfig {
    /// HTTP listen address (default 127.0.0.1:9847). Not loopback only with `allow_remote`.
    pub listen: SocketAddr,
    /// Whether other hosts may connect (a non-loopback `listen`); then every request but the
    /// probes must carry `access_token`.
    pub allow_remote: bool,
    /// Host names the HTTP endpoint answers to besides loopback names and the listen
    /// address (normalised by [`hosts::normalize`]).
    pub allowed_hosts: Vec<String>,
    /// The token every request but the probes must send; loaded (and required) when
    /// `allow_remote` is on, `None` otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_token: Option<Secret>,
    /// Directory holding the redb store (default `$STATE_DIRECTORY`, else `/var/lib/mpsync`).
    pub state_dir: PathBuf,
    /// tracing filter directive (already checked to parse).
    pub log: String,
    /// Log line format.
    pub log_format: LogFormat,
    /// How long shutdown waits for running work (default 20s; below systemd's TimeoutStopSec).
    #[serde(serialize_with = "duration_text")]
    pub shutdown_grace: Duration,
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines (no timestamps or colours under journald).
    Text,
    /// One JSON object per line, for machine ingestion.
    Json,
}

/// `[store]`: retention.
#[derive(Debug, Clone, Serialize)]
pub struct StoreConfig {
    /// How long full snapshots are kept (default 30 days); the latest is always kept.
    #[serde(serialize_with = "duration_text")]
    pub snapshot_retention: Duration,
    /// How long count history and run records are kept (default 400 days).
    #[serde(serialize_with = "duration_text")]
    pub history_retention: Duration,
}

/// Limits shared by all calls to one upstream.
#[derive(Debug, Clone, Serialize)]
pub struct UpstreamLimits {
    /// Requests per second, shared by all callers.
    pub rate_limit: f64,
    /// Requests allowed at once above the steady rate.
    pub burst: u32,
    /// Requests in flight at once.
    pub max_in_flight: usize,
    /// Total time for one request.
    #[serde(serialize_with = "duration_text")]
    pub timeout: Duration,
    /// Time to establish a connection.
    #[serde(serialize_with = "duration_text")]
    pub connect_timeout: Duration,
}

/// `[mailprotector]`: the vendor source.
#[derive(Debug, Clone, Serialize)]
pub struct MailprotectorConfig {
    /// API host, without `/api/v1` (default `https://emailservice.io`).
    pub base_url: url::Url,
    /// The API key of a reseller-level manager role.
    pub api_key: Secret,
    /// The reseller whose customers are counted.
    pub reseller_id: u64,
    /// When the vendor poll runs (6-field cron with seconds, UTC).
    pub schedule: Schedule,
    /// Rate limit, concurrency and timeouts.
    #[serde(flatten)]
    pub limits: UpstreamLimits,
    /// How long a user group's service list is trusted before it is read again.
    #[serde(serialize_with = "duration_text")]
    pub services_refresh: Duration,
    /// Report one count per product seen (default true).
    pub count_each_product: bool,
    /// Whose users are counted (default: type User only).
    #[serde(serialize_with = "user_type_names")]
    pub count_user_types: CountedTypes,
    /// Named counts that combine products.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub counts: Vec<CountDefinition>,
}

/// A named count: the users of a customer's user groups that have any of the listed products.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CountDefinition {
    /// The name the count is reported under (e.g. "Email Security Total").
    pub name: String,
    /// Canonical product names; a user group counts when it has any of them.
    pub any_of: Vec<String>,
}

/// `[billing]`: where billed quantities come from. Shown as `source = "..."` with the chosen
/// source's table (`[billing.connectwise]`, `[billing.autotask]` or `[billing.csv]`).
#[derive(Debug, Clone)]
pub struct BillingConfig {
    /// The source, with its settings.
    pub source: BillingSource,
    /// When the billing poll runs.
    pub schedule: Schedule,
}

/// The billing source and its settings.
#[derive(Debug, Clone)]
pub enum BillingSource {
    /// No billing source: reconciliation is not computed.
    None,
    /// ConnectWise Manage agreement additions.
    Connectwise(Box<ConnectwiseConfig>),
    /// Datto Autotask recurring-service contracts.
    Autotask(Box<AutotaskConfig>),
    /// HaloPSA recurring-invoice lines.
    Halopsa(Box<HalopsaConfig>),
    /// A CSV export.
    Csv(CsvConfig),
}

impl BillingSource {
    /// Its name in `billing.source`: `none`, `connectwise`, `autotask`, `halopsa` or `csv`.
    pub fn name(&self) -> &'static str {
        match self {
            BillingSource::None => "none",
            BillingSource::Connectwise(_) => "connectwise",
            BillingSource::Autotask(_) => "autotask",
            BillingSource::Halopsa(_) => "halopsa",
            BillingSource::Csv(_) => "csv",
        }
    }
}

/// `[billing.connectwise]`.
#[derive(Debug, Clone, Serialize)]
pub struct ConnectwiseConfig {
    /// API host, without `/v4_6_release/apis/3.0`.
    pub base_url: url::Url,
    /// The company's login id.
    pub company_id: String,
    /// The API member's public key.
    pub public_key: Secret,
    /// The API member's private key.
    pub private_key: Secret,
    /// The integration's clientId GUID.
    pub client_id: String,
    /// Rate limit, concurrency and timeouts.
    #[serde(flatten)]
    pub limits: UpstreamLimits,
}

/// `[billing.autotask]`.
#[derive(Debug, Clone, Serialize)]
pub struct AutotaskConfig {
    /// The zone's REST root (`https://webservicesN.autotask.net/ATServicesRest/`); `None`:
    /// discovered from the user name through `zone_lookup_url` (and again after a 401).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base_url: Option<url::Url>,
    /// Where the zone of `username` is looked up (any zone answers; default webservices2).
    pub zone_lookup_url: url::Url,
    /// The API-only user's user name (an e-mail address).
    pub username: String,
    /// The API tracking identifier of the integration (`ApiIntegrationCode`).
    pub integration_code: Secret,
    /// The API user's secret (password).
    pub secret: Secret,
    /// When a write-back's quantity change takes effect (the adjustment's `effectiveDate`).
    pub adjustment_effective: AdjustmentEffective,
    /// Rate limit, concurrency and timeouts (default 1 request/s: at most 36% of the
    /// database's 10,000 requests an hour, which every integration shares).
    #[serde(flatten)]
    pub limits: UpstreamLimits,
}

/// `billing.autotask.adjustment_effective`: the `effectiveDate` of a write-back's contract
/// service adjustment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AdjustmentEffective {
    /// The first day of the next billing period (the default): the current period is billed
    /// as it stands, the new quantity from the next one on (what Gradient's "approve" does).
    #[default]
    NextPeriod,
    /// Today: for contracts that prorate, the current period is split and the rest of it is
    /// billed at the new quantity.
    Today,
}

impl AdjustmentEffective {
    /// The value as written in the config.
    pub fn as_str(self) -> &'static str {
        match self {
            AdjustmentEffective::NextPeriod => "next_period",
            AdjustmentEffective::Today => "today",
        }
    }
}

/// The scopes a HaloPSA read asks for by default: the least that reads clients, contracts,
/// items and recurring invoices.
pub const HALOPSA_READ_SCOPES: [&str; 4] =
    ["read:customers", "read:contracts", "read:items", "read:invoices"];

/// The scope a HaloPSA write-back asks for on top of [`HALOPSA_READ_SCOPES`].
pub const HALOPSA_WRITE_SCOPE: &str = "edit:invoices";

/// `[billing.halopsa]`.
#[derive(Debug, Clone, Serialize)]
pub struct HalopsaConfig {
    /// The instance root (`https://acme.halopsa.com`); the API is `base_url` + `/api`.
    pub base_url: url::Url,
    /// The authorisation server (default `base_url` + `/auth`); tokens come from
    /// `auth_url` + `/token`.
    pub auth_url: url::Url,
    /// The tenant name of a Halo-hosted instance, sent as `?tenant=` on the token URL;
    /// `None` for an on-premises install.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// The API application's client id.
    pub client_id: String,
    /// The API application's client secret.
    pub client_secret: Secret,
    /// The scopes asked for, space-separated; `None`: [`HALOPSA_READ_SCOPES`], plus
    /// [`HALOPSA_WRITE_SCOPE`] for a write-back.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// Rate limit, concurrency and timeouts (default 0.9 requests/s with a burst of 20: at
    /// most 20 + 0.9 × 300 = 290 requests in any 5 minutes, under Halo's 300).
    #[serde(flatten)]
    pub limits: UpstreamLimits,
}

impl HalopsaConfig {
    /// The scopes a token is asked for: the configured `scope`, else the reads, plus
    /// `edit:invoices` when `write` (a write-back).
    pub fn scope_for(&self, write: bool) -> String {
        if let Some(s) = &self.scope {
            return s.clone();
        }
        let mut scopes: Vec<&str> = HALOPSA_READ_SCOPES.to_vec();
        if write {
            scopes.push(HALOPSA_WRITE_SCOPE);
        }
        scopes.join(" ")
    }

    /// The token endpoint: `auth_url` + `/token`, with `?tenant=` when a tenant is set.
    pub fn token_url(&self) -> url::Url {
        let mut u = self.auth_url.clone();
        let path = format!("{}/token", u.path().trim_end_matches('/'));
        u.set_path(&path);
        if let Some(t) = &self.tenant {
            u.query_pairs_mut().append_pair("tenant", t);
        }
        u
    }

    /// The resource server root: `base_url` + `/api`.
    pub fn api_url(&self) -> url::Url {
        let mut u = self.base_url.clone();
        let path = format!("{}/api", u.path().trim_end_matches('/'));
        u.set_path(&path);
        u
    }
}

/// `[billing.csv]`.
#[derive(Debug, Clone, Serialize)]
pub struct CsvConfig {
    /// The CSV file to read.
    pub path: PathBuf,
}

/// `[gradient]`: the optional push to Gradient Synthesize.
#[derive(Debug, Clone, Serialize)]
pub struct GradientConfig {
    /// Whether the push job runs.
    pub enabled: bool,
    /// API host (default `https://app.usegradient.com`).
    pub base_url: url::Url,
    /// The vendor API key (`None` when disabled and not configured).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vendor_key: Option<Secret>,
    /// The partner API key (`None` when disabled and not configured).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partner_key: Option<Secret>,
    /// When the push runs.
    pub schedule: Schedule,
    /// Record the plan without sending anything.
    pub dry_run: bool,
    /// Rate limit, concurrency and timeouts (default 20 rps, well under Gradient's 100).
    #[serde(flatten)]
    pub limits: UpstreamLimits,
    /// How services mpsync creates are filed, by product or count name
    /// (`[gradient.services.<name>]`); names not listed get the built-in defaults.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub services: BTreeMap<String, GradientService>,
}

/// `[gradient.services.<name>]`: the category a created Synthesize service is filed under.
/// Only used when mpsync creates the service; an existing one is reused as it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GradientService {
    /// One of Gradient's seven categories (exact spelling).
    pub category: String,
    /// One of Gradient's subcategories (exact spelling).
    pub subcategory: String,
    /// The service description; `None` keeps mpsync's default text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// `[reconcile]`.
#[derive(Debug, Clone, Serialize)]
pub struct ReconcileConfig {
    /// The mapping file (customer → account, product → PSA product).
    pub mapping_file: PathBuf,
    /// Inputs older than this make rows `stale`.
    #[serde(serialize_with = "duration_text")]
    pub max_age: Duration,
    /// Consecutive vendor runs a discrepancy must be seen in before it is raised.
    pub debounce_runs: u32,
}

/// `[write_back]`: the guard rails of correcting the PSA (which products may be corrected is
/// the mapping file's `write_back` per product).
#[derive(Debug, Clone, Serialize)]
pub struct WriteBackConfig {
    /// The most changes one apply makes (default 25): a plan with more is applied in steps.
    pub max_changes_per_apply: u32,
}

impl Serialize for BillingConfig {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("source", self.source.name())?;
        map.serialize_entry("schedule", &self.schedule)?;
        match &self.source {
            BillingSource::None => {}
            BillingSource::Connectwise(cw) => map.serialize_entry("connectwise", cw)?,
            BillingSource::Autotask(at) => map.serialize_entry("autotask", at)?,
            BillingSource::Halopsa(h) => map.serialize_entry("halopsa", h)?,
            BillingSource::Csv(csv) => map.serialize_entry("csv", csv)?,
        }
        map.end()
    }
}

/// A duration the way the config file writes it (see [`format_duration`]).
fn duration_text<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format_duration(*d))
}

/// `count_user_types` as the file writes it: known types by name, others by id.
fn user_type_names<S: Serializer>(t: &CountedTypes, s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(t.config_names())
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

/// `notify.kind` as written (the validated [`NotifyKind`] carries the settings).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotifyKindName {
    /// A generic JSON webhook.
    Webhook,
    /// A Microsoft Teams incoming webhook or Workflows URL.
    Teams,
    /// A Slack incoming webhook.
    Slack,
    /// E-mail over SMTP.
    Email,
}

impl NotifyKindName {
    /// The value as written in the config.
    pub fn as_str(self) -> &'static str {
        match self {
            NotifyKindName::Webhook => "webhook",
            NotifyKindName::Teams => "teams",
            NotifyKindName::Slack => "slack",
            NotifyKindName::Email => "email",
        }
    }
}

/// `notify.tls`: how the SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain connection upgraded with STARTTLS (required, not opportunistic); port 587.
    Starttls,
    /// TLS from the first byte ("SMTPS"); port 465.
    Tls,
    /// No TLS: only for a relay on this host (a loopback `smtp_host`).
    None,
}

impl SmtpTls {
    /// The value as written in the config.
    pub fn as_str(self) -> &'static str {
        match self {
            SmtpTls::Starttls => "starttls",
            SmtpTls::Tls => "tls",
            SmtpTls::None => "none",
        }
    }

    /// The port this mode uses when `smtp_port` is not set.
    pub fn default_port(self) -> u16 {
        match self {
            SmtpTls::Starttls => 587,
            SmtpTls::Tls => 465,
            SmtpTls::None => 25,
        }
    }
}

/// One `[[notify]]` channel.
#[derive(Debug, Clone)]
pub struct NotifyConfig {
    /// Its unique name (health check `notify:<name>`, metric label `channel`).
    pub name: String,
    /// Where messages go, with the kind's settings.
    pub kind: NotifyKind,
    /// Which events it is sent.
    pub filter: NotifyFilter,
    /// When set, matching events are batched into one message on this schedule.
    pub digest: Option<Schedule>,
    /// Total time for one delivery (default 10s).
    pub timeout: Duration,
    /// The first wait after a failed delivery (default 30s); it doubles, with jitter.
    pub retry_initial: Duration,
    /// The longest wait between attempts (default 1h): the slow cadence a receiver that
    /// keeps failing is retried at.
    pub retry_max: Duration,
}

/// A channel's kind and its settings.
#[derive(Debug, Clone)]
pub enum NotifyKind {
    /// A generic JSON webhook: one versioned JSON document per POST.
    Webhook {
        /// The URL (a secret: it often carries a token).
        url: Secret,
    },
    /// Microsoft Teams: an Adaptive Card.
    Teams {
        /// The incoming webhook or Workflows URL (a secret).
        url: Secret,
    },
    /// Slack incoming webhook: `text` plus `blocks`.
    Slack {
        /// The webhook URL (a secret).
        url: Secret,
    },
    /// E-mail over SMTP.
    Email(Box<EmailConfig>),
}

impl NotifyKind {
    /// The kind's name as written in the config.
    pub fn name(&self) -> NotifyKindName {
        match self {
            NotifyKind::Webhook { .. } => NotifyKindName::Webhook,
            NotifyKind::Teams { .. } => NotifyKindName::Teams,
            NotifyKind::Slack { .. } => NotifyKindName::Slack,
            NotifyKind::Email(_) => NotifyKindName::Email,
        }
    }

    /// Every secret of the channel.
    pub fn secrets(&self) -> impl Iterator<Item = &Secret> {
        let (url, password) = match self {
            NotifyKind::Webhook { url } | NotifyKind::Teams { url } | NotifyKind::Slack { url } => {
                (Some(url), None)
            }
            NotifyKind::Email(e) => (None, e.password.as_ref()),
        };
        url.into_iter().chain(password)
    }
}

/// The SMTP settings of an `email` channel.
#[derive(Debug, Clone)]
pub struct EmailConfig {
    /// The SMTP server.
    pub smtp_host: String,
    /// Its port (default by `tls`: 587, 465 or 25).
    pub smtp_port: u16,
    /// How the connection is secured.
    pub tls: SmtpTls,
    /// The SMTP user, when the server wants a login.
    pub username: Option<String>,
    /// Its password (required with `username`).
    pub password: Option<Secret>,
    /// The sender address (`"mpsync <mpsync@example.com>"` or a bare address).
    pub from: String,
    /// The recipients.
    pub to: Vec<String>,
}

/// Which events a channel is sent. Empty lists and `None` let everything through; a filter
/// on a field only applies to events that carry it (a `source_failing` has no account, no
/// status and no money, and passes `accounts`, `statuses` and `min_monthly_impact`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NotifyFilter {
    /// Event kinds (empty: all).
    pub events: Vec<crate::model::event_kind::EventKind>,
    /// Statuses the row enters (or, for a resolved discrepancy, leaves) (empty: all).
    pub statuses: Vec<crate::model::status::Status>,
    /// The least monthly impact (either direction) worth telling.
    pub min_monthly_impact: Option<f64>,
    /// PSA account ids (empty: all).
    pub accounts: Vec<String>,
}

impl Serialize for NotifyConfig {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("name", &self.name)?;
        map.serialize_entry("kind", self.kind.name().as_str())?;
        match &self.kind {
            NotifyKind::Webhook { url } | NotifyKind::Teams { url } | NotifyKind::Slack { url } => {
                map.serialize_entry("url", url)?;
            }
            NotifyKind::Email(e) => {
                map.serialize_entry("smtp_host", &e.smtp_host)?;
                map.serialize_entry("smtp_port", &e.smtp_port)?;
                map.serialize_entry("tls", e.tls.as_str())?;
                if let Some(u) = &e.username {
                    map.serialize_entry("username", u)?;
                }
                if let Some(p) = &e.password {
                    map.serialize_entry("password", p)?;
                }
                map.serialize_entry("from", &e.from)?;
                map.serialize_entry("to", &e.to)?;
            }
        }
        let f = &self.filter;
        if !f.events.is_empty() {
            map.serialize_entry("events", &f.events)?;
        }
        if !f.statuses.is_empty() {
            map.serialize_entry("statuses", &f.statuses)?;
        }
        if let Some(m) = f.min_monthly_impact {
            map.serialize_entry("min_monthly_impact", &m)?;
        }
        if !f.accounts.is_empty() {
            map.serialize_entry("accounts", &f.accounts)?;
        }
        if let Some(d) = &self.digest {
            map.serialize_entry("digest", d)?;
        }
        map.serialize_entry("timeout", &format_duration(self.timeout))?;
        map.serialize_entry("retry_initial", &format_duration(self.retry_initial))?;
        map.serialize_entry("retry_max", &format_duration(self.retry_max))?;
        map.end()
    }
}
