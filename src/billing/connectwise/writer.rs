//! ConnectWise Manage as a [`LineWriter`] (reference §3.4): `GET
//! /finance/agreements/{a}/additions/{b}` reads one addition, and `PATCH` of the same path with
//! `Content-Type: application/json` and the JSON Patch body
//! `[{"op":"replace","path":"/quantity","value":N}]` sets its quantity; the answer is the whole
//! updated addition.
//!
//! The PATCH goes through the shared client as an idempotent call: it replaces the quantity
//! with an absolute value, so a retry after a 429, a 5xx or a timeout (when the first attempt
//! may have been applied) leaves the same quantity, never a doubled change. A client that
//! records a capture refuses it before sending (`mpsync capture` only reads).

use chrono::Utc;
use futures_util::future::BoxFuture;
use reqwest::Method;
use serde_json::Value;

use super::client::{ConnectwiseClient, UPSTREAM};
use super::models::Addition;
use super::rules;
use crate::billing::write::{LineState, LineWriter, PlannedRequest, WriteError, same_quantity};
use crate::config::ConnectwiseConfig;
use crate::model::LineRef;
use crate::upstream::{Endpoint, RetryPolicy, StatsSnapshot, UpstreamError};

/// The route pattern of one addition (both methods).
const ADDITION: &str = "/finance/agreements/{id}/additions/{id}";

/// Reads and writes single agreement additions. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ConnectwiseWriter {
    client: ConnectwiseClient,
}

impl ConnectwiseWriter {
    /// A writer for the configured ConnectWise, with its own rate budget and the default
    /// retry policy.
    pub fn new(cfg: &ConnectwiseConfig) -> Result<ConnectwiseWriter, UpstreamError> {
        Ok(ConnectwiseWriter { client: ConnectwiseClient::new(cfg)? })
    }

    /// A writer with a specific retry policy (tests shorten the waits).
    pub fn with_retry(
        cfg: &ConnectwiseConfig,
        retry: RetryPolicy,
    ) -> Result<ConnectwiseWriter, UpstreamError> {
        Ok(ConnectwiseWriter { client: ConnectwiseClient::with_retry(cfg, retry)? })
    }

    /// A writer on `client` (sharing its rate budget; requests counted afresh).
    pub fn from_client(client: &ConnectwiseClient) -> ConnectwiseWriter {
        ConnectwiseWriter { client: client.scoped() }
    }

    /// The `(agreement, addition)` of a ConnectWise line.
    fn ids(line: &LineRef) -> Result<(u64, u64), WriteError> {
        match line {
            LineRef::Connectwise { agreement, addition } => Ok((*agreement, *addition)),
            other => Err(WriteError::WrongPsa { psa: UPSTREAM, line: other.clone() }),
        }
    }

    /// The call and body that set `line` to `quantity`: what `set_quantity` sends and
    /// `describe` shows, built once.
    fn patch(line: &LineRef, quantity: f64) -> Result<(Endpoint, Value), WriteError> {
        let (a, b) = Self::ids(line)?;
        if !(quantity >= 0.0 && quantity.is_finite()) {
            return Err(WriteError::InvalidQuantity { line: line.clone(), quantity });
        }
        let path = format!("/finance/agreements/{a}/additions/{b}");
        let body =
            serde_json::json!([{"op": "replace", "path": "/quantity", "value": number(quantity)}]);
        Ok((Endpoint::new(Method::PATCH, path, ADDITION), body))
    }

    /// The line as the addition in an answer shows it; `inactive` judged now.
    fn state(
        &self,
        line: &LineRef,
        endpoint: &str,
        add: &Addition,
    ) -> Result<LineState, WriteError> {
        let (_, b) = Self::ids(line)?;
        if add.id != b {
            let reason = format!("asked for addition {b}, the answer is addition {}", add.id);
            return Err(self.client.bad(endpoint, reason).into());
        }
        let quantity = add
            .quantity
            .filter(|q| q.is_finite())
            .ok_or_else(|| self.client.bad(endpoint, format!("addition {b} has no quantity")))?;
        let reasons = rules::addition_reasons(add, Utc::now())
            .map_err(|e| self.client.bad(endpoint, e.to_string()))?;
        Ok(LineState {
            line: line.clone(),
            quantity,
            unit_price: add.unit_price.filter(|p| p.is_finite()),
            product_id: add.product_id(),
            inactive: if reasons.is_empty() { None } else { Some(reasons.join("; ")) },
            locked: None,
        })
    }

