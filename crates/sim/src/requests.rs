//! What every simulated Mailprotector and ConnectWise request passes through: it is counted
//! ([`RequestCounts`]), the installed faults decide what happens to it, and a hung one is
//! released at shutdown. One [`RequestGate`] is shared by those two simulators and the control
//! surface that reads and changes it; the simulated Gradient keeps its own counts and faults.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::faults::{Fault, FaultSet, FaultStatus, Plan};

/// Requests the simulator has received since the last reset.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RequestCounts {
    /// Every request, answered or not (faults and 4xx included).
    pub total: u64,
    /// Per route pattern, e.g. `"GET /domains/{id}/user_groups"` (without `/api/v1`);
    /// unrouted paths count under `"GET (unmatched)"`.
    pub by_endpoint: BTreeMap<String, u64>,
    /// Per response status (hung requests are not counted here until they end).
    pub by_status: BTreeMap<u16, u64>,
}

impl RequestCounts {
    /// Requests to one route pattern (0 when none).
    pub fn get(&self, endpoint: &str) -> u64 {
        self.by_endpoint.get(endpoint).copied().unwrap_or(0)
    }

    /// Responses with one status (0 when none).
    pub fn status(&self, status: u16) -> u64 {
        self.by_status.get(&status).copied().unwrap_or(0)
    }
}

struct Inner {
    counts: Mutex<RequestCounts>,
    faults: Mutex<FaultSet>,
    shutdown: CancellationToken,
}

/// The request counts, the installed faults and the shutdown signal. Cheap to clone (the
/// clones share them).
#[derive(Clone)]
pub(crate) struct RequestGate {
    inner: Arc<Inner>,
}

impl RequestGate {
    /// No requests counted and no faults; fault randomness seeded with `seed`.
    pub(crate) fn new(seed: u64) -> RequestGate {
        RequestGate {
            inner: Arc::new(Inner {
                counts: Mutex::new(RequestCounts::default()),
                faults: Mutex::new(FaultSet::new(seed)),
                shutdown: CancellationToken::new(),
            }),
        }
    }

    fn counts(&self) -> MutexGuard<'_, RequestCounts> {
        self.inner.counts.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn fault_set(&self) -> MutexGuard<'_, FaultSet> {
        self.inner.faults.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The counts so far.
    pub(crate) fn requests(&self) -> RequestCounts {
        self.counts().clone()
    }

    /// Zeroes the counts.
    pub(crate) fn reset_requests(&self) {
        *self.counts() = RequestCounts::default();
    }

    /// Counts a request to `endpoint` (a route pattern).
    pub(crate) fn count_request(&self, endpoint: &str) {
        let mut c = self.counts();
        c.total += 1;
        *c.by_endpoint.entry(endpoint.to_owned()).or_insert(0) += 1;
    }

    /// Counts a response status.
    pub(crate) fn count_status(&self, status: u16) {
        *self.counts().by_status.entry(status).or_insert(0) += 1;
    }

    /// What the installed faults do to this request to `pattern`.
    pub(crate) fn plan(&self, pattern: &str) -> Plan {
        self.fault_set().plan(pattern)
    }

    /// Installs a fault; returns its id.
    pub(crate) fn add_fault(&self, fault: Fault) -> u64 {
        self.fault_set().add(fault)
    }

    /// Removes one fault; false when no fault has that id.
    pub(crate) fn remove_fault(&self, id: u64) -> bool {
        self.fault_set().remove(id)
    }

    /// Removes every fault.
    pub(crate) fn clear_faults(&self) {
        self.fault_set().clear()
    }

    /// The installed faults with their ids and how often each fired.
    pub(crate) fn faults(&self) -> Vec<FaultStatus> {
        self.fault_set().list()
    }

    /// Cancelled when the simulator stops: hung requests and fault delays end.
    pub(crate) fn shutdown(&self) -> &CancellationToken {
        &self.inner.shutdown
    }
}
