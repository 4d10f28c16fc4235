//! [`PlannedRequest`]: a request exactly as an [`super::UpstreamClient`] would send it —
//! method, full URL, headers and JSON body — with every credential header's value shown as
//! `<redacted>`. Built by [`super::UpstreamClient::describe`] from the same endpoint, query and
//! body that `send` takes, so a dry run prints what a real run sends.

use std::fmt;

use serde::{Deserialize, Serialize};

/// One HTTP request as it would be sent, secrets redacted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedRequest {
    /// The method, e.g. `PATCH`.
    pub method: String,
    /// The full URL, base, path and query.
    pub url: String,
    /// The headers mpsync sets, in the order shown; credential headers (`Authorization`,
    /// `clientId`, ...) carry `<redacted>` instead of their value. Transport headers (`Host`,
    /// `Content-Length`) are left out.
    pub headers: Vec<(String, String)>,
    /// The JSON body, if any.
    pub body: Option<serde_json::Value>,
}

impl PlannedRequest {
    /// The value of a header (name compared case-insensitively).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

impl fmt::Display for PlannedRequest {
    /// The request as HTTP text: the request line, one header per line, a blank line and the
    /// compact JSON body — what `--dry-run` prints.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.method, self.url)?;
        for (k, v) in &self.headers {
            write!(f, "\n{k}: {v}")?;
        }
        if let Some(body) = &self.body {
            write!(f, "\n\n{body}")?;
        }
        Ok(())
    }
}
