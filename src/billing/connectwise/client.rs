//! The ConnectWise Manage API client on top of the shared upstream plumbing: Basic auth from
//! `companyId+publicKey:privateKey`, the `clientId` header, `pageSize=1000` paging that follows
//! `Link rel="next"` (or counts pages when the header is unusable, §7), de-duplication by id,
//! and errors that say what to fix.

use base64::Engine as _;
use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;

use super::link::{page_of, parse_link};
use super::models::{Addition, Agreement, Company, SystemInfo};
use crate::billing::BillingError;
use crate::config::{ConnectwiseConfig, Secret};
use crate::upstream::{
    Credentials, Endpoint, HasId, RetryPolicy, SeenIds, StatsSnapshot, UpstreamClient,
    UpstreamError, UpstreamResponse, UpstreamSpec,
};

/// The upstream name used in errors, logs and metrics.
pub const UPSTREAM: &str = "connectwise";

/// The API path below the configured host (§1).
pub const API_PREFIX: &str = "/v4_6_release/apis/3.0";

/// Items asked for per page: the API's maximum (§2).
pub const PAGE_SIZE: u64 = 1000;

/// The `conditions` the agreement listing sends (§7: only `field=value` forms).
pub const AGREEMENT_CONDITIONS: &str = "cancelledFlag=false";

/// The most pages one listing may have before it is considered runaway.
const MAX_PAGES: u64 = 100_000;

/// A read-only ConnectWise Manage client. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ConnectwiseClient {
    http: UpstreamClient,
    concurrency: usize,
}

impl ConnectwiseClient {
    /// Builds the client from the validated config with the default retry policy.
    pub fn new(cfg: &ConnectwiseConfig) -> Result<ConnectwiseClient, UpstreamError> {
        Self::with_retry(cfg, RetryPolicy::default())
    }

    /// Builds the client with a specific retry policy (tests shorten the waits).
    pub fn with_retry(
        cfg: &ConnectwiseConfig,
        retry: RetryPolicy,
    ) -> Result<ConnectwiseClient, UpstreamError> {
        let base = format!("{}{API_PREFIX}", cfg.base_url.as_str().trim_end_matches('/'));
        let base_url = base.parse().map_err(|e| UpstreamError::Setup {
            upstream: UPSTREAM.into(),
            reason: format!(
                "billing.connectwise.base_url {:?} is not usable: {e}",
                cfg.base_url.as_str()
            ),
        })?;
        let Credentials { auth_headers, redact } = Self::credentials(cfg);
        let spec = UpstreamSpec {
            name: UPSTREAM.into(),
            base_url,
            limits: cfg.limits.clone(),
            auth_headers,
            credential: format!(
                "billing.connectwise.company_id ({:?}) and the API member's keys \
                 (public_key_file {}, private_key_file {}); the member must be active",
                cfg.company_id,
                cfg.public_key.origin(),
                cfg.private_key.origin()
            ),
            retry,
            redact,
        };
        Ok(ConnectwiseClient {
            http: UpstreamClient::new(spec)?,
            concurrency: cfg.limits.max_in_flight.max(1),
        })
    }

    /// Basic auth from `companyId+publicKey:privateKey` and the `clientId` header; the keys
    /// and the pair itself.
    pub fn credentials(cfg: &ConnectwiseConfig) -> Credentials {
        let origin = format!("{} and {}", cfg.public_key.origin(), cfg.private_key.origin());
        let pair = Secret::new(
            format!("{}+{}:{}", cfg.company_id, cfg.public_key.expose(), cfg.private_key.expose()),
            origin.clone(),
        );
        let basic = base64::engine::general_purpose::STANDARD.encode(pair.expose());
        let auth = Secret::new(format!("Basic {basic}"), origin);
        let client_id = Secret::new(cfg.client_id.clone(), "billing.connectwise.client_id");
        Credentials {
            auth_headers: vec![("Authorization".into(), auth), ("clientId".into(), client_id)],
            redact: vec![cfg.public_key.clone(), cfg.private_key.clone(), pair],
        }
    }

    /// A clone that shares the budget but counts requests afresh (one per run).
    pub fn scoped(&self) -> ConnectwiseClient {
        ConnectwiseClient { http: self.http.scoped(), concurrency: self.concurrency }
    }

