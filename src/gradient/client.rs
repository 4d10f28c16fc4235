//! The Gradient vendor API client: typed calls on the shared upstream plumbing (one limiter,
//! the 429 pause gate, retries with full jitter). Count posts are absolute and retried;
//! creates are not retried blindly — after a failure or a 409 the caller re-reads (§11 #20).

use base64::Engine;
use reqwest::Method;
use serde_json::{Value, json};

use super::GradientError;
use super::models::{GradientAccount, Integration, NewService, Sku, parse_skus};
use super::status::IntegrationStatus;
use crate::config::{GradientConfig, Secret, UpstreamLimits};
use crate::upstream::{
    Credentials, Endpoint, RetryPolicy, StatsSnapshot, UpstreamClient, UpstreamError,
    UpstreamResponse, UpstreamSpec,
};

/// The upstream name used in errors, logs and metrics.
pub const UPSTREAM: &str = "gradient";

/// The header carrying the token (§2).
pub const TOKEN_HEADER: &str = "GRADIENT-TOKEN";

/// What Synthesize did with one count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CountOutcome {
    /// 201: stored.
    Accepted,
    /// 404: the account or the service is not mapped in Synthesize (normal; §5.12).
    Unmapped(String),
    /// Another 4xx (for example 400 for a value Gradient does not take): this count was
    /// refused, with Gradient's status and words; the other counts are unaffected.
    Refused {
        /// The HTTP status.
        status: u16,
        /// Gradient's message.
        message: String,
    },
}

/// The token: standard Base64 of the UTF-8 bytes of `vendor:partner`, no scheme (§2).
pub fn build_token(vendor: &str, partner: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("{vendor}:{partner}"))
}

/// A Gradient vendor API client for one vendor key and one partner key. Cheap to clone.
#[derive(Debug, Clone)]
pub struct GradientClient {
    http: UpstreamClient,
    concurrency: usize,
    keys: String,
    /// `gradient.rate_limit`, named in the advice of a 403.
    rate_limit: f64,
}

fn endpoint(method: Method, path: impl Into<String>, pattern: &'static str) -> Endpoint {
    Endpoint { method, path: path.into(), pattern }
}

/// Path segments are percent-encoded (ids may contain `/` or `.`; §4).
fn segment(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>().replace('+', "%20")
}

impl GradientClient {
    /// Builds the client from the validated config; fails when a key is missing.
    pub fn new(cfg: &GradientConfig) -> Result<GradientClient, UpstreamError> {
        Self::with_retry(cfg, RetryPolicy::default())
    }

    /// Builds the client with a specific retry policy (tests shorten the waits).
    pub fn with_retry(
        cfg: &GradientConfig,
        retry: RetryPolicy,
    ) -> Result<GradientClient, UpstreamError> {
        let missing = |what: &str, key: &str| UpstreamError::Setup {
            upstream: UPSTREAM.into(),
            reason: format!("the Gradient {what} key is not configured; set gradient.{key}"),
        };
        let vendor = cfg.vendor_key.as_ref().ok_or_else(|| missing("vendor", "vendor_key_file"))?;
        let partner =
            cfg.partner_key.as_ref().ok_or_else(|| missing("partner", "partner_key_file"))?;
        Self::from_keys(&cfg.base_url, vendor, partner, cfg.limits.clone(), retry)
    }

    /// Builds the client from explicit keys (the host without `/api/vendor-api`).
    pub fn from_keys(
        base_url: &url::Url,
        vendor: &Secret,
        partner: &Secret,
        limits: UpstreamLimits,
        retry: RetryPolicy,
    ) -> Result<GradientClient, UpstreamError> {
        let base = format!("{}/api/vendor-api", base_url.as_str().trim_end_matches('/'));
        let base_url = base.parse().map_err(|e| UpstreamError::Setup {
            upstream: UPSTREAM.into(),
            reason: format!("gradient.base_url {:?} is not usable: {e}", base_url.as_str()),
        })?;
        let keys = format!(
            "the partner key read from {} and the vendor key read from {}",
            partner.origin(),
            vendor.origin()
        );
        let concurrency = limits.max_in_flight.max(1);
        let rate_limit = limits.rate_limit;
        let Credentials { auth_headers, redact } = Self::credentials(vendor, partner);
        let spec = UpstreamSpec {
            name: UPSTREAM.into(),
            base_url,
            limits,
            auth_headers,
            credential: keys.clone(),
            retry,
            redact,
        };
        Ok(GradientClient { http: UpstreamClient::new(spec)?, concurrency, keys, rate_limit })
    }

