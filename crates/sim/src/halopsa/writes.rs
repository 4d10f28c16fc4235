//! The write routes (reference F32–F36, §3 "Writes" and "Recurring-invoice lines", strict on
//! purpose so an unsafe client fails tests):
//!
//! - `POST /<Resource>` with a JSON array: an element without `id` (or 0) creates, one with a
//!   known id shallow-merges its fields, an unknown non-zero id answers 400 `"Record not
//!   found"`. A `/RecurringInvoice` element carrying `lines` **replaces** the line set: listed
//!   lines with an id are merged, lines without one are added, lines not listed are removed.
//! - `POST /RecurringInvoice/updatelines`: each element merged by line `id`; a missing `ihid`
//!   or one that does not own the line answers the exception shape. Answers the lines.
//! - `POST /RecurringInvoice/Lines`: adds lines (or merges ones with an id) to their `ihid`.
//! - `POST /RecurringInvoice/process` (array of invoice ids): non-manual lines get Halo's
//!   computed quantity back (what the daily recalculation does).
//!
//! Every write is all-or-nothing, type errors answer the model-binding map ([`binding`]),
//! rule failures (a negative quantity) the .NET exception shape, and `net_amount` and the
//! header `total` are recomputed after it. Answers 200 with the saved object for a
//! one-element array, an array otherwise. Every write that changed something is journaled
//! ([`HaloWrite`]); the `change_other_line` / `drop_other_line` faults make a write also
//! change or remove another line of the invoice (a PSA bug a client's verification must see).
//!
//! [`binding`]: super::binding

use std::collections::BTreeSet;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Map, Value, json};

use super::binding::{Binder, not_object};
use super::data::{HaloData, Resource, recompute};
use crate::faults::SideEffect;

/// One line's quantity before and after a write (`None`: the line did not exist / was
/// removed).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LineChange {
    /// The line.
    pub line: i64,
    /// Its recurring invoice.
    pub ihid: i64,
    /// `qty_order` before.
    pub before: Option<f64>,
    /// `qty_order` after.
    pub after: Option<f64>,
}

/// One accepted write, as the simulator journals it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HaloWrite {
    /// The route pattern, e.g. `POST /RecurringInvoice/updatelines`.
    pub route: String,
    /// The recurring invoices (or other rows) written.
    pub ids: Vec<i64>,
    /// Every line whose quantity changed, was added or removed.
    pub changes: Vec<LineChange>,
    /// What a `change_other_line` / `drop_other_line` fault did besides.
    pub side_effect: Option<LineChange>,
}

/// Why a write was refused.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum WriteError {
    /// 400 model-binding map.
    Binding(Map<String, Value>),
    /// 400 .NET exception shape with this message.
    Exception(String),
    /// 400 `"Record not found"`.
    NotFound,
    /// 400 `{"":["A non-empty request body is required."]}`.
    Empty,
}

/// The .NET exception body (F41).
pub(crate) fn exception(message: &str) -> Value {
    json!({
        "ClassName": "System.Exception", "Message": message, "Data": null,
        "InnerException": null, "HelpURL": null, "StackTraceString": null,
        "RemoteStackTraceString": null, "RemoteStackIndex": 0, "ExceptionMethod": null,
        "HResult": -2146233088, "Source": null,
    })
}

impl IntoResponse for WriteError {
    fn into_response(self) -> Response {
        let body = match self {
            WriteError::Binding(m) => Value::Object(m),
            WriteError::Exception(m) => exception(&m),
            WriteError::NotFound => json!("Record not found"),
            WriteError::Empty => json!({"": ["A non-empty request body is required."]}),
        };
        (StatusCode::BAD_REQUEST, axum::Json(body)).into_response()
    }
}

