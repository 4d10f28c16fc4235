//! Helpers for the Gradient tests: a simulator, a client on its keys, fast retries.
#![allow(dead_code)]

use std::time::Duration;

use mpsync::config::{Secret, UpstreamLimits};
use mpsync::gradient::GradientClient;
use mpsync::sim::{SimHandle, SimOptions, SimServer};
use mpsync::upstream::RetryPolicy;

/// A simulator with `customers` customers.
pub async fn sim(customers: u32) -> SimHandle {
    SimServer::start(SimOptions { seed: 11, customers, ..SimOptions::default() })
        .await
        .expect("the simulator starts")
}

/// Limits for tests: `rps` per second, one second of burst, `in_flight` at once.
pub fn limits(rps: f64, in_flight: usize) -> UpstreamLimits {
    UpstreamLimits {
        rate_limit: rps,
        burst: rps.ceil() as u32,
        max_in_flight: in_flight,
        timeout: Duration::from_secs(10),
        connect_timeout: Duration::from_secs(2),
    }
}

/// Retries with short waits, so failure paths finish quickly.
pub fn quick_retry() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 3,
        max_rate_limited_attempts: 5,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(50),
        default_rate_limit_pause: Duration::from_millis(50),
        max_rate_limit_pause: Duration::from_millis(200),
        deadline: Duration::from_secs(20),
    }
}

/// A client on the simulator's keys (or a wrong partner key).
pub fn client(sim: &SimHandle, partner: Option<&str>) -> GradientClient {
    let g = sim.control().gradient();
    let vendor = Secret::new(g.vendor_key(), "/keys/gradient-vendor-key");
    let partner = Secret::new(
        partner.map_or_else(|| g.partner_key(), str::to_owned),
        "/keys/gradient-partner-key",
    );
    let base = sim.base_url().parse().expect("the simulator URL parses");
    GradientClient::from_keys(&base, &vendor, &partner, limits(200.0, 4), quick_retry())
        .expect("the client builds")
}
