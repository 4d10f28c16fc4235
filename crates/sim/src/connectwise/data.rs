//! The simulated ConnectWise data: companies, agreements and their additions as the API
//! serves them (camelCase, absent fields left out), the API member's credentials, and the
//! ground truth a reconciliation against the Mailprotector dataset must produce.

use serde::Serialize;

/// `{id, name}` / `{id, identifier, name}` references as the API nests them.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CwRef {
    /// Id of the referenced record.
    pub id: u64,
    /// Its short code, where the API gives one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identifier: Option<String>,
    /// Its name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// A company (§3.1).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CwCompany {
    /// Company id: the account id mpsync maps to.
    pub id: u64,
    /// Short unique code.
    pub identifier: String,
    /// Display name.
    pub name: String,
    /// `{id, name}` status, e.g. Active.
    pub status: CwRef,
    /// Soft-deleted.
    pub deleted_flag: bool,
}

/// An agreement (§3.2).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CwAgreement {
    /// Agreement id.
    pub id: u64,
    /// Its name.
    pub name: String,
    /// The company billed.
    pub company: CwRef,
    /// The agreement type.
    #[serde(rename = "type")]
    pub agreement_type: CwRef,
    /// Cancelled agreements bill nothing.
    pub cancelled_flag: bool,
    /// `Active`, `Expired`, ... (absent in older models).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agreement_status: Option<String>,
    /// Start of the agreement.
    pub start_date: String,
    /// Open-ended agreements have no end date.
    pub no_ending_date_flag: bool,
    /// Billing cycle id (monthly).
    pub bill_cycle_id: u64,
}

/// An agreement addition (§3.3): one billed product on an agreement.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CwAddition {
    /// Addition id.
    pub id: u64,
    /// The agreement it belongs to.
    pub agreement_id: u64,
    /// The catalog item (`identifier` is the PSA product id the mapping names).
    pub product: CwRef,
    /// Units billed.
    pub quantity: f64,
    /// Units included in the agreement.
    pub less_included: f64,
    /// Price per unit per month.
    pub unit_price: f64,
    /// Cost per unit.
    pub unit_cost: f64,
    /// `Billable`, `DoNotBill`, `NoCharge`.
    pub bill_customer: String,
    /// When it takes effect.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub effective_date: Option<String>,
    /// When it was cancelled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cancelled_date: Option<String>,
    /// Free text.
    pub description: String,
}

/// The API member the simulator accepts, plus one whose role lacks Finance rights.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CwCredentials {
    /// The company (login) id.
    pub company_id: String,
    /// The API member's public key.
    pub public_key: String,
    /// The API member's private key.
    pub private_key: String,
    /// The integration's clientId.
    pub client_id: String,
    /// A member (public, private) whose security role cannot read agreements: 403 on
    /// `/finance/...`.
    pub limited_keys: (String, String),
}

/// One reconciliation row the simulator's data must produce, with its expected status.
///
/// - Rows of a billing account and billed service (`match`, `within_tolerance`,
///   `under_billed`, `over_billed`, `unbilled`, `billed_without_usage`, `suppressed`):
///   `account_id` and `psa_product` are set, `customer_ids` lists the customers mapped to
///   the account, `product` the Mailprotector product mapped to the PSA product.
/// - `unmapped_customer`: one per customer left out of the mapping; `customer_ids` is that
///   customer, `vendor_qty` the sum of its per-product counts (the reconciliation row itself
///   shows no vendor quantity), everything else `None`.
/// - `unmapped_product`: one per product with usage and no mapping; `product` is its name,
///   `customer_ids` the (not excluded) customers using it, `vendor_qty` their sum.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Planted {
    /// The billing account (ConnectWise company id).
    pub account_id: Option<String>,
    /// The PSA product id (addition product identifier).
    pub psa_product: Option<String>,
    /// The Mailprotector customers behind the row.
    pub customer_ids: Vec<u64>,
    /// The Mailprotector product behind the row.
    pub product: Option<String>,
    /// The DESIGN.md status name the reconciliation must give the row.
    pub expected_status: &'static str,
    /// Users counted by Mailprotector for the row.
    pub vendor_qty: u64,
    /// Sum of the quantities of the additions that count (0 when none).
    pub billed_qty: f64,
}

/// Every status the generator plants, as DESIGN.md names them (`stale` is produced by
/// faults, not by data).
pub const PLANTED_STATUSES: [&str; 9] = [
    "match",
    "within_tolerance",
    "under_billed",
    "over_billed",
    "unbilled",
    "billed_without_usage",
    "unmapped_customer",
    "unmapped_product",
    "suppressed",
];

/// Everything the simulated ConnectWise serves, and the truth about it.
#[derive(Debug, Clone, PartialEq)]
pub struct BillingData {
    /// The seed it was generated from.
    pub seed: u64,
    /// Every company, by ascending id.
    pub companies: Vec<CwCompany>,
    /// Every agreement, by ascending id (cancelled ones included).
    pub agreements: Vec<CwAgreement>,
    /// Every addition, by ascending id.
    pub additions: Vec<CwAddition>,
    /// The credentials the simulator accepts.
    pub credentials: CwCredentials,
    /// The mapping file (TOML) for the dataset, leaving the planted unmapped customer and
    /// product unmapped.
    pub mapping_toml: String,
    /// Every row the reconciliation must produce, with its status.
    pub planted: Vec<Planted>,
    /// What `mapping_toml` says, before rendering (the Autotask simulator renders its own
    /// ids from it).
    pub(crate) mapping: super::mapping::MappingText,
}

impl BillingData {
    /// The additions of one agreement, by id.
    pub fn additions_of(&self, agreement: u64) -> impl Iterator<Item = &CwAddition> + '_ {
        self.additions.iter().filter(move |a| a.agreement_id == agreement)
    }

    /// The planted rows with one status.
    pub fn planted_with(&self, status: &str) -> Vec<&Planted> {
        self.planted.iter().filter(|p| p.expected_status == status).collect()
    }
}