/// The elements of a body: a JSON array of objects, converted (see [`Binder`]).
pub(crate) fn elements(raw: &[u8]) -> Result<Vec<Map<String, Value>>, WriteError> {
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Err(WriteError::Empty);
    }
    let v: Value = serde_json::from_slice(raw).map_err(|e| {
        let msg = format!(
            "Unexpected character encountered while parsing value. Path '', line {}, position {}.",
            e.line(),
            e.column()
        );
        WriteError::Binding(Map::from_iter([(String::new(), json!([msg]))]))
    })?;
    let Value::Array(items) = v else { return Err(WriteError::Empty) };
    let mut b = Binder::new(raw);
    let mut out = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        let path = format!("[{i}]");
        match item {
            Value::Object(mut o) => {
                b.object(&path, &mut o);
                out.push(o);
            }
            other => b.fail(&path, &not_object(&other)),
        }
    }
    if b.errors.is_empty() { Ok(out) } else { Err(WriteError::Binding(b.errors)) }
}

fn id_of(o: &Map<String, Value>) -> i64 {
    o.get("id").and_then(Value::as_i64).unwrap_or(0)
}

fn merge(into: &mut Value, from: &Map<String, Value>, skip: &[&str]) {
    for (k, v) in from {
        if !skip.contains(&k.as_str()) {
            into[k] = v.clone();
        }
    }
}

fn next_id(rows: &[Value]) -> i64 {
    rows.iter().filter_map(|r| r["id"].as_i64()).max().unwrap_or(0).max(0) + 1
}

fn not_owned(line: i64, ihid: i64) -> WriteError {
    WriteError::Exception(format!(
        "Invoice line {line} does not belong to recurring invoice {ihid}"
    ))
}

/// A new line on `header` from a posted object: defaults from its item, then the fields.
fn new_line(
    d: &mut HaloData,
    header: &Value,
    posted: &Map<String, Value>,
) -> Result<Value, WriteError> {
    let item_id = posted.get("_itemid").and_then(Value::as_i64).unwrap_or(0);
    let item = match item_id {
        0 => Value::Null,
        i => d
            .row(Resource::Item, i)
            .cloned()
            .ok_or_else(|| WriteError::Exception(format!("Item {i} does not exist")))?,
    };
    let id = d.next_line;
    d.next_line += 1;
    let mut line = json!({
        "id": id, "ihid": header["id"], "_itemid": item_id,
        "item_code": item["internalreference"].as_str().unwrap_or(""),
        "item_shortdescription": item["name"].as_str().unwrap_or(""),
        "item_longdescription": "", "qty_order": 0.0,
        "unit_price": item["recurringprice"].as_f64().unwrap_or(0.0),
        "unit_cost": item["costprice"].as_f64().unwrap_or(0.0), "net_amount": 0.0,
        "nominal_code": item["nominalcode"].as_str().unwrap_or(""), "tax_code": 1,
        "isinactive": false, "startdate": null, "enddate": null,
        "contract_id": header["contract_id"], "recurring_invoice_quantity_type": 0,
        "calculate_price_from_users": false, "calculate_price_from_assets": false,
        "quantity_users": [], "quantity_licences": [], "quantity_subscriptions": [],
        "_warning": null, "customfields": [],
    });
    merge(&mut line, posted, &["id", "ihid"]);
    Ok(line)
}

fn check_rules(header: &Value) -> Result<(), WriteError> {
    for l in header["lines"].as_array().into_iter().flatten() {
        if l["qty_order"].as_f64().is_some_and(|q| q < 0.0) {
            return Err(WriteError::Exception("Quantity cannot be negative".into()));
        }
    }
    Ok(())
}

fn qty_by_line(header: &Value) -> Vec<(i64, f64)> {
    header["lines"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|l| (l["id"].as_i64().unwrap_or(0), l["qty_order"].as_f64().unwrap_or(0.0)))
        .collect()
}

