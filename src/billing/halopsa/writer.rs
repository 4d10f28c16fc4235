//! HaloPSA as a [`LineWriter`] (reference §1.4, §3 "Writes", §3.2 item 10): a recurring-invoice
//! line is read through its invoice (`GET /RecurringInvoice/{ihid}`, the line in `lines`) and
//! written by the narrowest write Halo offers, `POST /RecurringInvoice/updatelines` with
//! `[{"id": line, "ihid": invoice, "qty_order": new}]`. An instance without that route (404
//! or 405, which change nothing) gets the practised write instead (F35), chosen automatically
//! and kept for the writer's life: `POST /RecurringInvoice` with `[{"id": invoice, "lines":
//! [every line exactly as read, only the one qty_order changed]}]` — every line, because a
//! re-POST removes the lines left out.
//!
//! Every write is verified by reading the invoice again ([`verify`]): the line must hold the
//! new quantity and every other line be exactly as read before; anything else is a failed
//! write naming each change before → after ([`WriteError::SideEffect`]), which stops the
//! apply. A line Halo computes (`recurring_invoice_quantity_type` ≠ 0), an inactive line, a
//! disabled or out-of-date invoice or line, or a line now billing another item is never
//! written: the read marks it [`LineState::locked`] and the guard skips it. The client and
//! contract are not re-read.
//!
//! Writes are sent once, never retried (a 504 or a timeout may have applied the write, and a
//! second re-POST could overwrite an edit made since): the apply records a failure that "may
//! have applied" and the next apply settles it by re-reading the line. A 401 fetches a new
//! token once and replays (a 401 was not carried out); a 403 names `edit:invoices`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use chrono::Utc;
use futures_util::future::BoxFuture;
use reqwest::Method;
use serde_json::{Value, json};

use super::client::{HaloClient, Resource, UPSTREAM, retry_policy};
use super::models::{Line, RecurringInvoice};
use super::token::system_clock;
use super::{rules, verify};
use crate::billing::write::{LineState, LineWriter, PlannedRequest, WriteError, same_quantity};
use crate::config::{HALOPSA_WRITE_SCOPE, HalopsaConfig};
use crate::model::LineRef;
use crate::upstream::{Endpoint, RetryPolicy, StatsSnapshot, UpstreamError};

/// The per-line update.
const UPDATELINES: &str = "/RecurringInvoice/updatelines";
/// The invoice re-POST.
const INVOICES: &str = "/RecurringInvoice";
/// The single read, as errors name it.
const READ: &str = "GET /RecurringInvoice/{id}";

/// One Halo line: `(invoice, line, item)`.
type Ids = (i64, i64, i64);

/// A recurring invoice as one read found it: the header, its lines parsed, and its lines as
/// Halo sent them (what a re-POST sends back).
#[derive(Debug, Clone)]
struct Snapshot {
    header: RecurringInvoice,
    lines: Vec<Line>,
    raw: Vec<Value>,
}

/// Reads and writes HaloPSA recurring-invoice lines. Cheap to clone (clones share the token,
/// the budget, the last reads and whether `updatelines` exists).
#[derive(Debug, Clone)]
pub struct HalopsaWriter {
    client: HaloClient,
    /// Each line's invoice as its last read found it: the base of the write that follows and
    /// the "before" of its verification.
    last: Arc<Mutex<HashMap<LineRef, Snapshot>>>,
    /// `updatelines` answered 404 or 405: every write re-POSTs the invoice.
    whole_invoice: Arc<AtomicBool>,
}

impl HalopsaWriter {
    /// A writer for the configured HaloPSA (its token asks for `edit:invoices` too).
    pub fn new(cfg: &HalopsaConfig) -> Result<HalopsaWriter, UpstreamError> {
        Self::with_retry(cfg, retry_policy())
    }

    /// A writer with a specific retry policy (tests shorten the waits).
    pub fn with_retry(
        cfg: &HalopsaConfig,
        retry: RetryPolicy,
    ) -> Result<HalopsaWriter, UpstreamError> {
        let client = HaloClient::build(cfg, true, retry, system_clock())?;
        Ok(HalopsaWriter {
            client,
            last: Arc::default(),
            whole_invoice: Arc::new(AtomicBool::new(false)),
        })
    }

