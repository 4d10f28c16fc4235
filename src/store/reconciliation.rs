//! The latest reconciliation, kept as one versioned value so `mpsync reconcile`, the HTTP API
//! and the next computation (which carries `since` and debounce counters) read the same thing.
//! It records the vendor and billing runs it came from inside the value.

use std::sync::Arc;

use redb::{TableDefinition, TableError};

use super::tables;
use super::{Store, StoreError};
use crate::reconcile::Reconciliation;

/// key → encoded [`Reconciliation`]. Only [`LATEST`] is written today; the table is created
/// on the first save, so a store from before reconciliation existed reads as "none yet".
pub(super) const RECONCILIATION: TableDefinition<&str, &[u8]> =
    TableDefinition::new("reconciliation_v1");

/// The key of the latest reconciliation.
const LATEST: &str = "latest";

impl Store {
    /// Replaces the stored reconciliation with `rec` in one transaction.
    pub async fn save_reconciliation(&self, rec: &Reconciliation) -> Result<(), StoreError> {
        self.save_reconciliation_shared(Arc::new(rec.clone())).await
    }

    /// [`Store::save_reconciliation`] of a value the caller shares: it becomes what readers
    /// get without being copied.
    pub async fn save_reconciliation_shared(
        &self,
        rec: Arc<Reconciliation>,
    ) -> Result<(), StoreError> {
        // Encode on the caller's side: the value is plain data, and the blocking task then
        // only writes bytes.
        let bytes = tables::encode(&*rec);
        let cached = rec;
        self.blocking("save the reconciliation", move |inner| {
            let txn = inner.write()?;
            txn.open_table(RECONCILIATION)
                .map_err(inner.err("open the reconciliation table"))?
                .insert(LATEST, bytes.as_slice())
                .map_err(inner.err("write the reconciliation"))?;
            txn.commit().map_err(inner.err("commit the reconciliation"))?;
            *inner.latest_reconciliation.lock().unwrap_or_else(|e| e.into_inner()) = Some(cached);
            Ok(())
        })
        .await
    }

    /// The latest stored reconciliation; `None` before the first one was saved.
    pub async fn latest_reconciliation(&self) -> Result<Option<Reconciliation>, StoreError> {
        Ok(self.latest_reconciliation_shared().await?.map(|r| Reconciliation::clone(&r)))
    }

    /// [`Store::latest_reconciliation`] without a copy: readers share the decoded value (at
    /// 10,000 customers it is tens of megabytes, so HTTP readers must not each copy it).
    pub async fn latest_reconciliation_shared(
        &self,
    ) -> Result<Option<Arc<Reconciliation>>, StoreError> {
        self.blocking("read the reconciliation", |inner| {
            let cache = &inner.latest_reconciliation;
            if let Some(rec) = cache.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
                return Ok(Some(rec.clone()));
            }
            let txn = inner.read()?;
            let table = match txn.open_table(RECONCILIATION) {
                Ok(t) => t,
                Err(TableError::TableDoesNotExist(_)) => return Ok(None),
                Err(e) => {
                    return Err(StoreError::db(
                        "open the reconciliation table",
                        inner.path.clone(),
                        e,
                    ));
                }
            };
            let Some(value) = table.get(LATEST).map_err(inner.err("read the reconciliation"))?
            else {
                return Ok(None);
            };
            let rec: Reconciliation = tables::decode(&inner.path, "reconciliation", value.value())?;
            // Only into an empty cache: a save that committed meanwhile holds the newer value.
            let mut cached = cache.lock().unwrap_or_else(|e| e.into_inner());
            Ok(Some(cached.get_or_insert_with(|| Arc::new(rec)).clone()))
        })
        .await
    }
}
