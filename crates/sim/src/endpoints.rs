//! The route patterns of the simulated Mailprotector and ConnectWise APIs: what their requests
//! are counted under and what a fault's `endpoint` must match. Data only, in a module of its
//! own, because both the simulators that serve these routes and the faults they apply
//! (`Fault::validate`) read them.

/// Every Mailprotector route (without `/api/v1`), as counted and as fault `endpoint`s match
/// them; also `mailprotector::ROUTES`.
pub const MAILPROTECTOR: &[&str] = &[
    "GET /resellers/{id}",
    "GET /resellers/{id}/customers",
    "POST /resellers/{id}/customers",
    "GET /resellers/{id}/domains",
    "GET /resellers/{id}/users",
    "GET /resellers/{id}/statements",
    "GET /customers/{id}",
    "PUT /customers/{id}",
    "DELETE /customers/{id}",
    "GET /customers/{id}/domains",
    "GET /customers/{id}/users",
    "GET /customers/{id}/statements",
    "GET /domains/{id}",
    "GET /domains/{id}/user_groups",
    "GET /domains/{id}/users",
    "GET /domains/{id}/aliases",
    "GET /user_groups/{id}",
    "GET /user_groups/{id}/services",
    "PUT /user_groups/{id}/services",
    "GET /user_groups/{id}/users",
    "GET /users/{id}",
];

/// Every ConnectWise route (without the API prefix), as counted and as fault `endpoint`s
/// match them; also `connectwise::ENDPOINTS`. Every id in a pattern is written `{id}`.
pub const CONNECTWISE: [&str; 8] = [
    "GET /system/info",
    "GET /company/companies",
    "GET /company/companies/{id}",
    "GET /finance/agreements",
    "GET /finance/agreements/{id}",
    "GET /finance/agreements/{id}/additions",
    "GET /finance/agreements/{id}/additions/{id}",
    "PATCH /finance/agreements/{id}/additions/{id}",
];
