//! The simulated HaloPSA API under `/halo` (reference note `halopsa.md`, following its §3
//! "Conventions a simulator should adopt" and §3.1 sample payloads): the token endpoint at
//! `/halo/auth/token` (client credentials, the tenant as `?tenant=` or a form field, scopes),
//! the API at `/halo/api/<Resource>` with case-insensitive routes, list envelopes and
//! `pageinate` paging ([`lists`]), single GETs, the strict recurring-invoice write rules
//! ([`writes`]), expiring tokens, and the rolling five-minute rate limit per client id with
//! its text/plain 429. Requests are counted and faulted with the other simulators' (faults
//! name Halo routes by their patterns, e.g. `POST /RecurringInvoice/updatelines`).
//!
//! The base URL a client configures is `http://ADDR/halo`: the token URL is
//! `base_url + "/auth/token"`, the API `base_url + "/api"`.
//!
//! Sim choices where the note is silent (★ in the note are followed as written):
//! - Per request: faults first (hang, status, 429 storm), then the bearer token (missing,
//!   unknown or expired: 401, empty body), then the rate limit (only requests with a valid
//!   token count, per the token's client id; refused ones count too), then the scope (403,
//!   empty body). The token endpoint is neither rate limited nor scoped.
//! - No `scope` asked for at the token endpoint gives every scope the application was
//!   granted. `edit:X` does not imply `read:X`. Tenant names compare ignoring case; with no
//!   tenant configured (on-prem) a given tenant is ignored.
//! - A revoked secret (control or `kind=revoke` fault) also ends every token handed out.
//! - An unknown route answers 404 with an empty body; another method than GET/POST/DELETE
//!   405 with an empty body. Query parameter names match ignoring case (ASP.NET binding);
//!   a malformed number or boolean answers the model-binding shape.
//! - Recurring-invoice `total` sums the active lines (`isinactive` lines are not billed).
//! - An injected 5xx answers the .NET exception shape with "An error has occurred.".

mod auth;
mod binding;
pub mod control;
mod data;
mod generate;
pub mod lists;
mod routes;
pub mod writes;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard};
use std::time::Duration;

use axum::Router;
use axum::routing::any;
use serde_json::Value;
use tokio::time::Instant;

pub use auth::{DEFAULT_GRANT, covers};
pub use data::{
    DEFAULT_TENANT, FOREIGN_ITEMS, HaloCredentials, HaloData, HaloPlant, INACTIVE_ITEM, Resource,
    cents, client_id, halo_date, item_id, recompute,
};
pub use lists::ListShape;
pub use writes::{HaloWrite, LineChange};

use super::faults::{Fault, FaultKind};
use crate::dataset::SimError;
use crate::requests::RequestGate;

/// Where the simulated Halo lives on the listener: a client's `base_url` is
/// `http://ADDR/halo`.
pub const PREFIX: &str = "/halo";

/// The route patterns, as counted and as faults name them.
pub use crate::endpoints::HALOPSA as ENDPOINTS;

/// How the simulated Halo behaves; [`HaloSim::set_settings`] replaces them.
#[derive(Debug, Clone, PartialEq)]
pub struct HaloSettings {
    /// The scopes the API application was granted (`all` covers everything).
    pub granted_scopes: Vec<String>,
    /// Token lifetime in seconds (`expires_in`; default 3600).
    pub expires_in: u64,
    /// Requests per window and client id (default 700).
    pub rate_limit: u64,
    /// The rolling window (default 300 s).
    pub rate_window: Duration,
    /// Send `Retry-After` (seconds until the oldest counted request leaves the window) on a
    /// 429 (default off, as no captured answer shows one).
    pub retry_after: bool,
    /// How lists are shaped (default the envelope).
    pub list_shape: ListShape,
    /// `includelines=true` on the `/RecurringInvoice` list is ignored (rows without lines),
    /// so a client's per-invoice fallback can be tested.
    pub ignore_includelines: bool,
}

impl Default for HaloSettings {
    fn default() -> Self {
        HaloSettings {
            granted_scopes: DEFAULT_GRANT.iter().map(|s| (*s).to_owned()).collect(),
            expires_in: 3600,
            rate_limit: 700,
            rate_window: Duration::from_secs(300),
            retry_after: false,
            list_shape: ListShape::Envelope,
            ignore_includelines: false,
        }
    }
}

struct HaloState {
    data: RwLock<HaloData>,
    settings: RwLock<HaloSettings>,
    tokens: Mutex<HashMap<String, auth::Token>>,
    windows: Mutex<HashMap<String, auth::Window>>,
    skew: Mutex<Duration>,
    revoked: AtomicBool,
    writes: Mutex<Vec<HaloWrite>>,
}

