//! The Autotask REST client on top of the shared upstream plumbing: header auth
//! (`ApiIntegrationCode`, `UserName`, `Secret`, F2.1), the zone looked up from the user name
//! and kept ([`super::zone`]), queries POSTed with the filter grammar (F3.4) and followed
//! through the absolute `nextPageUrl`, POSTed again with the same body (F3.14), at most
//! [`THREADS_PER_ENTITY`] calls in flight per entity (F5.4), `{"item": null}` for a missing id
//! (F5.9), and `{"errors": [...]}` answers — 500 for what other APIs call 4xx (F5.8) — failing
//! at once with the API's words instead of being retried. 429 (the hourly threshold) pauses
//! every call through the shared client.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use chrono::{NaiveDate, Utc};
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use super::models::{Created, Page, Single, ThresholdInfo, ZoneInfo};
use super::zone::{CachedZone, ZoneCache};
use crate::billing::BillingError;
use crate::config::{AutotaskConfig, Secret};
use crate::upstream::{
    Credentials, Endpoint, RetryPolicy, SeenIds, StatsSnapshot, UpstreamClient, UpstreamError,
    UpstreamSpec,
};

/// The upstream name used in errors, logs and metrics.
pub const UPSTREAM: &str = "autotask";

/// The API version path below the zone's REST root (F1.6).
pub const API_VERSION: &str = "v1.0";

/// Rows asked for per page: the API's maximum (F3.9).
pub const PAGE_SIZE: usize = 500;

/// Calls in flight at once per entity: the API's thread limit per integration (F5.4).
pub const THREADS_PER_ENTITY: usize = 3;

/// Ids per `in` condition: the API's limit on OR conditions per query (F3.18).
pub const MAX_IN_VALUES: usize = 500;

/// The most pages one query may have before it is considered runaway.
const MAX_PAGES: u64 = 100_000;

/// The entities mpsync calls, each with its own thread limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Entity {
    /// `Companies`.
    Companies,
    /// `Contracts`.
    Contracts,
    /// `ContractServices`.
    ContractServices,
    /// `ContractServiceUnits`.
    ContractServiceUnits,
    /// `ContractServiceBundles`.
    ContractServiceBundles,
    /// `ThresholdInformation` (counts against the threshold itself).
    ThresholdInformation,
    /// `ContractServiceAdjustments` (create-only: the write-back).
    ContractServiceAdjustments,
}

impl Entity {
    const ALL: [Entity; 7] = [
        Entity::Companies,
        Entity::Contracts,
        Entity::ContractServices,
        Entity::ContractServiceUnits,
        Entity::ContractServiceBundles,
        Entity::ThresholdInformation,
        Entity::ContractServiceAdjustments,
    ];

    /// The entity's name in paths.
    pub fn name(self) -> &'static str {
        match self {
            Entity::Companies => "Companies",
            Entity::Contracts => "Contracts",
            Entity::ContractServices => "ContractServices",
            Entity::ContractServiceUnits => "ContractServiceUnits",
            Entity::ContractServiceBundles => "ContractServiceBundles",
            Entity::ThresholdInformation => "ThresholdInformation",
            Entity::ContractServiceAdjustments => "ContractServiceAdjustments",
        }
    }

    fn query_pattern(self) -> &'static str {
        match self {
            Entity::Companies => "/Companies/query",
            Entity::Contracts => "/Contracts/query",
            Entity::ContractServices => "/ContractServices/query",
            Entity::ContractServiceUnits => "/ContractServiceUnits/query",
            Entity::ContractServiceBundles => "/ContractServiceBundles/query",
            Entity::ThresholdInformation => "/ThresholdInformation",
            Entity::ContractServiceAdjustments => "/ContractServiceAdjustments",
        }
    }

    fn next_pattern(self) -> &'static str {
        match self {
            Entity::Companies => "/Companies/query/next",
            Entity::Contracts => "/Contracts/query/next",
            Entity::ContractServices => "/ContractServices/query/next",
            Entity::ContractServiceUnits => "/ContractServiceUnits/query/next",
            Entity::ContractServiceBundles => "/ContractServiceBundles/query/next",
            Entity::ThresholdInformation => "/ThresholdInformation",
            Entity::ContractServiceAdjustments => "/ContractServiceAdjustments",
        }
    }

    fn item_pattern(self) -> &'static str {
        match self {
            Entity::Companies => "/Companies/{id}",
            Entity::Contracts => "/Contracts/{id}",
            Entity::ContractServices => "/ContractServices/{id}",
            Entity::ContractServiceUnits => "/ContractServiceUnits/{id}",
            Entity::ContractServiceBundles => "/ContractServiceBundles/{id}",
            Entity::ThresholdInformation => "/ThresholdInformation",
            Entity::ContractServiceAdjustments => "/ContractServiceAdjustments",
        }
    }
}

