//! The simulated Gradient Synthesize vendor API under `/api/vendor-api`, per
//! reference/gradient-api.md and exactly its §11 conventions: the `GRADIENT-TOKEN` check
//! (401), the integration status machine, the vendor catalogue, array-only account creation
//! with 409 on duplicates, unit counts accepted only for mapped (account, service) pairs (404
//! otherwise), 429 above 100 requests/s without `Retry-After`, and the mapping seeded from the
//! dataset (§11 #18). Tests drive and read it through [`GradientSim`].

mod control;
mod routes;
mod state;

use axum::Router;
use axum::routing::{any, get, patch, post};

pub use control::{DEFAULT_RATE_LIMIT, GradientSim};
pub use routes::TOKEN_HEADER;
pub use state::{CATEGORIES, SEEDED_PRODUCTS, STATUSES, SUBCATEGORIES, ViewRow};

/// Where the API lives on the listener; the client appends it to the base URL.
pub const API_PREFIX: &str = "/api/vendor-api";

/// Which of the dataset's customer names the seeded PSA knows: most, not all (every tenth,
/// in id order, is missing, so a push always meets unmapped accounts).
pub fn seeded_companies(ds: &crate::sim::Dataset) -> Vec<String> {
    let customers = ds.customers();
    ds.main_customers()
        .into_iter()
        .enumerate()
        .filter(|(i, _)| i % 10 != 9)
        .filter_map(|(_, id)| customers.get(&id).map(|c| c.name.clone()))
        .collect()
}

/// The Gradient routes with their request layer, state applied. Compose it with
/// [`Router::merge`]; unmatched paths fall through to the caller's fallback.
pub fn router(sim: GradientSim) -> Router {
    let p = |path: &str| format!("{API_PREFIX}{path}");
    Router::new()
        .route(API_PREFIX, get(routes::get_vendor))
        .route(&p("/organization"), get(routes::get_integration))
        .route(&p("/organization/status/{status}"), patch(routes::patch_status))
        .route(&p("/service"), post(routes::post_service))
        .route(&p("/service/{serviceId}"), get(routes::get_service))
        .route(&p("/service/{serviceId}/count"), post(routes::post_count))
        .route(&p("/organization/accounts"), get(routes::get_accounts).post(routes::post_accounts))
        .route(&p("/organization/accounts/{accountId}"), patch(routes::patch_account))
        .route(&p("/organization/services"), any(routes::not_simulated))
        .route(&p("/organization/services/{serviceId}"), any(routes::not_simulated))
        .route(&p("/alerting/{*rest}"), any(routes::not_simulated))
        .route_layer(axum::middleware::from_fn_with_state(sim.clone(), routes::layer))
        .with_state(sim)
}
