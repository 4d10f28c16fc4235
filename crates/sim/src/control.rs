//! The control surface: one cheap-to-clone handle ([`SimControl`]) over the running
//! simulator's data, request counters and faults, and the simulated ConnectWise and Gradient.
//! Tests use it directly; `/_sim/...` exposes the same operations over HTTP (see
//! [`super::control_http`]).

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock, RwLock, RwLockReadGuard, RwLockWriteGuard};

use super::autotask::{AtData, AutotaskSim};
use super::connectwise::{BillingData, ConnectwiseSim};
use super::dataset::{Dataset, Services, SimError};
use super::faults::{Fault, FaultStatus};
use super::gradient::GradientSim;
use super::halopsa::{HaloData, HaloSim};
use super::requests::{RequestCounts, RequestGate};

struct Shared {
    data: RwLock<Dataset>,
    /// Counts and faults of the Mailprotector and ConnectWise requests, and shutdown.
    gate: RequestGate,
    /// The simulated Gradient Synthesize (its own counters and faults).
    gradient: GradientSim,
    /// The simulated ConnectWise, its data generated from the dataset on first use.
    connectwise: OnceLock<ConnectwiseSim>,
    /// The simulated Autotask, its data generated from the ConnectWise billing on first use.
    autotask: OnceLock<AutotaskSim>,
    /// The simulated HaloPSA, its data generated from the ConnectWise billing on first use.
    halopsa: OnceLock<HaloSim>,
}

/// A handle on a simulator's state, usable while it serves. Cloning is cheap.
#[derive(Clone)]
pub struct SimControl {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for SimControl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimControl").field("seed", &self.read().seed()).finish_non_exhaustive()
    }
}

impl SimControl {
    /// Wraps a dataset; fault randomness is seeded from the dataset's seed.
    pub fn new(dataset: Dataset) -> SimControl {
        let seed = dataset.seed();
        let gradient = GradientSim::new(seed, super::gradient::seeded_companies(&dataset));
        SimControl {
            shared: Arc::new(Shared {
                data: RwLock::new(dataset),
                gate: RequestGate::new(seed),
                gradient,
                connectwise: OnceLock::new(),
                autotask: OnceLock::new(),
                halopsa: OnceLock::new(),
            }),
        }
    }

