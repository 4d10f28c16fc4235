//! Write-back plans, by id. A plan rebuilt with the same changes as the latest keeps the
//! latest's id (its basis is updated); one with other changes gets the next id and marks the
//! latest superseded, in the same transaction. See [`crate::writeback`].

use redb::{ReadableTable, TableDefinition, TableError};

use super::tables::{self, META};
use super::{Inner, Store, StoreError};
use crate::writeback::{Plan, PlanId};

/// Plan id → encoded [`Plan`]. Created on the first save: a store from before write-back
/// reads as "no plan yet".
pub(crate) const PLANS: TableDefinition<u64, &[u8]> = TableDefinition::new("plans_v1");

/// The `meta` key of the latest plan's id.
const KEY_LATEST_PLAN: &str = "latest_plan";

/// What [`Store::save_plan`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum PlanSaved {
    /// The plan is new; `superseded` is the plan it replaced, if any.
    New {
        /// The stored plan, with its id.
        plan: Plan,
        /// The previous latest plan, now superseded.
        superseded: Option<PlanId>,
    },
    /// The latest plan proposes the same changes: it was kept (its id, its `created_at`),
    /// with the newer reconciliation as its basis.
    Same {
        /// The stored plan.
        plan: Plan,
    },
}

impl PlanSaved {
    /// The plan now stored as the latest.
    pub fn plan(&self) -> &Plan {
        match self {
            PlanSaved::New { plan, .. } | PlanSaved::Same { plan } => plan,
        }
    }
}

impl Store {
    /// Stores `plan` as the latest plan (see the module doc); `plan.id` is ignored.
    pub async fn save_plan(&self, mut plan: Plan) -> Result<PlanSaved, StoreError> {
        self.blocking("save a plan", move |inner| {
            let txn = inner.write()?;
            let mut meta = txn.open_table(META).map_err(inner.err("open meta"))?;
            let latest_id =
                meta.get(KEY_LATEST_PLAN).map_err(inner.err("read meta"))?.map(|v| v.value());
            let mut table = txn.open_table(PLANS).map_err(inner.err("open the plans table"))?;
            let latest: Option<Plan> = match latest_id {
                Some(id) => match table.get(id).map_err(inner.err("read a plan"))? {
                    Some(v) => Some(tables::decode(&inner.path, "plan", v.value())?),
                    None => None,
                },
                None => None,
            };
            let saved = match latest {
                Some(old) if old.same_changes(&plan) => {
                    plan.id = old.id;
                    plan.created_at = old.created_at;
                    PlanSaved::Same { plan }
                }
                old => {
                    let id = latest_id.unwrap_or(0) + 1;
                    plan.id = id;
                    let superseded = match old {
                        Some(mut old) => {
                            old.superseded_by = Some(id);
                            table
                                .insert(old.id, tables::encode(&old).as_slice())
                                .map_err(inner.err("write a plan"))?;
                            Some(old.id)
                        }
                        None => None,
                    };
                    meta.insert(KEY_LATEST_PLAN, id).map_err(inner.err("write meta"))?;
                    PlanSaved::New { plan, superseded }
                }
            };
            let stored = saved.plan();
            table
                .insert(stored.id, tables::encode(stored).as_slice())
                .map_err(inner.err("write a plan"))?;
            drop((meta, table));
            txn.commit().map_err(inner.err("commit a plan"))?;
            Ok(saved)
        })
        .await
    }

    /// Plan `id`; `None` when there is no such plan.
    pub async fn plan(&self, id: PlanId) -> Result<Option<Plan>, StoreError> {
        self.blocking("read a plan", move |inner| read_plan(inner, id)).await
    }

    /// The latest plan; `None` before the first one.
    pub async fn latest_plan(&self) -> Result<Option<Plan>, StoreError> {
        self.blocking("read the latest plan", |inner| {
            let txn = inner.read()?;
            let meta = txn.open_table(META).map_err(inner.err("open meta"))?;
            let Some(id) = meta.get(KEY_LATEST_PLAN).map_err(inner.err("read meta"))? else {
                return Ok(None);
            };
            let id = id.value();
            drop((meta, txn));
            read_plan(inner, id)
        })
        .await
    }
}

fn read_plan(inner: &Inner, id: PlanId) -> Result<Option<Plan>, StoreError> {
    let txn = inner.read()?;
    let table = match txn.open_table(PLANS) {
        Ok(t) => t,
        Err(TableError::TableDoesNotExist(_)) => return Ok(None),
        Err(e) => return Err(StoreError::db("open the plans table", inner.path.clone(), e)),
    };
    match table.get(id).map_err(inner.err("read a plan"))? {
        Some(v) => Ok(Some(tables::decode(&inner.path, "plan", v.value())?)),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {

    use super::*;
    use crate::writeback::WriteBackMode;

    fn plan(changes: &[(u64, f64, f64)]) -> Plan {
        let changes: Vec<_> =
            changes.iter().map(|&(a, from, to)| (a, from, to, WriteBackMode::Review)).collect();
        crate::writeback::sample_plan(0, &changes)
    }

    #[tokio::test]
    async fn same_changes_keep_the_id_other_changes_supersede() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.latest_plan().await.unwrap(), None);
        let first = store.save_plan(plan(&[(7, 10.0, 12.0)])).await.unwrap();
        assert!(matches!(&first, PlanSaved::New { plan, superseded: None } if plan.id == 1));
        // A later poll confirms the same numbers: the reviewed plan stays current.
        let mut again = plan(&[(7, 10.0, 12.0)]);
        again.vendor_run = Some(3);
        let same = store.save_plan(again).await.unwrap();
        assert!(
            matches!(&same, PlanSaved::Same { plan } if plan.id == 1 && plan.vendor_run == Some(3))
        );
        // Other numbers: plan 2, and plan 1 says it was superseded.
        let next = store.save_plan(plan(&[(7, 10.0, 13.0)])).await.unwrap();
        assert!(matches!(&next, PlanSaved::New { plan, superseded: Some(1) } if plan.id == 2));
        assert_eq!(store.plan(1).await.unwrap().unwrap().superseded_by, Some(2));
        assert_eq!(store.latest_plan().await.unwrap().unwrap().id, 2);
        assert_eq!(store.plan(9).await.unwrap(), None);
        // Kept across a reopen.
        drop(store);
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.latest_plan().await.unwrap().unwrap().changes[0].to, 13.0);
    }
}
