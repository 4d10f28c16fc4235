//! The in-memory health state that `/readyz` and `/v1/health` answer from: readiness latch,
//! store status, per-source run outcomes and (later) the reconciliation summary.
//!
//! The sync engine writes it as runs finish (through the run observer `app` attaches); the
//! server only reads it. Nothing here calls an upstream or opens a store transaction, so
//! health answers in microseconds.

mod report;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::config::{BillingSource, Config};
use crate::model::{CountingReport, RunId, RunKind};

pub use report::{Check, CheckStatus, HealthReport, LoopStatus};

/// A data source whose runs health reports on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Source {
    /// The Mailprotector vendor poll.
    Mailprotector,
    /// The billing poll (ConnectWise or CSV).
    Billing,
    /// The Gradient push.
    Gradient,
}

impl Source {
    /// The component name used in check keys (`"mailprotector:lastSuccess"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Mailprotector => "mailprotector",
            Source::Billing => "billing",
            Source::Gradient => "gradient",
        }
    }
}

impl From<RunKind> for Source {
    fn from(kind: RunKind) -> Source {
        match kind {
            RunKind::Vendor => Source::Mailprotector,
            RunKind::Billing => Source::Billing,
            RunKind::Push => Source::Gradient,
        }
    }
}

/// What health knows about one source.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SourceHealth {
    /// Whether the current config enables this source.
    pub configured: bool,
    /// Which implementation serves it (e.g. "connectwise" or "csv" for billing).
    pub component_id: Option<String>,
    /// The last run that completed, and when.
    pub last_success: Option<(RunId, DateTime<Utc>)>,
    /// The last failed run: when and why.
    pub last_failure: Option<(DateTime<Utc>, String)>,
    /// Failed runs since the last success.
    pub consecutive_failures: u32,
    /// Since when, and for what, the job waits (its last trigger found it not ready, e.g.
    /// the push before the first vendor snapshot); cleared by its next recorded run.
    pub waiting: Option<(DateTime<Utc>, String)>,
}

/// Counts of reconciliation rows by status, from the latest reconciliation.
#[derive(Debug, Clone, PartialEq)]
pub struct ReconciliationSummary {
    /// The vendor run the reconciliation was computed from.
    pub run_id: RunId,
    /// When it was computed.
    pub at: DateTime<Utc>,
    /// Rows per status name (`match`, `under_billed`, ...).
    pub by_status: BTreeMap<String, u64>,
    /// How many rows are discrepancies an operator should look at.
    pub discrepancies: u64,
    /// Monthly money missed (under-billed and unbilled rows with a known price).
    pub impact_under_billed: f64,
    /// Monthly money possibly overcharged (over-billed and billed-without-usage rows).
    pub impact_over_billed: f64,
    /// Rows that could not be compared because an input is missing, old or failed.
    pub stale: u64,
    /// Why no trustworthy reconciliation could be produced (the mapping file is invalid, the
    /// store failed); `None` when the summary above is current.
    pub error: Option<String>,
}

/// The store as health sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoreHealth {
    /// The database file.
    pub path: PathBuf,
    /// When it was opened.
    pub opened_at: DateTime<Utc>,
    /// The last failed write (when, why) since a run was last recorded: runs cannot be
    /// recorded, so the daemon is not doing its job.
    pub write_error: Option<(DateTime<Utc>, String)>,
}

/// Everything health knows, copied out under the lock.
#[derive(Debug, Clone)]
pub struct HealthState {
    /// When the daemon started.
    pub started_at: DateTime<Utc>,
    /// The open store, once it is open.
    pub store: Option<StoreHealth>,
    /// Per-source state; every source is present, `configured` says whether it is in use.
    pub sources: BTreeMap<Source, SourceHealth>,
    /// Inputs older than this count as aging (config `reconcile.max_age`).
    pub max_age: Duration,
    /// The latest reconciliation, once one ran.
    pub reconciliation: Option<ReconciliationSummary>,
    /// The last Gradient push's pairs by outcome, once one got as far as counting.
    pub push: Option<PushPairs>,
    /// How the last completed vendor run counted (its run id and report).
    pub counting: Option<(RunId, DateTime<Utc>, CountingReport)>,
    /// Each `[[notify]]` channel's deliveries, by channel name.
    pub notify: BTreeMap<String, NotifyHealth>,
}

/// One notification channel's deliveries, as `notify:<name>` reports them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NotifyHealth {
    /// `webhook`, `teams`, `slack` or `email`.
    pub kind: String,
    /// Matching events not delivered yet.
    pub pending: u64,
    /// Failed attempts in a row.
    pub failures: u32,
    /// Since when deliveries have been failing.
    pub failing_since: Option<DateTime<Utc>>,
    /// The last failure: when, why (no secrets).
    pub last_error: Option<(DateTime<Utc>, String)>,
    /// When the next attempt is due, while failing.
    pub next_attempt: Option<DateTime<Utc>>,
    /// The last accepted delivery.
    pub last_ok: Option<DateTime<Utc>>,
    /// Deliveries refused for good (skipped) since the channel was added.
    pub refused: u64,
    /// The last refused delivery: when, its id, the receiver's answer.
    pub last_refused: Option<(DateTime<Utc>, String, String)>,
    /// Why the channel cannot deliver at all (its transport could not be set up).
    pub broken: Option<String>,
}

/// The last Gradient push's (customer, product) pairs by outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushPairs {
    /// The push run.
    pub run_id: RunId,
    /// When it finished.
    pub at: DateTime<Utc>,
    /// A dry run (pairs only planned).
    pub dry_run: bool,
    /// Accepted by Synthesize (201).
    pub accepted: u64,
    /// Not mapped in Synthesize (404; normal).
    pub unmapped: u64,
    /// Refused by Gradient one count at a time (another 4xx, e.g. 400 for a 0).
    pub refused: u64,
    /// The first refused pair and Gradient's words, when any was refused.
    pub first_refused: Option<String>,
    /// Failed.
    pub failed: u64,
    /// Planned only (dry run).
    pub planned: u64,
}

