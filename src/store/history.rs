//! Count history: per (customer, product) only the points where the count changed (a product
//! disappearing is a change to 0), plus customer renames. Written by the vendor commit in the
//! same transaction as the snapshot it describes.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use redb::WriteTransaction;
use serde::{Deserialize, Serialize};

use super::tables::{self, HISTORY, RENAMES};
use super::{Inner, Store, StoreError};
use crate::model::{CustomerId, CustomerUsage, RunId};

/// One change of a customer's count for one product.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryPoint {
    /// The vendor run that first saw this count.
    pub run_id: RunId,
    /// When that run observed it.
    pub observed_at: DateTime<Utc>,
    /// The count from then on (0: the product disappeared).
    pub count: u64,
}

/// A customer's name changing between two vendor runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rename {
    /// The vendor run that first saw the new name.
    pub run_id: RunId,
    /// When that run observed it.
    pub observed_at: DateTime<Utc>,
    /// The name before.
    pub old_name: String,
    /// The name from then on.
    pub new_name: String,
}

impl Store {
    /// Every retained change of `customer`'s count of `product`, oldest first. The last point
    /// is the current value and the time since which it holds; empty means the product was
    /// never seen for this customer (or only as 0, longer ago than the history retention).
    pub async fn history(
        &self,
        customer: CustomerId,
        product: &str,
    ) -> Result<Vec<HistoryPoint>, StoreError> {
        let product = product.to_owned();
        self.blocking("read count history", move |inner| {
            let txn = inner.read()?;
            let table = txn.open_table(HISTORY).map_err(inner.err("open history"))?;
            let range = (customer, product.as_str(), 0)..=(customer, product.as_str(), u64::MAX);
            let mut out = Vec::new();
            for row in table.range(range).map_err(inner.err("read history"))? {
                let (k, v) = row.map_err(inner.err("read history"))?;
                let (at, count) = v.value();
                out.push(HistoryPoint {
                    run_id: k.value().2,
                    observed_at: from_micros(inner, at)?,
                    count,
                });
            }
            Ok(out)
        })
        .await
    }

    /// Every retained rename of `customer`, oldest first.
    pub async fn renames(&self, customer: CustomerId) -> Result<Vec<Rename>, StoreError> {
        self.blocking("read renames", move |inner| {
            let txn = inner.read()?;
            let table = txn.open_table(RENAMES).map_err(inner.err("open renames"))?;
            let mut out = Vec::new();
            for row in table
                .range((customer, 0)..=(customer, u64::MAX))
                .map_err(inner.err("read renames"))?
            {
                let (_, v) = row.map_err(inner.err("read renames"))?;
                out.push(tables::decode(&inner.path, "rename", v.value())?);
            }
            Ok(out)
        })
        .await
    }
}

/// Records the history of one customer changing from `before` to `after` (`None`: absent).
pub(crate) fn record_change(
    inner: &Inner,
    txn: &WriteTransaction,
    run_id: RunId,
    observed_at: DateTime<Utc>,
    before: Option<&CustomerUsage>,
    after: Option<&CustomerUsage>,
) -> Result<(), StoreError> {
    let id = after.or(before).map(|c| c.id).unwrap_or_default();
    let mut history = txn.open_table(HISTORY).map_err(inner.err("open history"))?;
    let products: BTreeSet<&String> =
        before.iter().chain(after.iter()).flat_map(|c| c.counts.keys()).collect();
    let count = |c: Option<&CustomerUsage>, p: &String| {
        c.and_then(|c| c.counts.get(p)).copied().unwrap_or(0)
    };
    for product in products {
        let (old, new) = (count(before, product), count(after, product));
        if old != new {
            history
                .insert((id, product.as_str(), run_id), (observed_at.timestamp_micros(), new))
                .map_err(inner.err("write history"))?;
        }
    }
    if let (Some(b), Some(a)) = (before, after)
        && b.name != a.name
    {
        let rename =
            Rename { run_id, observed_at, old_name: b.name.clone(), new_name: a.name.clone() };
        txn.open_table(RENAMES)
            .map_err(inner.err("open renames"))?
            .insert((id, run_id), tables::encode(&rename).as_slice())
            .map_err(inner.err("write a rename"))?;
    }
    Ok(())
}

/// Converts stored microseconds back to a time.
pub(crate) fn from_micros(inner: &Inner, micros: i64) -> Result<DateTime<Utc>, StoreError> {
    DateTime::from_timestamp_micros(micros).ok_or_else(|| StoreError::Corrupt {
        path: inner.path.clone(),
        what: "history time",
        reason: format!("{micros} µs is out of range"),
    })
}
