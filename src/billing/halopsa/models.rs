//! HaloPSA records as mpsync reads them (reference §1.3): only the fields it uses, snake_case
//! as the API answers, every field but the id optional and nullable, unknown fields ignored
//! (§3.2 items 4–5). Halo's types drift between versions and clients (a status that is an
//! int in the spec and a string elsewhere, numbers that are `25.0`), so each field is read
//! leniently: a number may come as a string, a flag as `0`/`1` or `"true"`, an id as `17.0`.
//! A value that is none of these is refused with the field's name.

use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::upstream::HasId;

/// `/Client` row (`Area`, F26).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Client {
    /// Client id: the account id mpsync uses.
    #[serde(deserialize_with = "id")]
    pub id: i64,
    /// Display name.
    #[serde(default, deserialize_with = "text")]
    pub name: Option<String>,
    /// Inactive clients bill nothing.
    #[serde(default, deserialize_with = "flag")]
    pub inactive: Option<bool>,
}

/// `/ClientContract` row (`ContractHeader`, F27).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Contract {
    /// Contract id.
    #[serde(deserialize_with = "id")]
    pub id: i64,
    /// The client billed.
    #[serde(default, deserialize_with = "opt_id")]
    pub client_id: Option<i64>,
    /// The contract's reference, e.g. `ACME-MSP-2025`.
    #[serde(default, deserialize_with = "text")]
    pub r#ref: Option<String>,
    /// First day covered.
    #[serde(default, deserialize_with = "text")]
    pub start_date: Option<String>,
    /// Last day covered.
    #[serde(default, deserialize_with = "text")]
    pub end_date: Option<String>,
    /// Whether Halo counts it active.
    #[serde(default, deserialize_with = "flag")]
    pub active: Option<bool>,
    /// Whether Halo counts it expired.
    #[serde(default, deserialize_with = "flag")]
    pub expired: Option<bool>,
}

/// `/Item` row (`Item`, F30).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Item {
    /// Item id: the product id a mapping names.
    #[serde(deserialize_with = "id")]
    pub id: i64,
    /// Its name.
    #[serde(default, deserialize_with = "text")]
    pub name: Option<String>,
}

/// `/RecurringInvoice` header (`InvoiceHeader`, F28). Its lines come with
/// `includelines=true` or from the single GET.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct RecurringInvoice {
    /// Recurring invoice id (may be negative).
    #[serde(deserialize_with = "id")]
    pub id: i64,
    /// The client billed.
    #[serde(default, deserialize_with = "opt_id")]
    pub client_id: Option<i64>,
    /// The client's name as the invoice shows it.
    #[serde(default, deserialize_with = "text")]
    pub client_name: Option<String>,
    /// The contract it bills for (0 or absent: none).
    #[serde(default, deserialize_with = "opt_id")]
    pub contract_id: Option<i64>,
    /// The contract's reference.
    #[serde(default, deserialize_with = "text")]
    pub contract_ref: Option<String>,
    /// A disabled recurring invoice raises no invoices.
    #[serde(default, deserialize_with = "flag")]
    pub disabled: Option<bool>,
    /// First day it invoices.
    #[serde(default, deserialize_with = "text")]
    pub startdate: Option<String>,
    /// Last day it invoices.
    #[serde(default, deserialize_with = "text")]
    pub enddate: Option<String>,
    /// Its lines, when the answer carries them (kept raw: whether they are whole is judged
    /// before they are read, see [`Line::is_whole`]).
    #[serde(default)]
    pub lines: Option<Vec<Value>>,
}

