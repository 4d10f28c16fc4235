//! The ConnectWise write path (reference §3.4): one addition read by id, and the `PATCH` that
//! changes its quantity with a JSON Patch body (`[{"op":"replace","path":"/quantity","value":N}]`),
//! answered with the whole updated addition. Every PATCH that reaches the handler is kept in
//! the simulator's journal ([`CwWrite`]) so tests can compare what a client sent with what it
//! said it would send.
//!
//! Sim choices where the reference is silent: only `replace` of `quantity` is supported (any
//! other op or path is a 400 naming `op` or `path`); the value must be a JSON number of at least
//! 0 — decimals are accepted, as ConnectWise keeps quantities as decimals (§3.3 models type it
//! as a number, and the SDKs as a double) — and a string, `null` or a negative number is a 400
//! naming `quantity`; a body that is not a non-empty JSON array of operation objects is a 400
//! naming `body`; a `Content-Type` other than `application/json` is a 415. All operations are
//! checked before any is applied. Unknown agreements and additions, and an addition of another
//! agreement, are 404s, checked before the body.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::Value;

use super::ConnectwiseSim;
use super::data::{BillingData, CwAddition};
use super::layer::cw_error;

/// One PATCH the simulated ConnectWise received, as its handler saw it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CwWrite {
    /// The method (`PATCH`).
    pub method: String,
    /// The path as requested, API prefix included.
    pub path: String,
    /// Every request header, names lower-cased, in the order received.
    pub headers: Vec<(String, String)>,
    /// The body as received (lossy UTF-8).
    pub body: String,
    /// The status the handler answered.
    pub status: u16,
}

impl CwWrite {
    /// The value of a header (name compared case-insensitively).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// What is wrong with a PATCH body, naming the field the §4 error body carries.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct PatchError {
    /// `body`, `op`, `path` or `quantity`.
    pub field: &'static str,
    /// What is wrong and what is accepted.
    pub message: String,
}

fn bad(field: &'static str, message: impl Into<String>) -> PatchError {
    PatchError { field, message: message.into() }
}

/// Reads a JSON Patch body and returns the quantity it sets (the last `replace` wins when
/// several are sent). Every operation is checked; the first problem is the error.
pub fn parse_patch(body: &[u8]) -> Result<f64, PatchError> {
    const FORM: &str =
        r#"send a JSON Patch array: [{"op":"replace","path":"/quantity","value":N}]"#;
    let doc: Value = serde_json::from_slice(body)
        .map_err(|e| bad("body", format!("the body is not valid JSON ({e}); {FORM}")))?;
    let Value::Array(ops) = doc else {
        return Err(bad("body", format!("the body is not a JSON array; {FORM}")));
    };
    if ops.is_empty() {
        return Err(bad("body", format!("the array holds no operation; {FORM}")));
    }
    let mut quantity = None;
    for (i, op) in ops.iter().enumerate() {
        let n = i + 1;
        let Value::Object(op) = op else {
            return Err(bad("body", format!("operation {n} is not an object; {FORM}")));
        };
        match op.get("op") {
            Some(Value::String(s)) if s.eq_ignore_ascii_case("replace") => {}
            Some(other) => {
                return Err(bad(
                    "op",
                    format!("operation {n}: op {other} is not supported; use \"replace\""),
                ));
            }
            None => return Err(bad("op", format!("operation {n} has no op; use \"replace\""))),
        }
        match op.get("path") {
            Some(Value::String(p))
                if p.trim_start_matches('/').eq_ignore_ascii_case("quantity") => {}
            Some(other) => {
                return Err(bad(
                    "path",
                    format!(
                        "operation {n}: path {other} cannot be changed here; use \"/quantity\""
                    ),
                ));
            }
            None => {
                return Err(bad("path", format!("operation {n} has no path; use \"/quantity\"")));
            }
        }
        match op.get("value") {
            Some(Value::Number(v)) => match v.as_f64() {
                Some(q) if q >= 0.0 && q.is_finite() => quantity = Some(q),
                _ => {
                    return Err(bad(
                        "quantity",
                        format!("operation {n}: quantity {v} must be a number of at least 0"),
                    ));
                }
            },
            Some(other) => {
                return Err(bad(
                    "quantity",
                    format!("operation {n}: quantity {other} must be a number of at least 0"),
                ));
            }
            None => return Err(bad("quantity", format!("operation {n} has no value"))),
        }
    }
    // At least one operation was checked and each one sets the quantity.
    quantity.ok_or_else(|| bad("body", FORM))
}

/// The §4 validation answer for a bad PATCH body.
fn invalid_body(e: &PatchError) -> Response {
    let body = serde_json::json!({
        "code": "InvalidObject",
        "message": format!("The addition update is invalid: {e}"),
        "errors": [{
            "code": "InvalidField",
            "message": e.message,
            "resource": "agreementAddition",
            "field": e.field,
        }],
    });
    (StatusCode::BAD_REQUEST, axum::Json(body)).into_response()
}

