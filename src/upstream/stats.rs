//! Per-run request accounting: requests per endpoint pattern, retries, 429s and time spent
//! waiting on the limiter and the pause gate.
//!
//! A [`RequestStats`] is shared by the clones of one client scope; [`RequestStats::snapshot`]
//! copies it into the plain [`StatsSnapshot`] that run records and metrics read.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Live counters for one upstream within one scope (usually one run).
#[derive(Debug)]
pub struct RequestStats {
    upstream: String,
    inner: Mutex<StatsSnapshot>,
}

/// A copy of the counters at one moment: a plain struct for run records and metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatsSnapshot {
    /// The upstream's name, e.g. `mailprotector`.
    pub upstream: String,
    /// HTTP requests sent per endpoint pattern (`GET /domains/{id}/user_groups`), retries
    /// included: the number the upstream saw.
    pub requests: BTreeMap<String, u64>,
    /// Requests that were attempts after the first of their call.
    pub retries: u64,
    /// 429 answers received.
    pub rate_limited: u64,
    /// Time callers waited on the rate limiter and the 429 pause gate, summed over
    /// concurrent callers (so it can exceed the run's wall time).
    #[serde(with = "humantime_serde")]
    pub waited: Duration,
}

impl StatsSnapshot {
    /// All requests sent, over every endpoint.
    pub fn total_requests(&self) -> u64 {
        self.requests.values().sum()
    }

    /// Requests sent to one endpoint pattern (0 when none).
    pub fn requests_to(&self, endpoint: &str) -> u64 {
        self.requests.get(endpoint).copied().unwrap_or(0)
    }

    /// Requests keyed `"<upstream> <endpoint>"`, the form `RunRecord::requests` uses.
    pub fn qualified(&self) -> BTreeMap<String, u64> {
        self.requests.iter().map(|(k, v)| (format!("{} {k}", self.upstream), *v)).collect()
    }
}

impl RequestStats {
    /// Empty counters for `upstream`.
    pub fn new(upstream: impl Into<String>) -> Self {
        let upstream = upstream.into();
        RequestStats {
            inner: Mutex::new(StatsSnapshot { upstream: upstream.clone(), ..Default::default() }),
            upstream,
        }
    }

    /// The upstream these counters belong to.
    pub fn upstream(&self) -> &str {
        &self.upstream
    }

    fn with<R>(&self, f: impl FnOnce(&mut StatsSnapshot) -> R) -> R {
        // A poisoned lock only means another thread panicked while counting: the numbers are
        // still the best we have, so keep using them.
        let mut guard = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut guard)
    }

    /// Counts one request sent to `endpoint`; `retry` when it was not the call's first attempt.
    pub fn record_request(&self, endpoint: &str, retry: bool) {
        self.with(|s| {
            *s.requests.entry(endpoint.to_owned()).or_insert(0) += 1;
            if retry {
                s.retries += 1;
            }
        });
    }

    /// Counts one 429 answer.
    pub fn record_rate_limited(&self) {
        self.with(|s| s.rate_limited += 1);
    }

    /// Adds time spent waiting on the limiter or pause gate.
    pub fn record_wait(&self, d: Duration) {
        if !d.is_zero() {
            self.with(|s| s.waited += d);
        }
    }

    /// A copy of the counters now.
    pub fn snapshot(&self) -> StatsSnapshot {
        self.with(|s| s.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_endpoint_and_retries() {
        let s = RequestStats::new("mailprotector");
        s.record_request("GET /resellers/{id}", false);
        s.record_request("GET /domains/{id}/user_groups", false);
        s.record_request("GET /domains/{id}/user_groups", true);
        s.record_rate_limited();
        s.record_wait(Duration::from_millis(250));
        s.record_wait(Duration::ZERO);
        let snap = s.snapshot();
        assert_eq!(snap.total_requests(), 3);
        assert_eq!(snap.requests_to("GET /domains/{id}/user_groups"), 2);
        assert_eq!(snap.requests_to("GET /nothing"), 0);
        assert_eq!(snap.retries, 1);
        assert_eq!(snap.rate_limited, 1);
        assert_eq!(snap.waited, Duration::from_millis(250));
        assert_eq!(snap.qualified().get("mailprotector GET /resellers/{id}"), Some(&1));
    }
}
