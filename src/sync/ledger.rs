//! The store as the engine's run ledger.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::job::{BoxFuture, JobOutput, LedgerError, RunLedger};
use crate::model::{RunId, RunKind, RunOutcome, RunRecord};
use crate::store::{Store, StoreError};

fn ledger_err(e: StoreError) -> LedgerError {
    LedgerError(e.to_string())
}

impl RunLedger for Store {
    fn begin(&self, kind: RunKind, at: DateTime<Utc>) -> BoxFuture<'_, Result<RunId, LedgerError>> {
        Box::pin(async move { self.begin_run(kind, at).await.map_err(ledger_err) })
    }

    fn complete(
        &self,
        id: RunId,
        at: DateTime<Utc>,
        requests: BTreeMap<String, u64>,
        output: JobOutput,
    ) -> BoxFuture<'_, Result<RunRecord, LedgerError>> {
        Box::pin(async move {
            match output {
                JobOutput::Vendor { customers, counting } => {
                    self.commit_vendor_run_with(id, at, requests, customers, counting).await
                }
                JobOutput::Billing { accounts, lines } => {
                    self.commit_billing_run(id, at, requests, accounts, lines).await
                }
                JobOutput::Plain => self.commit_run(id, at, requests, RunOutcome::Ok).await,
            }
            .map_err(ledger_err)
        })
    }

    fn fail(
        &self,
        id: RunId,
        at: DateTime<Utc>,
        reason: String,
        requests: BTreeMap<String, u64>,
    ) -> BoxFuture<'_, Result<RunRecord, LedgerError>> {
        Box::pin(async move { self.fail_run(id, at, reason, requests).await.map_err(ledger_err) })
    }

    fn cancel(
        &self,
        id: RunId,
        at: DateTime<Utc>,
        reason: String,
        requests: BTreeMap<String, u64>,
    ) -> BoxFuture<'_, Result<RunRecord, LedgerError>> {
        Box::pin(async move { self.cancel_run(id, at, reason, requests).await.map_err(ledger_err) })
    }

    fn last_success(
        &self,
        kind: RunKind,
    ) -> BoxFuture<'_, Result<Option<DateTime<Utc>>, LedgerError>> {
        Box::pin(async move {
            let last = Store::last_success(self, kind).await.map_err(ledger_err)?;
            Ok(last.and_then(|r| r.finished_at))
        })
    }
}