    /// The token header (Base64 of `vendor:partner`), both keys and `vendor:partner` itself.
    pub fn credentials(vendor: &Secret, partner: &Secret) -> Credentials {
        let origin = format!("{} and {}", vendor.origin(), partner.origin());
        let token = Secret::new(build_token(vendor.expose(), partner.expose()), origin.clone());
        let joined = Secret::new(format!("{}:{}", vendor.expose(), partner.expose()), origin);
        Credentials {
            auth_headers: vec![(TOKEN_HEADER.into(), token)],
            redact: vec![vendor.clone(), partner.clone(), joined],
        }
    }

    /// A clone that shares the budget but counts requests afresh (one per run).
    pub fn scoped(&self) -> GradientClient {
        GradientClient { http: self.http.scoped(), ..self.clone() }
    }

    /// A clone that shows every answer to `recorder` and only reads (`mpsync capture`).
    pub fn recording(
        &self,
        recorder: std::sync::Arc<dyn crate::upstream::Recorder>,
    ) -> GradientClient {
        GradientClient { http: self.http.recording(recorder), ..self.clone() }
    }

    /// Every configured secret of this client with its derived forms.
    pub fn scrubber(&self) -> &crate::upstream::Scrubber {
        self.http.scrubber()
    }

    /// The shared upstream client (the answer interpreter, JSON parsing, error helpers).
    pub fn upstream(&self) -> &UpstreamClient {
        &self.http
    }

    /// Requests made by this scope so far.
    pub fn stats(&self) -> StatsSnapshot {
        self.http.stats()
    }

    /// How many calls may run at once (`max_in_flight`).
    pub fn concurrency(&self) -> usize {
        self.concurrency
    }

    fn lift(&self, e: UpstreamError) -> GradientError {
        GradientError::from_upstream(e, &self.keys, self.rate_limit)
    }

    async fn call(
        &self,
        ep: &Endpoint,
        body: Option<&Value>,
        idempotent: bool,
    ) -> Result<UpstreamResponse, GradientError> {
        self.http.send(ep, &[], body, idempotent).await.map_err(|e| self.lift(e))
    }

    fn json(&self, resp: &UpstreamResponse) -> Result<Value, GradientError> {
        self.http.parse_json(resp).map_err(|e| self.lift(e))
    }

    /// `GET /organization`: the credential check and the integration status (§5.1). The
    /// texts shown as they came (the name, an unknown status) are scrubbed again once
    /// decoded, so not even an escaped echo of a key survives.
    pub async fn integration(&self) -> Result<Integration, GradientError> {
        let ep = Endpoint::get("/organization", "/organization");
        let resp = self.call(&ep, None, true).await?;
        self.read_integration(&resp)
    }

    /// Reads a `GET /organization` answer (see [`GradientClient::integration`]).
    pub fn read_integration(&self, resp: &UpstreamResponse) -> Result<Integration, GradientError> {
        let mut integration: Integration = self.http.parse_json(resp).map_err(|e| self.lift(e))?;
        integration.name = self.http.scrub(&integration.name);
        if let IntegrationStatus::Other(raw) = &integration.status {
            integration.status = IntegrationStatus::Other(self.http.scrub(raw));
        }
        Ok(integration)
    }

    /// `PATCH /organization/status/{status}` (§5.2); only the HTTP status is relied on. The
    /// push only ever sets `pending`: Gradient turns the integration `active` itself.
    pub async fn set_status(&self, status: &IntegrationStatus) -> Result<(), GradientError> {
        let path = format!("/organization/status/{}", status.as_str());
        let ep = endpoint(Method::PATCH, path, "/organization/status/{status}");
        // Setting a status is idempotent: retrying is harmless.
        self.call(&ep, None, true).await.map(drop)
    }

    /// `GET /api/vendor-api`: the vendor's service catalogue (§5.3).
    pub async fn skus(&self) -> Result<Vec<Sku>, GradientError> {
        let ep = Endpoint::get("", "/");
        let resp = self.call(&ep, None, true).await?;
        self.read_skus(&resp)
    }

    /// Reads a service catalogue answer (`GET /api/vendor-api`): every SKU it lists.
    pub fn read_skus(&self, resp: &UpstreamResponse) -> Result<Vec<Sku>, GradientError> {
        let body = self.json(resp)?;
        parse_skus(&body)
            .map_err(|r| self.lift(self.http.bad_response(&resp.endpoint, r, &resp.body)))
    }

    /// `POST /service`: creates one service; returns the catalogue after it. A 409 (the name
    /// exists) or a failed attempt re-reads the catalogue instead (§11 #3, #20).
    pub async fn create_service(&self, new: &NewService) -> Result<Vec<Sku>, GradientError> {
        let ep = endpoint(Method::POST, "/service", "/service");
        let body = serde_json::to_value(new).unwrap_or(Value::Null);
        match self.call(&ep, Some(&body), false).await {
            Ok(resp) => {
                let v = self.json(&resp)?;
                match parse_skus(&v) {
                    Ok(skus) if skus.iter().any(|s| s.name == new.name) => Ok(skus),
                    // An unexpected body: the catalogue itself is the truth.
                    _ => self.skus().await,
                }
            }
            Err(GradientError::Upstream(e)) if conflict_or_transient(&e) => self.skus().await,
            Err(e) => Err(e),
        }
    }

