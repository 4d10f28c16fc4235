//! Reads what a period report needs from the store: the event log and the latest
//! reconciliation's rows that hold an open discrepancy.

use chrono::{DateTime, Utc};

use super::{Inputs, Report, build};
use crate::reconcile::{Filter, Status};
use crate::store::{Store, StoreError};

/// The report of `since..until` from `store`.
pub async fn load(
    store: &Store,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<Report, StoreError> {
    let (events, events_since) =
        store.events_between(DateTime::<Utc>::MIN_UTC, DateTime::<Utc>::MAX_UTC).await?;
    let head = store.reconciliation_head().await?;
    // An open discrepancy shows as itself, pending (changing status) or stale.
    let statuses = Status::ALL
        .into_iter()
        .filter(|s| s.is_discrepancy() || matches!(s, Status::Pending | Status::Stale))
        .collect();
    let rows = match &head {
        Some(_) => {
            store.reconciliation_rows(Filter { statuses, ..Filter::default() }, false).await?
        }
        None => Vec::new(),
    };
    let current = head.as_ref().map(|h| (h.computed_at, rows.as_slice()));
    Ok(build(&Inputs { since, until, events: &events, events_since, current }))
}
