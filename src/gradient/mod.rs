//! The optional push to Gradient Synthesize (reference/gradient-api.md): the vendor API client
//! ([`client`]), its response models ([`models`]), the pure push plan ([`plan`]) and the
//! per-pair report a push leaves behind ([`report`]). The scheduled job is `sync::PushJob`.

pub mod client;
pub mod models;
pub mod plan;
pub mod report;

pub use client::{CountOutcome, GradientClient, TOKEN_HEADER, UPSTREAM, build_token};
pub use models::{GradientAccount, Integration, IntegrationStatus, NewService, Sku};
pub use plan::{PlannedCount, PushPlan, default_service, plan_push};
pub use report::{
    CustomerMapping, LAST_PUSH_KEY, PairOutcome, PairResult, PairSummary, PushReport,
    SENT_PAIRS_KEY,
};

use crate::exit::{Exit, ExitStatus};
use crate::upstream::UpstreamError;

/// Why a Gradient call failed, with the two failures the operator must act on named apart.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
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
    /// 403 on a count: the integration is not `active` or `pending` (§11 #6).
    #[error(
        "Gradient refused the unit counts on {endpoint} (403: {message}): the integration is \
         not active; check its status in Gradient Synthesize (Integrations → Mailprotector), \
         re-enable or reconnect it, then push again"
    )]
    IntegrationNotActive {
        /// The route pattern.
        endpoint: String,
        /// Gradient's words.
        message: String,
    },
    /// Any other failure, classified by the shared plumbing.
    #[error(transparent)]
    Upstream(UpstreamError),
}

impl GradientError {
    /// Lifts an upstream error, naming the keys on a 401.
    pub fn from_upstream(e: UpstreamError, keys: &str) -> GradientError {
        match e {
            UpstreamError::Unauthorized { endpoint, message, .. } => {
                GradientError::Unauthorized { endpoint, message, keys: keys.to_owned() }
            }
            other => GradientError::Upstream(other),
        }
    }

    /// Whether the whole push must stop (no later call can succeed).
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            GradientError::Unauthorized { .. } | GradientError::IntegrationNotActive { .. }
        ) || matches!(self, GradientError::Upstream(UpstreamError::Setup { .. }))
    }

    /// A short machine-readable kind, for JSON output and metrics labels.
    pub fn kind(&self) -> &'static str {
        match self {
            GradientError::Unauthorized { .. } => "unauthorized",
            GradientError::IntegrationNotActive { .. } => "integration_not_active",
            GradientError::Upstream(e) => e.kind(),
        }
    }
}

impl ExitStatus for GradientError {
    fn exit(&self) -> Exit {
        match self {
            GradientError::Unauthorized { .. } | GradientError::IntegrationNotActive { .. } => {
                Exit::Unavailable
            }
            GradientError::Upstream(e) => e.exit(),
        }
    }
}