/// One filter condition (F3.4): `{"op": op, "field": field, "value": value}`.
pub fn cond(op: &str, field: &str, value: Value) -> Value {
    json!({ "op": op, "field": field, "value": value })
}

/// A day as Autotask filters take a datetime (F5.11): midnight, no zone.
pub fn day_value(day: NaiveDate) -> Value {
    Value::String(format!("{}T00:00:00", day.format("%Y-%m-%d")))
}

/// A read-only Autotask client. Cheap to clone; clones share the budget, the zone and the
/// thread limits.
#[derive(Clone)]
pub struct AutotaskClient {
    /// Authenticated calls; its base is replaced by the zone's for each call.
    http: UpstreamClient,
    /// The zone lookup: no credentials sent.
    lookup: UpstreamClient,
    username: String,
    configured: Option<url::Url>,
    zone: Arc<Mutex<Option<CachedZone>>>,
    /// One lookup at a time: concurrent queries wait for it instead of looking up too.
    lookups: Arc<tokio::sync::Mutex<()>>,
    cache: Option<Arc<dyn ZoneCache>>,
    threads: Arc<HashMap<Entity, Arc<Semaphore>>>,
}

impl std::fmt::Debug for AutotaskClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AutotaskClient")
            .field("configured", &self.configured.as_ref().map(url::Url::as_str))
            .field("zone_cached", &self.cache.is_some())
            .finish_non_exhaustive()
    }
}

/// Autotask answers 500 with `{"errors": [...]}` for permission, credential and query
/// problems (F5.8): trying again cannot help. A thread- or request-threshold message is
/// the exception (F5.5), as is any other 5xx body (an outage).
fn permanent(status: u16, body: &[u8]) -> bool {
    if status != 500 {
        return false;
    }
    let Ok(v) = serde_json::from_slice::<Value>(body) else { return false };
    let Some(errors) = v.get("errors").and_then(Value::as_array).filter(|a| !a.is_empty()) else {
        return false;
    };
    !errors.iter().any(|e| e.as_str().unwrap_or("").to_ascii_lowercase().contains("threshold"))
}

impl AutotaskClient {
    /// Builds the client from the validated config with the default retry policy.
    pub fn new(cfg: &AutotaskConfig) -> Result<AutotaskClient, UpstreamError> {
        Self::with_retry(cfg, RetryPolicy::default())
    }

    /// Builds the client with a specific retry policy (tests shorten the waits).
    pub fn with_retry(
        cfg: &AutotaskConfig,
        retry: RetryPolicy,
    ) -> Result<AutotaskClient, UpstreamError> {
        let Credentials { auth_headers, redact } = Self::credentials(cfg);
        let credential = format!(
            "billing.autotask.username and the API user's integration code and secret \
             (integration_code_file {}, secret_file {}); the user must be an active API-only \
             user",
            cfg.integration_code.origin(),
            cfg.secret.origin()
        );
        let spec = UpstreamSpec {
            name: UPSTREAM.into(),
            base_url: cfg.base_url.clone().unwrap_or_else(|| cfg.zone_lookup_url.clone()),
            limits: cfg.limits.clone(),
            auth_headers: auth_headers.clone(),
            credential,
            retry: retry.clone(),
            redact: redact.clone(),
        };
        let lookup = UpstreamSpec {
            name: UPSTREAM.into(),
            base_url: cfg.zone_lookup_url.clone(),
            limits: cfg.limits.clone(),
            auth_headers: Vec::new(),
            credential: "billing.autotask.username (the zone lookup sends no keys)".into(),
            retry,
            // Never sent there, but cut should the lookup echo one.
            redact: auth_headers.into_iter().map(|(_, s)| s).chain(redact).collect(),
        };
        let threads = Entity::ALL
            .iter()
            .map(|e| (*e, Arc::new(Semaphore::new(THREADS_PER_ENTITY))))
            .collect();
        Ok(AutotaskClient {
            http: UpstreamClient::with_rule(spec, Some(permanent))?,
            lookup: UpstreamClient::with_rule(lookup, Some(permanent))?,
            username: cfg.username.clone(),
            configured: cfg.base_url.clone(),
            zone: Arc::new(Mutex::new(None)),
            lookups: Arc::new(tokio::sync::Mutex::new(())),
            cache: None,
            threads: Arc::new(threads),
        })
    }