    /// Reads what ConnectWise errors mean for one line: a 404 is [`WriteError::Gone`], a
    /// refused value [`WriteError::Rejected`], a 403 names the rights a write-back needs.
    /// `quantity` is the one a write sent (`None` for a read).
    fn explain(line: &LineRef, quantity: Option<f64>, e: UpstreamError) -> WriteError {
        match (e, quantity) {
            (UpstreamError::NotFound { endpoint, message, .. }, _) => {
                WriteError::Gone { psa: UPSTREAM, line: line.clone(), endpoint, message }
            }
            (UpstreamError::Rejected { endpoint, status, message, fields, .. }, Some(quantity)) => {
                WriteError::Rejected {
                    psa: UPSTREAM,
                    line: line.clone(),
                    quantity,
                    endpoint,
                    status,
                    message,
                    fields,
                }
            }
            (UpstreamError::Forbidden { upstream, endpoint, credential, message }, _) => {
                WriteError::Upstream(UpstreamError::Forbidden {
                    upstream,
                    endpoint,
                    credential,
                    message: format!(
                        "{message}; a write-back needs an API member whose security role has \
                         Inquire and Edit rights on Finance → Agreements"
                    ),
                })
            }
            (other, _) => WriteError::Upstream(other),
        }
    }
}

/// A quantity as JSON: an integer when it is whole (as the reference's example writes it),
/// else a decimal.
fn number(q: f64) -> Value {
    if q.fract() == 0.0 && q <= 9_007_199_254_740_992.0 {
        Value::from(q as u64)
    } else {
        Value::from(q)
    }
}

impl LineWriter for ConnectwiseWriter {
    fn psa(&self) -> &'static str {
        UPSTREAM
    }

    fn read_line<'a>(&'a self, line: &'a LineRef) -> BoxFuture<'a, Result<LineState, WriteError>> {
        Box::pin(async move {
            let (a, b) = Self::ids(line)?;
            let ep = Endpoint::get(format!("/finance/agreements/{a}/additions/{b}"), ADDITION);
            let http = self.client.upstream();
            let resp = http.get(&ep, &[]).await.map_err(|e| Self::explain(line, None, e))?;
            let add: Addition = http.parse_json(&resp)?;
            self.state(line, &resp.endpoint, &add)
        })
    }

    fn set_quantity<'a>(
        &'a self,
        line: &'a LineRef,
        quantity: f64,
    ) -> BoxFuture<'a, Result<LineState, WriteError>> {
        Box::pin(async move {
            let (ep, body) = Self::patch(line, quantity)?;
            let http = self.client.upstream();
            let resp = http
                .send(&ep, &[], Some(&body), true)
                .await
                .map_err(|e| Self::explain(line, Some(quantity), e))?;
            let add: Addition = http.parse_json(&resp)?;
            let after = self.state(line, &resp.endpoint, &add)?;
            if !same_quantity(after.quantity, quantity) {
                return Err(WriteError::Unconfirmed {
                    psa: UPSTREAM,
                    line: line.clone(),
                    quantity,
                    answered: after.quantity,
                });
            }
            Ok(after)
        })
    }

    fn describe(
        &self,
        line: &LineRef,
        _from: f64,
        quantity: f64,
    ) -> Result<PlannedRequest, WriteError> {
        let (ep, body) = Self::patch(line, quantity)?;
        Ok(self.client.upstream().describe(&ep, &[], Some(&body)))
    }

    fn stats(&self) -> StatsSnapshot {
        self.client.stats()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_patch_body_replaces_the_quantity_with_a_number() {
        let line = LineRef::Connectwise { agreement: 12, addition: 345 };
        let (ep, body) = ConnectwiseWriter::patch(&line, 42.0).unwrap();
        assert_eq!(ep.label(), "PATCH /finance/agreements/{id}/additions/{id}");
        assert_eq!(ep.path, "/finance/agreements/12/additions/345");
        assert_eq!(body.to_string(), r#"[{"op":"replace","path":"/quantity","value":42}]"#);
        let (_, body) = ConnectwiseWriter::patch(&line, 12.5).unwrap();
        assert_eq!(body[0]["value"], serde_json::json!(12.5));
        for bad in [-1.0, f64::NAN, f64::INFINITY] {
            let e = ConnectwiseWriter::patch(&line, bad).unwrap_err();
            assert!(matches!(e, WriteError::InvalidQuantity { .. }), "{bad}: {e}");
        }
        let e = ConnectwiseWriter::patch(&LineRef::Csv { line: 7 }, 1.0).unwrap_err();
        assert!(matches!(e, WriteError::WrongPsa { psa: "connectwise", .. }), "{e}");
        assert!(e.to_string().contains("CSV line 7"), "{e}");
    }
}
