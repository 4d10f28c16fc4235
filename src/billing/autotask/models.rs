//! Autotask REST entities as mpsync reads them (reference §4): only the fields it uses,
//! camelCase as the API answers (F4.1), every field but the id optional and nullable
//! (F6.1), unknown fields ignored (F6.5). Also the query envelope (F3.10), the single-item
//! envelope (F3.11), the zone lookup (F1.4) and the threshold probe (F5.3).

use serde::{Deserialize, Serialize};

use crate::upstream::HasId;

/// `Companies` (F4.1–F4.3).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Company {
    /// Company id: the account id mpsync uses.
    pub id: u64,
    /// Display name.
    #[serde(default)]
    pub company_name: Option<String>,
    /// Short number, where the tenant uses one.
    #[serde(default)]
    pub company_number: Option<String>,
    /// Picklist: 1 is Customer (F4.2).
    #[serde(default)]
    pub company_type: Option<i64>,
    /// Inactive companies bill nothing.
    #[serde(default)]
    pub is_active: Option<bool>,
}

/// `Contracts` (F4.4–F4.6).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Contract {
    /// Contract id.
    pub id: u64,
    /// The company billed.
    #[serde(default, rename = "companyID")]
    pub company_id: Option<u64>,
    /// Its name.
    #[serde(default)]
    pub contract_name: Option<String>,
    /// 7 is Recurring Service, the only type that carries contract services.
    #[serde(default)]
    pub contract_type: Option<i64>,
    /// Tenant picklist (U7): shown, not judged.
    #[serde(default)]
    pub contract_category: Option<i64>,
    /// 1 is Active (F4.5).
    #[serde(default)]
    pub status: Option<i64>,
    /// First day covered (date-only, at midnight UTC).
    #[serde(default)]
    pub start_date: Option<String>,
    /// Last day covered.
    #[serde(default)]
    pub end_date: Option<String>,
}

/// `ContractServices` (F4.7–F4.10): a service on a contract; no quantity of its own.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContractService {
    /// Contract service id (the line's identity).
    pub id: u64,
    /// Its contract.
    #[serde(default, rename = "contractID")]
    pub contract_id: Option<u64>,
    /// The catalog service (the product id a mapping names).
    #[serde(default, rename = "serviceID")]
    pub service_id: Option<u64>,
    /// The service's price on this contract.
    #[serde(default)]
    pub unit_price: Option<f64>,
    /// A price set for this contract, which wins over `unitPrice` (U8: may be absent).
    #[serde(default)]
    pub adjusted_price: Option<f64>,
    /// What the invoice says.
    #[serde(default)]
    pub invoice_description: Option<String>,
}

/// `ContractServiceUnits` (F4.11–F4.15): one billing period's quantity of a contract service.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContractServiceUnit {
    /// Row id.
    pub id: u64,
    /// Its contract.
    #[serde(default, rename = "contractID")]
    pub contract_id: Option<u64>,
    /// Its contract service (null on some rows, F4.15: then joined on contract + service).
    #[serde(default, rename = "contractServiceID")]
    pub contract_service_id: Option<u64>,
    /// Its service.
    #[serde(default, rename = "serviceID")]
    pub service_id: Option<u64>,
    /// First day of the period (or of the split).
    #[serde(default)]
    pub start_date: Option<String>,
    /// Last day of the period (or of the split).
    #[serde(default)]
    pub end_date: Option<String>,
    /// Units billed in it.
    #[serde(default)]
    pub units: Option<f64>,
}

/// `ContractServiceBundles`: a service bundle on a contract. Its units live in a chain of
/// their own (`ContractServiceBundleUnits`), which mpsync does not count.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContractServiceBundle {
    /// Contract service bundle id.
    pub id: u64,
    /// Its contract.
    #[serde(default, rename = "contractID")]
    pub contract_id: Option<u64>,
    /// The catalog bundle.
    #[serde(default, rename = "serviceBundleID")]
    pub service_bundle_id: Option<u64>,
    /// The bundle's price on this contract.
    #[serde(default)]
    pub unit_price: Option<f64>,
    /// A price set for this contract.
    #[serde(default)]
    pub adjusted_price: Option<f64>,
}

/// A query page (F3.10): the rows and where the next page is.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Page<T> {
    /// The rows of this page.
    pub items: Vec<T>,
    /// Paging details (absent on some answers: then this is the only page).
    #[serde(default)]
    pub page_details: Option<PageDetails>,
}

/// `pageDetails` of a query page.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PageDetails {
    /// Rows in this page.
    #[serde(default)]
    pub count: Option<u64>,
    /// The page size asked for (not a total).
    #[serde(default)]
    pub request_count: Option<u64>,
    /// The absolute URL of the next page, to be POSTed again with the same body (F3.14).
    #[serde(default)]
    pub next_page_url: Option<String>,
}

/// `GET /{Entity}/{id}` (F3.11, F5.9): `{"item": null}` for a missing id.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Single<T> {
    /// The record, or `None` when there is no such id (a missing key reads as `None`).
    pub item: Option<T>,
}

/// The answer to a create (F5.10): `{"itemId": N}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Created {
    /// The new record's id.
    pub item_id: u64,
}

/// `zoneInformation?user=` (F1.4).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ZoneInfo {
    /// The zone's name, e.g. "America West".
    #[serde(default)]
    pub zone_name: Option<String>,
    /// The zone's REST root, e.g. `https://webservices5.autotask.net/ATServicesRest/`.
    pub url: String,
    /// The zone's web UI.
    #[serde(default)]
    pub web_url: Option<String>,
}

/// `GET /v1.0/ThresholdInformation` (F5.3).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ThresholdInfo {
    /// Requests allowed per timeframe (10,000 by default).
    pub external_request_threshold: u64,
    /// The timeframe in minutes (60).
    #[serde(default)]
    pub request_threshold_timeframe: Option<u64>,
    /// Requests made in the current timeframe, by every integration of the database.
    pub current_timeframe_request_count: u64,
}

impl ThresholdInfo {
    /// "124 of 10000 requests this hour (1%)".
    pub fn describe(&self) -> String {
        let share = if self.external_request_threshold == 0 {
            100.0
        } else {
            100.0 * self.current_timeframe_request_count as f64
                / self.external_request_threshold as f64
        };
        let frame = match self.request_threshold_timeframe {
            Some(60) | None => "this hour".to_owned(),
            Some(m) => format!("in the last {m} minutes"),
        };
        format!(
            "{} of {} requests {frame} ({share:.0}%), shared by every integration of the database",
            self.current_timeframe_request_count, self.external_request_threshold
        )
    }
}

macro_rules! has_id {
    ($($t:ty),*) => {$(
        impl HasId for $t {
            fn id(&self) -> u64 {
                self.id
            }
        }
    )*};
}
has_id!(Company, Contract, ContractService, ContractServiceUnit, ContractServiceBundle);
