//! The Mailprotector side of mpsync: the API client (tolerant models, paging), the product
//! and user-type vocabularies, the "Check Connection" call, and the usage-count collection
//! (customers → domains → users of the counted types → services per user group).
//!
//! One counting rule: a customer's count for a product is the number of its users of the
//! counted types (`count_user_types`) in user groups that have the product. The reseller-wide
//! user listing applies it user by user; `user_count` may stand in only where a run verified
//! that it equals that number ([`trust`]).

mod client;
mod collect;
mod count;
pub mod models;
pub mod pagination;
#[cfg(test)]
mod stub;
pub mod trust;
mod users_walk;
mod walk;

pub use crate::model::{products, user_types};
pub use client::{MailprotectorClient, UPSTREAM};
pub use collect::{CollectInput, CollectOutput, collect_usage};
pub use count::{GroupFacts, count_usage};
pub use walk::{UserCountCheck, Walk, WalkStats};

use crate::config::MailprotectorConfig;
use crate::exit::{Exit, ExitStatus};
use crate::upstream::UpstreamError;

/// Why a collection run did not complete. A run either counts every customer or fails whole.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CollectError {
    /// A call failed (after retries), or an answer was malformed.
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    /// Shutdown (or the caller) cancelled the run; nothing was counted.
    #[error(
        "the Mailprotector collection was cancelled before it completed; no counts were recorded"
    )]
    Cancelled,
}

impl ExitStatus for CollectError {
    fn exit(&self) -> Exit {
        match self {
            CollectError::Upstream(e) => e.exit(),
            CollectError::Cancelled => Exit::Failure,
        }
    }
}

/// The reseller the configured key and id reach.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ResellerInfo {
    /// Reseller id.
    pub id: u64,
    /// Its name, when given.
    pub name: Option<String>,
}

/// The "Check Connection" step: `GET /resellers/{id}` with the configured key. Errors say
/// exactly what to fix: the key (401), the key's scope (403) or the reseller id (404).
pub async fn check_connection(cfg: &MailprotectorConfig) -> Result<ResellerInfo, UpstreamError> {
    let client = MailprotectorClient::new(cfg)?;
    let id = cfg.reseller_id;
    match client.reseller().await {
        Ok(r) => Ok(ResellerInfo { id: r.id, name: r.name }),
        Err(UpstreamError::Forbidden { upstream, endpoint, credential, message }) => {
            Err(UpstreamError::Forbidden {
                upstream,
                endpoint,
                credential,
                message: format!(
                    "{message}; the key is not a reseller-level key for reseller {id} (a customer-level key, or one \
                 for another reseller): use the API key of a manager role on reseller {id}"
                ),
            })
        }
        Err(UpstreamError::NotFound { upstream, endpoint, path, message }) => {
            Err(UpstreamError::NotFound {
                upstream,
                endpoint,
                path,
                message: format!(
                    "{message}; reseller {id} does not exist: check mailprotector.reseller_id (the number in the \
                 console URL of your reseller overview)"
                ),
            })
        }
        Err(other) => Err(other),
    }
}
