//! Configuration: raw layered settings (defaults < TOML file < `MPSYNC_*` environment < CLI
//! flags) validated into a [`Config`] that the rest of the program trusts.
//!
//! Validation collects every problem at once, each with its key path; secrets are read from
//! files or systemd credentials and never shown.

mod fields;
pub mod hosts;
mod load;
pub mod mapping;
mod raw;
mod redact;
mod schedule;
mod secret;
mod section;
mod validate;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

pub use load::{
    ConfigError, ConfigProblem, LoadOptions, load, load_text_with_provenance, load_with_provenance,
    redacted_toml, redacted_toml_annotated,
};
pub use mapping::{Mapping, MappingError, MappingProblem, ProductMapping, Suppression};
pub use raw::{Origin, Provenance};
pub use schedule::Schedule;
pub use secret::Secret;

pub use crate::mailprotector::user_types::CountedTypes;

/// The default config file path.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/mpsync/mpsync.toml";

/// The validated configuration. Every value here has been checked; secrets have been read.
#[derive(Debug, Clone, Serialize)]
pub struct Config {
    /// Where the config was read from (`None` when no file exists and defaults were used).
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
    pub access_token: Option<Secret>,
    /// Directory holding the redb store (default `$STATE_DIRECTORY`, else `/var/lib/mpsync`).
    pub state_dir: PathBuf,
    /// tracing filter directive (already checked to parse).
    pub log: String,
    /// Log line format.
    pub log_format: LogFormat,
    /// How long shutdown waits for running work (default 20s; below systemd's TimeoutStopSec).
    #[serde(with = "humantime_serde")]
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
    #[serde(with = "humantime_serde")]
    pub snapshot_retention: Duration,
    /// How long count history and run records are kept (default 400 days).
    #[serde(with = "humantime_serde")]
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
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Time to establish a connection.
    #[serde(with = "humantime_serde")]
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
    pub limits: UpstreamLimits,
    /// How long a user group's service list is trusted before it is read again.
    #[serde(with = "humantime_serde")]
    pub services_refresh: Duration,
    /// Report one count per product seen (default true).
    pub count_each_product: bool,
    /// Whose users are counted (default: type User only).
    pub count_user_types: CountedTypes,
    /// Named counts that combine products.
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

/// `[billing]`: where billed quantities come from.
#[derive(Debug, Clone, Serialize)]
pub struct BillingConfig {
    /// The source, with its settings.
    pub source: BillingSource,
    /// When the billing poll runs.
    pub schedule: Schedule,
}

/// The billing source and its settings.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "source", rename_all = "lowercase")]
pub enum BillingSource {
    /// No billing source: reconciliation is not computed.
    None,
    /// ConnectWise Manage agreement additions.
    Connectwise(Box<ConnectwiseConfig>),
    /// A CSV export.
    Csv(CsvConfig),
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
    pub limits: UpstreamLimits,
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
    pub vendor_key: Option<Secret>,
    /// The partner API key (`None` when disabled and not configured).
    pub partner_key: Option<Secret>,
    /// When the push runs.
    pub schedule: Schedule,
    /// Record the plan without sending anything.
    pub dry_run: bool,
    /// Rate limit, concurrency and timeouts (default 20 rps, well under Gradient's 100).
    pub limits: UpstreamLimits,
    /// How services mpsync creates are filed, by product or count name
    /// (`[gradient.services.<name>]`); names not listed get the built-in defaults.
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
    #[serde(with = "humantime_serde")]
    pub max_age: Duration,
    /// Consecutive vendor runs a discrepancy must be seen in before it is raised.
    pub debounce_runs: u32,
}
