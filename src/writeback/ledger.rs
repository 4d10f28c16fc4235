//! [`ApplyLedger`]: what the apply engine needs from the store — the plan, the apply journal,
//! and the two commits around each write (the intent before, the result and its audit entry
//! after). The store implements it (`src/store/writeback.rs`); the engine never names the
//! store, which itself keeps plans and so depends on this module.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;

use super::audit::{AuditEntry, JournalEntry};
use super::{Plan, PlanId};
use crate::exit::{Exit, ExitStatus};

/// An error of the ledger (the store), kept whole: its message names the file and what to
/// do, and its exit status is the store's own.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct LedgerError(Box<dyn LedgerFailure>);

/// An error a ledger may fail with: any error that knows its exit status.
pub trait LedgerFailure: std::error::Error + ExitStatus + Send + Sync + 'static {}

impl<E: std::error::Error + ExitStatus + Send + Sync + 'static> LedgerFailure for E {}

impl LedgerError {
    /// Wraps the ledger's own error.
    pub fn new(e: impl LedgerFailure) -> LedgerError {
        LedgerError(Box::new(e))
    }

    /// The error as the ledger gave it.
    pub fn inner(&self) -> &dyn LedgerFailure {
        &*self.0
    }
}

impl ExitStatus for LedgerError {
    fn exit(&self) -> Exit {
        self.0.exit()
    }
}

/// The store as the apply engine sees it. Every write is its own committed transaction.
pub trait ApplyLedger: Send + Sync {
    /// Plan `id`, `None` when there is none.
    fn plan(&self, id: PlanId) -> BoxFuture<'_, Result<Option<Plan>, LedgerError>>;

    /// The journal of plan `id`: an entry per row an apply has touched and not failed.
    fn journal(
        &self,
        plan: PlanId,
    ) -> BoxFuture<'_, Result<BTreeMap<u32, JournalEntry>, LedgerError>>;

    /// Records (and commits) that `who` is about to write row `row` of plan `plan`.
    fn record_intent(
        &self,
        plan: PlanId,
        row: u32,
        since: DateTime<Utc>,
        who: String,
    ) -> BoxFuture<'_, Result<(), LedgerError>>;

    /// In one transaction: appends `entry` to the audit log (giving it its `seq`) and settles
    /// the row's journal entry — [`JournalEntry::Done`] for `applied` and `skipped`, removed
    /// for `failed` (so the next apply retries it). Returns the stored entry.
    fn record_result(&self, entry: AuditEntry) -> BoxFuture<'_, Result<AuditEntry, LedgerError>>;
}
