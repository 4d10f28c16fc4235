//! The simulated Datto Autotask REST API under `/ATServicesRest` (reference note
//! `autotask.md`, following its "Conventions a simulator should adopt"): version and zone
//! lookup without credentials, header auth (`ApiIntegrationCode`, `UserName`, `Secret`; a
//! wrong secret 401 with no body, an unknown user or integration code 500 with `errors`),
//! POST and GET queries with the filter grammar ([`query`]), 500-row pages continued by an
//! absolute `nextPageUrl` that must be POSTed again with the same body (GET on it: 405),
//! `{"item": null}` for a missing id, the database's hourly threshold (latency tiers at 50%
//! and 75%, 429 at 100%, `ThresholdInformation`), at most 3 calls in flight per
//! (integration, entity) (429 beyond), a user whose security level hides contracts (empty
//! answers, not errors), and a database that moves zones (the old zone answers 401; the
//! lookup names the new one). Requests are counted and faulted with the other simulators'
//! (faults name Autotask routes by their patterns, e.g. `POST /Companies/query`).
//!
//! Quantities change only through contract service adjustments ([`adjust`]): create-only,
//! a signed `unitChange` from an `effectiveDate`, splitting the units rows; every accepted
//! one is kept in a journal for tests ([`AutotaskSim::adjustments`]), since the API cannot
//! read them back. Controls stand in for someone working in the PSA: units changed from a
//! day on, a contract service deleted or ended.
//!
//! Sim choices where the note is silent: an injected 5xx status answers with the framework's
//! `{"Message": ...}` shape (an outage), not `errors`; the second zone lives under
//! `/z2/ATServicesRest` on the same listener.

pub mod adjust;
mod data;
pub mod query;
mod routes;

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard};
use std::time::Duration;

use axum::Router;
use axum::routing::any;
use tokio::time::Instant;

pub use data::{
    AtAdjustment, AtCredentials, AtData, CONTRACT_ENTITIES, ENTITIES, at_date, service_id,
};

use super::faults::{Fault, FaultKind};
use crate::requests::RequestGate;

/// Where the API lives on the listener (zone 1); the zone lookup names it.
pub const API_PREFIX: &str = "/ATServicesRest";
/// Where zone 2 lives, after [`AutotaskSim::move_zone`].
pub const ZONE2_PREFIX: &str = "/z2/ATServicesRest";

/// The route patterns, as counted and as faults name them.
pub use crate::endpoints::AUTOTASK as ENDPOINTS;

/// The database's hourly threshold (F5.1–F5.3, C10).
#[derive(Debug, Clone, PartialEq)]
pub struct ThresholdSettings {
    /// Requests per window (10,000).
    pub limit: u64,
    /// The rolling window (an hour).
    pub window: Duration,
    /// Latency added from 50% and from 75% of the limit.
    pub tiers: (Duration, Duration),
}

impl Default for ThresholdSettings {
    fn default() -> Self {
        ThresholdSettings {
            limit: 10_000,
            window: Duration::from_secs(3600),
            tiers: (Duration::from_millis(500), Duration::from_secs(1)),
        }
    }
}

struct Threshold {
    settings: ThresholdSettings,
    hits: VecDeque<Instant>,
}

impl Threshold {
    fn drain(&mut self, now: Instant) {
        while self.hits.front().is_some_and(|t| now.duration_since(*t) >= self.settings.window) {
            self.hits.pop_front();
        }
    }
}

/// The simulated Autotask's own state.
struct AtState {
    data: RwLock<AtData>,
    revoked: AtomicBool,
    zone: AtomicU8,
    missing_is_404: AtomicBool,
    threshold: Mutex<Threshold>,
    threads: Mutex<HashMap<String, usize>>,
}

/// A handle on the simulated Autotask. Request counters and faults are shared with the other
/// simulators (through [`SimControl`](crate::SimControl)). Cheap to clone.
#[derive(Clone)]
pub struct AutotaskSim {
    gate: RequestGate,
    state: Arc<AtState>,
}

impl std::fmt::Debug for AutotaskSim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AutotaskSim").field("seed", &self.read().seed).finish_non_exhaustive()
    }
}

/// Calls of one (integration, entity) in flight; released on drop.
pub(crate) struct Slot {
    state: Arc<AtState>,
    key: String,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut t = self.state.threads.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = t.get_mut(&self.key) {
            *n = n.saturating_sub(1);
        }
    }
}

/// Calls in flight per (integration, entity) that the API allows (F5.4).
pub const THREAD_LIMIT: usize = 3;

