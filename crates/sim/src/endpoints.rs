//! The route patterns of the simulated Mailprotector, ConnectWise, Autotask and HaloPSA APIs: what their requests
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

/// Every Autotask route (without the `/ATServicesRest/v1.0` prefix), as counted and as fault
/// `endpoint`s match them; also `autotask::ENDPOINTS`.
pub const AUTOTASK: [&str; 40] = [
    "GET /versioninformation",
    "GET /zoneInformation",
    "GET /ThresholdInformation",
    "POST /Companies/query",
    "GET /Companies/query",
    "POST /Companies/query/next",
    "GET /Companies/query/next",
    "GET /Companies/{id}",
    "POST /Contracts/query",
    "GET /Contracts/query",
    "POST /Contracts/query/next",
    "GET /Contracts/query/next",
    "GET /Contracts/{id}",
    "POST /ContractServices/query",
    "GET /ContractServices/query",
    "POST /ContractServices/query/next",
    "GET /ContractServices/query/next",
    "GET /ContractServices/{id}",
    "POST /ContractServiceUnits/query",
    "GET /ContractServiceUnits/query",
    "POST /ContractServiceUnits/query/next",
    "GET /ContractServiceUnits/query/next",
    "GET /ContractServiceUnits/{id}",
    "POST /ContractServiceBundles/query",
    "GET /ContractServiceBundles/query",
    "POST /ContractServiceBundles/query/next",
    "GET /ContractServiceBundles/query/next",
    "GET /ContractServiceBundles/{id}",
    "POST /Services/query",
    "GET /Services/query",
    "POST /Services/query/next",
    "GET /Services/query/next",
    "GET /Services/{id}",
    "POST /ServiceBundles/query",
    "GET /ServiceBundles/query",
    "POST /ServiceBundles/query/next",
    "GET /ServiceBundles/query/next",
    "GET /ServiceBundles/{id}",
    "POST /ContractServiceAdjustments",
    "POST /Contracts/{id}/ServiceAdjustments",
];

/// Every HaloPSA route (without the `/halo` prefix; API routes without `/api`), as counted
/// and as fault `endpoint`s match them; also `halopsa::ENDPOINTS`. Resource names are written
/// as the reference spells them (requests match them ignoring case).
pub const HALOPSA: [&str; 24] = [
    "POST /auth/token",
    "GET /Client",
    "GET /Client/{id}",
    "POST /Client",
    "DELETE /Client/{id}",
    "GET /ClientContract",
    "GET /ClientContract/{id}",
    "POST /ClientContract",
    "DELETE /ClientContract/{id}",
    "GET /RecurringInvoice",
    "GET /RecurringInvoice/{id}",
    "POST /RecurringInvoice",
    "DELETE /RecurringInvoice/{id}",
    "POST /RecurringInvoice/updatelines",
    "POST /RecurringInvoice/Lines",
    "POST /RecurringInvoice/process",
    "GET /Item",
    "GET /Item/{id}",
    "POST /Item",
    "DELETE /Item/{id}",
    "GET /Invoice",
    "GET /Invoice/{id}",
    "POST /Invoice",
    "DELETE /Invoice/{id}",
];