/// A handle on the simulated HaloPSA. Request counters and faults are shared with the other
/// simulators (through [`SimControl`](crate::SimControl)). Cheap to clone.
#[derive(Clone)]
pub struct HaloSim {
    gate: RequestGate,
    state: Arc<HaloState>,
}

impl std::fmt::Debug for HaloSim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HaloSim").field("seed", &self.read().seed).finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl HaloSim {
    pub(crate) fn new(gate: RequestGate, data: HaloData) -> HaloSim {
        HaloSim {
            gate,
            state: Arc::new(HaloState {
                data: RwLock::new(data),
                settings: RwLock::new(HaloSettings::default()),
                tokens: Mutex::new(HashMap::new()),
                windows: Mutex::new(HashMap::new()),
                skew: Mutex::new(Duration::ZERO),
                revoked: AtomicBool::new(false),
                writes: Mutex::new(Vec::new()),
            }),
        }
    }

    /// Read access to the data. Do not hold it across `.await`.
    pub fn read(&self) -> RwLockReadGuard<'_, HaloData> {
        self.state.data.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Changes the data (someone working in the PSA), atomically for requests. Not a request:
    /// neither counted nor journaled.
    pub fn mutate<R>(&self, f: impl FnOnce(&mut HaloData) -> R) -> R {
        f(&mut self.state.data.write().unwrap_or_else(|e| e.into_inner()))
    }

    /// The current settings.
    pub fn settings(&self) -> HaloSettings {
        self.state.settings.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Replaces the settings. A new rate limit or window forgets the requests counted so far.
    pub fn set_settings(&self, settings: HaloSettings) {
        let mut s = self.state.settings.write().unwrap_or_else(|e| e.into_inner());
        if (s.rate_limit, s.rate_window) != (settings.rate_limit, settings.rate_window) {
            lock(&self.state.windows).clear();
        }
        *s = settings;
    }

    /// Changes some settings (see [`HaloSim::set_settings`]).
    pub fn update_settings(&self, f: impl FnOnce(&mut HaloSettings)) {
        let mut s = self.settings();
        f(&mut s);
        self.set_settings(s);
    }

    /// The API application it accepts (tenant, client id, client secret).
    pub fn credentials(&self) -> HaloCredentials {
        self.read().credentials.clone()
    }

    /// The tenant the token endpoint requires (`None`: on-prem, none checked).
    pub fn set_tenant(&self, tenant: Option<&str>) {
        self.mutate(|d| d.credentials.tenant = tenant.map(str::to_owned));
    }

    /// Issues a new client secret (the old one answers 401 `invalid_client`); tokens already
    /// handed out keep working until they expire.
    pub fn set_client_secret(&self, secret: &str) {
        self.mutate(|d| d.credentials.client_secret = secret.to_owned());
    }

    /// Revokes the application's secret: the token endpoint answers 401 and every token
    /// handed out ends (401 on the next call).
    pub fn revoke(&self) {
        self.state.revoked.store(true, Ordering::SeqCst);
        lock(&self.state.tokens).clear();
    }

    /// Accepts the secret again.
    pub fn restore(&self) {
        self.state.revoked.store(false, Ordering::SeqCst);
    }

    pub(crate) fn revoked(&self) -> bool {
        self.state.revoked.load(Ordering::SeqCst)
    }

    /// Ends every token handed out now: the next call with one answers 401.
    pub fn expire_tokens(&self) {
        lock(&self.state.tokens).clear();
    }

    /// Tokens handed out that have not expired.
    pub fn live_tokens(&self) -> usize {
        let now = self.now();
        lock(&self.state.tokens).values().filter(|t| t.expires > now).count()
    }

    /// Moves the simulator's clock forward (token expiry and the rate window), so tests and
    /// benchmarks need not wait.
    pub fn advance(&self, by: Duration) {
        *lock(&self.state.skew) += by;
    }

    /// The simulator's clock: tokio's (pausable) clock plus [`HaloSim::advance`]s.
    pub fn now(&self) -> Instant {
        Instant::now() + *lock(&self.state.skew)
    }

    /// `(requests of client_id in the current window, limit)`.
    pub fn rate_use(&self, client_id: &str) -> (u64, u64) {
        let s = self.settings();
        let now = self.now();
        let used =
            lock(&self.state.windows).get_mut(client_id).map_or(0, |w| w.used(now, s.rate_window));
        (used, s.rate_limit)
    }

    /// Counts a request of `client_id`: `Err(seconds until a slot frees)` when over the limit.
    pub(crate) fn spend(&self, client_id: &str) -> Result<(), u64> {
        let s = self.settings();
        let now = self.now();
        let mut w = lock(&self.state.windows);
        w.entry(client_id.to_owned()).or_default().spend(now, s.rate_window, s.rate_limit)
    }

    pub(crate) fn tokens_mut(&self) -> MutexGuard<'_, HashMap<String, auth::Token>> {
        lock(&self.state.tokens)
    }

    /// Every write the API accepted, oldest first, with the line quantities it changed
    /// (refused ones and ones a fault answered before the handler are not here; the request
    /// counts have them).
    pub fn writes(&self) -> Vec<HaloWrite> {
        lock(&self.state.writes).clone()
    }

    /// Empties the journal of writes.
    pub fn clear_writes(&self) {
        lock(&self.state.writes).clear();
    }

    pub(crate) fn journal(&self, w: HaloWrite) {
        lock(&self.state.writes).push(w);
    }

    /// One recurring invoice (header with lines) as the API serves it.
    pub fn invoice(&self, id: i64) -> Option<Value> {
        self.read().row(Resource::RecurringInvoice, id).cloned()
    }

    /// One recurring-invoice line, and the id of the invoice holding it.
    pub fn line(&self, id: i64) -> Option<(i64, Value)> {
        self.read().line(id).map(|(h, l)| (h, l.clone()))
    }

    /// Someone changed a line in the PSA: `field` becomes `value` (totals recomputed).
    pub fn set_line_field(&self, line: i64, field: &str, value: Value) -> Result<(), SimError> {
        self.mutate(|d| {
            let h = d
                .rows
                .get_mut(&Resource::RecurringInvoice)
                .and_then(|hs| hs.iter_mut().find(|h| has_line(h, line)))
                .ok_or_else(|| SimError::Invalid(format!("no recurring invoice line {line}")))?;
            for l in h["lines"].as_array_mut().into_iter().flatten() {
                if l["id"] == line {
                    l[field] = value.clone();
                }
            }
            recompute(h);
            Ok(())
        })
    }

    /// Someone changed a line's quantity in the PSA; returns the previous one.
    pub fn set_line_qty(&self, line: i64, qty: f64) -> Result<f64, SimError> {
        let before = self.line(line).and_then(|(_, l)| l["qty_order"].as_f64());
        self.set_line_field(line, "qty_order", serde_json::json!(qty))?;
        Ok(before.unwrap_or(0.0))
    }

    /// Someone deleted a line in the PSA.
    pub fn remove_line(&self, line: i64) -> Result<Value, SimError> {
        self.mutate(|d| {
            let h = d
                .rows
                .get_mut(&Resource::RecurringInvoice)
                .and_then(|hs| hs.iter_mut().find(|h| has_line(h, line)))
                .ok_or_else(|| SimError::Invalid(format!("no recurring invoice line {line}")))?;
            let lines = h["lines"].as_array_mut().expect("has_line found an array");
            let i = lines.iter().position(|l| l["id"] == line).unwrap_or(0);
            let removed = lines.remove(i);
            recompute(h);
            Ok(removed)
        })
    }

    /// Someone changed a field of a row (a client's `inactive`, an invoice's `disabled` or
    /// `enddate`, an item's `status`...). Recurring-invoice totals are recomputed.
    pub fn set_field(
        &self,
        r: Resource,
        id: i64,
        field: &str,
        value: Value,
    ) -> Result<(), SimError> {
        self.mutate(|d| {
            let row = d
                .rows
                .get_mut(&r)
                .and_then(|rows| rows.iter_mut().find(|v| v["id"] == id))
                .ok_or_else(|| SimError::Invalid(format!("no {} with id {id}", r.name())))?;
            row[field] = value;
            if r == Resource::RecurringInvoice {
                recompute(row);
            }
            Ok(())
        })
    }

    /// The quantity Halo computes for a non-manual line from now on.
    pub fn set_computed(&self, line: i64, qty: f64) {
        self.mutate(|d| d.computed.insert(line, qty));
    }

    /// The daily recalculation: every non-manual line with a computed quantity gets it back
    /// (whatever was written). Returns the lines whose quantity changed.
    pub fn tick(&self) -> Vec<i64> {
        self.mutate(|d| writes::recalculate(d, None))
    }

    pub(crate) fn gate(&self) -> &RequestGate {
        &self.gate
    }
}

fn has_line(h: &Value, line: i64) -> bool {
    h["lines"].as_array().is_some_and(|ls| ls.iter().any(|l| l["id"] == line))
}

/// Faults that make the whole Halo API (the token endpoint included) answer `status`, leaving
/// the other simulators alone.
pub fn outage(status: u16) -> Vec<Fault> {
    ENDPOINTS.iter().map(|e| Fault::new(FaultKind::Status { status }).on(e)).collect()
}

/// The Halo routes (everything under [`PREFIX`]) and its control routes under
/// `/_sim/halopsa` ([`control`]). Merge into the simulator's router.
pub fn router(sim: HaloSim) -> Router {
    Router::new()
        .route(&format!("{PREFIX}/{{*rest}}"), any(routes::handle))
        .with_state(sim.clone())
        .merge(control::router(sim))
}