fn diff(ihid: i64, before: &[(i64, f64)], after: &[(i64, f64)], out: &mut Vec<LineChange>) {
    for &(line, q) in before {
        let a = after.iter().find(|x| x.0 == line).map(|x| x.1);
        if a != Some(q) {
            out.push(LineChange { line, ihid, before: Some(q), after: a });
        }
    }
    for &(line, q) in after {
        if !before.iter().any(|x| x.0 == line) {
            out.push(LineChange { line, ihid, before: None, after: Some(q) });
        }
    }
}

/// What one write did: the saved objects and the journal entry (without the route).
pub(crate) struct Written {
    pub(crate) saved: Vec<Value>,
    pub(crate) write: HaloWrite,
}

fn headers(d: &mut HaloData) -> &mut Vec<Value> {
    d.rows.entry(Resource::RecurringInvoice).or_default()
}

/// The line `line` is on some invoice other than `ihid`.
fn elsewhere(d: &HaloData, line: i64) -> bool {
    d.line(line).is_some()
}

/// `POST /RecurringInvoice`: create or merge headers, replacing the line set of each element
/// that carries `lines`.
fn post_recurring(d: &mut HaloData, elems: &[Map<String, Value>]) -> Result<Written, WriteError> {
    let mut saved = Vec::new();
    let mut w =
        HaloWrite { route: String::new(), ids: Vec::new(), changes: Vec::new(), side_effect: None };
    for e in elems {
        let id = id_of(e);
        let (idx, before) = if id == 0 {
            let client = e.get("client_id").and_then(Value::as_i64).unwrap_or(0);
            let Some(c) = d.row(Resource::Client, client).cloned() else {
                return Err(WriteError::Exception("Please select a valid Client".into()));
            };
            let new_id = next_id(headers(d));
            headers(d).push(json!({
                "id": new_id, "client_id": client, "client_name": c["name"], "contract_id": 0,
                "contract_ref": "", "disabled": false, "period": 1, "lastcreated": null,
                "nextcreationdate": null, "startdate": null, "enddate": null,
                "invoice_date": null, "total": 0.0, "currency": "$",
                "is_recurring_invoice": true, "lines": [], "_warning": null, "customfields": [],
            }));
            (headers(d).len() - 1, Vec::new())
        } else {
            let idx = headers(d).iter().position(|h| h["id"] == id).ok_or(WriteError::NotFound)?;
            let before = qty_by_line(&headers(d)[idx]);
            (idx, before)
        };
        let hid = headers(d)[idx]["id"].as_i64().unwrap_or(0);
        merge(&mut headers(d)[idx], e, &["id", "lines", "total"]);
        if let Some(Value::Array(posted)) = e.get("lines") {
            let old: Vec<Value> = headers(d)[idx]["lines"].as_array().cloned().unwrap_or_default();
            let mut seen = BTreeSet::new();
            let mut lines = Vec::new();
            for pl in posted.iter().filter_map(Value::as_object) {
                let lid = id_of(pl);
                let ihid = pl.get("ihid").and_then(Value::as_i64).unwrap_or(0);
                if ihid != 0 && ihid != hid {
                    return Err(not_owned(lid, hid));
                }
                if lid == 0 {
                    let header = headers(d)[idx].clone();
                    lines.push(new_line(d, &header, pl)?);
                    continue;
                }
                if !seen.insert(lid) {
                    return Err(WriteError::Exception(format!(
                        "Invoice line {lid} is listed twice"
                    )));
                }
                match old.iter().find(|l| l["id"] == lid) {
                    Some(ol) => {
                        let mut l = ol.clone();
                        merge(&mut l, pl, &["id", "ihid", "net_amount"]);
                        lines.push(l);
                    }
                    None if elsewhere(d, lid) => return Err(not_owned(lid, hid)),
                    None => return Err(WriteError::NotFound),
                }
            }
            headers(d)[idx]["lines"] = Value::Array(lines);
        }
        let h = &mut headers(d)[idx];
        recompute(h);
        check_rules(h)?;
        diff(hid, &before, &qty_by_line(h), &mut w.changes);
        w.ids.push(hid);
        saved.push(h.clone());
    }
    Ok(Written { saved, write: w })
}