    /// Whether this writer re-POSTs whole invoices (`updatelines` was found missing).
    pub fn writes_whole_invoices(&self) -> bool {
        self.whole_invoice.load(Ordering::Relaxed)
    }

    fn ids(line: &LineRef) -> Result<Ids, WriteError> {
        match line {
            LineRef::Halopsa { invoice, line, item, .. } => {
                Ok((i64::from(*invoice), i64::from(*line), i64::from(*item)))
            }
            other => Err(WriteError::WrongPsa { psa: UPSTREAM, line: other.clone() }),
        }
    }

    /// Refuses what can never be written: another PSA's line, a line the plan knew Halo
    /// computes, a quantity that is not a finite number of at least 0.
    fn check(line: &LineRef, quantity: f64) -> Result<Ids, WriteError> {
        let ids = Self::ids(line)?;
        if matches!(line, LineRef::Halopsa { computed: true, .. }) {
            return Err(WriteError::Locked {
                psa: UPSTREAM,
                line: line.clone(),
                why: "Halo computes this line's quantity; a written one would be overwritten at \
                      its next recalculation"
                    .into(),
            });
        }
        if !(quantity.is_finite() && quantity >= 0.0) {
            return Err(WriteError::InvalidQuantity { line: line.clone(), quantity });
        }
        Ok(ids)
    }

    /// The per-line update of `line` to `quantity`.
    pub fn updatelines_body(ids: Ids, quantity: f64) -> Value {
        let (invoice, line, _) = ids;
        json!([{"id": line, "ihid": invoice, "qty_order": quantity}])
    }

    /// The re-POST of `invoice` with `raw` (its lines exactly as read), only `line`'s
    /// `qty_order` set to `quantity`. `None` when `line` is not among them.
    pub fn reposted_body(invoice: i64, raw: &[Value], line: i64, quantity: f64) -> Option<Value> {
        let mut lines = raw.to_vec();
        let target = lines.iter_mut().find(|l| l.get("id").and_then(as_id) == Some(line))?;
        target["qty_order"] = json!(quantity);
        Some(json!([{"id": invoice, "lines": lines}]))
    }

    /// `GET /RecurringInvoice/{id}`: the invoice with its lines; a 404 is the line gone.
    async fn read_invoice(&self, line: &LineRef, invoice: i64) -> Result<Snapshot, WriteError> {
        let v: Value = self
            .client
            .get_one(Resource::RecurringInvoice, invoice)
            .await
            .map_err(|e| explain(line, None, e))?;
        let bad = |reason: String| -> WriteError {
            self.client.upstream().bad_response(READ, reason, b"").into()
        };
        let header: RecurringInvoice = serde_json::from_value(v)
            .map_err(|e| bad(format!("recurring invoice {invoice}: {e}")))?;
        let raw = header.lines.clone().unwrap_or_default();
        let lines = raw
            .iter()
            .enumerate()
            .map(|(i, l)| {
                serde_json::from_value::<Line>(l.clone())
                    .map_err(|e| bad(format!("recurring invoice {invoice} line {}: {e}", i + 1)))
            })
            .collect::<Result<Vec<Line>, _>>()?;
        Ok(Snapshot { header, lines, raw })
    }

    /// The line as `snap` holds it, judged as of today; [`WriteError::Gone`] when the
    /// invoice no longer has it.
    fn state(&self, line: &LineRef, snap: &Snapshot) -> Result<LineState, WriteError> {
        let (invoice, id, item) = Self::ids(line)?;
        let Some(l) = snap.lines.iter().find(|l| l.id == id) else {
            return Err(WriteError::Gone {
                psa: UPSTREAM,
                line: line.clone(),
                endpoint: READ.into(),
                message: format!("recurring invoice {invoice} no longer has line {id}"),
            });
        };
        let bad = |e: rules::UnreadableDate| -> WriteError {
            self.client.upstream().bad_response(READ, e.to_string(), b"").into()
        };
        let on = Utc::now().date_naive();
        let inherited = rules::invoice_reasons(&snap.header, on).map_err(bad)?;
        let judged = rules::judge(&inherited, l, on).map_err(bad)?;
        let locked = match l.item_id {
            Some(now) if now != item => Some(format!(
                "line {id} now bills item {now}, not item {item} as when the billing was read"
            )),
            _ if !judged.counted || judged.computed => judged.note.clone(),
            _ => None,
        };
        Ok(LineState {
            line: line.clone(),
            quantity: judged.quantity,
            unit_price: l.unit_price,
            product_id: l.item_id.map(|i| i.to_string()),
            inactive: if judged.counted { None } else { judged.note.clone() },
            locked,
        })
    }