    /// The same client keeping the looked-up zone in `cache` as well as in memory.
    pub fn with_zone_cache(mut self, cache: Arc<dyn ZoneCache>) -> AutotaskClient {
        self.cache = Some(cache);
        self
    }

    /// The three auth headers (F2.1); the user name is sent as a header too, so it is
    /// treated like the secrets (never shown).
    pub fn credentials(cfg: &AutotaskConfig) -> Credentials {
        let user = Secret::new(cfg.username.clone(), "billing.autotask.username");
        Credentials {
            auth_headers: vec![
                ("ApiIntegrationCode".into(), cfg.integration_code.clone()),
                ("UserName".into(), user),
                ("Secret".into(), cfg.secret.clone()),
            ],
            redact: Vec::new(),
        }
    }

    /// A clone that shares the budget, zone and thread limits but counts requests afresh.
    pub fn scoped(&self) -> AutotaskClient {
        AutotaskClient { http: self.http.scoped(), lookup: self.lookup.scoped(), ..self.clone() }
    }

    /// Requests made by this scope so far: the API's, then the zone lookup's.
    pub fn stats(&self) -> Vec<StatsSnapshot> {
        let lookup = self.lookup.stats();
        let mut out = vec![self.http.stats()];
        if lookup.total_requests() > 0 {
            out.push(lookup);
        }
        out
    }

    /// Every configured secret of this client with its derived forms.
    pub fn scrubber(&self) -> &crate::upstream::Scrubber {
        self.http.scrubber()
    }

    /// The shared upstream client (answer interpreter, JSON parsing, error helpers).
    pub fn upstream(&self) -> &UpstreamClient {
        &self.http
    }

    /// The zone's REST root: the configured `base_url`, else the zone kept for this user
    /// (memory, then the cache) if still fresh, else a lookup. `refused`: the zone whose
    /// answer was a 401, which is not used again (unless the lookup names it).
    pub async fn zone_url(&self, refused: Option<&url::Url>) -> Result<url::Url, UpstreamError> {
        if let Some(u) = &self.configured {
            return Ok(u.clone());
        }
        let _one = self.lookups.lock().await;
        let now = Utc::now();
        let usable = |z: &CachedZone| {
            z.usable(&self.username, now)
                && refused.is_none_or(|r| url::Url::parse(&z.url).ok().as_ref() != Some(r))
        };
        let mem = self.zone.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let mut known = mem.filter(usable);
        if known.is_none()
            && refused.is_none()
            && let Some(cache) = &self.cache
        {
            known = cache.load().await.filter(usable);
        }
        if let Some(z) = known
            && let Ok(u) = url::Url::parse(&z.url)
        {
            *self.zone.lock().unwrap_or_else(|e| e.into_inner()) = Some(z);
            return Ok(u);
        }
        let (zone, url) = self.discover().await?;
        *self.zone.lock().unwrap_or_else(|e| e.into_inner()) = Some(zone.clone());
        if let Some(cache) = &self.cache {
            cache.save(zone).await;
        }
        Ok(url)
    }

