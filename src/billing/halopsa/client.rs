//! The HaloPSA REST client on top of the shared upstream plumbing: an OAuth2
//! client-credentials token from `auth_url/token` (tenant as `?tenant=`, F2–F4) sent as
//! `Authorization: Bearer`, renewed before it expires and once after a 401, then the call
//! replayed (F9); lists always asked for with `pageinate=true&page_size=&page_no=` (F15) and
//! read as an envelope or a bare array (F13–F14), stopping on an empty page, when
//! `record_count` rows were seen, or on a page of ids already seen (§3.2); a 429 with a text
//! body waits 30 s and more (Retry-After honoured when sent, F39–F40) through the shared
//! pause gate; a 403 names the scope the route needs, and that the agent's role may deny it
//! too (F7). The token never reaches a log, a `Debug` or an error.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::token::{Clock, Token, system_clock};
use crate::billing::BillingError;
use crate::config::{HalopsaConfig, Secret};
use crate::upstream::{
    Credentials, Endpoint, HasId, PlannedRequest, RetryPolicy, Scrubber, SeenIds, StatsSnapshot,
    UpstreamClient, UpstreamError, UpstreamResponse, UpstreamSpec,
};

/// The upstream name used in errors, logs and metrics.
pub const UPSTREAM: &str = "halopsa";

/// Rows asked for per page. Halo documents no maximum; public clients ask for 999–1000
/// (F15), and a smaller page the server chooses is still read whole (the walk stops on an
/// empty page or `record_count`, not on a short page).
pub const PAGE_SIZE: usize = 1000;

/// The most pages one listing may have before it is considered runaway.
const MAX_PAGES: u64 = 100_000;

/// Where the scopes are granted, for messages.
pub const WHERE_SCOPES: &str = "Configuration > Integrations > HaloPSA API > View Applications \
                                > (the application) > Permissions";

/// The list resources mpsync reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Resource {
    /// `/Client`.
    Client,
    /// `/ClientContract`.
    ClientContract,
    /// `/Item`.
    Item,
    /// `/RecurringInvoice`.
    RecurringInvoice,
}

impl Resource {
    /// Every resource, in the order `mpsync check` probes them.
    pub const ALL: [Resource; 4] =
        [Resource::Client, Resource::ClientContract, Resource::Item, Resource::RecurringInvoice];

    /// The list path below `/api`.
    pub fn path(self) -> &'static str {
        match self {
            Resource::Client => "/Client",
            Resource::ClientContract => "/ClientContract",
            Resource::Item => "/Item",
            Resource::RecurringInvoice => "/RecurringInvoice",
        }
    }

    /// The single-record route pattern.
    fn one_pattern(self) -> &'static str {
        match self {
            Resource::Client => "/Client/{id}",
            Resource::ClientContract => "/ClientContract/{id}",
            Resource::Item => "/Item/{id}",
            Resource::RecurringInvoice => "/RecurringInvoice/{id}",
        }
    }

    /// The envelope's array key (F13).
    pub fn key(self) -> &'static str {
        match self {
            Resource::Client => "clients",
            Resource::ClientContract => "contracts",
            Resource::Item => "items",
            Resource::RecurringInvoice => "invoices",
        }
    }

    /// The scope that reads it.
    pub fn scope(self) -> &'static str {
        match self {
            Resource::Client => "read:customers",
            Resource::ClientContract => "read:contracts",
            Resource::Item => "read:items",
            Resource::RecurringInvoice => "read:invoices",
        }
    }

    /// What it holds, in words.
    pub fn what(self) -> &'static str {
        match self {
            Resource::Client => "clients",
            Resource::ClientContract => "client contracts",
            Resource::Item => "items",
            Resource::RecurringInvoice => "recurring invoices",
        }
    }
}

/// The retry policy of HaloPSA calls: the shared one, but a 429 without `Retry-After` waits
/// 30 s, then 30–60 s, 60–120 s, ... up to a whole 5-minute window (a 5-second pause is not
/// enough to recover, F40), and one call may wait out a 15-minute storm.
pub fn retry_policy() -> RetryPolicy {
    RetryPolicy {
        default_rate_limit_pause: Duration::from_secs(30),
        max_rate_limit_pause: Duration::from_secs(300),
        deadline: Duration::from_secs(900),
        ..RetryPolicy::default()
    }
}

