//! The PSA write path, PSA-neutral: a [`LineWriter`] reads one billed line as the PSA holds it
//! now and sets its quantity, and describes the exact request it would send (for dry runs).
//! ConnectWise, Autotask and HaloPSA implement it; other PSAs plug in the same way, and `writer_from_config` (in [`crate::billing`]) says which billing sources
//! have one (a CSV export does not).
//!
//! There is no version field to compare on (ConnectWise §3.4), so a careful write re-reads the
//! line just before writing and writes only if the quantity is still the one the plan read:
//! [`write_if_unchanged`]. Errors are typed ([`WriteError`]) so the caller can tell a line
//! changed since the plan, a deleted line ([`WriteError::Gone`]) and an unreachable PSA apart.

mod error;
mod guard;

use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};

pub use self::error::WriteError;
pub use self::guard::{GuardError, Guarded, Step, write_if_unchanged};
use crate::model::LineRef;
pub use crate::upstream::PlannedRequest;
use crate::upstream::StatsSnapshot;

/// Two quantities closer than this are the same quantity (PSAs keep a few decimals).
pub const QUANTITY_EPSILON: f64 = 1e-6;

/// Whether two quantities are the same for a write-back (within [`QUANTITY_EPSILON`]).
pub fn same_quantity(a: f64, b: f64) -> bool {
    (a - b).abs() < QUANTITY_EPSILON
}

/// One billed line as the PSA holds it at the moment it was read (or written).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LineState {
    /// The line.
    pub line: LineRef,
    /// Units billed now.
    pub quantity: f64,
    /// Price per unit per month, when the PSA gives one.
    pub unit_price: Option<f64>,
    /// The PSA product (ConnectWise: the product identifier, else its id), when given.
    pub product_id: Option<String>,
    /// Why the line does not bill as of the read, judged on the line's own fields only
    /// (ConnectWise: the addition's `cancelledDate`, `effectiveDate` and `billCustomer`; the
    /// agreement is not re-read); `None` when it bills.
    pub inactive: Option<String>,
    /// Why a write-back must leave the line alone as the read finds it (HaloPSA: a quantity
    /// Halo computes, an inactive line, a disabled or ended invoice, another item); `None`
    /// when it may be written. The guard skips such a line with this reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locked: Option<String>,
}

/// Reads and writes the quantity of single billed lines in one PSA. Object-safe: callers hold
/// an `Arc<dyn LineWriter>`.
///
/// Both calls go through the PSA's shared client: its rate budget, and retries of transient
/// failures (429, 5xx, timeouts). A write sets an absolute quantity, so sending it twice
/// cannot apply it twice; writers retry it like a read.
pub trait LineWriter: Send + Sync + 'static {
    /// The PSA's short name (`connectwise`), as in `billing.source`.
    fn psa(&self) -> &'static str;

    /// The line as the PSA holds it now. [`WriteError::Gone`] when the PSA says it does not
    /// exist (404); [`WriteError::WrongPsa`] for a line of another source.
    fn read_line<'a>(&'a self, line: &'a LineRef) -> BoxFuture<'a, Result<LineState, WriteError>>;

    /// Sets the line's quantity to `quantity` (unconditionally: see [`write_if_unchanged`])
    /// and returns the line as the PSA answered it. [`WriteError::Unconfirmed`] when the answer
    /// shows another quantity.
    fn set_quantity<'a>(
        &'a self,
        line: &'a LineRef,
        quantity: f64,
    ) -> BoxFuture<'a, Result<LineState, WriteError>>;

    /// The exact request [`LineWriter::set_quantity`] would send to set `line` to
    /// `quantity` when it holds `from` (what the plan read: a PSA that writes a change
    /// rather than a quantity, like Autotask's adjustments, sends `quantity − from`),
    /// credentials redacted; nothing is sent, not even a read. Fails as `set_quantity` would
    /// before sending (a line of another PSA, an impossible quantity).
    fn describe(
        &self,
        line: &LineRef,
        from: f64,
        quantity: f64,
    ) -> Result<PlannedRequest, WriteError>;

    /// Requests this writer has made so far (retries included).
    fn stats(&self) -> StatsSnapshot;
}

/// The writer of a billing source without one (a CSV export, no source) or whose client could
/// not be built: every call fails with why. With it, applying a plan still refuses for the
/// plan's own reason first (a CSV plan: "enter the changes by hand").
#[derive(Debug, Clone)]
pub struct NoWriter {
    /// The configured source (`csv`, `none`, `connectwise`).
    pub source: &'static str,
    /// Why there is no writer.
    pub error: WriteError,
}

impl LineWriter for NoWriter {
    fn psa(&self) -> &'static str {
        self.source
    }

    fn read_line<'a>(&'a self, _: &'a LineRef) -> BoxFuture<'a, Result<LineState, WriteError>> {
        Box::pin(async move { Err(self.error.clone()) })
    }

    fn set_quantity<'a>(
        &'a self,
        _: &'a LineRef,
        _: f64,
    ) -> BoxFuture<'a, Result<LineState, WriteError>> {
        Box::pin(async move { Err(self.error.clone()) })
    }

    fn describe(&self, _: &LineRef, _: f64, _: f64) -> Result<PlannedRequest, WriteError> {
        Err(self.error.clone())
    }

    fn stats(&self) -> StatsSnapshot {
        StatsSnapshot::default()
    }
}
