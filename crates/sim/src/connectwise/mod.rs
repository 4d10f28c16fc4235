//! The simulated ConnectWise Manage API under `/v4_6_release/apis/3.0` (reference §1–§4 and
//! the §7 conventions): Basic auth from `companyId+publicKey:privateKey` and a required
//! `clientId` header, `page`/`pageSize` paging with `Link` headers, the `conditions` subset
//! mpsync sends, §4 error bodies, and the simulator's fault injection and request counters
//! (shared with the Mailprotector simulator: faults name CW endpoints by their patterns,
//! e.g. `additions` or `GET /finance/agreements`).
//!
//! Sim choices where the reference is silent: every page carries a `Link` header (at least
//! `rel="last"`), so a one-page listing needs one request; strings in `conditions` compare
//! case-insensitively; a member with the limited key pair gets 403 on `/finance/...`.
//!
//! The write path (§3.4, [`writes`]): `GET` and `PATCH` of one agreement addition. A PATCH
//! changes what every later read serves (so the next billing poll sees it), is counted under
//! `PATCH /finance/agreements/{id}/additions/{id}`, goes through the same faults as the reads,
//! and is kept in a journal ([`ConnectwiseSim::writes`]). Tests model a PSA that changes under
//! mpsync with [`ConnectwiseSim::delete_addition`] and [`ConnectwiseSim::set_quantity`], and an
//! API member whose role lacks Edit rights with [`ConnectwiseSim::set_edit_rights`].

mod conditions;
mod data;
mod generate;
pub(crate) mod layer;
pub(crate) mod mapping;
mod routes;
pub mod writes;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard};

use axum::Router;
use axum::routing::get;

pub use conditions::{Clause, Conditions, Literal};
pub use data::{
    BillingData, CwAddition, CwAgreement, CwCompany, CwCredentials, CwRef, PLANTED_STATUSES,
    Planted,
};
pub use generate::{PRODUCTS, vary};
pub use writes::{CwWrite, PatchError, parse_patch};

use super::dataset::SimError;
use super::faults::{Fault, FaultKind};
use crate::requests::RequestGate;

/// Where the API lives on the listener; the client appends it to the configured host.
pub const API_PREFIX: &str = "/v4_6_release/apis/3.0";

/// Default `pageSize` (§2).
pub const DEFAULT_PAGE_SIZE: usize = 25;
/// Largest `pageSize`; larger values are clamped (§7).
pub const MAX_PAGE_SIZE: usize = 1000;

/// The endpoints' route patterns, as counted and as faults name them.
pub use crate::endpoints::CONNECTWISE as ENDPOINTS;

/// The ConnectWise simulator's own state (data, revocation, edit rights and the journal of
/// writes), shared by its handles.
pub struct CwState {
    data: RwLock<BillingData>,
    revoked: AtomicBool,
    edits_denied: AtomicBool,
    writes: Mutex<Vec<CwWrite>>,
}

impl CwState {
    fn new(data: BillingData) -> CwState {
        CwState {
            data: RwLock::new(data),
            revoked: AtomicBool::new(false),
            edits_denied: AtomicBool::new(false),
            writes: Mutex::new(Vec::new()),
        }
    }
}

/// A handle on the simulated ConnectWise: its data and credentials. Request counters and
/// faults are the ones it shares with the Mailprotector simulator (read and set through
/// [`SimControl`](crate::SimControl)). Cheap to clone.
#[derive(Clone)]
pub struct ConnectwiseSim {
    gate: RequestGate,
    shared: Arc<CwState>,
}

impl std::fmt::Debug for ConnectwiseSim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectwiseSim").field("seed", &self.read().seed).finish_non_exhaustive()
    }
}

impl ConnectwiseSim {
    /// Serves `data`, counting and faulting through `gate` (see
    /// [`SimControl::connectwise`](crate::SimControl::connectwise) and
    /// [`SimControl::standalone_connectwise`](crate::SimControl::standalone_connectwise)).
    pub(crate) fn new(gate: RequestGate, data: BillingData) -> ConnectwiseSim {
        ConnectwiseSim { gate, shared: Arc::new(CwState::new(data)) }
    }

