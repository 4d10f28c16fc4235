//! The simulated Mailprotector v1 API under `/api/v1`, per the reference's §2–§8 and the §12
//! conventions: bearer keys scoped to a reseller or customer subtree, bare JSON arrays with
//! `X-Pagination`, `{"error":"..."}` bodies on every 4xx/5xx, ascending ids, no trailing-slash
//! routes. Every request passes one layer that counts it, applies faults and authenticates.
//!
//! Sim-specific choices where the reference is silent: reseller-scope lists
//! (`/resellers/{id}/customers|domains|users`) cover the whole subtree including
//! sub-resellers; `/domains/{alias}/user_groups` and `/users` list the primary domain's groups
//! and users (so a client that does not skip alias domains double counts); a customer hidden
//! by the control surface is missing from `/resellers/{id}/customers` only (its domains, groups
//! and users stay in the reseller-wide listings, `/customers/{id}` still answers); unknown or
//! non-numeric ids are 404.

mod auth;
mod layer;
mod models;
mod pagination;
mod routes;
mod services;
mod statements;
mod writes;

use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::control::SimControl;

pub use pagination::{DEFAULT_PER_PAGE, MAX_PER_PAGE};

/// Where the API lives on the listener; clients append it to the base URL.
pub const API_PREFIX: &str = "/api/v1";

/// An error answer: `{"error":"<message>"}` with `Content-Type: application/json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) message: String,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError { status, message: message.into() }
    }

    pub(crate) fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, axum::Json(serde_json::json!({"error": self.message}))).into_response()
    }
}

/// The 404 for paths no route matches (trailing slashes included), in the standard body.
pub(crate) fn route_not_found(method: &str, path: &str) -> Response {
    ApiError::new(StatusCode::NOT_FOUND, format!("no route for {method} {path}")).into_response()
}

/// Every route the simulator serves, as counted and as fault `endpoint`s match them.
pub use crate::endpoints::MAILPROTECTOR as ROUTES;

/// The 405 for a known path with an unsupported method, in the standard body.
pub(crate) fn method_not_allowed(method: &str, path: &str) -> Response {
    let msg = format!("{method} is not supported on {path}");
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, msg).into_response()
}

/// The Mailprotector routes with their request layer, state applied. Compose it with other
/// simulators with [`Router::merge`]; the fallback (404 + error body) belongs to the caller
/// ([`crate::router`] sets it).
pub fn router(control: SimControl) -> Router {
    let p = |path: &str| format!("{API_PREFIX}{path}");
    Router::new()
        .route(&p("/resellers/{id}"), get(routes::get_reseller))
        .route(
            &p("/resellers/{id}/customers"),
            get(routes::reseller_customers).post(writes::create_customer),
        )
        .route(&p("/resellers/{id}/domains"), get(routes::reseller_domains))
        .route(&p("/resellers/{id}/users"), get(routes::reseller_users))
        .route(&p("/resellers/{id}/statements"), get(statements::reseller_statements))
        .route(&p("/customers/{id}/statements"), get(statements::customer_statements))
        .route(
            &p("/customers/{id}"),
            get(routes::get_customer).put(writes::update_customer).delete(writes::delete_customer),
        )
        .route(&p("/customers/{id}/domains"), get(routes::customer_domains))
        .route(&p("/customers/{id}/users"), get(routes::customer_users))
        .route(&p("/domains/{id}"), get(routes::get_domain))
        .route(&p("/domains/{id}/user_groups"), get(routes::domain_groups))
        .route(&p("/domains/{id}/users"), get(routes::domain_users))
        .route(&p("/domains/{id}/aliases"), get(routes::domain_aliases))
        .route(&p("/user_groups/{id}"), get(routes::get_user_group))
        .route(
            &p("/user_groups/{id}/services"),
            get(routes::group_services).put(writes::put_services),
        )
        .route(&p("/user_groups/{id}/users"), get(routes::group_users))
        .route(&p("/users/{id}"), get(routes::get_user))
        .route_layer(axum::middleware::from_fn_with_state(control.clone(), layer::layer))
        .with_state(control)
}
