//! ConnectWise Manage resources as mpsync reads them: only the fields it uses, every one but
//! the id optional, unknown fields ignored (reference §3, §7 "Ids").

use serde::Deserialize;

use crate::upstream::HasId;

/// A reference to another record (`company`, `product`, `status`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Ref {
    /// Its id.
    #[serde(default)]
    pub id: Option<u64>,
    /// Its short code (`identifier`), where the API gives one.
    #[serde(default)]
    pub identifier: Option<String>,
    /// Its name, where the API gives one.
    #[serde(default)]
    pub name: Option<String>,
}

/// `GET /company/companies` (§3.1).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Company {
    /// Company id (the account id mpsync uses).
    pub id: u64,
    /// Short unique code.
    #[serde(default)]
    pub identifier: Option<String>,
    /// Display name.
    #[serde(default)]
    pub name: Option<String>,
    /// Soft-deleted companies are not offered as accounts.
    #[serde(default)]
    pub deleted_flag: Option<bool>,
}

/// `GET /finance/agreements` (§3.2).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Agreement {
    /// Agreement id.
    pub id: u64,
    /// Its name.
    #[serde(default)]
    pub name: Option<String>,
    /// The company billed.
    #[serde(default)]
    pub company: Option<Ref>,
    /// Cancelled agreements bill nothing.
    #[serde(default)]
    pub cancelled_flag: Option<bool>,
    /// `Active`, `Cancelled`, `Expired`, ...; absent in older API models (§3.2).
    #[serde(default)]
    pub agreement_status: Option<String>,
}

/// `GET /finance/agreements/{id}/additions` (§3.3).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Addition {
    /// Addition id.
    pub id: u64,
    /// The catalog item billed.
    #[serde(default)]
    pub product: Option<Ref>,
    /// Units billed.
    #[serde(default)]
    pub quantity: Option<f64>,
    /// Units included in the agreement (evidence only, §7).
    #[serde(default)]
    pub less_included: Option<f64>,
    /// Price per unit.
    #[serde(default)]
    pub unit_price: Option<f64>,
    /// `Billable`, `DoNotBill`, `NoCharge`.
    #[serde(default)]
    pub bill_customer: Option<String>,
    /// When the addition takes effect (ISO-8601).
    #[serde(default)]
    pub effective_date: Option<String>,
    /// When it was cancelled (ISO-8601).
    #[serde(default)]
    pub cancelled_date: Option<String>,
}

impl Addition {
    /// The PSA product id a mapping names: the product's `identifier`, else its id.
    pub fn product_id(&self) -> Option<String> {
        let p = self.product.as_ref()?;
        p.identifier.clone().filter(|s| !s.trim().is_empty()).or(p.id.map(|i| i.to_string()))
    }
}

/// `GET /system/info` (the connection test).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SystemInfo {
    /// The server's release, e.g. `v2024.1.12345`.
    #[serde(default)]
    pub version: Option<String>,
    /// Whether it is a ConnectWise-hosted instance.
    #[serde(default)]
    pub is_cloud: Option<bool>,
    /// Hosted region, e.g. `NA`.
    #[serde(default)]
    pub cloud_region: Option<String>,
}

impl SystemInfo {
    /// "version v2024.1 (cloud, NA)" or what is known of it.
    pub fn describe(&self) -> String {
        let mut s = match &self.version {
            Some(v) => format!("version {v}"),
            None => "(version not given)".to_owned(),
        };
        match (self.is_cloud, &self.cloud_region) {
            (Some(true), Some(r)) => s.push_str(&format!(" (cloud, {r})")),
            (Some(true), None) => s.push_str(" (cloud)"),
            (Some(false), _) => s.push_str(" (on-premise)"),
            _ => {}
        }
        s
    }
}

// Listed resources, de-duplicated across pages by id.
impl HasId for Company {
    fn id(&self) -> u64 {
        self.id
    }
}
impl HasId for Agreement {
    fn id(&self) -> u64 {
        self.id
    }
}
impl HasId for Addition {
    fn id(&self) -> u64 {
        self.id
    }
}