    /// Read access to the data. Do not hold it across `.await`.
    pub fn read(&self) -> RwLockReadGuard<'_, BillingData> {
        self.shared.data.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Changes the data (e.g. an addition's quantity), atomically for requests.
    pub fn mutate<R>(&self, f: impl FnOnce(&mut BillingData) -> R) -> R {
        f(&mut self.shared.data.write().unwrap_or_else(|e| e.into_inner()))
    }

    /// The accepted credentials.
    pub fn credentials(&self) -> CwCredentials {
        self.read().credentials.clone()
    }

    /// Revokes the API member's keys: 401 from now on.
    pub fn revoke(&self) {
        self.shared.revoked.store(true, Ordering::SeqCst);
    }

    /// Accepts the API member's keys again (the operator issued working ones).
    pub fn restore(&self) {
        self.shared.revoked.store(false, Ordering::SeqCst);
    }

    fn revoked(&self) -> bool {
        self.shared.revoked.load(Ordering::SeqCst)
    }

    /// Gives the API member's security role Edit rights on Finance → Agreements (`true`, the
    /// default) or takes them away (`false`): reads still work, a PATCH answers 403.
    pub fn set_edit_rights(&self, allowed: bool) {
        self.shared.edits_denied.store(!allowed, Ordering::SeqCst);
    }

    fn edits_denied(&self) -> bool {
        self.shared.edits_denied.load(Ordering::SeqCst)
    }

    /// One addition as it is now.
    pub fn addition(&self, id: u64) -> Option<CwAddition> {
        self.read().additions.iter().find(|a| a.id == id).cloned()
    }

    /// Deletes an addition in the PSA (someone removed the line): reads of it and PATCHes to
    /// it answer 404 from now on, and the agreement's listing no longer has it.
    pub fn delete_addition(&self, id: u64) -> Result<CwAddition, SimError> {
        self.mutate(|d| {
            let i = d.additions.iter().position(|a| a.id == id);
            i.map(|i| d.additions.remove(i)).ok_or(SimError::NotFound { kind: "addition", id })
        })
    }

    /// Changes an addition's quantity behind the client's back (someone edited it in the PSA);
    /// not a request, so not counted nor journaled. Returns the previous quantity.
    pub fn set_quantity(&self, id: u64, quantity: f64) -> Result<f64, SimError> {
        if !(quantity >= 0.0 && quantity.is_finite()) {
            return Err(SimError::Invalid(format!(
                "quantity {quantity} for addition {id} must be a number of at least 0"
            )));
        }
        self.mutate(|d| {
            let a = d.additions.iter_mut().find(|a| a.id == id);
            let a = a.ok_or(SimError::NotFound { kind: "addition", id })?;
            Ok(std::mem::replace(&mut a.quantity, quantity))
        })
    }

    /// Every PATCH that reached the handler since the start or [`ConnectwiseSim::clear_writes`],
    /// oldest first (requests a fault answered before the handler are not here; the request
    /// counts have them).
    pub fn writes(&self) -> Vec<CwWrite> {
        self.shared.writes.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Empties the journal of writes.
    pub fn clear_writes(&self) {
        self.shared.writes.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    fn journal(&self, write: CwWrite) {
        self.shared.writes.lock().unwrap_or_else(|e| e.into_inner()).push(write);
    }

    /// The request counts, faults and shutdown signal it shares with the other simulators.
    pub(crate) fn gate(&self) -> &RequestGate {
        &self.gate
    }
}

/// Faults that make the whole ConnectWise API answer `status` (a PSA outage), leaving the
/// other simulators alone. Install each with [`SimControl::add_fault`](crate::SimControl::add_fault).
pub fn outage(status: u16) -> Vec<Fault> {
    ENDPOINTS.iter().map(|e| Fault::new(FaultKind::Status { status }).on(e)).collect()
}

/// The ConnectWise routes with their request layer, nested under [`API_PREFIX`]. Merge it
/// into the simulator's router (the fallback belongs to the caller).
pub fn router(sim: ConnectwiseSim) -> Router {
    let p = |path: &str| format!("{API_PREFIX}{path}");
    Router::new()
        .route(&p("/system/info"), get(routes::system_info))
        .route(&p("/company/companies"), get(routes::companies))
        .route(&p("/company/companies/{id}"), get(routes::company))
        .route(&p("/finance/agreements"), get(routes::agreements))
        .route(&p("/finance/agreements/{id}"), get(routes::agreement))
        .route(&p("/finance/agreements/{id}/additions"), get(routes::additions))
        // axum needs distinct names; the layer counts both as `{id}`.
        .route(
            &p("/finance/agreements/{id}/additions/{addition}"),
            get(writes::addition).patch(writes::patch_addition),
        )
        .route_layer(axum::middleware::from_fn_with_state(sim.clone(), layer::layer))
        .with_state(sim)
}
