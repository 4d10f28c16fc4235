//! The optional push to Gradient Synthesize (reference/gradient-api.md): the vendor API client
//! ([`client`]), its response models ([`models`]), the pure push plan ([`plan`]) and the
//! per-pair report a push leaves behind ([`report`]). The scheduled job is `sync::PushJob`.

pub mod categories;
pub mod client;
pub mod models;
pub mod observe;
pub mod plan;
pub mod report;

pub use categories::{CATEGORIES, SUBCATEGORIES};
pub use client::{CountOutcome, GradientClient, TOKEN_HEADER, UPSTREAM, build_token};
pub use models::{GradientAccount, Integration, IntegrationStatus, NewService, Sku};
pub use observe::PushObserver;
pub use plan::{PlannedCount, PushPlan, configured_service, default_service, plan_push};
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

/// The "Check Connection" step: the keys reach the partner's integration (`GET
/// /organization`); reports its status and how many accounts and services Synthesize knows.
pub async fn check_connection(
    cfg: &crate::config::GradientConfig,
) -> Result<String, GradientError> {
    let client = GradientClient::new(cfg).map_err(GradientError::Upstream)?;
    let integration = client.integration().await?;
    let accounts = client.accounts().await?.len();
    let services = client.skus().await?.len();
    let org = if integration.name.is_empty() {
        String::new()
    } else {
        format!(" of {}", integration.name)
    };
    Ok(format!(
        "the keys reach the integration{org} at {}: status {}; Synthesize knows {accounts} \
         accounts and {services} services",
        cfg.base_url,
        integration.status.as_str()
    ))
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