/// A HaloPSA client. Cheap to clone; clones share the budget and the token.
#[derive(Clone)]
pub struct HaloClient {
    /// Calls below `base_url/api`.
    http: UpstreamClient,
    /// The token endpoint's base (`auth_url`): the same budget and accounting as `http`.
    auth: UpstreamClient,
    auth_base: url::Url,
    tenant: Option<String>,
    client_id: String,
    secret: Secret,
    scope: String,
    token: Arc<tokio::sync::Mutex<Option<Token>>>,
    generations: Arc<AtomicU64>,
    clock: Clock,
}

impl std::fmt::Debug for HaloClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HaloClient")
            .field("api", &self.http.base())
            .field("auth", &self.auth.base())
            .field("tenant", &self.tenant)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

impl HaloClient {
    /// A client that reads (the read scopes, unless `scope` is configured).
    pub fn new(cfg: &HalopsaConfig) -> Result<HaloClient, UpstreamError> {
        Self::build(cfg, false, retry_policy(), system_clock())
    }

    /// A client asking for the scopes of a write-back too (`edit:invoices`).
    pub fn for_writing(cfg: &HalopsaConfig) -> Result<HaloClient, UpstreamError> {
        Self::build(cfg, true, retry_policy(), system_clock())
    }

    /// A client with a specific retry policy and clock (tests shorten the waits and move
    /// time); `write` asks for the write-back's scope too.
    pub fn build(
        cfg: &HalopsaConfig,
        write: bool,
        retry: RetryPolicy,
        clock: Clock,
    ) -> Result<HaloClient, UpstreamError> {
        Self::with_scope(cfg, cfg.scope_for(write), retry, clock)
    }

    fn with_scope(
        cfg: &HalopsaConfig,
        scope: String,
        retry: RetryPolicy,
        clock: Clock,
    ) -> Result<HaloClient, UpstreamError> {
        let Credentials { auth_headers, redact } = Self::credentials(cfg);
        let spec = UpstreamSpec {
            name: UPSTREAM.into(),
            base_url: cfg.api_url(),
            limits: cfg.limits.clone(),
            auth_headers,
            credential: credential_text(cfg),
            retry,
            redact,
        };
        let http = UpstreamClient::new(spec)?;
        let mut auth_base = cfg.auth_url.clone();
        auth_base.set_query(None);
        let auth = http.rebased(&auth_base);
        Ok(HaloClient {
            http,
            auth,
            auth_base,
            tenant: cfg.tenant.clone(),
            client_id: cfg.client_id.clone(),
            secret: cfg.client_secret.clone(),
            scope,
            token: Arc::new(tokio::sync::Mutex::new(None)),
            generations: Arc::new(AtomicU64::new(0)),
            clock,
        })
    }

    /// What the client sends that must never be shown: the client secret (the token is
    /// fetched at run time and cut out of errors by the client itself).
    pub fn credentials(cfg: &HalopsaConfig) -> Credentials {
        Credentials { auth_headers: Vec::new(), redact: vec![cfg.client_secret.clone()] }
    }

    /// A clone that shares the budget and token but counts requests afresh.
    pub fn scoped(&self) -> HaloClient {
        let http = self.http.scoped();
        let auth = http.rebased(&self.auth_base);
        HaloClient { http, auth, ..self.clone() }
    }

    /// Requests made by this scope so far (token requests included).
    pub fn stats(&self) -> Vec<StatsSnapshot> {
        vec![self.http.stats()]
    }

    /// The shared upstream client (JSON parsing, error helpers).
    pub fn upstream(&self) -> &UpstreamClient {
        &self.http
    }

    /// The scopes this client asks for.
    pub fn scope(&self) -> &str {
        &self.scope
    }

