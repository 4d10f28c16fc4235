//! Shared HTTP plumbing for every upstream (Mailprotector, Gradient, ConnectWise): one
//! rate-limited reqwest client per upstream, a 429 pause gate shared by all its callers,
//! retries with capped exponential backoff and full jitter, typed errors, request
//! accounting, the secret [`Scrubber`] and the [`Recorder`] hook `mpsync capture` uses.

mod client;
mod error;
mod limit;
mod record;
mod retry;
mod scrub;
mod stats;
#[cfg(test)]
mod tests;

pub use client::{
    Credentials, Endpoint, MIN_BODY_SECRET_LEN, UpstreamClient, UpstreamResponse, UpstreamSpec,
    install_crypto_provider,
};
pub use error::{UpstreamError, error_message, excerpt};
pub use limit::{Budget, PauseGate};
pub use record::{Exchange, Recorder};
pub use retry::{RetryPolicy, parse_retry_after, status_is_transient};
pub use scrub::{REDACTED, Scrubber};
pub use stats::{RequestStats, StatsSnapshot};
