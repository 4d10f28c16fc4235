//! The apply journal and the audit log (see [`crate::writeback::audit`]): the journal keeps
//! one entry per (plan, row) an apply touched, the audit log one entry per attempt, for good.
//! The intent is its own committed transaction before the PSA is written; the result and its
//! audit entry are one transaction after. The tables are created on the first write: a store
//! from before write-back reads as "nothing applied yet".

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;
use redb::{ReadableTable, TableDefinition, TableError};

use super::tables;
use super::{Store, StoreError};
use crate::writeback::{
    ApplyLedger, AuditEntry, AuditQuery, AuditResult, JournalEntry, LedgerError, Plan, PlanId,
};

/// (plan, row) → encoded [`JournalEntry`].
pub(super) const JOURNAL: TableDefinition<(u64, u32), &[u8]> =
    TableDefinition::new("apply_journal_v1");
/// seq → encoded [`AuditEntry`].
pub(super) const AUDIT: TableDefinition<u64, &[u8]> = TableDefinition::new("audit_v1");
/// (plan, seq) → (): the audit entries of each plan.
pub(super) const AUDIT_BY_PLAN: TableDefinition<(u64, u64), ()> =
    TableDefinition::new("audit_by_plan_v1");

/// Whether the audit log holds an applied change to a line of (`account`, `psa_product`)
/// recorded at or after `since`, read in `txn` (newest first, stopping at the first older
/// entry: the log grows in time order).
pub(super) fn applied_since(
    inner: &super::Inner,
    txn: &redb::WriteTransaction,
    account: &str,
    psa_product: &str,
    since: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let audit = match txn.open_table(AUDIT) {
        Ok(t) => t,
        Err(TableError::TableDoesNotExist(_)) => return Ok(false),
        Err(e) => return Err(StoreError::db("open the audit log", inner.path.clone(), e)),
    };
    for item in audit.iter().map_err(inner.err("read the audit log"))?.rev() {
        let (_, v) = item.map_err(inner.err("read the audit log"))?;
        let entry: AuditEntry = tables::decode(&inner.path, "audit entry", v.value())?;
        if entry.at < since {
            break;
        }
        if entry.result == AuditResult::Applied
            && entry.account == account
            && entry.psa_product == psa_product
        {
            return Ok(true);
        }
    }
    Ok(false)
}

impl Store {
    /// The apply journal of plan `plan`, by row.
    pub async fn apply_journal(
        &self,
        plan: PlanId,
    ) -> Result<BTreeMap<u32, JournalEntry>, StoreError> {
        self.blocking("read the apply journal", move |inner| {
            let txn = inner.read()?;
            let table = match txn.open_table(JOURNAL) {
                Ok(t) => t,
                Err(TableError::TableDoesNotExist(_)) => return Ok(BTreeMap::new()),
                Err(e) => {
                    return Err(StoreError::db("open the apply journal", inner.path.clone(), e));
                }
            };
            let mut out = BTreeMap::new();
            let range = table
                .range((plan, 0u32)..=(plan, u32::MAX))
                .map_err(inner.err("read the apply journal"))?;
            for item in range {
                let (k, v) = item.map_err(inner.err("read the apply journal"))?;
                let entry: JournalEntry =
                    tables::decode(&inner.path, "apply journal entry", v.value())?;
                out.insert(k.value().1, entry);
            }
            Ok(out)
        })
        .await
    }

    /// Records and commits that `who` is about to write row `row` of plan `plan`.
    pub async fn record_apply_intent(
        &self,
        plan: PlanId,
        row: u32,
        since: DateTime<Utc>,
        who: String,
    ) -> Result<(), StoreError> {
        self.blocking("record an apply intent", move |inner| {
            let txn = inner.write()?;
            let mut table = txn.open_table(JOURNAL).map_err(inner.err("open the apply journal"))?;
            let entry = JournalEntry::InFlight { since, who };
            table
                .insert((plan, row), tables::encode(&entry).as_slice())
                .map_err(inner.err("write the apply journal"))?;
            drop(table);
            txn.commit().map_err(inner.err("commit an apply intent"))
        })
        .await
    }