    /// Sends one call with the token; after a 401, fetches a new token once and replays the
    /// call (a 401 means it was not carried out). A 403 names `scope`.
    pub async fn call(
        &self,
        endpoint: &Endpoint,
        query: &[(&str, String)],
        json: Option<&Value>,
        scope: &str,
        idempotent: bool,
    ) -> Result<UpstreamResponse, UpstreamError> {
        let t = self.token().await?;
        let first = self.http.send_bearer(endpoint, query, json, &t.value, idempotent).await;
        let out = match first {
            Err(UpstreamError::Unauthorized { .. }) => {
                tracing::info!(endpoint = %endpoint.label(),
                    "halopsa: the access token was refused (401); fetching a new one");
                let fresh = self.renew(t.generation).await?;
                let again =
                    self.http.send_bearer(endpoint, query, json, &fresh.value, idempotent).await;
                match again {
                    Err(UpstreamError::Unauthorized { upstream, endpoint, message, .. }) => {
                        Err(UpstreamError::Unauthorized {
                            upstream,
                            endpoint,
                            credential: format!(
                                "{} (a freshly fetched token was refused too: is the API \
                                 application active, and the agent it logs in as enabled?)",
                                self.http_credential()
                            ),
                            message,
                        })
                    }
                    other => other.map_err(|e| e.scrubbed(&token_scrubber(&fresh))),
                }
            }
            other => other,
        };
        out.map_err(|e| explain(e.scrubbed(&token_scrubber(&t)), scope))
    }

    /// `GET` of one record (`/RecurringInvoice/{id}`): the bare object (F19–F20).
    pub async fn get_one<T: DeserializeOwned>(
        &self,
        r: Resource,
        id: i64,
    ) -> Result<T, UpstreamError> {
        let ep = Endpoint::get(format!("{}/{id}", r.path()), r.one_pattern());
        let resp = self.call(&ep, &[], None, r.scope(), true).await?;
        let v: Value = self.http.parse_json(&resp)?;
        let row = match v {
            Value::Object(o) if o.contains_key("id") => Value::Object(o),
            other => {
                let shown = other.to_string();
                return Err(self.http.bad_response(
                    &resp.endpoint,
                    format!("expected the {} record {id} as an object with an id", r.what()),
                    shown.as_bytes(),
                ));
            }
        };
        serde_json::from_value(row).map_err(|e| {
            self.http.bad_response(&resp.endpoint, format!("record {id}: {e}"), &resp.body)
        })
    }

    /// Every row of a list, page by page (see the module docs for the stop rules); `filters`
    /// are sent with the paging trio. Honours `cancel` between pages.
    pub async fn list<T: DeserializeOwned + HasId>(
        &self,
        r: Resource,
        filters: &[(&str, String)],
        cancel: &CancellationToken,
    ) -> Result<Vec<T>, BillingError> {
        let mut seen = SeenIds::new();
        let mut out: Vec<T> = Vec::new();
        for page in 1..=MAX_PAGES {
            if cancel.is_cancelled() {
                return Err(BillingError::Cancelled);
            }
            let (rows, total) = self.page(r, filters, page, PAGE_SIZE).await?;
            if rows.is_empty() {
                return Ok(out);
            }
            let fresh = match seen.fresh(page, rows) {
                Ok(f) => f,
                Err(why) => match total {
                    Some(t) if (out.len() as u64) < t => {
                        let reason = format!("{why}: {} of {t} {} read", out.len(), r.what());
                        return Err(self.http.bad_response(&list_label(r), reason, b"").into());
                    }
                    // Without a total, a page of repeats is where the list ends.
                    _ => return Ok(out),
                },
            };
            out.extend(fresh);
            if total.is_some_and(|t| out.len() as u64 >= t) {
                return Ok(out);
            }
        }
        let reason = format!("more than {MAX_PAGES} pages of {}", r.what());
        Err(self.http.bad_response(&list_label(r), reason, b"").into())
    }