/// A recurring-invoice line (`InvoiceDetail`, F29).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Line {
    /// Line id.
    #[serde(deserialize_with = "id")]
    pub id: i64,
    /// The owning recurring invoice.
    #[serde(default, deserialize_with = "opt_id")]
    pub ihid: Option<i64>,
    /// The item billed (note the leading underscore).
    #[serde(default, rename = "_itemid", deserialize_with = "opt_id")]
    pub item_id: Option<i64>,
    /// The item's code.
    #[serde(default, deserialize_with = "text")]
    pub item_code: Option<String>,
    /// What the invoice line says.
    #[serde(default, deserialize_with = "text")]
    pub item_shortdescription: Option<String>,
    /// Quantity billed (may be fractional).
    #[serde(default, deserialize_with = "number")]
    pub qty_order: Option<f64>,
    /// Price per unit.
    #[serde(default, deserialize_with = "number")]
    pub unit_price: Option<f64>,
    /// An inactive line is not invoiced.
    #[serde(default, deserialize_with = "flag")]
    pub isinactive: Option<bool>,
    /// First day the line is invoiced.
    #[serde(default, deserialize_with = "text")]
    pub startdate: Option<String>,
    /// Last day the line is invoiced.
    #[serde(default, deserialize_with = "text")]
    pub enddate: Option<String>,
    /// 0: the quantity is entered by hand; anything else: Halo computes it (F37).
    #[serde(default, deserialize_with = "integer")]
    pub recurring_invoice_quantity_type: Option<i64>,
}

impl Line {
    /// The fields a line must carry for mpsync to judge it; a list answer whose lines lack
    /// any of them is a reduced form, and the invoice is read whole instead.
    pub const NEEDED: [&'static str; 4] =
        ["id", "_itemid", "qty_order", "recurring_invoice_quantity_type"];

    /// Whether a raw line carries every [`Line::NEEDED`] field.
    pub fn is_whole(raw: &Value) -> bool {
        raw.as_object().is_some_and(|o| Self::NEEDED.iter().all(|k| o.contains_key(*k)))
    }
}

/// `POST /auth/token`'s answer (F8). `Debug` never shows the token.
#[derive(Clone, PartialEq, Deserialize)]
pub struct TokenAnswer {
    /// The bearer token.
    pub access_token: String,
    /// Seconds it lives (absent: assumed an hour).
    #[serde(default, deserialize_with = "number")]
    pub expires_in: Option<f64>,
}

impl std::fmt::Debug for TokenAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenAnswer")
            .field("access_token", &crate::upstream::REDACTED)
            .field("expires_in", &self.expires_in)
            .finish()
    }
}

macro_rules! has_id {
    ($($t:ty),*) => {$(
        impl HasId for $t {
            // Negative ids are kept apart from positive ones by their bits.
            fn id(&self) -> u64 {
                self.id as u64
            }
        }
    )*};
}
has_id!(Client, Contract, Item, RecurringInvoice);

/// A number as Halo may send it: a JSON number, or a string holding one.
fn as_f64(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    }
    .filter(|f| f.is_finite())
}

/// A whole number from [`as_f64`] (`17`, `17.0`, `"17"`).
fn as_i64(v: &Value) -> Option<i64> {
    if let Some(i) = v.as_i64() {
        return Some(i);
    }
    as_f64(v).filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15).map(|f| f as i64)
}

fn invalid<E: serde::de::Error>(what: &str, v: &Value) -> E {
    let shown: String = v.to_string().chars().take(60).collect();
    E::custom(format!("expected {what}, got {shown}"))
}

/// A required id.
fn id<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    let v = Value::deserialize(d)?;
    as_i64(&v).ok_or_else(|| invalid("a whole-number id", &v))
}

/// An optional id; null and empty strings read as absent.
fn opt_id<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    let v = Value::deserialize(d)?;
    match &v {
        Value::Null => Ok(None),
        Value::String(s) if s.trim().is_empty() => Ok(None),
        _ => as_i64(&v).map(Some).ok_or_else(|| invalid("a whole-number id", &v)),
    }
}

/// An optional number.
fn number<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    let v = Value::deserialize(d)?;
    match &v {
        Value::Null => Ok(None),
        Value::String(s) if s.trim().is_empty() => Ok(None),
        _ => as_f64(&v).map(Some).ok_or_else(|| invalid("a number", &v)),
    }
}