    /// In one transaction: appends `entry` to the audit log with the next `seq` and settles
    /// its journal entry (done for applied and skipped, removed for failed). Returns the
    /// stored entry.
    pub async fn record_apply_result(
        &self,
        mut entry: AuditEntry,
    ) -> Result<AuditEntry, StoreError> {
        self.blocking("record an apply result", move |inner| {
            let txn = inner.write()?;
            let mut audit = txn.open_table(AUDIT).map_err(inner.err("open the audit log"))?;
            let last =
                audit.last().map_err(inner.err("read the audit log"))?.map(|(k, _)| k.value());
            entry.seq = last.unwrap_or(0) + 1;
            audit
                .insert(entry.seq, tables::encode(&entry).as_slice())
                .map_err(inner.err("write the audit log"))?;
            let mut by_plan =
                txn.open_table(AUDIT_BY_PLAN).map_err(inner.err("open the audit log"))?;
            by_plan
                .insert((entry.plan, entry.seq), ())
                .map_err(inner.err("write the audit log"))?;
            let mut journal =
                txn.open_table(JOURNAL).map_err(inner.err("open the apply journal"))?;
            match entry.result {
                AuditResult::Applied | AuditResult::Skipped => {
                    let done = JournalEntry::Done {
                        result: entry.result,
                        at: entry.at,
                        who: entry.who.clone(),
                        seq: entry.seq,
                        reason: entry.reason.clone(),
                    };
                    journal
                        .insert((entry.plan, entry.row), tables::encode(&done).as_slice())
                        .map_err(inner.err("write the apply journal"))?;
                }
                AuditResult::Failed => {
                    journal
                        .remove((entry.plan, entry.row))
                        .map_err(inner.err("write the apply journal"))?;
                }
            }
            drop((audit, by_plan, journal));
            // A failure is an event, appended with its audit entry.
            let mut events = Vec::new();
            if entry.result == AuditResult::Failed {
                events.push(crate::events::writeback_failed(crate::events::FailedChange {
                    at: entry.at,
                    plan: entry.plan,
                    account: &entry.account,
                    account_name: entry.account_name.as_deref(),
                    psa_product: &entry.psa_product,
                    line: &entry.line,
                    from: entry.from,
                    to: entry.to,
                    reason: entry.reason.as_deref().unwrap_or("no reason recorded"),
                }));
            }
            let last = super::events::append_in(inner, &txn, &mut events)?;
            txn.commit().map_err(inner.err("commit an apply result"))?;
            inner.announce(last);
            Ok(entry)
        })
        .await
    }

    /// Audit entries, newest first: at most `q.limit`, only plan `q.plan`'s when given.
    pub async fn audit(&self, q: AuditQuery) -> Result<Vec<AuditEntry>, StoreError> {
        self.blocking("read the audit log", move |inner| {
            let txn = inner.read()?;
            let audit = match txn.open_table(AUDIT) {
                Ok(t) => t,
                Err(TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
                Err(e) => return Err(StoreError::db("open the audit log", inner.path.clone(), e)),
            };
            let decode =
                |bytes: &[u8]| tables::decode::<AuditEntry>(&inner.path, "audit entry", bytes);
            let mut out = Vec::new();
            match q.plan {
                None => {
                    for item in audit.iter().map_err(inner.err("read the audit log"))?.rev() {
                        if out.len() >= q.limit {
                            break;
                        }
                        let (_, v) = item.map_err(inner.err("read the audit log"))?;
                        out.push(decode(v.value())?);
                    }
                }
                Some(plan) => {
                    let by_plan =
                        txn.open_table(AUDIT_BY_PLAN).map_err(inner.err("open the audit log"))?;
                    let range = by_plan
                        .range((plan, 0u64)..=(plan, u64::MAX))
                        .map_err(inner.err("read the audit log"))?;
                    for item in range.rev() {
                        if out.len() >= q.limit {
                            break;
                        }
                        let (k, _) = item.map_err(inner.err("read the audit log"))?;
                        if let Some(v) =
                            audit.get(k.value().1).map_err(inner.err("read the audit log"))?
                        {
                            out.push(decode(v.value())?);
                        }
                    }
                }
            }
            Ok(out)
        })
        .await
    }
}

impl ApplyLedger for Store {
    fn plan(&self, id: PlanId) -> BoxFuture<'_, Result<Option<Plan>, LedgerError>> {
        Box::pin(async move { Store::plan(self, id).await.map_err(LedgerError::new) })
    }

