//! The recorder hook: an optional observer of every answer an [`super::UpstreamClient`]
//! receives, for `mpsync capture`. A client with a recorder only reads: it refuses any method
//! but GET before anything is sent. The daemon never sets one; without it the hook costs one
//! `Option` check per attempt.

use reqwest::Method;
use reqwest::header::HeaderMap;

/// One completed HTTP exchange: what was asked and what came back (one per attempt, so a
/// retried request is seen once per answer).
#[derive(Debug)]
pub struct Exchange<'a> {
    /// The upstream's name, e.g. `mailprotector`.
    pub upstream: &'a str,
    /// The method (always GET for a recording client).
    pub method: &'a Method,
    /// The path below the client's base URL, as sent (e.g. `/resellers/188/customers`).
    pub path: &'a str,
    /// The query parameters, as sent.
    pub query: &'a [(&'a str, String)],
    /// The answer's status.
    pub status: u16,
    /// The answer's headers (auth headers are request headers: they are never here).
    pub headers: &'a HeaderMap,
    /// The answer's body, fully read.
    pub body: &'a [u8],
}

/// Sees every answer a recording client receives. Called on the request's task: keep it short.
pub trait Recorder: Send + Sync {
    /// Records one exchange.
    fn record(&self, exchange: &Exchange<'_>);
}
