//! [`GradientSim`]: the handle on the simulated Synthesize — its data, its own request
//! counters and faults (the same fault engine as the Mailprotector simulator), the 100/s rate
//! limit, the highest request rate it has observed, and the controls tests and `mpsync sim`
//! use (keys, mapping, disconnect/reconnect, the reconciliation view).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::time::Instant;

use super::state::{GradientState, ViewRow};
use crate::faults::{Fault, FaultSet, FaultStatus};
use crate::requests::RequestCounts;

/// Gradient's documented limit (§3): 100 requests per second per token.
pub const DEFAULT_RATE_LIMIT: f64 = 100.0;

struct Bucket {
    rps: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

#[derive(Default)]
struct Window {
    recent: VecDeque<Instant>,
    max: u64,
}

struct Inner {
    state: Mutex<GradientState>,
    counts: Mutex<RequestCounts>,
    faults: Mutex<FaultSet>,
    bucket: Mutex<Option<Bucket>>,
    window: Mutex<Window>,
}

/// A handle on the simulated Synthesize. Cloning is cheap.
#[derive(Clone)]
pub struct GradientSim {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for GradientSim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GradientSim").finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl GradientSim {
    /// A fresh integration whose PSA knows `companies` (the auto-map candidates), limited to
    /// [`DEFAULT_RATE_LIMIT`].
    pub fn new(seed: u64, companies: impl IntoIterator<Item = String>) -> GradientSim {
        let sim = GradientSim {
            inner: Arc::new(Inner {
                state: Mutex::new(GradientState::new(seed, companies)),
                counts: Mutex::new(RequestCounts::default()),
                faults: Mutex::new(FaultSet::new(seed ^ 0x6772_6164)),
                bucket: Mutex::new(None),
                window: Mutex::new(Window::default()),
            }),
        };
        sim.set_rate_limit(Some(DEFAULT_RATE_LIMIT));
        sim
    }

    pub(crate) fn state(&self) -> MutexGuard<'_, GradientState> {
        lock(&self.inner.state)
    }

    /// The vendor API key the simulator accepts.
    pub fn vendor_key(&self) -> String {
        self.state().vendor_key.clone()
    }

    /// The partner API key the simulator accepts.
    pub fn partner_key(&self) -> String {
        self.state().partner_key.clone()
    }

    /// Revokes the partner key: every request answers 401 until [`GradientSim::restore_partner_key`].
    pub fn revoke_partner_key(&self) {
        self.state().partner_revoked = true;
    }

    /// Makes the partner key valid again.
    pub fn restore_partner_key(&self) {
        self.state().partner_revoked = false;
    }

    /// The integration status (`inactive` at first).
    pub fn status(&self) -> String {
        self.state().status.clone()
    }

    /// Sets the integration status as the MSP or Gradient would (any of the five values).
    pub fn set_status(&self, status: &str) -> bool {
        self.state().set_status(status).is_ok()
    }

    /// Makes `GET /organization` report `status` exactly as given — another spelling
    /// (`"Active"`) or a value Gradient does not document — as a real Synthesize might.
    /// Counts are still gated on it case-insensitively (§11 #6).
    pub fn set_status_verbatim(&self, status: &str) {
        self.state().status = status.to_owned();
    }

    /// The partner's PSA clients as `GET /organization/clients` lists them: (id, name).
    pub fn clients(&self) -> Vec<(String, String)> {
        self.state().clients()
    }

    /// The vendor name in the profile (`PATCH /api/vendor-api` changes it).
    pub fn vendor_name(&self) -> String {
        self.state().profile.name.clone()
    }

    /// The partner disconnects and reconnects: accounts and counts deleted, status `inactive`.
    pub fn disconnect_reconnect(&self) {
        self.state().disconnect_reconnect();
    }

    /// Account ids Synthesize holds, in id order.
    pub fn account_ids(&self) -> Vec<String> {
        self.state().accounts.keys().cloned().collect()
    }

    /// Account ids that are mapped to a PSA company.
    pub fn mapped_account_ids(&self) -> Vec<String> {
        let st = self.state();
        st.accounts.values().filter(|a| a.psa_company.is_some()).map(|a| a.id.clone()).collect()
    }

    /// Service names in the vendor catalogue, with whether each is mapped.
    pub fn services(&self) -> Vec<(String, bool)> {
        self.state().skus.iter().map(|s| (s.name.clone(), s.mapped)).collect()
    }

