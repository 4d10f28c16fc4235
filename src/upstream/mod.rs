//! Shared HTTP plumbing for every upstream (Mailprotector, Gradient, ConnectWise): one
//! rate-limited reqwest client per upstream, a 429 pause gate shared by all its callers,
//! retries with capped exponential backoff and full jitter, the one reading of an answer
//! ([`UpstreamClient::interpret`]), typed errors, the de-duplication rule of paged listings
//! ([`SeenIds`]), request accounting, the secret [`Scrubber`], the [`Recorder`] hook
//! `mpsync capture` uses, and [`PlannedRequest`]: what a call would send, for dry runs.

mod answer;
mod client;
mod error;
mod limit;
mod listing;
mod planned;
mod record;
mod retry;
mod scrub;
mod stats;
#[cfg(test)]
mod tests;

pub use answer::{Answer, Endpoint, MIN_BODY_SECRET_LEN, PermanentRule, UpstreamResponse};
pub use client::{Credentials, UpstreamClient, UpstreamSpec, install_crypto_provider};
pub use error::{Malformed, UpstreamError};
pub use limit::{Budget, PauseGate};
pub use listing::{HasId, SeenIds};
pub use planned::PlannedRequest;
pub use record::{Exchange, Recorder};
pub use retry::RetryPolicy;
pub use scrub::{REDACTED, Scrubber};
pub use stats::{RequestStats, StatsSnapshot};
