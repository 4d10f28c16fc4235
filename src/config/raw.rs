//! The config file's schema, written once. These serde structs decide which keys exist (an
//! unknown key is refused and its near miss suggested), how each value is read (`leaf`) and
//! in what order `mpsync config` shows them; config/mpsync.toml lists exactly these keys (a
//! test checks it). Every value is optional here: defaults and the rules that tie keys
//! together are `validate`'s.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use super::leaf::{self as l, SourceKind};
use super::schedule::Schedule;
use super::types::LogFormat;
use crate::mailprotector::user_types::CountedTypes;

/// The whole file: one table per section.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct RawConfig {
    pub daemon: RawDaemon,
    pub store: RawStore,
    pub mailprotector: RawMailprotector,
    pub billing: RawBilling,
    pub gradient: RawGradient,
    pub reconcile: RawReconcile,
}

/// `[daemon]`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct RawDaemon {
    #[serde(deserialize_with = "l::socket_addr")]
    pub listen: Option<SocketAddr>,
    #[serde(deserialize_with = "l::flag")]
    pub allow_remote: Option<bool>,
    #[serde(deserialize_with = "host_names")]
    pub allowed_hosts: Option<Vec<String>>,
    #[serde(deserialize_with = "l::secret_path")]
    pub access_token_file: Option<PathBuf>,
    #[serde(deserialize_with = "l::path")]
    pub state_dir: Option<PathBuf>,
    #[serde(deserialize_with = "l::log_filter")]
    pub log: Option<String>,
    #[serde(deserialize_with = "l::log_format")]
    pub log_format: Option<LogFormat>,
    #[serde(deserialize_with = "l::duration")]
    pub shutdown_grace: Option<Duration>,
}

/// `daemon.allowed_hosts` (see `hosts`).
fn host_names<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    l::leaf(d, super::hosts::allowed_hosts)
}

/// `[store]`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct RawStore {
    #[serde(deserialize_with = "l::duration")]
    pub snapshot_retention: Option<Duration>,
    #[serde(deserialize_with = "l::duration")]
    pub history_retention: Option<Duration>,
}

// The limit keys (`rate_limit` .. `connect_timeout`) are repeated in each upstream's section
// rather than flattened: serde cannot refuse unknown keys next to a flattened struct.

/// `[mailprotector]`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct RawMailprotector {
    #[serde(deserialize_with = "l::base_url")]
    pub base_url: Option<url::Url>,
    #[serde(deserialize_with = "l::secret_path")]
    pub api_key_file: Option<PathBuf>,
    #[serde(deserialize_with = "l::whole")]
    pub reseller_id: Option<u64>,
    #[serde(deserialize_with = "l::schedule")]
    pub schedule: Option<Schedule>,
    #[serde(deserialize_with = "l::rate")]
    pub rate_limit: Option<f64>,
    #[serde(deserialize_with = "l::whole_u32")]
    pub burst: Option<u32>,
    #[serde(deserialize_with = "l::in_flight")]
    pub max_in_flight: Option<usize>,
    #[serde(deserialize_with = "l::duration")]
    pub timeout: Option<Duration>,
    #[serde(deserialize_with = "l::duration")]
    pub connect_timeout: Option<Duration>,
    #[serde(deserialize_with = "l::duration_or_zero")]
    pub services_refresh: Option<Duration>,
    #[serde(deserialize_with = "l::flag")]
    pub count_each_product: Option<bool>,
    #[serde(deserialize_with = "l::user_types")]
    pub count_user_types: Option<CountedTypes>,
    pub counts: Vec<RawCount>,
}

/// `[[mailprotector.counts]]`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct RawCount {
    #[serde(deserialize_with = "l::text")]
    pub name: Option<String>,
    #[serde(deserialize_with = "l::products")]
    pub any_of: Option<Vec<String>>,
}

/// `[billing]`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct RawBilling {
    #[serde(deserialize_with = "l::billing_source")]
    pub source: Option<SourceKind>,
    #[serde(deserialize_with = "l::schedule")]
    pub schedule: Option<Schedule>,
    pub connectwise: RawConnectwise,
    pub csv: RawCsv,
}

/// `[billing.connectwise]`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct RawConnectwise {
    #[serde(deserialize_with = "l::base_url")]
    pub base_url: Option<url::Url>,
    #[serde(deserialize_with = "l::text")]
    pub company_id: Option<String>,
    #[serde(deserialize_with = "l::secret_path")]
    pub public_key_file: Option<PathBuf>,
    #[serde(deserialize_with = "l::secret_path")]
    pub private_key_file: Option<PathBuf>,
    #[serde(deserialize_with = "l::text")]
    pub client_id: Option<String>,
    #[serde(deserialize_with = "l::rate")]
    pub rate_limit: Option<f64>,
    #[serde(deserialize_with = "l::whole_u32")]
    pub burst: Option<u32>,
    #[serde(deserialize_with = "l::in_flight")]
    pub max_in_flight: Option<usize>,
    #[serde(deserialize_with = "l::duration")]
    pub timeout: Option<Duration>,
    #[serde(deserialize_with = "l::duration")]
    pub connect_timeout: Option<Duration>,
}

/// `[billing.csv]`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct RawCsv {
    #[serde(deserialize_with = "l::path")]
    pub path: Option<PathBuf>,
}

/// `[gradient]`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct RawGradient {
    #[serde(deserialize_with = "l::flag")]
    pub enabled: Option<bool>,
    #[serde(deserialize_with = "l::base_url")]
    pub base_url: Option<url::Url>,
    #[serde(deserialize_with = "l::secret_path")]
    pub vendor_key_file: Option<PathBuf>,
    #[serde(deserialize_with = "l::secret_path")]
    pub partner_key_file: Option<PathBuf>,
    #[serde(deserialize_with = "l::schedule")]
    pub schedule: Option<Schedule>,
    #[serde(deserialize_with = "l::flag")]
    pub dry_run: Option<bool>,
    #[serde(deserialize_with = "l::rate")]
    pub rate_limit: Option<f64>,
    #[serde(deserialize_with = "l::whole_u32")]
    pub burst: Option<u32>,
    #[serde(deserialize_with = "l::in_flight")]
    pub max_in_flight: Option<usize>,
    #[serde(deserialize_with = "l::duration")]
    pub timeout: Option<Duration>,
    #[serde(deserialize_with = "l::duration")]
    pub connect_timeout: Option<Duration>,
    pub services: BTreeMap<String, RawService>,
}

/// `[gradient.services.<name>]`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct RawService {
    #[serde(deserialize_with = "l::category")]
    pub category: Option<String>,
    #[serde(deserialize_with = "l::subcategory")]
    pub subcategory: Option<String>,
    #[serde(deserialize_with = "l::text")]
    pub description: Option<String>,
}

/// `[reconcile]`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct RawReconcile {
    #[serde(deserialize_with = "l::path")]
    pub mapping_file: Option<PathBuf>,
    #[serde(deserialize_with = "l::duration")]
    pub max_age: Option<Duration>,
    #[serde(deserialize_with = "l::whole_u32")]
    pub debounce_runs: Option<u32>,
}
