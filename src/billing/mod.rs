//! The billing side: where billed quantities come from. A [`BilledSource`] reads every
//! account and billed line the PSA holds — ConnectWise Manage agreement additions
//! ([`ConnectwiseSource`]), Autotask recurring-service contracts ([`AutotaskSource`]),
//! HaloPSA recurring-invoice lines ([`HalopsaSource`]) or a CSV export ([`CsvSource`]) — or
//! fails whole with a typed
//! [`BillingError`]; a partial read is never returned.
//!
//! The way back: a [`write::LineWriter`] reads and sets the quantity of single lines in the
//! PSA, for an operator-approved write-back; [`writer_from_config`] builds the configured
//! source's writer, or says why it has none.

pub mod autotask;
pub mod connectwise;
pub mod csv;
pub mod halopsa;
pub mod write;

use std::sync::Arc;

use chrono::{DateTime, Utc};
// The same type as `sync::BoxFuture`, named from its crate so billing does not depend on sync.
use futures_util::future::BoxFuture;
use tokio_util::sync::CancellationToken;

pub use self::autotask::{AutotaskSource, AutotaskWriter};
pub use self::connectwise::{ConnectwiseSource, ConnectwiseWriter};
pub use self::csv::{CsvError, CsvProblem, CsvSource, parse_csv};
pub use self::halopsa::{HalopsaSource, HalopsaWriter};
use crate::config::{BillingConfig, BillingSource};
use crate::exit::{Exit, ExitStatus};
use crate::model::{Account, BilledLine};
use crate::upstream::{StatsSnapshot, UpstreamError};

/// Everything a billing source holds: its accounts and every billed line, counted or not.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Billed {
    /// Every account (PSA company, CSV account), sorted by id.
    pub accounts: Vec<Account>,
    /// Every line read; lines that do not count carry `counted = false` and a note.
    pub lines: Vec<BilledLine>,
}

/// What one read returns: the result and the requests it made (recorded either way).
#[derive(Debug)]
pub struct FetchReport {
    /// The accounts and lines, or why there are none.
    pub outcome: Result<Billed, BillingError>,
    /// Request accounting per upstream (empty for a file source).
    pub stats: Vec<StatsSnapshot>,
}

/// A source of billed quantities. Object-safe: the daemon holds an `Arc<dyn BilledSource>`.
pub trait BilledSource: Send + Sync + 'static {
    /// The source's short name (`connectwise`, `csv`), used in logs and errors.
    fn name(&self) -> &'static str;

    /// Reads everything, judging time-dependent rules (effective and cancelled dates) at
    /// `now`. Honours `cancel` between requests.
    fn fetch<'a>(
        &'a self,
        now: DateTime<Utc>,
        cancel: &'a CancellationToken,
    ) -> BoxFuture<'a, FetchReport>;
}

/// Why a billing read did not complete. Nothing is recorded from a failed read: the previous
/// billed snapshot stays in use.
#[derive(Debug, thiserror::Error)]
pub enum BillingError {
    /// A ConnectWise call failed (after retries), or its answer was unusable.
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    /// The CSV file has bad rows; every problem is listed.
    #[error(transparent)]
    Csv(#[from] CsvError),
    /// The CSV file could not be read at all.
    #[error(
        "cannot read the billing CSV {path}: {source}; check billing.csv.path and that the \
         user running mpsync may read the file (the previous billed snapshot stays in use)"
    )]
    CsvIo {
        /// The configured path.
        path: String,
        /// Why it could not be read.
        #[source]
        source: CsvReadError,
    },
    /// The PSA answered, but the API user sees none of what must be there (a security level
    /// that hides it returns no rows rather than an error).
    #[error("{source_name}: {what}")]
    NothingVisible {
        /// The billing source's name.
        source_name: &'static str,
        /// What is missing and how to fix it.
        what: String,
    },
    /// Shutdown (or the caller) stopped the read; nothing was recorded.
    #[error("the billing read was cancelled before it completed; nothing was recorded")]
    Cancelled,
}

