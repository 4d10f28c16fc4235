//! The optional push to Gradient Synthesize (reference/gradient-api.md): the vendor API client
//! ([`client`]), its response models ([`models`]), the pure push plan ([`plan`]) and the
//! per-pair report a push leaves behind ([`report`]), the integration status and what it means
//! ([`status`]). The scheduled job is `sync::PushJob`.

pub mod categories;
pub mod client;
pub mod models;
pub mod plan;
pub mod report;
pub mod status;

pub use categories::{CATEGORIES, SUBCATEGORIES};
pub use client::{CountOutcome, GradientClient, TOKEN_HEADER, UPSTREAM, build_token};
pub use models::{GradientAccount, Integration, NewService, Sku};
pub use plan::{PlannedCount, PushPlan, configured_service, default_service, plan_push};
pub use report::{
    CustomerMapping, LAST_PUSH_KEY, PairOutcome, PairResult, PairSummary, PushReport,
    SENT_PAIRS_KEY,
};
pub use status::IntegrationStatus;

use crate::exit::{Exit, ExitStatus};
use crate::upstream::UpstreamError;

/// Why a Gradient call failed, with the two failures the operator must act on named apart.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GradientError {
    /// 401 on any endpoint.
    #[error(
        "Gradient rejected the keys on {endpoint} (401: {message}): the Gradient partner (or \
         vendor) key is wrong or was revoked: re-enter it ({keys})"
    )]
    Unauthorized {
        /// The route pattern.
        endpoint: String,
        /// Gradient's words.
        message: String,
        /// Where the keys were read from (never their values).
        keys: String,
    },
    /// 403 on any call. Gradient documents a 403 as its anomaly detection ("an anomaly was
    /// detected in your API usage", §5.2), not as a disabled integration; the simulator's
    /// convention also answers 403 to counts while the integration is not active (§11 #6),
    /// so the status read at the start of the push is named when it is known.
    #[error("{}", forbidden_text(.endpoint, .message, *.rate_limit, .status.as_ref()))]
    Forbidden {
        /// The route pattern.
        endpoint: String,
        /// Gradient's words.
        message: String,
        /// The push's rate limit (`gradient.rate_limit`, requests per second).
        rate_limit: f64,
        /// The integration status read at the start of the push, when known.
        status: Option<IntegrationStatus>,
    },
    /// Any other failure, classified by the shared plumbing.
    #[error(transparent)]
    Upstream(UpstreamError),
}

/// The "Check Connection" step: the keys reach the partner's integration (`GET
/// /organization`); reports its status with what it means for the operator (any status
/// passes: the connection works), and how many accounts and services Synthesize knows.
pub async fn check_connection(
    cfg: &crate::config::GradientConfig,
) -> Result<String, GradientError> {
    let client = GradientClient::new(cfg).map_err(GradientError::Upstream)?;
    let integration = client.integration().await?;
    let accounts = client.accounts().await?.len();
    let services = client.skus().await?.len();
    let status = &integration.status;
    let org = if integration.name.is_empty() {
        String::new()
    } else {
        format!(" of {}", integration.name)
    };
    Ok(format!(
        "the keys reach the integration{org} at {}: status {status} ({}); Synthesize knows \
         {accounts} accounts and {services} services",
        cfg.base_url,
        status.meaning()
    ))
}

/// The words of a 403: Gradient's anomaly detection, what to do, and the status if known.
fn forbidden_text(
    endpoint: &str,
    message: &str,
    rate_limit: f64,
    status: Option<&IntegrationStatus>,
) -> String {
    let status = status.map_or_else(String::new, |s| {
        format!(
            ". The integration status read at the start of this push was {s} ({}); if \
             Gradient's message is about the integration, check it in Gradient Synthesize \
             (Integrations → Mailprotector)",
            s.meaning()
        )
    });
    format!(
        "Gradient refused {endpoint} (403: {message}): Gradient documents a 403 as its anomaly \
         detection flagging this API usage; slow the push down (lower gradient.rate_limit, now \
         {rate_limit}/s) and contact Gradient support{status}"
    )
}

impl GradientError {
    /// Lifts an upstream error: a 401 names the keys, a 403 is Gradient's anomaly detection.
    pub fn from_upstream(e: UpstreamError, keys: &str, rate_limit: f64) -> GradientError {
        match e {
            UpstreamError::Unauthorized { endpoint, message, .. } => {
                GradientError::Unauthorized { endpoint, message, keys: keys.to_owned() }
            }
            UpstreamError::Forbidden { endpoint, message, .. } => {
                GradientError::Forbidden { endpoint, message, rate_limit, status: None }
            }
            other => GradientError::Upstream(other),
        }
    }

    /// The same error, naming the integration status read at the start of the push (a 403
    /// then says it; other errors are unchanged).
    pub fn with_status(self, known: &IntegrationStatus) -> GradientError {
        match self {
            GradientError::Forbidden { endpoint, message, rate_limit, .. } => {
                GradientError::Forbidden {
                    endpoint,
                    message,
                    rate_limit,
                    status: Some(known.clone()),
                }
            }
            other => other,
        }
    }

    /// Whether the whole push must stop (no later call can succeed).
    pub fn is_fatal(&self) -> bool {
        matches!(self, GradientError::Unauthorized { .. } | GradientError::Forbidden { .. })
            || matches!(self, GradientError::Upstream(UpstreamError::Setup { .. }))
    }

    /// A short machine-readable kind, for JSON output and metrics labels.
    pub fn kind(&self) -> &'static str {
        match self {
            GradientError::Unauthorized { .. } => "unauthorized",
            GradientError::Forbidden { .. } => "anomaly_detected",
            GradientError::Upstream(e) => e.kind(),
        }
    }
}

impl ExitStatus for GradientError {
    fn exit(&self) -> Exit {
        match self {
            GradientError::Unauthorized { .. } | GradientError::Forbidden { .. } => {
                Exit::Unavailable
            }
            GradientError::Upstream(e) => e.exit(),
        }
    }
}