    /// `GET /organization/accounts` (§5.9).
    pub async fn accounts(&self) -> Result<Vec<GradientAccount>, GradientError> {
        let ep = Endpoint::get("/organization/accounts", "/organization/accounts");
        let resp = self.call(&ep, None, true).await?;
        self.read_accounts(&resp)
    }

    /// Reads a `GET /organization/accounts` answer.
    pub fn read_accounts(
        &self,
        resp: &UpstreamResponse,
    ) -> Result<Vec<GradientAccount>, GradientError> {
        self.http.parse_json(resp).map_err(|e| self.lift(e))
    }

    /// Creates the accounts of `wanted` that Synthesize does not hold, in one array request
    /// (§5.10). After a 409 or a failed attempt it re-reads and posts what is still missing,
    /// at most three times. Returns the accounts as Synthesize lists them afterwards.
    pub async fn ensure_accounts(
        &self,
        existing: Vec<GradientAccount>,
        wanted: &[GradientAccount],
    ) -> Result<Vec<GradientAccount>, GradientError> {
        let ep = endpoint(Method::POST, "/organization/accounts", "/organization/accounts");
        let mut have = existing;
        for attempt in 1..=3u32 {
            let ids: std::collections::HashSet<&str> = have.iter().map(|a| a.id.as_str()).collect();
            let missing: Vec<Value> = wanted
                .iter()
                .filter(|a| !ids.contains(a.id.as_str()))
                .map(|a| json!({"id": a.id, "name": a.name, "description": a.description}))
                .collect();
            if missing.is_empty() {
                return Ok(have);
            }
            match self.call(&ep, Some(&Value::Array(missing)), false).await {
                Ok(_) => return self.accounts().await,
                Err(GradientError::Upstream(e)) if conflict_or_transient(&e) && attempt < 3 => {
                    tracing::info!(error = %e, "gradient: account creation refused or failed; re-reading the accounts");
                    have = self.accounts().await?;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(have)
    }

    /// `PATCH /organization/accounts/{id}`: propagates a rename (§5.11).
    pub async fn rename_account(&self, id: &str, name: &str) -> Result<(), GradientError> {
        let path = format!("/organization/accounts/{}", segment(id));
        let ep = endpoint(Method::PATCH, path, "/organization/accounts/{accountId}");
        self.call(&ep, Some(&json!({"name": name})), true).await.map(drop)
    }

    /// `POST /service/{serviceId}/count`: sets the absolute count of one (account, service)
    /// (§5.12). Retried on 429/5xx/timeouts; a 404 is [`CountOutcome::Unmapped`], another 4xx
    /// but 401/403 is [`CountOutcome::Refused`]; a 403 is an error (anomaly detection).
    pub async fn post_count(
        &self,
        service_id: &str,
        account_id: &str,
        units: u64,
    ) -> Result<CountOutcome, GradientError> {
        let path = format!("/service/{}/count", segment(service_id));
        let ep = endpoint(Method::POST, path, "/service/{serviceId}/count");
        let body = json!({"accountId": account_id, "unitCount": units});
        match self.http.send(&ep, &[], Some(&body), true).await {
            Ok(_) => Ok(CountOutcome::Accepted),
            Err(UpstreamError::NotFound { message, .. }) => Ok(CountOutcome::Unmapped(message)),
            Err(UpstreamError::Rejected { status, message, .. }) => {
                Ok(CountOutcome::Refused { status, message })
            }
            Err(e) => Err(self.lift(e)),
        }
    }
}

/// A 409, or a failure after which the create may or may not have landed.
fn conflict_or_transient(e: &UpstreamError) -> bool {
    matches!(e, UpstreamError::Rejected { status: 409, .. }) || e.is_retryable()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_is_standard_base64_of_vendor_colon_partner() {
        assert_eq!(build_token("V", "P"), "VjpQ");
        assert_eq!(build_token("vendor-key", "partner-key"), "dmVuZG9yLWtleTpwYXJ0bmVyLWtleQ==");
        assert_eq!(build_token("é", "?>"), "w6k6Pz4=", "UTF-8");
        assert_eq!(build_token("", "??>"), "Oj8/Pg==", "the standard alphabet, padded");
    }

    #[test]
    fn path_segments_are_encoded() {
        assert_eq!(segment("contoso.onmicrosoft.com"), "contoso.onmicrosoft.com");
        assert_eq!(segment("a/b c"), "a%2Fb%20c");
    }
}
