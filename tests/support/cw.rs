//! Shared helpers for the ConnectWise tests: a simulator (the standard one, or one serving
//! billing data the test keeps a handle on), a config pointing at it, and a fast retry policy.

use std::net::SocketAddr;
use std::time::Duration;

use mpsync::billing::ConnectwiseSource;
use mpsync::config::{ConnectwiseConfig, Secret, UpstreamLimits};
use mpsync::upstream::RetryPolicy;
use mpsync_sim::connectwise::{BillingData, ConnectwiseSim, CwCredentials};
use mpsync_sim::{Dataset, SimControl};

/// A simulator on 127.0.0.1:0 whose ConnectWise data the test can change. The server task
/// ends with the test's runtime.
pub struct CwServer {
    pub addr: SocketAddr,
    pub cw: ConnectwiseSim,
    pub control: SimControl,
}

impl CwServer {
    /// Serves the billing generated for `customers` customers from `seed`.
    pub async fn start(seed: u64, customers: u32) -> CwServer {
        let control = SimControl::new(Dataset::generate(seed, customers));
        let cw = control.standalone_connectwise();
        CwServer::serve(control, cw).await
    }

    /// Serves `cw` with `control`.
    pub async fn serve(control: SimControl, cw: ConnectwiseSim) -> CwServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().unwrap();
        let app = mpsync_sim::router_with(control.clone(), cw.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        CwServer { addr, cw, control }
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The data being served (a copy).
    pub fn data(&self) -> BillingData {
        self.cw.read().clone()
    }

    /// A config with the simulator's API member.
    pub fn config(&self) -> ConnectwiseConfig {
        config(&self.base_url(), &self.cw.credentials())
    }

    /// A source for `cfg` with [`fast_retry`].
    pub fn source(cfg: &ConnectwiseConfig) -> ConnectwiseSource {
        ConnectwiseSource::with_retry(cfg, fast_retry()).expect("source")
    }
}

/// A config for `base_url` with `creds`: generous limits, short timeouts.
pub fn config(base_url: &str, creds: &CwCredentials) -> ConnectwiseConfig {
    ConnectwiseConfig {
        base_url: base_url.parse().unwrap(),
        company_id: creds.company_id.clone(),
        public_key: Secret::new(creds.public_key.clone(), "/etc/mpsync/connectwise-public-key"),
        private_key: Secret::new(creds.private_key.clone(), "/etc/mpsync/connectwise-private-key"),
        client_id: creds.client_id.clone(),
        limits: UpstreamLimits {
            rate_limit: 2000.0,
            burst: 100,
            max_in_flight: 4,
            timeout: Duration::from_secs(2),
            connect_timeout: Duration::from_secs(2),
        },
    }
}

/// Retries with short waits so fault tests stay fast.
pub fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 3,
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(20),
        default_rate_limit_pause: Duration::from_millis(20),
        max_rate_limit_pause: Duration::from_millis(200),
        deadline: Duration::from_secs(20),
        ..RetryPolicy::default()
    }
}

/// A plain HTTP GET below the ConnectWise prefix with the given headers.
pub async fn raw_get(
    base: &str,
    path_and_query: &str,
    headers: &[(&str, String)],
) -> (u16, reqwest::header::HeaderMap, serde_json::Value) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
    let mut req = client.get(format!("{base}/v4_6_release/apis/3.0{path_and_query}"));
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    let h = resp.headers().clone();
    let text = resp.text().await.unwrap();
    let json = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
    (status, h, json)
}

/// The headers of a well-behaved client with `creds`.
pub fn auth(creds: &CwCredentials) -> Vec<(&'static str, String)> {
    use base64::Engine as _;
    let basic = base64::engine::general_purpose::STANDARD
        .encode(format!("{}+{}:{}", creds.company_id, creds.public_key, creds.private_key));
    vec![("Authorization", format!("Basic {basic}")), ("clientId", creds.client_id.clone())]
}
