//! The JSON error body every refusal of the HTTP endpoint carries, whatever refused it (a
//! handler, the query-string extractor, the host and token guard): `{"error": ..., "hint": ...}`.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// `status` with `{"error": error}`.
pub fn json_error(status: StatusCode, error: impl Into<String>) -> Response {
    (status, Json(json!({ "error": error.into() }))).into_response()
}

/// `status` with `{"error": error, "hint": hint}`: what went wrong and what to do about it.
pub fn json_error_hint(
    status: StatusCode,
    error: impl Into<String>,
    hint: impl Into<String>,
) -> Response {
    (status, Json(json!({ "error": error.into(), "hint": hint.into() }))).into_response()
}