/// `POST /RecurringInvoice/updatelines`.
fn update_lines(d: &mut HaloData, elems: &[Map<String, Value>]) -> Result<Written, WriteError> {
    let mut w =
        HaloWrite { route: String::new(), ids: Vec::new(), changes: Vec::new(), side_effect: None };
    let mut saved = Vec::new();
    for e in elems {
        let lid = id_of(e);
        let Some((owner, _)) = d.line(lid) else { return Err(WriteError::NotFound) };
        let ihid = match e.get("ihid").and_then(Value::as_i64) {
            None | Some(0) => {
                return Err(WriteError::Exception(format!(
                    "ihid is mandatory for invoice line {lid}"
                )));
            }
            Some(i) => i,
        };
        if ihid != owner {
            return Err(not_owned(lid, ihid));
        }
        let h = headers(d).iter_mut().find(|h| h["id"] == owner).ok_or(WriteError::NotFound)?;
        let before = qty_by_line(h);
        for l in h["lines"].as_array_mut().into_iter().flatten() {
            if l["id"] == lid {
                merge(l, e, &["id", "ihid", "net_amount"]);
            }
        }
        recompute(h);
        check_rules(h)?;
        diff(owner, &before, &qty_by_line(h), &mut w.changes);
        if !w.ids.contains(&owner) {
            w.ids.push(owner);
        }
        if let Some(l) = h["lines"].as_array().and_then(|ls| ls.iter().find(|l| l["id"] == lid)) {
            saved.push(l.clone());
        }
    }
    Ok(Written { saved, write: w })
}

/// `POST /RecurringInvoice/Lines`.
fn add_lines(d: &mut HaloData, elems: &[Map<String, Value>]) -> Result<Written, WriteError> {
    let mut w =
        HaloWrite { route: String::new(), ids: Vec::new(), changes: Vec::new(), side_effect: None };
    let mut saved = Vec::new();
    for e in elems {
        let ihid = e.get("ihid").and_then(Value::as_i64).unwrap_or(0);
        if ihid == 0 {
            return Err(WriteError::Exception("ihid is mandatory".into()));
        }
        let idx = headers(d).iter().position(|h| h["id"] == ihid).ok_or(WriteError::NotFound)?;
        let before = qty_by_line(&headers(d)[idx]);
        let lid = id_of(e);
        let line = if lid == 0 {
            let header = headers(d)[idx].clone();
            let l = new_line(d, &header, e)?;
            if let Some(ls) = headers(d)[idx]["lines"].as_array_mut() {
                ls.push(l);
            }
            d.next_line - 1
        } else {
            match d.line(lid) {
                Some((owner, _)) if owner == ihid => {}
                Some(_) => return Err(not_owned(lid, ihid)),
                None => return Err(WriteError::NotFound),
            }
            for l in headers(d)[idx]["lines"].as_array_mut().into_iter().flatten() {
                if l["id"] == lid {
                    merge(l, e, &["id", "ihid", "net_amount"]);
                }
            }
            lid
        };
        let h = &mut headers(d)[idx];
        recompute(h);
        check_rules(h)?;
        diff(ihid, &before, &qty_by_line(h), &mut w.changes);
        if !w.ids.contains(&ihid) {
            w.ids.push(ihid);
        }
        if let Some(l) = h["lines"].as_array().and_then(|ls| ls.iter().find(|l| l["id"] == line)) {
            saved.push(l.clone());
        }
    }
    Ok(Written { saved, write: w })
}

