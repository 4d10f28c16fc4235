//! Faithful local fakes of the upstream APIs — part of the product (`mpsync sim`, `mpsync
//! demo`, the tests and the benchmarks), not a test helper.
//!
//! A crate of its own that knows nothing of the daemon: it models the upstreams as their
//! public record describes them (where the two disagree, the record wins), so the daemon is
//! tested against the APIs, never against its own assumptions. The daemon maps this crate's
//! errors to its exit codes.
//!
//! # Layout
//!
//! - [`dataset`]: the seeded generator, the data, its mutations and the ground truth.
//! - [`mailprotector`]: the Mailprotector v1 API under `/api/v1`.
//! - [`connectwise`]: the ConnectWise Manage API under `/v4_6_release/apis/3.0`.
//! - [`autotask`]: the Datto Autotask REST API under `/ATServicesRest` (its zones, threshold
//!   and thread limit included).
//! - [`halopsa`]: the HaloPSA API under `/halo` (token endpoint `/halo/auth/token`, API
//!   `/halo/api`; tenant, scopes, expiring tokens, the rolling five-minute limit).
//! - [`gradient`]: the Gradient Synthesize vendor API under `/api/vendor-api`.
//! - [`faults`]: injectable faults and response variants ([`Variant`]), and the `--fault` spec
//!   syntax; [`endpoints`]: the Mailprotector and ConnectWise route patterns they match.
//! - [`control`] / [`control_http`]: the control surface, in process and under `/_sim`.
//! - [`server`]: binding and running it ([`SimServer::start`] → [`SimHandle`]).
//! - [`replay`]: serving a capture bundle instead of generated data (`mpsync sim --replay`).
#![forbid(unsafe_code)]

pub mod autotask;
pub mod connectwise;
pub mod control;
pub mod control_http;
pub mod dataset;
pub mod endpoints;
pub mod faults;
pub mod gradient;
pub mod halopsa;
pub mod mailprotector;
pub mod replay;
mod requests;
pub mod server;

use axum::Router;
use axum::extract::Request;

pub use control::SimControl;
pub use dataset::{
    DEFAULT_COUNTED_TYPES, Dataset, Role, Services, SimError, USER_COUNT_TYPES, UserKind,
};
pub use faults::{Fault, FaultKind, Variant};
pub use requests::RequestCounts;
pub use server::{SimHandle, SimOptions, SimServer, SimStartError};

/// Every simulated API on one router: Mailprotector under `/api/v1`, the control surface under
/// `/_sim`, and a JSON 404 for anything else. Other simulators (Gradient under
/// `/api/vendor-api`, ConnectWise under `/v4_6_release/apis/3.0`, Autotask under
/// `/ATServicesRest`, HaloPSA under `/halo`) merge in here.
pub fn router(control: SimControl) -> Router {
    let cw = control.connectwise();
    router_with(control, cw)
}

/// [`router`] with a given ConnectWise simulator (tests that change billing data keep its
/// handle).
pub fn router_with(control: SimControl, cw: connectwise::ConnectwiseSim) -> Router {
    let at = control.autotask();
    let halo = control.halopsa();
    let counter = control.clone();
    let wrong_method = control.clone();
    mailprotector::router(control.clone())
        .merge(connectwise::router(cw))
        .merge(autotask::router(at))
        .merge(halopsa::router(halo))
        .merge(gradient::router(control.gradient().clone()))
        .merge(control_http::router(control))
        .fallback(move |req: Request| {
            let c = counter.clone();
            async move {
                c.count_request(&format!("{} (unmatched)", req.method()));
                c.count_status(404);
                mailprotector::route_not_found(req.method().as_str(), req.uri().path())
            }
        })
        .method_not_allowed_fallback(move |req: Request| {
            let c = wrong_method.clone();
            async move {
                c.count_request(&format!("{} (unmatched)", req.method()));
                c.count_status(405);
                mailprotector::method_not_allowed(req.method().as_str(), req.uri().path())
            }
        })
}