/// Shared, cheaply cloned handle to the daemon's health state.
#[derive(Debug, Clone)]
pub struct Health {
    state: Arc<RwLock<HealthState>>,
    ready: Arc<AtomicBool>,
}

impl Health {
    /// Health for a daemon started at `started_at`: only Mailprotector configured, inputs
    /// aging after 2 h, until [`Health::configure`] applies a config.
    pub fn new(started_at: DateTime<Utc>) -> Health {
        let sources = [Source::Mailprotector, Source::Billing, Source::Gradient]
            .into_iter()
            .map(|s| (s, SourceHealth::default()))
            .collect();
        let state = HealthState {
            started_at,
            store: None,
            sources,
            max_age: Duration::from_secs(2 * 3600),
            reconciliation: None,
            push: None,
            counting: None,
            notify: BTreeMap::new(),
        };
        let health =
            Health { state: Arc::new(RwLock::new(state)), ready: Arc::new(AtomicBool::new(false)) };
        health.set_configured(Source::Mailprotector, true, Some("mailprotector"));
        health
    }

    // A panic while holding the lock cannot leave this plain data half-updated in a way that
    // matters for reporting, so a poisoned lock is used as is.
    fn write(&self) -> RwLockWriteGuard<'_, HealthState> {
        self.state.write().unwrap_or_else(|p| p.into_inner())
    }

    fn read(&self) -> RwLockReadGuard<'_, HealthState> {
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Applies which sources `config` enables and its `reconcile.max_age` (at start-up and
    /// after a reload). A source's run history is kept when it is switched off and on again.
    pub fn configure(&self, config: &Config) {
        let billing = match &config.billing.source {
            BillingSource::None => None,
            other => Some(other.name()),
        };
        self.set_configured(Source::Mailprotector, true, Some("mailprotector"));
        self.set_configured(Source::Billing, billing.is_some(), billing);
        self.set_configured(Source::Gradient, config.gradient.enabled, Some("gradient"));
        self.write().max_age = config.reconcile.max_age;
    }

    /// Marks `source` as used or unused, served by `component_id` (e.g. "csv").
    pub fn set_configured(&self, source: Source, configured: bool, component_id: Option<&str>) {
        let mut st = self.write();
        let entry = st.sources.entry(source).or_default();
        entry.configured = configured;
        entry.component_id = component_id.map(str::to_owned);
    }

    /// Records that the store is open.
    pub fn set_store_open(&self, path: PathBuf, at: DateTime<Utc>) {
        self.write().store = Some(StoreHealth { path, opened_at: at, write_error: None });
    }

    /// Latches readiness: config loaded, store open, main loop running. Never unset, so an
    /// upstream outage cannot make `/readyz` flap.
    pub fn mark_ready(&self) {
        self.ready.store(true, Ordering::Release);
    }

    /// Whether [`Health::mark_ready`] was called.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// Records a completed run of `source`.
    pub fn record_success(&self, source: Source, run_id: RunId, at: DateTime<Utc>) {
        let mut st = self.write();
        let entry = st.sources.entry(source).or_default();
        entry.last_success = Some((run_id, at));
        entry.consecutive_failures = 0;
        entry.waiting = None;
        // A recorded run proves the store writes again.
        if let Some(store) = st.store.as_mut() {
            store.write_error = None;
        }
    }

    /// Records that the store failed to record a run (disk full, I/O error): `store:open`
    /// fails until a run is recorded again.
    pub fn record_store_error(&self, at: DateTime<Utc>, reason: impl Into<String>) {
        if let Some(store) = self.write().store.as_mut() {
            store.write_error = Some((at, reason.into()));
        }
    }

    /// Records a failed run of `source` with a reason an operator can act on (no secrets).
    pub fn record_failure(&self, source: Source, at: DateTime<Utc>, reason: impl Into<String>) {
        let mut st = self.write();
        let entry = st.sources.entry(source).or_default();
        entry.last_failure = Some((at, reason.into()));
        entry.consecutive_failures = entry.consecutive_failures.saturating_add(1);
        entry.waiting = None;
    }

    /// Records that `source`'s job was skipped because it is not ready: not a failure, it
    /// waits (`why` says for what).
    pub fn record_waiting(&self, source: Source, at: DateTime<Utc>, why: impl Into<String>) {
        self.write().sources.entry(source).or_default().waiting = Some((at, why.into()));
    }

    /// Replaces the last Gradient push's pair counts.
    pub fn set_push(&self, pairs: PushPairs) {
        self.write().push = Some(pairs);
    }

    /// Replaces how the last completed vendor run counted.
    pub fn set_counting(&self, run_id: RunId, at: DateTime<Utc>, report: CountingReport) {
        self.write().counting = Some((run_id, at, report));
    }

    /// Replaces every notification channel's state (channels not listed are gone).
    pub fn set_notify(&self, channels: BTreeMap<String, NotifyHealth>) {
        self.write().notify = channels;
    }

    /// Replaces the reconciliation summary.
    pub fn set_reconciliation(&self, summary: ReconciliationSummary) {
        self.write().reconciliation = Some(summary);
    }

    /// A copy of the whole state.
    pub fn snapshot(&self) -> HealthState {
        self.read().clone()
    }

    /// The `application/health+json` report as of `now`, given the main loop's status.
    pub fn report(&self, now: DateTime<Utc>, main_loop: LoopStatus) -> HealthReport {
        report::build(&self.read(), now, main_loop)
    }
}