    /// Read access to the data. Do not hold it across `.await`.
    pub fn read(&self) -> RwLockReadGuard<'_, Dataset> {
        self.shared.data.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Dataset> {
        self.shared.data.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` on the data with write access (any change at all, atomically for requests).
    pub fn mutate<R>(&self, f: impl FnOnce(&mut Dataset) -> R) -> R {
        f(&mut self.write())
    }

    /// The request counts, faults and shutdown signal the Mailprotector and ConnectWise
    /// simulators share with this handle.
    pub(crate) fn gate(&self) -> &RequestGate {
        &self.shared.gate
    }

    /// The simulated Gradient Synthesize served under `/api/vendor-api`.
    pub fn gradient(&self) -> &GradientSim {
        &self.shared.gradient
    }

    /// The simulated ConnectWise served under `/v4_6_release/apis/3.0` (its billing is
    /// generated from the dataset as it is at first use, normally at start): what
    /// [`crate::router`] serves.
    pub fn connectwise(&self) -> ConnectwiseSim {
        self.shared.connectwise.get_or_init(|| self.standalone_connectwise()).clone()
    }

    /// A ConnectWise of its own (not the one [`SimControl::connectwise`] returns) with billing
    /// generated for the dataset as it is now, seeded with its seed — the same data
    /// [`BillingData::generate`] gives for that dataset and seed — counting and faulting
    /// through this handle.
    pub fn standalone_connectwise(&self) -> ConnectwiseSim {
        let data = {
            let ds = self.read();
            BillingData::generate(&ds, ds.seed())
        };
        ConnectwiseSim::new(self.gate().clone(), data)
    }

    /// The simulated Autotask served under `/ATServicesRest`: the same truth as
    /// [`SimControl::connectwise`]'s billing (see [`AtData::from_connectwise`]), its units
    /// rows laid out around the day of first use.
    pub fn autotask(&self) -> AutotaskSim {
        self.shared
            .autotask
            .get_or_init(|| {
                let data = AtData::generate(&self.connectwise().read());
                AutotaskSim::new(self.gate().clone(), data)
            })
            .clone()
    }

    /// The simulated HaloPSA served under `/halo`: the same truth as
    /// [`SimControl::connectwise`]'s billing (see [`HaloData::from_connectwise`]) plus the
    /// Halo-specific plants, its dates laid out around the day of first use.
    pub fn halopsa(&self) -> HaloSim {
        self.shared
            .halopsa
            .get_or_init(|| {
                let data = HaloData::generate(&self.connectwise().read());
                HaloSim::new(self.gate().clone(), data)
            })
            .clone()
    }

    /// The main reseller's id (188).
    pub fn reseller_id(&self) -> u64 {
        self.read().reseller_id()
    }

    /// The main reseller's API key.
    pub fn reseller_key(&self) -> String {
        self.read().reseller_key().to_owned()
    }

    /// A customer-level API key for `customer`.
    pub fn customer_key(&self, customer: u64) -> Option<String> {
        self.read().customer_key(customer).map(str::to_owned)
    }

    /// Ground truth now under the default rule (type User only): see
    /// [`Dataset::expected_counts`].
    pub fn expected_counts(&self) -> BTreeMap<u64, BTreeMap<String, u64>> {
        self.read().expected_counts()
    }

    /// Ground truth now counting the user type ids `types`: see
    /// [`Dataset::expected_counts_for`].
    pub fn expected_counts_for(&self, types: &[u64]) -> BTreeMap<u64, BTreeMap<String, u64>> {
        self.read().expected_counts_for(types)
    }

    /// Ground truth for a combined definition, type User only: see
    /// [`Dataset::expected_count_any_of`].
    pub fn expected_count_any_of(&self, products: &[&str]) -> BTreeMap<u64, u64> {
        self.read().expected_count_any_of(products)
    }

    /// Ground truth for a combined definition counting `types`: see
    /// [`Dataset::expected_count_any_of_for`].
    pub fn expected_count_any_of_for(
        &self,
        products: &[&str],
        types: &[u64],
    ) -> BTreeMap<u64, u64> {
        self.read().expected_count_any_of_for(products, types)
    }

    /// Users per product over every listed customer, type User only: see
    /// [`Dataset::expected_totals`].
    pub fn expected_totals(&self) -> BTreeMap<String, u64> {
        self.read().expected_totals()
    }

    /// Users per product over every listed customer counting `types`: see
    /// [`Dataset::expected_totals_for`].
    pub fn expected_totals_for(&self, types: &[u64]) -> BTreeMap<String, u64> {
        self.read().expected_totals_for(types)
    }

    /// Adds `n` users to a group; returns their ids.
    pub fn add_users(&self, group: u64, n: u32) -> Result<Vec<u64>, SimError> {
        self.write().add_users(group, n)
    }

    /// Adds `n` mailing lists (user type 3) to a group; returns their ids.
    pub fn add_mailing_lists(&self, group: u64, n: u32) -> Result<Vec<u64>, SimError> {
        self.write().add_mailing_lists(group, n)
    }

    /// Adds `n` unlicensed users (user type 11) to a group; returns their ids.
    pub fn add_unlicensed_users(&self, group: u64, n: u32) -> Result<Vec<u64>, SimError> {
        self.write().add_unlicensed_users(group, n)
    }

    /// Leaves a customer out of customer listings while its domains, groups and users stay
    /// listed reseller-wide: see [`Dataset::hide_customer`].
    pub fn hide_customer(&self, id: u64) -> Result<(), SimError> {
        self.write().hide_customer(id)
    }

    /// Lists a hidden customer again.
    pub fn unhide_customer(&self, id: u64) -> Result<(), SimError> {
        self.write().unhide_customer(id)
    }

    /// Removes up to `n` users of type User (newest first, with their aliases) from a group.
    pub fn remove_users(&self, group: u64, n: u64) -> Result<u64, SimError> {
        self.write().remove_users(group, n)
    }

    /// Renames a customer.
    pub fn rename_customer(&self, id: u64, name: &str) -> Result<(), SimError> {
        self.write().rename_customer(id, name)
    }

    /// Moves a primary domain (and its aliases) to another customer.
    pub fn move_domain(&self, domain: u64, customer: u64) -> Result<(), SimError> {
        self.write().move_domain(domain, customer)
    }

    /// Replaces a group's services.
    pub fn set_services(&self, group: u64, services: Services) -> Result<(), SimError> {
        self.write().set_services(group, services)
    }

    /// Adds a customer under `reseller`; returns its id.
    pub fn add_customer(&self, reseller: u64, name: &str) -> Result<u64, SimError> {
        self.write().add_customer(reseller, name)
    }

    /// Adds a (primary, or with `parent` alias) domain; returns its id.
    pub fn add_domain(
        &self,
        customer: u64,
        name: &str,
        parent: Option<u64>,
    ) -> Result<u64, SimError> {
        self.write().add_domain(customer, name, parent)
    }

    /// Adds a user group with `users` users; returns its id.
    pub fn add_group(
        &self,
        domain: u64,
        name: &str,
        services: Services,
        users: u32,
    ) -> Result<u64, SimError> {
        self.write().add_group(domain, name, services, users)
    }

    /// Revokes an API key (401 from now on).
    pub fn revoke_key(&self, key: &str) {
        self.write().revoke_key(key)
    }

    /// Accepts a revoked key again.
    pub fn restore_key(&self, key: &str) {
        self.write().restore_key(key)
    }

    /// Request counts since the start or the last [`SimControl::reset_requests`].
    pub fn requests(&self) -> RequestCounts {
        self.gate().requests()
    }

    /// Zeroes the request counts.
    pub fn reset_requests(&self) {
        self.gate().reset_requests()
    }

    pub(crate) fn count_request(&self, endpoint: &str) {
        self.gate().count_request(endpoint)
    }

    pub(crate) fn count_status(&self, status: u16) {
        self.gate().count_status(status)
    }

    /// Installs a fault; returns its id (for [`SimControl::remove_fault`]).
    pub fn add_fault(&self, fault: Fault) -> u64 {
        self.gate().add_fault(fault)
    }

    /// Removes one fault; false when no fault has that id.
    pub fn remove_fault(&self, id: u64) -> bool {
        self.gate().remove_fault(id)
    }

    /// Removes every fault (the rate limit and latency from the options included).
    pub fn clear_faults(&self) {
        self.gate().clear_faults()
    }

    /// The installed faults with their ids and how often each fired.
    pub fn faults(&self) -> Vec<FaultStatus> {
        self.gate().faults()
    }

    /// Releases every hung request and marks the simulator as stopping.
    pub(crate) fn stop(&self) {
        self.gate().shutdown().cancel();
    }
}
