//! What the Gradient vendor API sends back, parsed tolerantly (§11 "client tolerance"):
//! envelopes or bare objects, ids as strings or numbers, `isMapped` optional, the status in
//! any case.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use super::status::IntegrationStatus;
use crate::upstream::Malformed;

/// An id the API may send as a string or a number; kept as a string.
fn id_string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    match Value::deserialize(d)? {
        Value::String(s) => Ok(s),
        Value::Number(n) => Ok(n.to_string()),
        other => Err(serde::de::Error::custom(format!("expected an id, got {other}"))),
    }
}

/// `GET /organization` (§5.1), the fields mpsync uses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Integration {
    /// The partner organization's name.
    #[serde(default)]
    pub name: String,
    /// The integration status (any case; an unknown value kept verbatim).
    pub status: IntegrationStatus,
    /// When Synthesize last received data (informational).
    #[serde(default)]
    pub last_synced_at: Option<String>,
}

/// One vendor service ("sku") of the catalogue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sku {
    /// Its id (`id`, else the deprecated `_id`).
    pub id: String,
    /// Its name; mpsync matches services by exact name.
    pub name: String,
    /// Its category and subcategory as Synthesize holds them, when the response says
    /// (informational: an existing service is reused whatever its category).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filed_under: Option<(String, String)>,
}

#[derive(Deserialize)]
struct RawSku {
    #[serde(default)]
    id: Option<Value>,
    #[serde(default, rename = "_id")]
    underscore_id: Option<Value>,
    name: String,
    #[serde(default)]
    category: Option<Value>,
    #[serde(default)]
    subcategory: Option<Value>,
}

/// The vendor object's service catalogue, from an envelope `{status, data, message}` or a
/// bare `VendorData` (§11 #4).
pub fn parse_skus(body: &Value) -> Result<Vec<Sku>, Malformed> {
    let vendor = match body.get("data") {
        Some(d @ Value::Object(_)) => d,
        _ => body,
    };
    let skus = vendor.get("skus").ok_or("the vendor object has no skus")?;
    let raw: Vec<RawSku> =
        serde_json::from_value(skus.clone()).map_err(|e| format!("skus: {e}"))?;
    raw.into_iter()
        .map(|r| {
            let id =
                r.id.or(r.underscore_id)
                    .ok_or_else(|| Malformed(format!("sku {:?} has no id", r.name)))?;
            let id = match id {
                Value::String(s) => s,
                Value::Number(n) => n.to_string(),
                other => return Err(Malformed(format!("sku {:?} has the id {other}", r.name))),
            };
            // Tolerated when absent or not text: only the name and id matter to the push.
            let filed_under = match (&r.category, &r.subcategory) {
                (Some(Value::String(c)), Some(Value::String(s))) => Some((c.clone(), s.clone())),
                _ => None,
            };
            Ok(Sku { id, name: r.name, filed_under })
        })
        .collect()
}

/// One vendor account of the partner (§5.9).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GradientAccount {
    /// The vendor's own id: the Mailprotector customer id in decimal.
    #[serde(deserialize_with = "id_string")]
    pub id: String,
    /// The name shown to the MSP.
    #[serde(default)]
    pub name: String,
    /// Always `""` from mpsync.
    #[serde(default)]
    pub description: String,
    /// Whether the MSP has mapped it, when the API says so (§11 #15); `None` = unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_mapped: Option<bool>,
}

/// A service to create (§5.5).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewService {
    /// Exact name (the canonical product or count name).
    pub name: String,
    /// Description (required by the API).
    pub description: String,
    /// Category enum value.
    pub category: String,
    /// Subcategory enum value.
    pub subcategory: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn skus_from_envelope_or_bare_with_either_id() {
        let env = json!({"status": 200, "data": {"skus": [{"id": "a1", "name": "CloudFilter"}]}});
        assert_eq!(
            parse_skus(&env).unwrap(),
            vec![Sku { id: "a1".into(), name: "CloudFilter".into(), filed_under: None }]
        );
        let bare =
            json!({"id": "v", "skus": [{"_id": "b2", "name": "Bracket"}, {"id": 7, "name": "X"}]});
        let got = parse_skus(&bare).unwrap();
        assert_eq!(got[0].id, "b2");
        assert_eq!(got[1].id, "7");
        assert!(parse_skus(&json!({"data": {}})).is_err());
    }

    #[test]
    fn accounts_tolerate_numbers_and_missing_is_mapped() {
        let a: Vec<GradientAccount> =
            serde_json::from_value(json!([{"id": 12, "name": "A"}, {"id": "13", "name": "B", "description": "", "isMapped": true}]))
                .unwrap();
        assert_eq!(a[0].id, "12");
        assert_eq!(a[0].is_mapped, None);
        assert_eq!(a[1].is_mapped, Some(true));
    }
}
