//! Shared helpers for the HaloPSA tests: a simulator on 127.0.0.1:0 whose HaloPSA the test
//! keeps a handle on, a config pointing at it, and a source with the fast retry policy.

use std::net::SocketAddr;
use std::time::Duration;

use mpsync::billing::HalopsaSource;
use mpsync::config::{HalopsaConfig, Secret, UpstreamLimits};
use mpsync_sim::halopsa::{HaloCredentials, HaloSim, PREFIX};
use mpsync_sim::{Dataset, SimControl};

use crate::support::cw::fast_retry;

/// A simulator whose HaloPSA the test can change. The server task ends with the runtime.
pub struct HaloServer {
    pub addr: SocketAddr,
    pub halo: HaloSim,
    pub control: SimControl,
}

impl HaloServer {
    /// Serves the billing generated for `customers` customers from `seed`.
    pub async fn start(seed: u64, customers: u32) -> HaloServer {
        let control = SimControl::new(Dataset::generate(seed, customers));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().unwrap();
        let app = mpsync_sim::router(control.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        HaloServer { addr, halo: control.halopsa(), control }
    }

    /// The instance root a client configures (`…/halo`).
    pub fn base_url(&self) -> String {
        format!("http://{}{PREFIX}", self.addr)
    }

    /// A config for the simulator's application.
    pub fn config(&self) -> HalopsaConfig {
        config(&self.base_url(), &self.halo.credentials())
    }

    /// A source for `cfg` with [`fast_retry`].
    pub fn source(cfg: &HalopsaConfig) -> HalopsaSource {
        HalopsaSource::with_retry(cfg, fast_retry()).expect("source")
    }
}

/// A config for the instance at `base` with `creds`: generous limits, short timeouts.
pub fn config(base: &str, creds: &HaloCredentials) -> HalopsaConfig {
    let base_url: url::Url = base.parse().unwrap();
    HalopsaConfig {
        auth_url: format!("{base}/auth").parse().unwrap(),
        base_url,
        tenant: creds.tenant.clone(),
        client_id: creds.client_id.clone(),
        client_secret: Secret::new(
            creds.client_secret.clone(),
            "/etc/mpsync/halopsa-client-secret",
        ),
        scope: None,
        limits: UpstreamLimits {
            rate_limit: 2000.0,
            burst: 100,
            max_in_flight: 4,
            timeout: Duration::from_secs(2),
            connect_timeout: Duration::from_secs(2),
        },
    }
}
