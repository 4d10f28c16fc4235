//! Probe handlers: liveness from the heartbeat, readiness from the latch, the health report,
//! and the metrics text. All answer from memory.

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::ServerState;
use crate::health::{CheckStatus, LoopStatus};

/// The media type of `/v1/health` (draft-inadarei-api-health-check-06).
pub const HEALTH_JSON: &str = "application/health+json";

fn loop_status(state: &ServerState) -> LoopStatus {
    LoopStatus { age: state.heartbeat.age(), fresh: state.heartbeat.is_fresh() }
}

/// `/livez`: 200 while the main loop beats; 503 once its heartbeat is stale.
pub async fn livez(State(state): State<ServerState>) -> Response {
    let main_loop = loop_status(&state);
    if main_loop.fresh {
        (StatusCode::OK, "ok\n").into_response()
    } else {
        let msg =
            format!("main loop has not made progress for {:.1}s\n", main_loop.age.as_secs_f64());
        (StatusCode::SERVICE_UNAVAILABLE, msg).into_response()
    }
}

/// `/readyz`: 200 once config, store and main loop are up (a latch: upstream outages never
/// turn it off); 503 before that.
pub async fn readyz(State(state): State<ServerState>) -> Response {
    if state.health.is_ready() {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "starting: config, store or main loop not up yet\n")
            .into_response()
    }
}

/// `/v1/health`: the health+json report; HTTP 503 when its status is `fail`.
pub async fn health(State(state): State<ServerState>) -> Response {
    let report = state.health.report(chrono::Utc::now(), loop_status(&state));
    let code = match report.status {
        CheckStatus::Pass | CheckStatus::Warn => StatusCode::OK,
        CheckStatus::Fail => StatusCode::SERVICE_UNAVAILABLE,
    };
    match serde_json::to_vec_pretty(&report) {
        Ok(body) => (code, [(header::CONTENT_TYPE, HeaderValue::from_static(HEALTH_JSON))], body)
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "cannot serialize the health report");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// `/metrics`: OpenMetrics text.
pub async fn metrics(State(state): State<ServerState>) -> Response {
    let body = state.metrics.encode();
    ([(header::CONTENT_TYPE, HeaderValue::from_static(crate::metrics::CONTENT_TYPE))], body)
        .into_response()
}
