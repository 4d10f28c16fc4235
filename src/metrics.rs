//! Prometheus metrics (prometheus-client, OpenMetrics text) served on `/metrics`.
//!
//! One [`Metrics`] per daemon, no globals. Adding a metric family: add a field, create it in
//! [`Metrics::new`] and register it there (or call [`Metrics::register`] from the component
//! that owns it, before serving starts). Names follow base units and `_total` for counters.

use std::sync::{Arc, Mutex};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Metric, Registry};

/// The OpenMetrics content type `/metrics` answers with.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Labels of `mpsync_build_info`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct BuildLabels {
    version: String,
    release_id: String,
}

/// The daemon's metric families, and the registry that renders them. Cloning shares them.
#[derive(Debug, Clone)]
pub struct Metrics {
    registry: Arc<Mutex<Registry>>,
    /// `mpsync_reload_failures_total`: SIGHUP reloads rejected because the new config was
    /// invalid (the old one stayed in force).
    pub reload_failures: Counter,
    /// `mpsync_reloads_total`: SIGHUP reloads that applied a new config.
    pub reloads: Counter,
}

impl Metrics {
    /// A registry with every family of the daemon registered, including `mpsync_build_info`.
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let build = Info::new(BuildLabels {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            release_id: option_env!("MPSYNC_RELEASE_ID")
                .unwrap_or(env!("CARGO_PKG_VERSION"))
                .to_owned(),
        });
        registry.register("mpsync_build", "mpsync version and build", build);

        let reload_failures = Counter::default();
        registry.register(
            "mpsync_reload_failures",
            "Config reloads (SIGHUP) rejected because the new config was invalid",
            reload_failures.clone(),
        );
        let reloads = Counter::default();
        registry.register(
            "mpsync_reloads",
            "Config reloads (SIGHUP) that applied a new config",
            reloads.clone(),
        );

        Metrics { registry: Arc::new(Mutex::new(registry)), reload_failures, reloads }
    }

    /// Registers a further family under `name` (without the `_total` suffix for counters).
    /// Keep the handle you pass in: it is shared with the registry.
    pub fn register(&self, name: &str, help: &str, metric: impl Metric) {
        self.lock().register(name, help, metric);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Registry> {
        // Registering or encoding cannot leave the registry inconsistent halfway.
        self.registry.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Renders every family as OpenMetrics text (ends with `# EOF`).
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail; a family's own encoder error would be a bug.
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.lock()) {
            tracing::error!(error = %e, "cannot encode metrics");
        }
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_build_info_and_reload_counters() {
        let m = Metrics::new();
        m.reload_failures.inc();
        m.reload_failures.inc();
        let text = m.encode();
        let version = env!("CARGO_PKG_VERSION");
        assert!(text.contains(&format!("mpsync_build_info{{version=\"{version}\"")), "{text}");
        assert!(text.contains("mpsync_reload_failures_total 2\n"), "{text}");
        assert!(text.contains("mpsync_reloads_total 0\n"), "{text}");
        assert!(text.ends_with("# EOF\n"));
    }

    #[test]
    fn a_component_can_register_its_own_family() {
        let m = Metrics::new();
        let c: Counter = Counter::default();
        m.register("mpsync_test_events", "events", c.clone());
        c.inc();
        assert!(m.encode().contains("mpsync_test_events_total 1\n"));
    }
}