/// `POST /<Resource>` for the other resources: create or shallow-merge.
fn post_rows(
    d: &mut HaloData,
    r: Resource,
    elems: &[Map<String, Value>],
) -> Result<Written, WriteError> {
    let mut w =
        HaloWrite { route: String::new(), ids: Vec::new(), changes: Vec::new(), side_effect: None };
    let mut saved = Vec::new();
    for e in elems {
        let rows = d.rows.entry(r).or_default();
        let id = id_of(e);
        let idx = if id == 0 {
            let mut row = json!({ "id": next_id(rows), "_warning": null, "customfields": [] });
            merge(&mut row, e, &["id"]);
            rows.push(row);
            rows.len() - 1
        } else {
            let idx = rows.iter().position(|x| x["id"] == id).ok_or(WriteError::NotFound)?;
            merge(&mut rows[idx], e, &["id"]);
            idx
        };
        w.ids.push(rows[idx]["id"].as_i64().unwrap_or(0));
        saved.push(rows[idx].clone());
    }
    Ok(Written { saved, write: w })
}

/// `POST /RecurringInvoice/process`: the body is an array of invoice ids.
fn process(d: &mut HaloData, raw: &[u8]) -> Result<Written, WriteError> {
    let v: Value = serde_json::from_slice(raw).map_err(|_| WriteError::Empty)?;
    let Value::Array(items) = v else { return Err(WriteError::Empty) };
    let mut b = Binder::new(raw);
    let mut ids = Vec::new();
    for (i, item) in items.iter().enumerate() {
        match item.as_i64().or_else(|| item.as_str().and_then(|s| s.trim().parse().ok())) {
            Some(id) => ids.push(id),
            None => b.fail(
                &format!("[{i}]"),
                &format!(
                    "Could not convert string to integer: {}.",
                    item.as_str().map_or_else(|| item.to_string(), str::to_owned)
                ),
            ),
        }
    }
    if !b.errors.is_empty() {
        return Err(WriteError::Binding(b.errors));
    }
    if ids.iter().any(|id| d.row(Resource::RecurringInvoice, *id).is_none()) {
        return Err(WriteError::NotFound);
    }
    let before: Vec<(i64, Vec<(i64, f64)>)> = ids
        .iter()
        .filter_map(|id| d.row(Resource::RecurringInvoice, *id).map(|h| (*id, qty_by_line(h))))
        .collect();
    recalculate(d, Some(&ids));
    let mut w = HaloWrite {
        route: String::new(),
        ids: ids.clone(),
        changes: Vec::new(),
        side_effect: None,
    };
    let mut saved = Vec::new();
    for (id, b) in before {
        if let Some(h) = d.row(Resource::RecurringInvoice, id) {
            diff(id, &b, &qty_by_line(h), &mut w.changes);
            saved.push(h.clone());
        }
    }
    Ok(Written { saved, write: w })
}

/// Gives every non-manual line with a computed quantity that quantity back, on the invoices
/// `only` (all when `None`). Returns the lines changed.
pub(crate) fn recalculate(d: &mut HaloData, only: Option<&[i64]>) -> Vec<i64> {
    let computed = d.computed.clone();
    let mut changed = Vec::new();
    for h in d.rows.entry(Resource::RecurringInvoice).or_default() {
        let id = h["id"].as_i64().unwrap_or(0);
        if only.is_some_and(|o| !o.contains(&id)) {
            continue;
        }
        for l in h["lines"].as_array_mut().into_iter().flatten() {
            let lid = l["id"].as_i64().unwrap_or(0);
            let manual = l["recurring_invoice_quantity_type"].as_i64().unwrap_or(0) == 0;
            if let (false, Some(q)) = (manual, computed.get(&lid)) {
                if l["qty_order"].as_f64() != Some(*q) {
                    changed.push(lid);
                }
                l["qty_order"] = json!(q);
            }
        }
        recompute(h);
    }
    changed
}

/// The write routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WriteRoute {
    Post(Resource),
    UpdateLines,
    AddLines,
    Process,
}

