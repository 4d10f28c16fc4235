//! The simulated Gradient Synthesize vendor API under `/api/vendor-api`, per
//! reference/gradient-api.md and exactly its §11 conventions: the `GRADIENT-TOKEN` check
//! (401), the integration status machine (Gradient turns `pending` into `active` on the first
//! accepted count), the vendor profile and catalogue, the PSA clients, array-only account
//! creation with 409 on duplicates, unit counts accepted only for mapped (account, service)
//! pairs (404 otherwise), 429 above 100 requests/s without `Retry-After`, the mapping seeded
//! from the dataset (§11 #18), and one error body `{"statusCode", "message"}` for everything
//! under the prefix (unknown routes 404, wrong methods 405). Tests drive and read it through
//! [`GradientSim`].

mod categories;
mod clients;
mod control;
mod routes;
mod state;
mod vendor;

use axum::Router;
use axum::routing::{MethodRouter, any, get, patch, post};

pub use clients::CLIENTS_PAGE;
pub use control::{DEFAULT_RATE_LIMIT, GradientSim};
pub use routes::TOKEN_HEADER;
pub use state::{CATEGORIES, SEEDED_PRODUCTS, STATUSES, SUBCATEGORIES, ViewRow};

/// Where the API lives on the listener; the client appends it to the base URL.
pub const API_PREFIX: &str = "/api/vendor-api";

/// Which of the dataset's customer names the seeded PSA knows: most, not all (every tenth,
/// in id order, is missing, so a push always meets unmapped accounts).
pub fn seeded_companies(ds: &crate::Dataset) -> Vec<String> {
    let customers = ds.customers();
    ds.main_customers()
        .into_iter()
        .enumerate()
        .filter(|(i, _)| i % 10 != 9)
        .filter_map(|(_, id)| customers.get(&id).map(|c| c.name.clone()))
        .collect()
}

/// The Gradient routes with their request layer, state applied. Compose it with
/// [`Router::merge`]: every path under [`API_PREFIX`] answers here — a wrong method 405 and an
/// unknown route 404 in Gradient's error shape, neither behind the token check (like an
/// unmatched route in Gradient's framework).
pub fn router(sim: GradientSim) -> Router {
    let p = |path: &str| format!("{API_PREFIX}{path}");
    // Each route answers a method it lacks itself, so the merged router's own 405 (in the
    // Mailprotector shape) never applies here.
    let m = |r: MethodRouter<GradientSim>| r.fallback(routes::wrong_method);
    Router::new()
        .route(API_PREFIX, m(get(routes::get_vendor).patch(routes::patch_vendor)))
        .route(&p("/organization"), m(get(routes::get_integration)))
        .route(&p("/organization/status/{status}"), m(patch(routes::patch_status)))
        .route(&p("/organization/clients"), m(get(routes::get_clients)))
        .route(&p("/service"), m(post(routes::post_service)))
        .route(&p("/service/{serviceId}"), m(get(routes::get_service).patch(routes::patch_service)))
        .route(&p("/service/{serviceId}/count"), m(post(routes::post_count)))
        .route(
            &p("/organization/accounts"),
            m(get(routes::get_accounts).post(routes::post_accounts)),
        )
        .route(&p("/organization/accounts/{accountId}"), m(patch(routes::patch_account)))
        .route(&p("/organization/services"), any(routes::not_simulated))
        .route(&p("/organization/services/{serviceId}"), any(routes::not_simulated))
        .route(&p("/alerting/{*rest}"), any(routes::not_simulated))
        .route_layer(axum::middleware::from_fn_with_state(sim.clone(), routes::layer))
        // Added after the layer: an unknown route is not authenticated, only counted.
        .route(&p("/{*rest}"), any(routes::unknown_route))
        .with_state(sim)
}