    fn journal(
        &self,
        plan: PlanId,
    ) -> BoxFuture<'_, Result<BTreeMap<u32, JournalEntry>, LedgerError>> {
        Box::pin(async move { self.apply_journal(plan).await.map_err(LedgerError::new) })
    }

    fn record_intent(
        &self,
        plan: PlanId,
        row: u32,
        since: DateTime<Utc>,
        who: String,
    ) -> BoxFuture<'_, Result<(), LedgerError>> {
        Box::pin(async move {
            self.record_apply_intent(plan, row, since, who).await.map_err(LedgerError::new)
        })
    }

    fn record_result(&self, entry: AuditEntry) -> BoxFuture<'_, Result<AuditEntry, LedgerError>> {
        Box::pin(async move { self.record_apply_result(entry).await.map_err(LedgerError::new) })
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn entry(plan: PlanId, row: u32, result: AuditResult) -> AuditEntry {
        AuditEntry {
            seq: 0,
            plan,
            row,
            line: format!("cw:1/{row}"),
            account: "250".into(),
            account_name: None,
            psa_product: "MP-CF".into(),
            from: 10.0,
            to: 12.0,
            result,
            reason: None,
            kind: None,
            found: Some(10.0),
            monthly_amount: Some(4.0),
            at: Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap(),
            who: "alice".into(),
        }
    }

    #[tokio::test]
    async fn intents_results_and_the_audit_log_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        // Before any apply: empty, and reading creates nothing.
        assert!(store.apply_journal(1).await.unwrap().is_empty());
        assert!(store.audit(AuditQuery::default()).await.unwrap().is_empty());
        let at = Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap();

        store.record_apply_intent(1, 1, at, "alice".into()).await.unwrap();
        store.record_apply_intent(1, 2, at, "alice".into()).await.unwrap();
        store.record_apply_intent(2, 1, at, "bob".into()).await.unwrap();
        let j = store.apply_journal(1).await.unwrap();
        assert_eq!(j.len(), 2);
        assert!(matches!(&j[&1], JournalEntry::InFlight { who, .. } if who == "alice"));

        let applied = store.record_apply_result(entry(1, 1, AuditResult::Applied)).await.unwrap();
        assert_eq!(applied.seq, 1);
        let failed = store.record_apply_result(entry(1, 2, AuditResult::Failed)).await.unwrap();
        assert_eq!(failed.seq, 2);
        let other = store.record_apply_result(entry(2, 1, AuditResult::Skipped)).await.unwrap();
        assert_eq!(other.seq, 3);

        drop(store);
        let store = Store::open(dir.path()).unwrap();
        let j = store.apply_journal(1).await.unwrap();
        assert!(matches!(&j[&1], JournalEntry::Done { result: AuditResult::Applied, seq: 1, .. }));
        assert!(!j.contains_key(&2), "a failed change is left for the next apply");
        let all = store.audit(AuditQuery::default()).await.unwrap();
        assert_eq!(all.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![3, 2, 1], "newest first");
        let two = store.audit(AuditQuery { limit: 2, plan: None }).await.unwrap();
        assert_eq!(two.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![3, 2]);
        let of_one = store.audit(AuditQuery { limit: 10, plan: Some(1) }).await.unwrap();
        assert_eq!(of_one.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![2, 1]);
        assert!(store.audit(AuditQuery { limit: 10, plan: Some(9) }).await.unwrap().is_empty());
    }
}