    /// Maps (`Some(company)`) or unmaps (`None`) an account; false when it does not exist.
    pub fn map_account(&self, id: &str, company: Option<&str>) -> bool {
        let mut st = self.state();
        match st.accounts.get_mut(id) {
            Some(a) => {
                a.psa_company = company.map(str::to_owned);
                true
            }
            None => false,
        }
    }

    /// Maps or unmaps a service by name; false when it does not exist.
    pub fn map_service(&self, name: &str, mapped: bool) -> bool {
        let mut st = self.state();
        match st.skus.iter_mut().find(|s| s.name == name) {
            Some(s) => {
                s.mapped = mapped;
                true
            }
            None => false,
        }
    }

    /// The reconciliation view: the vendor units held per mapped (account, service).
    pub fn view(&self) -> Vec<ViewRow> {
        self.state().view()
    }

    /// Every count received, mapped or not now: ((account id, service name), units).
    pub fn counts(&self) -> Vec<((String, String), f64)> {
        let st = self.state();
        st.counts
            .iter()
            .map(|((a, s), v)| {
                let name =
                    st.skus.iter().find(|k| &k.id == s).map_or(s.clone(), |k| k.name.clone());
                ((a.clone(), name), *v)
            })
            .collect()
    }

    /// Sets (or with `None` removes) the server-side rate limit; the bucket is one second deep.
    pub fn set_rate_limit(&self, rps: Option<f64>) {
        *lock(&self.inner.bucket) = rps.filter(|r| *r > 0.0 && r.is_finite()).map(|rps| Bucket {
            rps,
            burst: rps.ceil().max(1.0),
            tokens: rps.ceil().max(1.0),
            last: Instant::now(),
        });
    }

    /// Takes one token; false when the request is over the rate.
    pub(crate) fn admit(&self) -> bool {
        let mut b = lock(&self.inner.bucket);
        let Some(b) = b.as_mut() else { return true };
        let now = Instant::now();
        b.tokens = (b.tokens + now.duration_since(b.last).as_secs_f64() * b.rps).min(b.burst);
        b.last = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// The most requests received within any one-second window so far.
    pub fn max_requests_per_second(&self) -> u64 {
        lock(&self.inner.window).max
    }

    /// Request counts since the start or the last reset (patterns include `/api/vendor-api`).
    pub fn requests(&self) -> RequestCounts {
        lock(&self.inner.counts).clone()
    }

    /// Zeroes the request counts and the observed rate.
    pub fn reset_requests(&self) {
        *lock(&self.inner.counts) = RequestCounts::default();
        *lock(&self.inner.window) = Window::default();
    }

    /// Requests whose method is not GET (writes) since the last reset.
    pub fn write_requests(&self) -> u64 {
        let c = self.requests();
        c.by_endpoint.iter().filter(|(k, _)| !k.starts_with("GET ")).map(|(_, n)| n).sum()
    }

    pub(crate) fn count_request(&self, pattern: &str) {
        {
            let mut c = lock(&self.inner.counts);
            c.total += 1;
            *c.by_endpoint.entry(pattern.to_owned()).or_insert(0) += 1;
        }
        let now = Instant::now();
        let mut w = lock(&self.inner.window);
        w.recent.push_back(now);
        while w.recent.front().is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(1)) {
            w.recent.pop_front();
        }
        w.max = w.max.max(w.recent.len() as u64);
    }

    pub(crate) fn count_status(&self, status: u16) {
        *lock(&self.inner.counts).by_status.entry(status).or_insert(0) += 1;
    }

    pub(crate) fn plan(&self, pattern: &str) -> crate::faults::Plan {
        lock(&self.inner.faults).plan(pattern)
    }

    /// Installs a fault on the Gradient routes; returns its id.
    pub fn add_fault(&self, fault: Fault) -> u64 {
        lock(&self.inner.faults).add(fault)
    }

    /// Removes one fault; false when no fault has that id.
    pub fn remove_fault(&self, id: u64) -> bool {
        lock(&self.inner.faults).remove(id)
    }

    /// Removes every fault (the rate limit stays; see [`GradientSim::set_rate_limit`]).
    pub fn clear_faults(&self) {
        lock(&self.inner.faults).clear()
    }

    /// The installed faults with their fire counts.
    pub fn faults(&self) -> Vec<FaultStatus> {
        lock(&self.inner.faults).list()
    }
}