impl AutotaskSim {
    pub(crate) fn new(gate: RequestGate, data: AtData) -> AutotaskSim {
        AutotaskSim {
            gate,
            state: Arc::new(AtState {
                data: RwLock::new(data),
                revoked: AtomicBool::new(false),
                zone: AtomicU8::new(1),
                missing_is_404: AtomicBool::new(false),
                threshold: Mutex::new(Threshold {
                    settings: ThresholdSettings::default(),
                    hits: VecDeque::new(),
                }),
                threads: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Read access to the data. Do not hold it across `.await`.
    pub fn read(&self) -> RwLockReadGuard<'_, AtData> {
        self.state.data.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Changes the data, atomically for requests.
    pub fn mutate<R>(&self, f: impl FnOnce(&mut AtData) -> R) -> R {
        f(&mut self.state.data.write().unwrap_or_else(|e| e.into_inner()))
    }

    /// Every adjustment accepted so far, oldest first.
    pub fn adjustments(&self) -> Vec<AtAdjustment> {
        self.read().adjustments.clone()
    }

    /// The units contract service `cs` bills on `day` (the row covering it), if any.
    pub fn units_on(&self, cs: u64, day: chrono::NaiveDate) -> Option<f64> {
        adjust::units_on(&self.read(), cs, day)
    }

    /// Someone changed contract service `cs` in the PSA: from `day` on (the row covering it
    /// and every later row) it bills `units`. Not a request, not journaled. Returns the rows
    /// changed.
    pub fn set_units(&self, cs: u64, day: chrono::NaiveDate, units: f64) -> usize {
        self.mutate(|d| adjust::set_units(d, cs, day, units))
    }

    /// Someone deleted contract service `cs` (and its units rows); whether it existed.
    pub fn delete_contract_service(&self, cs: u64) -> bool {
        self.mutate(|d| adjust::delete_contract_service(d, cs))
    }

    /// Someone ended contract service `cs` on `last`: no units row runs past it. Returns the
    /// rows left.
    pub fn end_contract_service(&self, cs: u64, last: chrono::NaiveDate) -> usize {
        self.mutate(|d| adjust::end_contract_service(d, cs, last))
    }

    /// The accepted API users.
    pub fn credentials(&self) -> AtCredentials {
        self.read().credentials.clone()
    }

    /// Revokes the API user's secret: 401 from now on.
    pub fn revoke(&self) {
        self.state.revoked.store(true, Ordering::SeqCst);
    }

    /// Accepts the API user's secret again.
    pub fn restore(&self) {
        self.state.revoked.store(false, Ordering::SeqCst);
    }

    fn revoked(&self) -> bool {
        self.state.revoked.load(Ordering::SeqCst)
    }

    /// Moves the database to the other zone: calls to the old one answer 401, the zone
    /// lookup names the new one. Returns the new zone (1 or 2).
    pub fn move_zone(&self) -> u8 {
        let next = if self.zone() == 1 { 2 } else { 1 };
        self.state.zone.store(next, Ordering::SeqCst);
        next
    }

    /// The zone the database is in (1: `/ATServicesRest`, 2: `/z2/ATServicesRest`).
    pub fn zone(&self) -> u8 {
        self.state.zone.load(Ordering::SeqCst)
    }

    /// Answers a missing id with 404 instead of `{"item": null}` (U6).
    pub fn set_missing_is_404(&self, on: bool) {
        self.state.missing_is_404.store(on, Ordering::SeqCst);
    }

    fn missing_is_404(&self) -> bool {
        self.state.missing_is_404.load(Ordering::SeqCst)
    }

    /// Replaces the threshold settings (tests lower the limit and the tier latency) and
    /// forgets the requests counted so far.
    pub fn set_threshold(&self, settings: ThresholdSettings) {
        let mut t = self.state.threshold.lock().unwrap_or_else(|e| e.into_inner());
        *t = Threshold { settings, hits: VecDeque::new() };
    }

    /// `(requests in the current window, limit)`.
    pub fn threshold_use(&self) -> (u64, u64) {
        let mut t = self.state.threshold.lock().unwrap_or_else(|e| e.into_inner());
        t.drain(Instant::now());
        (t.hits.len() as u64, t.settings.limit)
    }

    /// Counts one request against the threshold: `Err` when it is used up, else the latency
    /// its tier adds.
    pub(crate) fn spend(&self) -> Result<Duration, ()> {
        let mut t = self.state.threshold.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        t.drain(now);
        let (used, s) = (t.hits.len() as u64, t.settings.clone());
        if used >= s.limit {
            return Err(());
        }
        t.hits.push_back(now);
        Ok(if used * 4 >= s.limit * 3 {
            s.tiers.1
        } else if used * 2 >= s.limit {
            s.tiers.0
        } else {
            Duration::ZERO
        })
    }

    /// Takes one of the [`THREAD_LIMIT`] slots of (integration, entity), or `None`.
    pub(crate) fn slot(&self, integration: &str, entity: &str) -> Option<Slot> {
        let key = format!("{integration}\u{0}{}", entity.to_ascii_lowercase());
        let mut t = self.state.threads.lock().unwrap_or_else(|e| e.into_inner());
        let n = t.entry(key.clone()).or_insert(0);
        if *n >= THREAD_LIMIT {
            return None;
        }
        *n += 1;
        Some(Slot { state: self.state.clone(), key })
    }

    pub(crate) fn gate(&self) -> &RequestGate {
        &self.gate
    }
}

/// Faults that make the whole Autotask API answer `status` (a PSA outage), leaving the other
/// simulators alone.
pub fn outage(status: u16) -> Vec<Fault> {
    ENDPOINTS.iter().map(|e| Fault::new(FaultKind::Status { status }).on(e)).collect()
}

/// The Autotask routes (both zones, common spellings of the prefix). Merge into the
/// simulator's router.
pub fn router(sim: AutotaskSim) -> Router {
    let mut r = Router::new();
    for prefix in
        [API_PREFIX, "/atservicesrest", "/ATSERVICESREST", ZONE2_PREFIX, "/z2/atservicesrest"]
    {
        r = r.route(&format!("{prefix}/{{*rest}}"), any(routes::handle));
    }
    r.with_state(sim)
}
