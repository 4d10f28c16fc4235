//! `mpsync capture`: one read-only collection of the configured upstreams, turned into a
//! bundle that `mpsync sim --replay` serves (the format: [`mpsync_sim::replay::bundle`]).
//!
//! The reads are exactly the jobs' reads, from a cold state: the Mailprotector collection with
//! an empty service cache and no walk hints; the ConnectWise billing read when ConnectWise is
//! the billing source; Gradient's `GET /organization`, `GET /` and `GET /organization/accounts`
//! when its keys are configured. Every client records through a [`Recorder`] and therefore
//! refuses anything but GET. Secrets are scrubbed from every answer, names pseudonymized on
//! request, and the rendered files are checked for every form of every secret before they are
//! handed back to be written.
//!
//! [`Recorder`]: crate::upstream::Recorder

mod build;
mod pseudonym;
mod recorder;
mod rules;

use std::collections::HashMap;
use std::sync::Arc;

use chrono::Utc;
use tokio_util::sync::CancellationToken;

use recorder::BundleRecorder;

use crate::billing::BillingError;
use crate::billing::connectwise::ConnectwiseClient;
use crate::config::{BillingSource, Config};
use crate::exit::{Exit, ExitStatus};
use crate::gradient::{GradientClient, GradientError};
use crate::mailprotector::{CollectError, CollectInput, MailprotectorClient, collect_usage};
use crate::upstream::{Scrubber, UpstreamError};
use mpsync_sim::replay::{Bundle, Upstream};

/// How to capture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CaptureOptions {
    /// Replace names, e-mail addresses and domain names with consistent pseudonyms.
    pub pseudonymize: bool,
}

/// A finished capture: the bundle and its files, rendered and checked, ready to write.
#[derive(Debug)]
pub struct Capture {
    /// The bundle.
    pub bundle: Bundle,
    /// Its files (name, bytes), each checked to hold no form of any configured secret.
    pub files: Vec<(String, Vec<u8>)>,
    /// What each upstream did.
    pub upstreams: Vec<UpstreamReport>,
}

/// One upstream's part of a capture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamReport {
    /// Which upstream.
    pub upstream: Upstream,
    /// Distinct requests in the bundle.
    pub requests: usize,
    /// Requests sent, retries included.
    pub sent: u64,
    /// Why its collection stopped, if it did.
    pub failure: Option<UpstreamFailure>,
}

/// Why one upstream's reads stopped, as the bundle's manifest tells it: the error's text with
/// secrets scrubbed (and names pseudonymized on request), and the exit status of the error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct UpstreamFailure {
    /// The scrubbed text.
    pub message: String,
    /// The error's exit status.
    pub exit: Exit,
}

impl ExitStatus for UpstreamFailure {
    fn exit(&self) -> Exit {
        self.exit
    }
}

