//! The simulated Gradient Synthesize, called raw: a simulator, and one request with the
//! token the simulator accepts (or another).

use std::time::Duration;

use base64::Engine as _;
use mpsync_sim::{SimHandle, SimOptions, SimServer};

/// A simulator with `customers` customers.
pub async fn sim(customers: u32) -> SimHandle {
    SimServer::start(SimOptions { seed: 11, customers, ..SimOptions::default() })
        .await
        .expect("the simulator starts")
}

/// One raw request to the simulated Synthesize (`path` under `/api/vendor-api`), with the
/// valid token unless `token` says otherwise, and `body` sent as JSON text: (status, body).
pub async fn raw(
    sim: &SimHandle,
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> (u16, serde_json::Value) {
    let g = sim.control().gradient();
    // Gradient's token as its public record defines it: base64 of "vendor:partner".
    let valid = base64::engine::general_purpose::STANDARD.encode(format!(
        "{}:{}",
        g.vendor_key(),
        g.partner_key()
    ));
    let url = format!("{}/api/vendor-api{path}", sim.base_url());
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder().build().expect("a client");
    let mut req = client
        .request(method, url)
        .header(mpsync_sim::gradient::TOKEN_HEADER, token.unwrap_or(&valid))
        .timeout(Duration::from_secs(10));
    if let Some(b) = body {
        req = req.header("content-type", "application/json").body(b.to_owned());
    }
    let resp = req.send().await.expect("the simulator answers");
    let status = resp.status().as_u16();
    let text = resp.text().await.expect("a body");
    let json = serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text:?}"));
    (status, json)
}
