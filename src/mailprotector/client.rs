//! The Mailprotector API client: typed calls on top of the shared upstream plumbing, with
//! paging (explicit `per_page`, `X-Pagination` when usable, de-duplication by id) and
//! cancellation at page boundaries.

use futures_util::{StreamExt, stream};
use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;

use super::CollectError;
use super::models::{Customer, Domain, Reseller, User, UserGroup, parse_services};
use super::pagination::{HEADER, PER_PAGE, PageInfo, Pager};
use crate::config::MailprotectorConfig;
use crate::upstream::Malformed;
use crate::upstream::{
    Credentials, Endpoint, HasId, RetryPolicy, SeenIds, StatsSnapshot, UpstreamClient,
    UpstreamError, UpstreamResponse, UpstreamSpec,
};

/// The upstream name used in errors, logs and metrics.
pub const UPSTREAM: &str = "mailprotector";

/// The most pages one listing may have before it is considered runaway.
const MAX_PAGES: u64 = 100_000;

macro_rules! has_id {
    ($($t:ty),*) => { $(impl HasId for $t { fn id(&self) -> u64 { self.id } })* };
}
has_id!(Customer, Domain, UserGroup, User);

/// A Mailprotector client for one reseller. Cheap to clone.
#[derive(Debug, Clone)]
pub struct MailprotectorClient {
    http: UpstreamClient,
    reseller_id: u64,
    concurrency: usize,
}

impl MailprotectorClient {
    /// Builds the client from the validated config with the default retry policy.
    pub fn new(cfg: &MailprotectorConfig) -> Result<MailprotectorClient, UpstreamError> {
        Self::with_retry(cfg, RetryPolicy::default())
    }