    /// A clone that shows every answer to `recorder` and only reads (`mpsync capture`).
    pub fn recording(
        &self,
        recorder: std::sync::Arc<dyn crate::upstream::Recorder>,
    ) -> ConnectwiseClient {
        ConnectwiseClient { http: self.http.recording(recorder), concurrency: self.concurrency }
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

    /// `GET /system/info`: the connection test.
    pub async fn system_info(&self) -> Result<SystemInfo, UpstreamError> {
        let ep = Endpoint::get("/system/info", "/system/info");
        let resp = self.http.get(&ep, &[]).await.map_err(|e| explain(e, None))?;
        self.http.parse_json(&resp)
    }

    /// Every company, deleted ones included (`deletedFlag` tells).
    pub async fn companies(
        &self,
        cancel: &CancellationToken,
    ) -> Result<Vec<Company>, BillingError> {
        let ep = Endpoint::get("/company/companies", "/company/companies");
        self.list_all(&ep, None, cancel).await
    }

    /// Every agreement that is not cancelled.
    pub async fn agreements(
        &self,
        cancel: &CancellationToken,
    ) -> Result<Vec<Agreement>, BillingError> {
        let ep = Endpoint::get("/finance/agreements", "/finance/agreements");
        self.list_all(&ep, Some(AGREEMENT_CONDITIONS), cancel).await
    }

    /// Every addition of one agreement.
    pub async fn additions(
        &self,
        agreement_id: u64,
        cancel: &CancellationToken,
    ) -> Result<Vec<Addition>, BillingError> {
        let ep = Endpoint::get(
            format!("/finance/agreements/{agreement_id}/additions"),
            "/finance/agreements/{id}/additions",
        );
        self.list_all(&ep, None, cancel).await
    }

    /// Pages through `ep`: follows `rel="next"` while the server sends a usable `Link`
    /// header, else asks for the next page until an empty page or one shorter than the
    /// largest seen. Items already seen (by id) are dropped.
    async fn list_all<T: DeserializeOwned + HasId>(
        &self,
        ep: &Endpoint,
        conditions: Option<&str>,
        cancel: &CancellationToken,
    ) -> Result<Vec<T>, BillingError> {
        let mut all = Vec::new();
        let mut seen = SeenIds::new();
        let mut page = 1u64;
        let mut largest = 0usize;
        loop {
            let (items, resp) = self.page::<T>(ep, page, conditions, cancel).await?;
            let n = items.len();
            largest = largest.max(n);
            let fresh = seen
                .fresh(page, items)
                .map_err(|reason| self.http.bad_response(&ep.label(), reason, &resp.body))?;
            all.extend(fresh);
            match self.next_page(&resp, page, n, largest)? {
                None => return Ok(all),
                Some(p) => page = p,
            }
        }
    }

    /// The page to ask for after `page`, which held `len` items (`largest`: the most any
    /// page of this listing held so far); `None` when the listing ended. A usable `Link`
    /// header alone decides (no `rel="next"` on the last page), and its `next` target must
    /// name a later page; without one, an empty page or one shorter than the largest seen
    /// ends the listing (§7: the server may cap `pageSize` lower than asked).
    pub fn next_page(
        &self,
        resp: &UpstreamResponse,
        page: u64,
        len: usize,
        largest: usize,
    ) -> Result<Option<u64>, UpstreamError> {
        let bad = |reason: String| self.http.bad_response(&resp.endpoint, reason, b"");
        let link = resp.headers.get("link").and_then(|v| v.to_str().ok()).map(parse_link);
        let next = match link.filter(|l| !l.is_empty()) {
            Some(l) => match l.get("next") {
                None => None,
                Some(url) => match page_of(url) {
                    Some(p) if p > page => Some(p),
                    _ => {
                        return Err(bad(format!(
                            "the Link rel=\"next\" target {url:?} has no later page"
                        )));
                    }
                },
            },
            None if len == 0 || len < largest => None,
            None => Some(page + 1),
        };
        match next {
            Some(p) if p > MAX_PAGES => {
                Err(bad(format!("the listing did not end after {MAX_PAGES} pages")))
            }
            next => Ok(next),
        }
    }

    /// Reads one page of a listing: its items (none for a 204).
    pub fn read_page<T: DeserializeOwned>(
        &self,
        resp: &UpstreamResponse,
    ) -> Result<Vec<T>, UpstreamError> {
        if resp.status == 204 { Ok(Vec::new()) } else { self.http.parse_json(resp) }
    }

    async fn page<T: DeserializeOwned>(
        &self,
        ep: &Endpoint,
        page: u64,
        conditions: Option<&str>,
        cancel: &CancellationToken,
    ) -> Result<(Vec<T>, UpstreamResponse), BillingError> {
        if cancel.is_cancelled() {
            return Err(BillingError::Cancelled);
        }
        let mut query = vec![("page", page.to_string()), ("pageSize", PAGE_SIZE.to_string())];
        if let Some(c) = conditions {
            query.push(("conditions", c.to_owned()));
        }
        let resp = tokio::select! {
            biased;
            _ = cancel.cancelled() => return Err(BillingError::Cancelled),
            r = self.http.get(ep, &query) => r.map_err(|e| explain(e, conditions))?,
        };
        Ok((self.read_page(&resp)?, resp))
    }

    /// A [`UpstreamError::BadResponse`] for `endpoint` (for answers that parse but make no sense).
    pub(crate) fn bad(&self, endpoint: &str, reason: impl Into<String>) -> UpstreamError {
        self.http.bad_response(endpoint, reason, b"")
    }
}

/// Adds what ConnectWise errors mean for the operator: a 403 names the security role's
/// rights; a 400 (a refused request, §4) names the `conditions` sent.
fn explain(e: UpstreamError, conditions: Option<&str>) -> UpstreamError {
    match e {
        UpstreamError::Forbidden { upstream, endpoint, credential, message } => {
            UpstreamError::Forbidden {
                upstream,
                endpoint,
                credential,
                message: format!(
                    "{message}; give the API member a security role with Inquire rights on \
                     Companies → Company Maintenance and Finance → Agreements"
                ),
            }
        }
        UpstreamError::Rejected { upstream, endpoint, status: 400, message, .. } => {
            let sent = match conditions {
                Some(c) => format!("conditions {c:?}"),
                None => "no conditions".to_owned(),
            };
            UpstreamError::BadResponse {
                upstream,
                endpoint,
                reason: format!(
                    "the server refused the request with {sent} (400: {message}); this \
                     ConnectWise does not accept the query mpsync sends"
                ),
                excerpt: String::new(),
            }
        }
        other => other,
    }
}

#[cfg(test)]
#[path = "client_tests.rs"]
mod tests;