    /// One page: its rows (parsed) and `record_count` when the envelope has one.
    pub async fn page<T: DeserializeOwned>(
        &self,
        r: Resource,
        filters: &[(&str, String)],
        page: u64,
        size: usize,
    ) -> Result<(Vec<T>, Option<u64>), UpstreamError> {
        let ep = Endpoint::get(r.path(), r.path());
        let mut query: Vec<(&str, String)> = filters.to_vec();
        query.extend([
            ("pageinate", "true".to_owned()),
            ("page_size", size.to_string()),
            ("page_no", page.to_string()),
        ]);
        let resp = self.call(&ep, &query, None, r.scope(), true).await?;
        let body: Value = self.http.parse_json(&resp)?;
        let (rows, total) = unwrap_list(body, r.key())
            .map_err(|why| self.http.bad_response(&resp.endpoint, why, &resp.body))?;
        let parsed = rows
            .into_iter()
            .enumerate()
            .map(|(i, row)| {
                serde_json::from_value::<T>(row).map_err(|e| {
                    let reason = format!("row {} of page {page}: {e}", i + 1);
                    self.http.bad_response(&resp.endpoint, reason, b"")
                })
            })
            .collect::<Result<Vec<T>, _>>()?;
        Ok((parsed, total))
    }

    /// The request a call would make, the token shown as `<redacted>` (for dry runs).
    pub fn describe(
        &self,
        endpoint: &Endpoint,
        query: &[(&str, String)],
        json: Option<&Value>,
    ) -> PlannedRequest {
        let mut planned = self.http.describe(endpoint, query, json);
        let at = planned.headers.iter().position(|(n, _)| n == "Accept").map_or(0, |i| i + 1);
        planned.headers.insert(
            at,
            ("Authorization".to_owned(), format!("Bearer {}", crate::upstream::REDACTED)),
        );
        planned
    }
}

/// `GET /Client` and so on, as errors name a list.
fn list_label(r: Resource) -> String {
    format!("GET {}", r.path())
}

/// A scrubber for one token (cut from errors, should Halo echo it).
fn token_scrubber(t: &Token) -> Scrubber {
    Scrubber::new([t.value.expose()])
}

/// The text naming the credentials in 401 errors.
fn credential_text(cfg: &HalopsaConfig) -> String {
    format!(
        "billing.halopsa.client_id ({}) and the secret file {}",
        cfg.client_id,
        cfg.client_secret.origin()
    )
}

/// The rows of a list answer and its `record_count`: an envelope `{"record_count": N,
/// "<key>": [...]}` (the key matched without regard to case, `record_count` optional, a
/// number or a numeric string), or a bare array (F13–F14, §3.2 item 1).
pub fn unwrap_list(body: Value, key: &str) -> Result<(Vec<Value>, Option<u64>), String> {
    match body {
        Value::Array(rows) => Ok((rows, None)),
        Value::Object(mut o) => {
            let total = o.iter().find(|(k, _)| k.eq_ignore_ascii_case("record_count")).and_then(
                |(_, v)| match v {
                    Value::Number(n) => n.as_u64(),
                    Value::String(s) => s.trim().parse().ok(),
                    _ => None,
                },
            );
            let name = o.keys().find(|k| k.eq_ignore_ascii_case(key)).cloned();
            match name.and_then(|k| o.remove(&k)) {
                Some(Value::Array(rows)) => Ok((rows, total)),
                Some(Value::Null) => Ok((Vec::new(), total)),
                Some(_) => Err(format!("\"{key}\" is not an array")),
                None => Err(format!(
                    "the answer is neither an array nor an object with a \"{key}\" array"
                )),
            }
        }
        _ => Err(format!("the answer is neither an array nor an object with a \"{key}\" array")),
    }
}

/// What a 403 means here: the token lacks `scope`, or the agent's role denies it (F7).
pub(crate) fn explain(e: UpstreamError, scope: &str) -> UpstreamError {
    match e {
        UpstreamError::Forbidden { upstream, endpoint, credential, message } => {
            UpstreamError::Forbidden {
                upstream,
                endpoint,
                credential,
                message: format!(
                    "{message}; this needs scope {scope}: grant it to the API application under \
                     {WHERE_SCOPES} (and keep it in billing.halopsa.scope if set); the role of \
                     the agent the application logs in as may deny it too"
                ),
            }
        }
        other => other,
    }
}

#[path = "auth.rs"]
mod auth;

#[cfg(test)]
#[path = "client_tests.rs"]
mod tests;