/// Why the billing CSV could not be read at all.
#[derive(Debug, thiserror::Error)]
pub enum CsvReadError {
    /// The OS refused (missing file, permissions, ...).
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// The blocking task reading it stopped (panicked or was cancelled).
    #[error("the reading task stopped: {0}")]
    Task(#[source] tokio::task::JoinError),
}

impl ExitStatus for BillingError {
    fn exit(&self) -> Exit {
        match self {
            BillingError::Upstream(e) => e.exit(),
            BillingError::Csv(_) => Exit::DataErr,
            BillingError::CsvIo { .. } => Exit::IoErr,
            BillingError::NothingVisible { .. } => Exit::Unavailable,
            BillingError::Cancelled => Exit::Failure,
        }
    }
}

/// The source the config asks for; `Ok(None)` when `billing.source = "none"`. Building the
/// ConnectWise client fails only on a key that is not a valid header value.
pub fn source_from_config(
    cfg: &BillingConfig,
) -> Result<Option<Arc<dyn BilledSource>>, BillingError> {
    Ok(match &cfg.source {
        BillingSource::None => None,
        BillingSource::Connectwise(cw) => Some(Arc::new(ConnectwiseSource::new(cw)?)),
        BillingSource::Autotask(at) => Some(Arc::new(AutotaskSource::new(at)?)),
        BillingSource::Halopsa(h) => Some(Arc::new(HalopsaSource::new(h)?)),
        BillingSource::Csv(c) => Some(Arc::new(CsvSource::new(c.path.clone()))),
    })
}

/// [`source_from_config`], with an Autotask source keeping its looked-up zone in `zones`
/// (the daemon's store) so a restart does not look it up again.
pub fn source_with_zone_cache(
    cfg: &BillingConfig,
    zones: Arc<dyn autotask::ZoneCache>,
) -> Result<Option<Arc<dyn BilledSource>>, BillingError> {
    Ok(match &cfg.source {
        BillingSource::Autotask(at) => {
            Some(Arc::new(AutotaskSource::new(at)?.with_zone_cache(zones)))
        }
        _ => source_from_config(cfg)?,
    })
}

/// Whether the configured billing source has a write path (what [`writer_from_config`] would
/// build a writer for), decided from its kind alone: nothing is built or sent. A plan records
/// it, so a plan for CSV billing says its changes are entered by hand.
pub fn has_write_path(cfg: &BillingConfig) -> bool {
    match &cfg.source {
        BillingSource::Connectwise(_) | BillingSource::Autotask(_) | BillingSource::Halopsa(_) => {
            true
        }
        BillingSource::Csv(_) | BillingSource::None => false,
    }
}

/// The configured billing source's writer, for a write-back:
/// [`write::WriteError::NotWritable`] for a CSV export and for no billing source (nothing is
/// built, nothing is sent). Autotask writes by contract service adjustment
/// ([`AutotaskWriter`]), HaloPSA by recurring-invoice line, verified by re-reading the
/// invoice ([`HalopsaWriter`]). Building a client fails only on a key that is not a valid header
/// value.
pub fn writer_from_config(
    cfg: &BillingConfig,
) -> Result<Arc<dyn write::LineWriter>, write::WriteError> {
    match &cfg.source {
        BillingSource::Connectwise(cw) => Ok(Arc::new(ConnectwiseWriter::new(cw)?)),
        BillingSource::Autotask(at) => Ok(Arc::new(AutotaskWriter::new(at)?)),
        BillingSource::Halopsa(h) => Ok(Arc::new(HalopsaWriter::new(h)?)),
        BillingSource::Csv(_) => Err(write::WriteError::NotWritable {
            billing: "csv",
            why: "a CSV export is a copy of the PSA's data that mpsync only reads; change the \
                  quantities in the PSA itself",
        }),
        BillingSource::None => Err(write::WriteError::NotWritable {
            billing: "none",
            why: "no billing source is configured, so there is nothing to write to",
        }),
    }
}

/// The configured billing source's writer, or a [`write::NoWriter`] that fails every call
/// with why there is none (a CSV export, no source, a key that is not a valid header value).
pub fn configured_writer(cfg: &BillingConfig) -> Arc<dyn write::LineWriter> {
    writer_from_config(cfg)
        .unwrap_or_else(|error| Arc::new(write::NoWriter { source: cfg.source.name(), error }))
}

/// The "Check Connection" step for the configured billing source, for `mpsync check`:
/// ConnectWise answers `GET /system/info` with the configured keys; HaloPSA grants a token
/// with the scopes needed (`write_back`: some product opts in to write-back) and answers
/// each route; a CSV file parses cleanly. `None` when no billing source is configured.
pub async fn check(cfg: &BillingConfig, write_back: bool) -> Option<Result<String, BillingError>> {
    match &cfg.source {
        BillingSource::None => None,
        BillingSource::Connectwise(cw) => Some(
            connectwise::check_connection(cw)
                .await
                .map(|info| format!("ConnectWise {} answers with these keys", info.describe()))
                .map_err(BillingError::from),
        ),
        BillingSource::Autotask(at) => {
            Some(autotask::check_connection(at).await.map(|r| r.describe()))
        }
        BillingSource::Halopsa(h) => {
            Some(halopsa::check_connection(h, write_back).await.map(|r| r.describe()))
        }
        BillingSource::Csv(c) => {
            let path = c.path.clone();
            let parsed =
                tokio::task::spawn_blocking(move || csv::read_file(&path, Utc::now())).await;
            Some(match parsed {
                Ok(Ok(b)) => Ok(format!(
                    "{} reads cleanly: {} accounts, {} lines",
                    c.path.display(),
                    b.accounts.len(),
                    b.lines.len()
                )),
                Ok(Err(e)) => Err(e),
                Err(e) => Err(BillingError::CsvIo {
                    path: c.path.display().to_string(),
                    source: CsvReadError::Task(e),
                }),
            })
        }
    }
}