    fn remember(&self, line: &LineRef, snap: Snapshot) {
        self.last.lock().unwrap_or_else(|e| e.into_inner()).insert(line.clone(), snap);
    }

    fn recall(&self, line: &LineRef) -> Option<Snapshot> {
        self.last.lock().unwrap_or_else(|e| e.into_inner()).remove(line)
    }

    /// Sends one write (never retried; a 401 is replayed with a new token).
    async fn post(&self, path: &'static str, body: &Value) -> Result<(), UpstreamError> {
        let ep = Endpoint::new(Method::POST, path, path);
        self.client.call(&ep, &[], Some(body), HALOPSA_WRITE_SCOPE, false).await.map(|_| ())
    }

    /// The write itself: `updatelines`, or the invoice re-POST once `updatelines` is known
    /// to be missing.
    async fn send(
        &self,
        line: &LineRef,
        ids: Ids,
        before: &Snapshot,
        quantity: f64,
    ) -> Result<(), WriteError> {
        if !self.writes_whole_invoices() {
            match self.post(UPDATELINES, &Self::updatelines_body(ids, quantity)).await {
                Ok(()) => return Ok(()),
                Err(
                    UpstreamError::NotFound { .. } | UpstreamError::Rejected { status: 405, .. },
                ) => {
                    tracing::info!(
                        "halopsa: POST /RecurringInvoice/updatelines is not there (404/405); \
                         writing lines by re-posting their invoice with every line as read"
                    );
                    self.whole_invoice.store(true, Ordering::Relaxed);
                }
                Err(e) => return Err(explain(line, Some(quantity), e)),
            }
        }
        let (invoice, id, _) = ids;
        let body = Self::reposted_body(invoice, &before.raw, id, quantity).ok_or_else(|| {
            WriteError::Gone {
                psa: UPSTREAM,
                line: line.clone(),
                endpoint: READ.into(),
                message: format!("recurring invoice {invoice} no longer has line {id}"),
            }
        })?;
        self.post(INVOICES, &body).await.map_err(|e| explain(line, Some(quantity), e))
    }
}

impl LineWriter for HalopsaWriter {
    fn psa(&self) -> &'static str {
        UPSTREAM
    }

    /// The line as its invoice holds it now, [`LineState::locked`] when it must not be
    /// written.
    fn read_line<'a>(&'a self, line: &'a LineRef) -> BoxFuture<'a, Result<LineState, WriteError>> {
        Box::pin(async move {
            let (invoice, _, _) = Self::ids(line)?;
            let snap = self.read_invoice(line, invoice).await?;
            let state = self.state(line, &snap)?;
            self.remember(line, snap);
            Ok(state)
        })
    }

    /// One write (see the module doc) based on the last read of the line (read again when
    /// there was none), then the invoice read again and verified.
    fn set_quantity<'a>(
        &'a self,
        line: &'a LineRef,
        quantity: f64,
    ) -> BoxFuture<'a, Result<LineState, WriteError>> {
        Box::pin(async move {
            let ids = Self::check(line, quantity)?;
            let (invoice, id, _) = ids;
            let before = match self.recall(line) {
                Some(s) => s,
                None => self.read_invoice(line, invoice).await?,
            };
            let was = self.state(line, &before)?;
            if let Some(why) = was.locked {
                return Err(WriteError::Locked { psa: UPSTREAM, line: line.clone(), why });
            }
            if same_quantity(was.quantity, quantity) {
                return Ok(was);
            }
            self.send(line, ids, &before, quantity).await?;
            tracing::info!(line = %line.key(), quantity, "halopsa: recurring invoice line written");
            // Read back, whatever the answer said: the invoice is the proof.
            let after = self.read_invoice(line, invoice).await?;
            match verify::verify(&before.lines, &after.lines, id, quantity) {
                Ok(()) => {}
                Err(m) if m.changes.is_empty() => {
                    return Err(WriteError::Unconfirmed {
                        psa: UPSTREAM,
                        line: line.clone(),
                        quantity,
                        answered: m.answered.unwrap_or(0.0),
                    });
                }
                Err(m) => {
                    let mut changes = m.changes;
                    if let Some(q) = m.answered {
                        changes.insert(0, format!("line {id} holds qty_order {q}, not {quantity}"));
                    }
                    tracing::warn!(line = %line.key(), changes = changes.len(),
                        "halopsa: the invoice changed beyond the line written");
                    return Err(WriteError::SideEffect {
                        psa: UPSTREAM,
                        line: line.clone(),
                        quantity,
                        record: format!("recurring invoice {invoice}"),
                        changes,
                    });
                }
            }
            self.state(line, &after)
        })
    }

    /// The per-line update (`updatelines`); nothing is read, so the re-POST an instance
    /// without it gets is not shown.
    fn describe(
        &self,
        line: &LineRef,
        _from: f64,
        quantity: f64,
    ) -> Result<PlannedRequest, WriteError> {
        let ids = Self::check(line, quantity)?;
        let ep = Endpoint::new(Method::POST, UPDATELINES, UPDATELINES);
        Ok(self.client.describe(&ep, &[], Some(&Self::updatelines_body(ids, quantity))))
    }

    fn stats(&self) -> StatsSnapshot {
        self.client.upstream().stats()
    }
}