/// Why one upstream's reads stopped, before it is scrubbed into an [`UpstreamFailure`].
#[derive(Debug, thiserror::Error)]
enum ReadError {
    #[error(transparent)]
    Collect(#[from] CollectError),
    #[error(transparent)]
    Billing(#[from] BillingError),
    #[error(transparent)]
    Gradient(#[from] GradientError),
}

impl ExitStatus for ReadError {
    fn exit(&self) -> Exit {
        match self {
            ReadError::Collect(e) => e.exit(),
            ReadError::Billing(e) => e.exit(),
            ReadError::Gradient(e) => e.exit(),
        }
    }
}

/// Why no bundle could be produced at all.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    /// A client could not be built from the config.
    #[error(transparent)]
    Setup(#[from] UpstreamError),
    /// Ctrl-C (or the caller) stopped it.
    #[error("the capture was interrupted before it completed; nothing was written")]
    Cancelled,
    /// Defence in depth: a rendered file still held a form of a secret.
    #[error(
        "a configured secret was still found in {file} after scrubbing, so nothing was written; \
         this is a bug in mpsync: please report it (without the bundle)"
    )]
    Leak {
        /// The file that would have held it.
        file: String,
    },
    /// The bundle could not be serialized.
    #[error("cannot render the capture bundle: {0}")]
    Render(#[source] serde_json::Error),
}

impl ExitStatus for CaptureError {
    fn exit(&self) -> Exit {
        match self {
            CaptureError::Setup(e) => e.exit(),
            CaptureError::Cancelled => Exit::Failure,
            CaptureError::Leak { .. } | CaptureError::Render(_) => Exit::Software,
        }
    }
}

/// One upstream's collection, as recorded.
struct Run {
    upstream: Upstream,
    recorder: Arc<BundleRecorder>,
    /// `Ok(summary)`, or why it stopped (not yet scrubbed).
    outcome: Result<String, ReadError>,
    sent: u64,
    /// The configured origin (`https://host`), replaced when pseudonymizing.
    origin: String,
    reseller_id: Option<u64>,
}

/// Runs the capture's reads against the upstreams `config` names and assembles the bundle.
/// An upstream that fails is reported (the bundle keeps its answers up to the failure);
/// the others are still read.
pub async fn capture(
    config: &Config,
    opts: CaptureOptions,
    cancel: &CancellationToken,
) -> Result<Capture, CaptureError> {
    let captured_at = Utc::now();
    let mut scrubber = Scrubber::default();
    let mut runs = Vec::new();

    let mp = MailprotectorClient::new(&config.mailprotector)?;
    scrubber.extend(mp.upstream().scrubber());
    let recorder = Arc::new(BundleRecorder::default());
    let client = mp.recording(recorder.clone()).scoped();
    let input = CollectInput {
        config: &config.mailprotector,
        cache: &HashMap::new(),
        walk_stats: None,
        now: captured_at,
        cancel: cancel.clone(),
    };
    let outcome = match collect_usage(&client, input).await {
        Ok(out) => Ok(format!("{} customers counted", out.customers.len())),
        Err(CollectError::Cancelled) => return Err(CaptureError::Cancelled),
        Err(e) => Err(e.into()),
    };
    runs.push(Run {
        upstream: Upstream::Mailprotector,
        recorder,
        outcome,
        sent: client.stats().total_requests(),
        origin: origin(&config.mailprotector.base_url),
        reseller_id: Some(config.mailprotector.reseller_id),
    });

    if let BillingSource::Connectwise(cw) = &config.billing.source {
        let base = ConnectwiseClient::new(cw)?;
        scrubber.extend(base.scrubber());
        let recorder = Arc::new(BundleRecorder::default());
        let client = base.recording(recorder.clone()).scoped();
        let outcome = match crate::billing::connectwise::collect(&client, captured_at, cancel).await
        {
            Ok(b) => Ok(format!("{} accounts, {} billed lines", b.accounts.len(), b.lines.len())),
            Err(BillingError::Cancelled) => return Err(CaptureError::Cancelled),
            Err(e) => Err(e.into()),
        };
        runs.push(Run {
            upstream: Upstream::Connectwise,
            recorder,
            outcome,
            sent: client.stats().total_requests(),
            origin: origin(&cw.base_url),
            reseller_id: None,
        });
    }

    let g = &config.gradient;
    if g.vendor_key.is_some() && g.partner_key.is_some() {
        let base = GradientClient::new(g)?;
        scrubber.extend(base.scrubber());
        let recorder = Arc::new(BundleRecorder::default());
        let client = base.recording(recorder.clone()).scoped();
        let outcome = tokio::select! {
            biased;
            _ = cancel.cancelled() => return Err(CaptureError::Cancelled),
            r = gradient_reads(&client) => r.map_err(ReadError::from),
        };
        runs.push(Run {
            upstream: Upstream::Gradient,
            recorder,
            outcome,
            sent: client.stats().total_requests(),
            origin: origin(&g.base_url),
            reseller_id: None,
        });
    }
    build::assemble(runs, &scrubber, opts, captured_at)
}

/// The push's reads, and only those: the integration, the catalogue, the accounts.
async fn gradient_reads(client: &GradientClient) -> Result<String, GradientError> {
    let integration = client.integration().await?;
    let skus = client.skus().await?;
    let accounts = client.accounts().await?;
    Ok(format!(
        "integration {}, {} services, {} accounts",
        integration.status.as_str(),
        skus.len(),
        accounts.len()
    ))
}

/// `scheme://host[:port]` of a configured base URL.
fn origin(url: &url::Url) -> String {
    url.origin().ascii_serialization()
}