    /// The zone kept now, if any (for `mpsync check`).
    pub fn known_zone(&self) -> Option<CachedZone> {
        self.zone.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// `GET /v1.0/zoneInformation?user=` (F1.2), without credentials.
    async fn discover(&self) -> Result<(CachedZone, url::Url), UpstreamError> {
        let ep = Endpoint::get(format!("/{API_VERSION}/zoneInformation"), "/zoneInformation");
        let resp =
            self.lookup.get(&ep, &[("user", self.username.clone())]).await.map_err(
                |e| match e {
                    UpstreamError::Rejected { upstream, endpoint, message, .. } => {
                        UpstreamError::Unauthorized {
                            upstream,
                            endpoint,
                            credential: "billing.autotask.username: Autotask knows no API user by \
                                     that name (or set billing.autotask.base_url to the zone)"
                                .into(),
                            message,
                        }
                    }
                    other => other,
                },
            )?;
        let info: ZoneInfo = self.lookup.parse_json(&resp)?;
        let url = url::Url::parse(info.url.trim())
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https"))
            .ok_or_else(|| {
                self.lookup.bad_response(&resp.endpoint, "the zone's url is not a URL", &resp.body)
            })?;
        tracing::info!(zone = info.zone_name.as_deref().unwrap_or("?"), url = %url,
            "autotask: zone looked up");
        let zone = CachedZone {
            username: self.username.clone(),
            url: url.to_string(),
            zone_name: info.zone_name,
            discovered_at: Utc::now(),
        };
        Ok((zone, url))
    }

    /// Runs `call` against the zone; after a 401 on a looked-up zone, looks the zone up again
    /// and, if the database moved, runs it once more there (F1.8).
    async fn in_zone<T, F, Fut>(&self, call: F) -> Result<T, BillingError>
    where
        F: Fn(UpstreamClient) -> Fut,
        Fut: Future<Output = Result<T, BillingError>>,
    {
        let base = self.zone_url(None).await?;
        match call(self.http.rebased(&base)).await {
            Err(BillingError::Upstream(e @ UpstreamError::Unauthorized { .. }))
                if self.configured.is_none() =>
            {
                let again = self.zone_url(Some(&base)).await?;
                if again == base {
                    return Err(e.into());
                }
                tracing::warn!(from = %base, to = %again,
                    "autotask: credentials refused in the kept zone; the database moved zones");
                call(self.http.rebased(&again)).await
            }
            other => other,
        }
    }

    async fn thread(&self, entity: Entity) -> OwnedSemaphorePermit {
        self.threads[&entity].clone().acquire_owned().await.expect("the semaphore is never closed")
    }

    /// Every row of `entity` matching `filter` (top-level conditions are ANDed), all pages.
    pub async fn query<T: DeserializeOwned + crate::upstream::HasId>(
        &self,
        entity: Entity,
        filter: Vec<Value>,
        cancel: &CancellationToken,
    ) -> Result<Vec<T>, BillingError> {
        let body = json!({ "MaxRecords": PAGE_SIZE, "filter": filter });
        self.in_zone(|http| self.query_at(http, entity, &body, true, cancel)).await
    }

    /// The first row of `entity` matching `filter` (`MaxRecords` 1, no paging): none when
    /// nothing matches or the API user may not see the entity (F2.6).
    pub async fn query_first<T: DeserializeOwned + crate::upstream::HasId>(
        &self,
        entity: Entity,
        filter: Vec<Value>,
        cancel: &CancellationToken,
    ) -> Result<Vec<T>, BillingError> {
        let body = json!({ "MaxRecords": 1, "filter": filter });
        self.in_zone(|http| self.query_at(http, entity, &body, false, cancel)).await
    }

    /// Every row of `entity` whose `field` is one of `ids`, in queries of at most
    /// [`MAX_IN_VALUES`] ids (run up to [`THREADS_PER_ENTITY`] at once), each with `extra`
    /// conditions.
    pub async fn query_in<T: DeserializeOwned + crate::upstream::HasId>(
        &self,
        entity: Entity,
        field: &str,
        ids: &[u64],
        extra: &[Value],
        cancel: &CancellationToken,
    ) -> Result<Vec<T>, BillingError> {
        use futures_util::{StreamExt, TryStreamExt, stream};
        let batches: Vec<Vec<Value>> = ids
            .chunks(MAX_IN_VALUES)
            .map(|chunk| {
                let mut f = vec![cond("in", field, json!(chunk))];
                f.extend(extra.iter().cloned());
                f
            })
            .collect();
        let pages: Vec<Vec<T>> = stream::iter(batches)
            .map(|f| self.query::<T>(entity, f, cancel))
            .buffered(THREADS_PER_ENTITY)
            .try_collect()
            .await?;
        Ok(pages.into_iter().flatten().collect())
    }

    /// One query, page after page (only the first unless `follow`): each `nextPageUrl`
    /// POSTed again with `body`.
    async fn query_at<T: DeserializeOwned + crate::upstream::HasId>(
        &self,
        http: UpstreamClient,
        entity: Entity,
        body: &Value,
        follow: bool,
        cancel: &CancellationToken,
    ) -> Result<Vec<T>, BillingError> {
        let path = format!("/{API_VERSION}/{}/query", entity.name());
        let mut ep = Endpoint::new(Method::POST, path, entity.query_pattern());
        let (mut all, mut seen, mut page) = (Vec::new(), SeenIds::new(), 1u64);
        loop {
            if cancel.is_cancelled() {
                return Err(BillingError::Cancelled);
            }
            let resp = {
                let _thread = self.thread(entity).await;
                tokio::select! {
                    biased;
                    _ = cancel.cancelled() => return Err(BillingError::Cancelled),
                    r = http.send(&ep, &[], Some(body), true) => r.map_err(explain)?,
                }
            };
            let p: Page<T> = http.parse_json(&resp)?;
            let fresh = seen
                .fresh(page, p.items)
                .map_err(|m| http.bad_response(&resp.endpoint, m.0, &resp.body))?;
            all.extend(fresh);
            let next =
                p.page_details.and_then(|d| d.next_page_url).filter(|u| !u.trim().is_empty());
            let Some(next) = next.filter(|_| follow) else { return Ok(all) };
            page += 1;
            if page > MAX_PAGES {
                let reason = format!("the query did not end after {MAX_PAGES} pages");
                return Err(http.bad_response(&resp.endpoint, reason, b"").into());
            }
            let path = next_path(http.base(), &next)
                .map_err(|m| http.bad_response(&resp.endpoint, m.0, b""))?;
            ep = Endpoint::new(Method::POST, path, entity.next_pattern());
        }
    }

    /// `GET /v1.0/{Entity}/{id}`: the record, or `None` for `{"item": null}` (F5.9).
    pub async fn get_one<T: DeserializeOwned>(
        &self,
        entity: Entity,
        id: u64,
    ) -> Result<Option<T>, BillingError> {
        self.in_zone(|http| async move {
            let path = format!("/{API_VERSION}/{}/{id}", entity.name());
            let ep = Endpoint::get(path, entity.item_pattern());
            let resp = {
                let _thread = self.thread(entity).await;
                http.get(&ep, &[]).await.map_err(explain)?
            };
            let single: Single<T> = http.parse_json(&resp)?;
            Ok(single.item)
        })
        .await
    }

    /// `POST /v1.0/{Entity}` with `body`, sent once (a create is not idempotent: no retry
    /// after a failure that may have created it; a 401 in a looked-up zone is tried once more
    /// in the zone looked up again, as nothing was created). The new record's `itemId`
    /// (F5.10).
    pub async fn create(&self, entity: Entity, body: &Value) -> Result<u64, BillingError> {
        self.in_zone(|http| async move {
            let ep = Self::create_endpoint(entity);
            let resp = {
                let _thread = self.thread(entity).await;
                http.send(&ep, &[], Some(body), false).await.map_err(explain)?
            };
            let created: Created = http.parse_json(&resp)?;
            Ok(created.item_id)
        })
        .await
    }

    /// The call [`AutotaskClient::create`] makes, credentials redacted, on the zone kept (or
    /// configured; the lookup root when none is known yet: a dry run sends nothing).
    pub fn describe_create(&self, entity: Entity, body: &Value) -> crate::upstream::PlannedRequest {
        let known = self.configured.clone().or_else(|| {
            let z = self.zone.lock().unwrap_or_else(|e| e.into_inner()).clone();
            z.and_then(|z| url::Url::parse(&z.url).ok())
        });
        let http = match known {
            Some(base) => self.http.rebased(&base),
            None => self.http.clone(),
        };
        http.describe(&Self::create_endpoint(entity), &[], Some(body))
    }

    fn create_endpoint(entity: Entity) -> Endpoint {
        Endpoint::new(
            Method::POST,
            format!("/{API_VERSION}/{}", entity.name()),
            entity.query_pattern(),
        )
    }

    /// `GET /v1.0/ThresholdInformation` (F5.3): the database's use of its hourly threshold.
    pub async fn threshold(&self) -> Result<ThresholdInfo, BillingError> {
        let entity = Entity::ThresholdInformation;
        self.in_zone(|http| async move {
            let ep = Endpoint::get(
                format!("/{API_VERSION}/ThresholdInformation"),
                entity.query_pattern(),
            );
            let resp = {
                let _thread = self.thread(entity).await;
                http.get(&ep, &[]).await.map_err(explain)?
            };
            Ok(http.parse_json(&resp)?)
        })
        .await
    }
}

/// The path (and query) of an absolute `nextPageUrl` below `base`, the zone's REST root it
/// must be on: mpsync sends its credentials to no other host (F3.13). Path case is ignored
/// (F1.6).
pub fn next_path(base: &str, next: &str) -> Result<String, crate::upstream::Malformed> {
    let b = url::Url::parse(base).map_err(|e| format!("the base {base:?} is not a URL: {e}"))?;
    let n = url::Url::parse(next.trim())
        .map_err(|e| format!("the nextPageUrl {next:?} is not an absolute URL: {e}"))?;
    let same_host = n.scheme() == b.scheme()
        && n.host_str().map(str::to_ascii_lowercase) == b.host_str().map(str::to_ascii_lowercase)
        && n.port_or_known_default() == b.port_or_known_default();
    let root = b.path().trim_end_matches('/');
    let path = n.path();
    let below = path.len() > root.len()
        && path.is_char_boundary(root.len())
        && path[..root.len()].eq_ignore_ascii_case(root)
        && path[root.len()..].starts_with('/');
    if !(same_host && below) {
        return Err(format!(
            "the nextPageUrl points outside the zone's REST root {base}; mpsync sends its \
             credentials nowhere else"
        )
        .into());
    }
    let query = n.query().map(|q| format!("?{q}")).unwrap_or_default();
    Ok(format!("{}{query}", &path[root.len()..]))
}

/// What Autotask's errors mean for the operator: a 500 naming the credentials is a 401 in
/// other APIs (F2.7); one naming permissions, or a 403, names the security level (F2.6).
pub(crate) fn explain(e: UpstreamError) -> UpstreamError {
    const LEVEL: &str = "give the API user a security level that can see Companies and \
                         Contracts (API User (API-only), or a copy with contract access)";
    match e {
        UpstreamError::Rejected { upstream, endpoint, status: 500, message, .. }
            if message.to_ascii_lowercase().contains("authentication")
                || message.to_ascii_lowercase().contains("credential") =>
        {
            UpstreamError::Unauthorized {
                upstream,
                endpoint,
                credential: "billing.autotask.username and the integration code (Autotask \
                             answers 500 for an unknown user or integration code)"
                    .into(),
                message,
            }
        }
        UpstreamError::Rejected { upstream, endpoint, status: 500, message, .. }
            if message.to_ascii_lowercase().contains("permission") =>
        {
            UpstreamError::Forbidden {
                upstream,
                endpoint,
                credential: "billing.autotask.username".into(),
                message: format!("{message}; {LEVEL}"),
            }
        }
        UpstreamError::Forbidden { upstream, endpoint, credential, message } => {
            UpstreamError::Forbidden {
                upstream,
                endpoint,
                credential,
                message: format!("{message}; {LEVEL}"),
            }
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_next_page_url_is_followed_only_below_the_zone_root() {
        let base = "https://webservices5.autotask.net/ATServicesRest";
        let next = "https://WEBSERVICES5.autotask.net/atservicesrest/V1.0/Companies/query/next\
                    ?paging=%7B%22pageSize%22%3A500%7D";
        assert_eq!(
            next_path(base, next).unwrap(),
            "/V1.0/Companies/query/next?paging=%7B%22pageSize%22%3A500%7D"
        );
        for bad in [
            "https://evil.example/ATServicesRest/V1.0/Companies/query/next",
            "http://webservices5.autotask.net/ATServicesRest/V1.0/x",
            "https://webservices5.autotask.net/Other/V1.0/x",
            "https://webservices5.autotask.net/ATServicesRestX/V1.0/x",
            "/ATServicesRest/V1.0/Companies/query/next",
        ] {
            assert!(next_path(base, bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn errors_bodies_fail_at_once_unless_they_name_a_threshold() {
        assert!(permanent(
            500,
            br#"{"errors":["The logged in Resource does not have the adequate permissions"]}"#
        ));
        assert!(!permanent(
            500,
            br#"{"errors":["Thread threshold of 3 exceeded (Itgenatr005)."]}"#
        ));
        assert!(!permanent(500, br#"{"Message":"An error has occurred."}"#));
        assert!(!permanent(503, br#"{"errors":["down"]}"#));
        assert!(!permanent(500, b"<html>"));
    }
}