/// A line id as Halo may send it (`17`, `17.0`).
fn as_id(v: &Value) -> Option<i64> {
    v.as_i64().or_else(|| v.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64))
}

/// What a failed call means for one line: a 404 on the read is the line gone; a refused
/// write (400 with Halo's exception or binding shape) is [`WriteError::Rejected`]; a 403 on a
/// write names `edit:invoices` (the client's message says where to grant it). `quantity` is
/// the one a write asked for (`None` for a read).
fn explain(line: &LineRef, quantity: Option<f64>, e: UpstreamError) -> WriteError {
    match (e, quantity) {
        (UpstreamError::NotFound { endpoint, message, .. }, None) => {
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
        (other, _) => WriteError::Upstream(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_per_line_update_names_line_invoice_and_quantity() {
        let body = HalopsaWriter::updatelines_body((-94, 24967, 17), 27.0);
        assert_eq!(body.to_string(), r#"[{"id":24967,"ihid":-94,"qty_order":27.0}]"#);
    }

    #[test]
    fn the_re_post_sends_every_line_as_read_with_one_quantity_changed() {
        let raw = vec![
            json!({"id":24967,"ihid":-94,"_itemid":17,"qty_order":25.0,"unit_price":22.0,
                   "quantity_users":[],"_warning":null}),
            json!({"id":28857,"ihid":-94,"_itemid":21,"qty_order":20.0,"unit_price":30.0}),
        ];
        let body = HalopsaWriter::reposted_body(-94, &raw, 28857, 18.0).unwrap();
        let mut expected = raw.clone();
        expected[1]["qty_order"] = json!(18.0);
        assert_eq!(body, json!([{"id": -94, "lines": expected}]));
        assert_eq!(HalopsaWriter::reposted_body(-94, &raw, 1, 18.0), None, "not on the invoice");
    }

    #[test]
    fn what_is_never_sent() {
        let computed = LineRef::Halopsa { invoice: 5, line: 6, item: 7, computed: true };
        let e = HalopsaWriter::check(&computed, 3.0).unwrap_err();
        assert_eq!(e.kind(), "locked", "{e}");
        assert!(e.to_string().contains("Halo computes"), "{e}");
        let manual = LineRef::Halopsa { invoice: 5, line: 6, item: 7, computed: false };
        for q in [-1.0, f64::NAN, f64::INFINITY] {
            let e = HalopsaWriter::check(&manual, q).unwrap_err();
            assert_eq!(e.kind(), "invalid_quantity");
        }
        let e = HalopsaWriter::check(&LineRef::Csv { line: 2 }, 1.0).unwrap_err();
        assert!(matches!(e, WriteError::WrongPsa { psa: "halopsa", .. }), "{e}");
    }
}