    /// Builds the client with a specific retry policy (tests shorten the waits).
    pub fn with_retry(
        cfg: &MailprotectorConfig,
        retry: RetryPolicy,
    ) -> Result<MailprotectorClient, UpstreamError> {
        let base = format!("{}/api/v1", cfg.base_url.as_str().trim_end_matches('/'));
        let base_url = base.parse().map_err(|e| UpstreamError::Setup {
            upstream: UPSTREAM.into(),
            reason: format!(
                "mailprotector.base_url {:?} is not usable: {e}",
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
                "mailprotector.api_key_file (the API key read from {})",
                cfg.api_key.origin()
            ),
            retry,
            redact,
        };
        Ok(MailprotectorClient {
            http: UpstreamClient::new(spec)?,
            reseller_id: cfg.reseller_id,
            concurrency: cfg.limits.max_in_flight.max(1),
        })
    }

    /// The key as a Bearer header, and the raw key.
    pub fn credentials(cfg: &MailprotectorConfig) -> Credentials {
        let bearer = crate::config::Secret::new(
            format!("Bearer {}", cfg.api_key.expose()),
            cfg.api_key.origin(),
        );
        Credentials {
            auth_headers: vec![("Authorization".into(), bearer)],
            redact: vec![cfg.api_key.clone()],
        }
    }

    /// A clone that shares the budget but counts requests afresh (one per run).
    pub fn scoped(&self) -> MailprotectorClient {
        MailprotectorClient { http: self.http.scoped(), ..self.clone() }
    }

    /// A clone that shows every answer to `recorder` and only reads (`mpsync capture`).
    pub fn recording(
        &self,
        recorder: std::sync::Arc<dyn crate::upstream::Recorder>,
    ) -> MailprotectorClient {
        MailprotectorClient { http: self.http.recording(recorder), ..self.clone() }
    }

    /// Requests made by this scope so far.
    pub fn stats(&self) -> StatsSnapshot {
        self.http.stats()
    }

    /// The configured reseller id.
    pub fn reseller_id(&self) -> u64 {
        self.reseller_id
    }

    /// How many calls may run at once (`max_in_flight`).
    pub fn concurrency(&self) -> usize {
        self.concurrency
    }

    /// The shared upstream client (for callers that need raw access).
    pub fn upstream(&self) -> &UpstreamClient {
        &self.http
    }

    /// `GET /resellers/{id}`: the configured reseller.
    pub async fn reseller(&self) -> Result<Reseller, UpstreamError> {
        let ep = Endpoint::get(format!("/resellers/{}", self.reseller_id), "/resellers/{id}");
        let resp = self.http.get(&ep, &[]).await?;
        self.http.parse_json(&resp)
    }

    /// Every customer of the reseller.
    pub async fn customers(
        &self,
        cancel: &CancellationToken,
    ) -> Result<Vec<Customer>, CollectError> {
        let ep = Endpoint::get(
            format!("/resellers/{}/customers", self.reseller_id),
            "/resellers/{id}/customers",
        );
        self.list_all(&ep, cancel).await
    }

    /// Every domain of the reseller (reseller-wide, aliases included).
    pub async fn domains(&self, cancel: &CancellationToken) -> Result<Vec<Domain>, CollectError> {
        let ep = Endpoint::get(
            format!("/resellers/{}/domains", self.reseller_id),
            "/resellers/{id}/domains",
        );
        self.list_all(&ep, cancel).await
    }

    /// The user groups of one domain (`user_count` unread: see [`UserGroup::user_count`]).
    pub async fn user_groups(
        &self,
        domain_id: u64,
        cancel: &CancellationToken,
    ) -> Result<Vec<UserGroup>, CollectError> {
        let ep =
            Endpoint::get(format!("/domains/{domain_id}/user_groups"), "/domains/{id}/user_groups");
        self.list_all(&ep, cancel).await
    }

    /// The canonical products enabled on one user group.
    pub async fn services(&self, group_id: u64) -> Result<Vec<String>, UpstreamError> {
        let ep = Endpoint::get(
            format!("/user_groups/{group_id}/services"),
            "/user_groups/{id}/services",
        );
        let resp = self.http.get(&ep, &[]).await?;
        self.read_services(&resp)
    }

    /// Reads a `GET /user_groups/{id}/services` answer: the canonical products it enables.
    pub fn read_services(&self, resp: &UpstreamResponse) -> Result<Vec<String>, UpstreamError> {
        let v: serde_json::Value = self.http.parse_json(resp)?;
        parse_services(&v)
            .map_err(|reason| self.http.bad_response(&resp.endpoint, reason, &resp.body))
    }

    /// Reads one page of a listing: its items and what its `X-Pagination` header says, when
    /// usable. Only an explicit 204 means "no items": an empty 200 may be a truncated answer.
    pub fn read_page<T: DeserializeOwned>(
        &self,
        resp: &UpstreamResponse,
    ) -> Result<(Vec<T>, Option<PageInfo>), UpstreamError> {
        let info = resp.headers.get(HEADER).and_then(|v| v.to_str().ok()).and_then(PageInfo::parse);
        let items = if resp.status == 204 { Vec::new() } else { self.http.parse_json(resp)? };
        Ok((items, info))
    }

    /// Walks the reseller-wide user listing page by page, handing each page's new users to
    /// `each`; returns the pages fetched.
    pub async fn for_each_user_page(
        &self,
        cancel: &CancellationToken,
        each: impl FnMut(Vec<User>) -> Result<(), Malformed>,
    ) -> Result<u64, CollectError> {
        let ep = Endpoint::get(
            format!("/resellers/{}/users", self.reseller_id),
            "/resellers/{id}/users",
        );
        self.for_each_page(&ep, cancel, each).await
    }

    async fn list_all<T: DeserializeOwned + HasId>(
        &self,
        ep: &Endpoint,
        cancel: &CancellationToken,
    ) -> Result<Vec<T>, CollectError> {
        let mut all = Vec::new();
        self.for_each_page(ep, cancel, |mut items| {
            all.append(&mut items);
            Ok(())
        })
        .await?;
        Ok(all)
    }

    /// Pages through `ep`. With a usable `X-Pagination` on page 1 the remaining pages are
    /// fetched concurrently (bounded by `max_in_flight`); otherwise one by one until the
    /// stop rule says so. Items already seen (by id) are dropped. Returns pages fetched.
    async fn for_each_page<T: DeserializeOwned + HasId>(
        &self,
        ep: &Endpoint,
        cancel: &CancellationToken,
        mut each: impl FnMut(Vec<T>) -> Result<(), Malformed>,
    ) -> Result<u64, CollectError> {
        let mut seen = SeenIds::new();
        let mut accept = |page: u64, items: Vec<T>, body: &[u8]| -> Result<(), CollectError> {
            let bad = |reason: Malformed| -> CollectError {
                self.http.bad_response(&ep.label(), reason, body).into()
            };
            let fresh = seen.fresh(page, items).map_err(bad)?;
            each(fresh).map_err(bad)
        };
        let (first, info) = self.page::<T>(ep, 1, cancel).await?;
        let mut pager = Pager::new();
        let mut more = pager.more_after(1, first.0.len(), info);
        accept(1, first.0, &first.1)?;
        if let Some(total) = info.and_then(|i| i.pages()).filter(|_| more) {
            let total = total.min(MAX_PAGES);
            let mut pages = stream::iter(2..=total)
                .map(|p| self.page::<T>(ep, p, cancel))
                .buffered(self.concurrency);
            let mut p = 1;
            while let Some(res) = pages.next().await {
                p += 1;
                let ((items, body), _) = res?;
                accept(p, items, &body)?;
            }
            return Ok(total.max(1));
        }
        let mut page = 1;
        while more {
            page += 1;
            if page > MAX_PAGES {
                return Err(self
                    .http
                    .bad_response(
                        &ep.label(),
                        format!("the listing did not end after {MAX_PAGES} pages"),
                        b"",
                    )
                    .into());
            }
            let ((items, body), info) = self.page::<T>(ep, page, cancel).await?;
            more = pager.more_after(page, items.len(), info);
            accept(page, items, &body)?;
        }
        Ok(page)
    }

    async fn page<T: DeserializeOwned>(
        &self,
        ep: &Endpoint,
        page: u64,
        cancel: &CancellationToken,
    ) -> Result<((Vec<T>, bytes::Bytes), Option<PageInfo>), CollectError> {
        if cancel.is_cancelled() {
            return Err(CollectError::Cancelled);
        }
        let query = [("page", page.to_string()), ("per_page", PER_PAGE.to_string())];
        let resp: UpstreamResponse = tokio::select! {
            biased;
            _ = cancel.cancelled() => return Err(CollectError::Cancelled),
            r = self.http.get(ep, &query) => r?,
        };
        let (items, info) = self.read_page(&resp)?;
        Ok(((items, resp.body), info))
    }
}

#[cfg(test)]
#[path = "client_tests.rs"]
mod tests;