/// Applies one write body and, when it is refused, puts the rows it touched back (only the
/// written resource's rows are saved, not the whole data); then carries out the side-effect
/// faults. Returns the answer body and the journal entry.
pub(crate) fn apply(
    data: &mut HaloData,
    route: WriteRoute,
    raw: &[u8],
    effects: &[SideEffect],
) -> Result<(Value, HaloWrite), WriteError> {
    let resource = match route {
        WriteRoute::Post(r) => r,
        _ => Resource::RecurringInvoice,
    };
    let saved_rows = data.rows.get(&resource).cloned();
    let saved_next = data.next_line;
    match written(data, route, raw) {
        Ok(w) => Ok(finish_write(data, route, w, effects)),
        Err(e) => {
            match saved_rows {
                Some(rows) => data.rows.insert(resource, rows),
                None => data.rows.remove(&resource),
            };
            data.next_line = saved_next;
            Err(e)
        }
    }
}

fn written(d: &mut HaloData, route: WriteRoute, raw: &[u8]) -> Result<Written, WriteError> {
    if route == WriteRoute::Process {
        return process(d, raw);
    }
    let elems = elements(raw)?;
    match route {
        WriteRoute::Post(Resource::RecurringInvoice) => post_recurring(d, &elems),
        WriteRoute::Post(r) => post_rows(d, r, &elems),
        WriteRoute::UpdateLines => update_lines(d, &elems),
        WriteRoute::AddLines | WriteRoute::Process => add_lines(d, &elems),
    }
}

fn finish_write(
    d: &mut HaloData,
    route: WriteRoute,
    w: Written,
    effects: &[SideEffect],
) -> (Value, HaloWrite) {
    let Written { mut saved, mut write } = w;
    let lines_route = matches!(
        route,
        WriteRoute::Post(Resource::RecurringInvoice)
            | WriteRoute::UpdateLines
            | WriteRoute::AddLines
    );
    if let (true, Some(effect), Some(&ihid)) = (lines_route, effects.first(), write.ids.first()) {
        write.side_effect = side_effect(d, ihid, &write.changes, *effect);
        if write.side_effect.is_some() {
            // The answer shows what was saved, the side effect included.
            refresh(d, route, &mut saved);
        }
    }
    let object = matches!(route, WriteRoute::Post(_)) && saved.len() == 1;
    let body = if object { saved.remove(0) } else { Value::Array(saved) };
    (body, write)
}

fn refresh(d: &HaloData, route: WriteRoute, saved: &mut [Value]) {
    for s in saved.iter_mut() {
        let id = s["id"].as_i64().unwrap_or(0);
        let fresh = match route {
            WriteRoute::Post(_) => d.row(Resource::RecurringInvoice, id).cloned(),
            _ => d.line(id).map(|(_, l)| l.clone()),
        };
        if let Some(f) = fresh {
            *s = f;
        }
    }
}

/// Changes (+1) or removes the first line of invoice `ihid` that the write did not change.
fn side_effect(
    d: &mut HaloData,
    ihid: i64,
    changes: &[LineChange],
    effect: SideEffect,
) -> Option<LineChange> {
    let h = headers(d).iter_mut().find(|h| h["id"] == ihid)?;
    let lines = h["lines"].as_array_mut()?;
    let i = lines.iter().position(|l| {
        let id = l["id"].as_i64().unwrap_or(0);
        !changes.iter().any(|c| c.line == id)
    })?;
    let line = lines[i]["id"].as_i64().unwrap_or(0);
    let before = lines[i]["qty_order"].as_f64().unwrap_or(0.0);
    let after = match effect {
        SideEffect::ChangeOtherLine => {
            lines[i]["qty_order"] = json!(before + 1.0);
            Some(before + 1.0)
        }
        SideEffect::DropOtherLine => {
            lines.remove(i);
            None
        }
    };
    recompute(h);
    Some(LineChange { line, ihid, before: Some(before), after })
}
