//! Shared helpers for the Autotask tests: a simulator on 127.0.0.1:0 whose Autotask the test
//! keeps a handle on, configs pointing at it (zone looked up, or a fixed base URL), and a
//! source with the fast retry policy.

use std::net::SocketAddr;
use std::time::Duration;

use mpsync::billing::AutotaskSource;
use mpsync::config::{AutotaskConfig, Secret, UpstreamLimits};
use mpsync_sim::autotask::{API_PREFIX, AtCredentials, AutotaskSim};
use mpsync_sim::{Dataset, SimControl};

use crate::support::cw::fast_retry;

/// A simulator whose Autotask the test can change. The server task ends with the runtime.
pub struct AtServer {
    pub addr: SocketAddr,
    pub at: AutotaskSim,
    pub control: SimControl,
}

impl AtServer {
    /// Serves the billing generated for `customers` customers from `seed`.
    pub async fn start(seed: u64, customers: u32) -> AtServer {
        let control = SimControl::new(Dataset::generate(seed, customers));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().unwrap();
        let app = mpsync_sim::router(control.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        AtServer { addr, at: control.autotask(), control }
    }

    /// The zone-1 REST root, as the zone lookup names it.
    pub fn root(&self) -> String {
        format!("http://{}{API_PREFIX}/", self.addr)
    }

    /// A config that looks the zone up from the user name.
    pub fn config(&self) -> AutotaskConfig {
        config(&self.root(), None, &self.at.credentials())
    }

    /// A source for `cfg` with [`fast_retry`].
    pub fn source(cfg: &AutotaskConfig) -> AutotaskSource {
        AutotaskSource::with_retry(cfg, fast_retry()).expect("source")
    }
}

/// A config looking the zone up at `lookup` (or using `base`) with `creds`: generous limits,
/// short timeouts.
pub fn config(lookup: &str, base: Option<&str>, creds: &AtCredentials) -> AutotaskConfig {
    AutotaskConfig {
        base_url: base.map(|b| b.parse().unwrap()),
        zone_lookup_url: lookup.parse().unwrap(),
        username: creds.username.clone(),
        integration_code: Secret::new(
            creds.integration_code.clone(),
            "/etc/mpsync/autotask-integration-code",
        ),
        secret: Secret::new(creds.secret.clone(), "/etc/mpsync/autotask-secret"),
        adjustment_effective: Default::default(),
        limits: UpstreamLimits {
            rate_limit: 2000.0,
            burst: 100,
            max_in_flight: 3,
            timeout: Duration::from_secs(2),
            connect_timeout: Duration::from_secs(2),
        },
    }
}
