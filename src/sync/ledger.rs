//! The store as the engine's run ledger. Its errors stay [`StoreError`]s, so a run that
//! cannot be recorded says exactly what the store said, and keeps its exit status.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::job::{BoxFuture, JobOutput, RunLedger};
use crate::model::{RunId, RunKind, RunOutcome, RunRecord};
use crate::store::{Store, StoreError};

impl RunLedger for Store {
    fn begin(&self, kind: RunKind, at: DateTime<Utc>) -> BoxFuture<'_, Result<RunId, StoreError>> {
        Box::pin(async move { self.begin_run(kind, at).await })
    }

    fn complete(
        &self,
        id: RunId,
        at: DateTime<Utc>,
        requests: BTreeMap<String, u64>,
        output: JobOutput,
    ) -> BoxFuture<'_, Result<RunRecord, StoreError>> {
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
        })
    }

    fn fail(
        &self,
        id: RunId,
        at: DateTime<Utc>,
        reason: String,
        requests: BTreeMap<String, u64>,
    ) -> BoxFuture<'_, Result<RunRecord, StoreError>> {
        Box::pin(async move { self.fail_run(id, at, reason, requests).await })
    }

    fn cancel(
        &self,
        id: RunId,
        at: DateTime<Utc>,
        reason: String,
        requests: BTreeMap<String, u64>,
    ) -> BoxFuture<'_, Result<RunRecord, StoreError>> {
        Box::pin(async move { self.cancel_run(id, at, reason, requests).await })
    }

    fn last_success(
        &self,
        kind: RunKind,
    ) -> BoxFuture<'_, Result<Option<DateTime<Utc>>, StoreError>> {
        Box::pin(async move {
            let last = Store::last_success(self, kind).await?;
            Ok(last.and_then(|r| r.finished_at))
        })
    }
}