/// An optional whole number (a status or type code).
fn integer<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    let v = Value::deserialize(d)?;
    match &v {
        Value::Null => Ok(None),
        Value::String(s) if s.trim().is_empty() => Ok(None),
        _ => as_i64(&v).map(Some).ok_or_else(|| invalid("a whole number", &v)),
    }
}

/// An optional flag: `true`/`false`, `1`/`0`, or those as strings.
fn flag<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    let v = Value::deserialize(d)?;
    match &v {
        Value::Null => Ok(None),
        Value::Bool(b) => Ok(Some(*b)),
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "" => Ok(None),
            "true" | "1" | "yes" => Ok(Some(true)),
            "false" | "0" | "no" => Ok(Some(false)),
            _ => Err(invalid("true or false", &v)),
        },
        _ => match as_i64(&v) {
            Some(0) => Ok(Some(false)),
            Some(1) => Ok(Some(true)),
            _ => Err(invalid("true or false", &v)),
        },
    }
}

/// An optional text; a number is read as its digits.
fn text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let v = Value::deserialize(d)?;
    match v {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s)),
        Value::Number(n) => Ok(Some(n.to_string())),
        Value::Bool(b) => Ok(Some(b.to_string())),
        other => Err(invalid("a text", &other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drifted_types_are_read_and_unknown_fields_ignored() {
        let line: Line = serde_json::from_str(
            r#"{"id":"24967","ihid":-94.0,"_itemid":17,"qty_order":"25","unit_price":22.5,
                "isinactive":0,"recurring_invoice_quantity_type":"1","startdate":null,
                "_warning":"x","customfields":[],"quantity_users":[{"id":1}]}"#,
        )
        .unwrap();
        assert_eq!((line.id, line.ihid, line.item_id), (24967, Some(-94), Some(17)));
        assert_eq!((line.qty_order, line.unit_price), (Some(25.0), Some(22.5)));
        assert_eq!(line.isinactive, Some(false));
        assert_eq!(line.recurring_invoice_quantity_type, Some(1));
        let c: Client =
            serde_json::from_str(r#"{"id":12,"name":null,"inactive":"true","x":1}"#).unwrap();
        assert_eq!((c.id, c.name, c.inactive), (12, None, Some(true)));
        let inv: RecurringInvoice =
            serde_json::from_str(r#"{"id":-94,"client_id":"12","disabled":1,"contract_id":0}"#)
                .unwrap();
        assert_eq!((inv.id, inv.client_id, inv.disabled), (-94, Some(12), Some(true)));
        assert!(inv.lines.is_none());
    }

    #[test]
    fn a_value_of_the_wrong_kind_is_refused_naming_what_was_expected() {
        let e = serde_json::from_str::<Line>(r#"{"id":1,"qty_order":"ten"}"#).unwrap_err();
        assert!(e.to_string().contains("expected a number, got \"ten\""), "{e}");
        let e = serde_json::from_str::<Client>(r#"{"id":1.5}"#).unwrap_err();
        assert!(e.to_string().contains("whole-number id"), "{e}");
        let e = serde_json::from_str::<Client>(r#"{"id":1,"inactive":"maybe"}"#).unwrap_err();
        assert!(e.to_string().contains("true or false"), "{e}");
    }

    #[test]
    fn a_line_is_whole_when_it_carries_every_needed_field() {
        let whole = serde_json::json!({"id":1,"_itemid":2,"qty_order":3.0,
            "recurring_invoice_quantity_type":0});
        assert!(Line::is_whole(&whole));
        let reduced = serde_json::json!({"id":1,"_itemid":2,"qty_order":3.0});
        assert!(!Line::is_whole(&reduced));
        assert!(!Line::is_whole(&serde_json::json!(5)));
    }
}
