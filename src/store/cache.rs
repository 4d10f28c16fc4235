//! Caches and small metadata: the per-user-group service lists the Mailprotector client
//! reuses between runs, and caller-defined JSON values (e.g. walk sizes of the last run).

use std::collections::HashMap;

use redb::ReadableTable;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::tables::{self, KV, SERVICE_CACHE};
use super::{Store, StoreError};
use crate::model::CachedServices;

impl Store {
    /// The cached service list per user group id (empty when nothing was saved).
    pub async fn load_service_cache(&self) -> Result<HashMap<u64, CachedServices>, StoreError> {
        self.blocking("load the service cache", |inner| {
            let txn = inner.read()?;
            let table =
                txn.open_table(SERVICE_CACHE).map_err(inner.err("open the service cache"))?;
            let mut out = HashMap::new();
            for row in table.iter().map_err(inner.err("read the service cache"))? {
                let (k, v) = row.map_err(inner.err("read the service cache"))?;
                out.insert(
                    k.value(),
                    tables::decode(&inner.path, "cached service list", v.value())?,
                );
            }
            Ok(out)
        })
        .await
    }

    /// Replaces the whole service cache with `cache`, writing only the entries that changed
    /// (a warm run re-reads a share of the lists; rewriting all of them would dirty every page
    /// of the table in one transaction).
    pub async fn save_service_cache(
        &self,
        cache: HashMap<u64, CachedServices>,
    ) -> Result<(), StoreError> {
        self.blocking("save the service cache", move |inner| {
            let txn = inner.write()?;
            {
                let mut table =
                    txn.open_table(SERVICE_CACHE).map_err(inner.err("open the service cache"))?;
                table
                    .retain(|group, _| cache.contains_key(&group))
                    .map_err(inner.err("clear the service cache"))?;
                for (group, services) in &cache {
                    let value = tables::encode(services);
                    let same = table
                        .get(*group)
                        .map_err(inner.err("read the service cache"))?
                        .is_some_and(|old| old.value() == value.as_slice());
                    if !same {
                        table
                            .insert(*group, value.as_slice())
                            .map_err(inner.err("write the service cache"))?;
                    }
                }
            }
            txn.commit().map_err(inner.err("commit the service cache"))
        })
        .await
    }

    /// A metadata value stored under `key` by [`Store::put_meta`], or `None`.
    pub async fn get_meta<T: DeserializeOwned + Send + 'static>(
        &self,
        key: &str,
    ) -> Result<Option<T>, StoreError> {
        let key = key.to_owned();
        self.blocking("read metadata", move |inner| {
            let txn = inner.read()?;
            let table = txn.open_table(KV).map_err(inner.err("open metadata"))?;
            match table.get(key.as_str()).map_err(inner.err("read metadata"))? {
                Some(v) => Ok(Some(tables::decode(&inner.path, "metadata value", v.value())?)),
                None => Ok(None),
            }
        })
        .await
    }

    /// Stores `value` as JSON under `key`, replacing any previous value.
    pub async fn put_meta<T: Serialize + ?Sized>(
        &self,
        key: &str,
        value: &T,
    ) -> Result<(), StoreError> {
        let key = key.to_owned();
        let bytes = tables::encode(value);
        self.blocking("write metadata", move |inner| {
            let txn = inner.write()?;
            txn.open_table(KV)
                .map_err(inner.err("open metadata"))?
                .insert(key.as_str(), bytes.as_slice())
                .map_err(inner.err("write metadata"))?;
            txn.commit().map_err(inner.err("commit metadata"))
        })
        .await
    }

    /// Reads the value under `key` (`None` when absent), lets `f` change it, and stores the
    /// result, in one write transaction (a read-modify-write no other writer can interleave).
    pub async fn update_meta<T, F>(&self, key: &str, f: F) -> Result<(), StoreError>
    where
        T: Serialize + DeserializeOwned + Send + 'static,
        F: FnOnce(&mut Option<T>) + Send + 'static,
    {
        let key = key.to_owned();
        self.blocking("update metadata", move |inner| {
            let txn = inner.write()?;
            {
                let mut table = txn.open_table(KV).map_err(inner.err("open metadata"))?;
                let mut value: Option<T> =
                    match table.get(key.as_str()).map_err(inner.err("read metadata"))? {
                        Some(v) => Some(tables::decode(&inner.path, "metadata value", v.value())?),
                        None => None,
                    };
                f(&mut value);
                match value {
                    Some(v) => {
                        let bytes = tables::encode(&v);
                        table
                            .insert(key.as_str(), bytes.as_slice())
                            .map_err(inner.err("write metadata"))?;
                    }
                    None => {
                        table.remove(key.as_str()).map_err(inner.err("write metadata"))?;
                    }
                }
            }
            txn.commit().map_err(inner.err("commit metadata"))
        })
        .await
    }
}