/// Where the addition `addition` of agreement `agreement` is in `data.additions`, or the §4
/// 404 that says which is unknown.
fn find(data: &BillingData, agreement: &str, addition: &str) -> Result<usize, Box<Response>> {
    let not_found = |m: String| Box::new(cw_error(StatusCode::NOT_FOUND, "NotFound", m));
    let Some(a) =
        agreement.parse::<u64>().ok().filter(|a| data.agreements.iter().any(|x| x.id == *a))
    else {
        return Err(not_found(format!("Agreement ID {agreement} not found")));
    };
    addition
        .parse::<u64>()
        .ok()
        .and_then(|b| data.additions.iter().position(|x| x.id == b && x.agreement_id == a))
        .ok_or_else(|| not_found(format!("Addition ID {addition} not found on agreement {a}")))
}

/// `GET /finance/agreements/{id}/additions/{id}`: one addition.
pub(crate) async fn addition(
    State(sim): State<ConnectwiseSim>,
    Path((agreement, addition)): Path<(String, String)>,
) -> Response {
    let data = sim.read();
    match find(&data, &agreement, &addition) {
        Ok(i) => axum::Json(&data.additions[i]).into_response(),
        Err(r) => *r,
    }
}

/// `PATCH /finance/agreements/{id}/additions/{id}`: sets the quantity, answers the addition.
pub(crate) async fn patch_addition(
    State(sim): State<ConnectwiseSim>,
    Path((agreement, addition)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let resp = apply(&sim, &agreement, &addition, &headers, &body);
    let path = format!("{}/finance/agreements/{agreement}/additions/{addition}", super::API_PREFIX);
    sim.journal(CwWrite {
        method: "PATCH".into(),
        path,
        headers: headers
            .iter()
            .map(|(k, v)| {
                (k.as_str().to_owned(), String::from_utf8_lossy(v.as_bytes()).into_owned())
            })
            .collect(),
        body: String::from_utf8_lossy(&body).into_owned(),
        status: resp.status().as_u16(),
    });
    resp
}

fn apply(
    sim: &ConnectwiseSim,
    agreement: &str,
    addition: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    sim.mutate(|data| {
        let i = match find(data, agreement, addition) {
            Ok(i) => i,
            Err(r) => return *r,
        };
        if !json {
            return cw_error(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "UnsupportedMediaType",
                "send the JSON Patch body with Content-Type: application/json",
            );
        }
        let quantity = match parse_patch(body) {
            Ok(q) => q,
            Err(e) => return invalid_body(&e),
        };
        let a: &mut CwAddition = &mut data.additions[i];
        a.quantity = quantity;
        axum::Json(&*a).into_response()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_patches_give_the_quantity() {
        let q = |b: &str| parse_patch(b.as_bytes());
        assert_eq!(q(r#"[{"op":"replace","path":"/quantity","value":42}]"#), Ok(42.0));
        assert_eq!(q(r#"[{"op":"replace","path":"quantity","value":0}]"#), Ok(0.0));
        assert_eq!(q(r#"[{"op":"replace","path":"/quantity","value":12.5}]"#), Ok(12.5));
        let two = r#"[{"op":"replace","path":"/quantity","value":1},{"op":"replace","path":"quantity","value":3}]"#;
        assert_eq!(q(two), Ok(3.0), "the last replace wins");
    }

    #[test]
    fn bad_patches_name_the_field() {
        for (body, field) in [
            ("", "body"),
            ("{", "body"),
            (r#"{"quantity":5}"#, "body"),
            ("[]", "body"),
            ("[5]", "body"),
            (r#"[{"path":"/quantity","value":5}]"#, "op"),
            (r#"[{"op":"add","path":"/quantity","value":5}]"#, "op"),
            (r#"[{"op":"remove","path":"/quantity"}]"#, "op"),
            (r#"[{"op":"replace","value":5}]"#, "path"),
            (r#"[{"op":"replace","path":"/unitPrice","value":5}]"#, "path"),
            (r#"[{"op":"replace","path":"/quantity"}]"#, "quantity"),
            (r#"[{"op":"replace","path":"/quantity","value":-1}]"#, "quantity"),
            (r#"[{"op":"replace","path":"/quantity","value":"5"}]"#, "quantity"),
            (r#"[{"op":"replace","path":"/quantity","value":null}]"#, "quantity"),
            (
                r#"[{"op":"replace","path":"/quantity","value":1},{"op":"test","path":"/quantity","value":1}]"#,
                "op",
            ),
        ] {
            let e = parse_patch(body.as_bytes()).unwrap_err();
            assert_eq!(e.field, field, "{body}: {e}");
        }
    }
}
