//! The config file's schema, written once. These serde structs decide which keys exist (an
//! unknown key is refused and its near miss suggested) and how each value is read (`leaf`);
//! config/mpsync.toml lists exactly these keys (a test checks it). Every value is optional
//! here: defaults and the rules that tie keys together are `validate`'s.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use super::leaf::{self as l, SourceKind};
use super::schedule::Schedule;
use super::types::{AdjustmentEffective, LogFormat, NotifyKindName, SmtpTls};
use crate::model::event_kind::EventKind;
use crate::model::status::Status;
use crate::model::user_types::CountedTypes;

/// Declares the tables of the schema. `key: Option<T> = "reader"` is a value read by that
/// `leaf` reader; `key: T` is a nested table, an array or a map of tables. Every table refuses
/// keys it does not list, and every key may be absent (its default is `validate`'s).
macro_rules! tables {
    ($($(#[$doc:meta])* $name:ident { $($key:ident: $t:ty $(= $reader:literal)?,)* })*) => {$(
        $(#[$doc])*
        #[derive(Debug, Default, Deserialize)]
        #[serde(default, deny_unknown_fields)]
        pub(crate) struct $name {
            $($(#[serde(deserialize_with = $reader)])? pub $key: $t,)*
        }
    )*};
}

// The limit keys (`rate_limit` .. `connect_timeout`) are repeated in each upstream's section
// rather than flattened: serde cannot refuse unknown keys next to a flattened struct.
tables! {
    /// The whole file: one table per section.
    RawConfig {
        daemon: RawDaemon,
        store: RawStore,
        mailprotector: RawMailprotector,
        billing: RawBilling,
        gradient: RawGradient,
        reconcile: RawReconcile,
        write_back: RawWriteBack,
        notify: Vec<RawNotify>,
    }

    /// `[daemon]`.
    RawDaemon {
        listen: Option<SocketAddr> = "l::socket_addr",
        allow_remote: Option<bool> = "l::flag",
        allowed_hosts: Option<Vec<String>> = "host_names",
        access_token_file: Option<PathBuf> = "l::secret_path",
        state_dir: Option<PathBuf> = "l::path",
        log: Option<String> = "l::log_filter",
        log_format: Option<LogFormat> = "l::log_format",
        shutdown_grace: Option<Duration> = "l::duration",
    }

    /// `[store]`.
    RawStore {
        snapshot_retention: Option<Duration> = "l::duration",
        history_retention: Option<Duration> = "l::duration",
    }

    /// `[mailprotector]`.
    RawMailprotector {
        base_url: Option<url::Url> = "l::base_url",
        api_key_file: Option<PathBuf> = "l::secret_path",
        reseller_id: Option<u64> = "l::whole",
        schedule: Option<Schedule> = "l::schedule",
        rate_limit: Option<f64> = "l::rate",
        burst: Option<u32> = "l::whole_u32",
        max_in_flight: Option<usize> = "l::in_flight",
        timeout: Option<Duration> = "l::duration",
        connect_timeout: Option<Duration> = "l::duration",
        services_refresh: Option<Duration> = "l::duration_or_zero",
        count_each_product: Option<bool> = "l::flag",
        count_user_types: Option<CountedTypes> = "l::user_types",
        counts: Vec<RawCount>,
    }

    /// `[[mailprotector.counts]]`.
    RawCount {
        name: Option<String> = "l::text",
        any_of: Option<Vec<String>> = "l::products",
    }

    /// `[billing]`.
    RawBilling {
        source: Option<SourceKind> = "l::billing_source",
        schedule: Option<Schedule> = "l::schedule",
        connectwise: RawConnectwise,
        autotask: RawAutotask,
        halopsa: RawHalopsa,
        csv: RawCsv,
    }

    /// `[billing.connectwise]`.
    RawConnectwise {
        base_url: Option<url::Url> = "l::base_url",
        company_id: Option<String> = "l::text",
        public_key_file: Option<PathBuf> = "l::secret_path",
        private_key_file: Option<PathBuf> = "l::secret_path",
        client_id: Option<String> = "l::text",
        rate_limit: Option<f64> = "l::rate",
        burst: Option<u32> = "l::whole_u32",
        max_in_flight: Option<usize> = "l::in_flight",
        timeout: Option<Duration> = "l::duration",
        connect_timeout: Option<Duration> = "l::duration",
    }

    /// `[billing.autotask]`.
    RawAutotask {
        base_url: Option<url::Url> = "l::base_url",
        zone_lookup_url: Option<url::Url> = "l::base_url",
        username: Option<String> = "l::text",
        integration_code_file: Option<PathBuf> = "l::secret_path",
        secret_file: Option<PathBuf> = "l::secret_path",
        adjustment_effective: Option<AdjustmentEffective> = "l::adjustment_effective",
        rate_limit: Option<f64> = "l::rate",
        burst: Option<u32> = "l::whole_u32",
        max_in_flight: Option<usize> = "l::in_flight",
        timeout: Option<Duration> = "l::duration",
        connect_timeout: Option<Duration> = "l::duration",
    }

    /// `[billing.halopsa]`.
    RawHalopsa {
        base_url: Option<url::Url> = "l::base_url",
        auth_url: Option<url::Url> = "l::base_url",
        tenant: Option<String> = "l::text",
        client_id: Option<String> = "l::text",
        client_secret_file: Option<PathBuf> = "l::secret_path",
        scope: Option<String> = "l::halo_scope",
        rate_limit: Option<f64> = "l::rate",
        burst: Option<u32> = "l::whole_u32",
        max_in_flight: Option<usize> = "l::in_flight",
        timeout: Option<Duration> = "l::duration",
        connect_timeout: Option<Duration> = "l::duration",
    }

    /// `[billing.csv]`.
    RawCsv {
        path: Option<PathBuf> = "l::path",
    }

    /// `[gradient]`.
    RawGradient {
        enabled: Option<bool> = "l::flag",
        base_url: Option<url::Url> = "l::base_url",
        vendor_key_file: Option<PathBuf> = "l::secret_path",
        partner_key_file: Option<PathBuf> = "l::secret_path",
        schedule: Option<Schedule> = "l::schedule",
        dry_run: Option<bool> = "l::flag",
        rate_limit: Option<f64> = "l::rate",
        burst: Option<u32> = "l::whole_u32",
        max_in_flight: Option<usize> = "l::in_flight",
        timeout: Option<Duration> = "l::duration",
        connect_timeout: Option<Duration> = "l::duration",
        services: BTreeMap<String, RawService>,
    }

    /// `[gradient.services.<name>]`.
    RawService {
        category: Option<String> = "l::category",
        subcategory: Option<String> = "l::subcategory",
        description: Option<String> = "l::text",
    }

    /// `[reconcile]`.
    RawReconcile {
        mapping_file: Option<PathBuf> = "l::path",
        max_age: Option<Duration> = "l::duration",
        debounce_runs: Option<u32> = "l::whole_u32",
    }

    /// `[write_back]`.
    RawWriteBack {
        max_changes_per_apply: Option<u32> = "l::changes_per_apply",
    }
}

tables! {
    /// `[[notify]]`: one notification channel. The kind-specific keys are all listed here
    /// (serde cannot refuse unknown keys beside a tagged enum); `validate` refuses those that
    /// do not belong to the channel's `kind`.
    RawNotify {
        name: Option<String> = "l::channel_name",
        kind: Option<NotifyKindName> = "l::notify_kind",
        url_file: Option<PathBuf> = "l::secret_path",
        events: Option<Vec<EventKind>> = "l::event_kinds",
        statuses: Option<Vec<Status>> = "l::statuses",
        min_monthly_impact: Option<f64> = "l::amount",
        accounts: Option<Vec<String>> = "l::texts",
        digest: Option<Schedule> = "l::schedule",
        timeout: Option<Duration> = "l::duration",
        retry_initial: Option<Duration> = "l::duration",
        retry_max: Option<Duration> = "l::duration",
        smtp_host: Option<String> = "l::text",
        smtp_port: Option<u16> = "l::port",
        tls: Option<SmtpTls> = "l::smtp_tls",
        username: Option<String> = "l::text",
        password_file: Option<PathBuf> = "l::secret_path",
        from: Option<String> = "l::text",
        to: Option<Vec<String>> = "l::texts",
    }
}

/// `daemon.allowed_hosts` (see `hosts`).
fn host_names<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    l::leaf(d, super::hosts::allowed_hosts)
}
