//! `GET /api/<Resource>` lists (reference F13–F24, §3 "Lists"): the filters mpsync and
//! the public clients send, `order`/`orderdesc`, `idonly`, `includelines`, and the paging
//! rules — `pageinate=true` with `page_no` (default 1) and `page_size` (default 50, clamped to
//! 1..=1000; a page past the end is empty with the real `record_count`), else the first
//! `count` rows or the first 50. Answers the envelope `{"record_count": N, "<key>": [...]}`
//! unless a [`ListShape`] says otherwise. Query parameter names match ignoring case; unknown
//! ones are ignored (F18); a malformed number or boolean answers the model-binding shape.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::data::{HaloData, Resource};

/// Default rows per page, and rows of an unpaged list without `count`.
pub const DEFAULT_PAGE_SIZE: usize = 50;
/// Largest `page_size`; larger values are clamped.
pub const MAX_PAGE_SIZE: usize = 1000;

/// How lists are shaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ListShape {
    /// Always `{"record_count": N, "<key>": [...]}` (default).
    #[default]
    Envelope,
    /// A bare array when `count` is given without `pageinate=true` (F14, PDS), else the
    /// envelope.
    BareWhenCounted,
    /// Always a bare array.
    Bare,
    /// The envelope without `record_count` (§3.2 #1: use the row count).
    NoRecordCount,
}

/// The query parameters, names lowercased.
#[derive(Debug, Default)]
pub(crate) struct Params(Vec<(String, String)>);

/// A parameter whose value does not convert: 400 in the model-binding shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BadParam {
    name: String,
    value: String,
}

fn bad_param(name: &str, value: &str) -> BadParam {
    BadParam { name: name.to_owned(), value: value.to_owned() }
}

impl IntoResponse for BadParam {
    fn into_response(self) -> Response {
        let body = json!({ self.name: [format!("The value '{}' is not valid.", self.value)] });
        (StatusCode::BAD_REQUEST, axum::Json(body)).into_response()
    }
}

impl Params {
    pub(crate) fn parse(query: Option<&str>) -> Params {
        Params(
            query
                .map(|q| {
                    url::form_urlencoded::parse(q.as_bytes())
                        .map(|(k, v)| (k.to_ascii_lowercase(), v.into_owned()))
                        .collect()
                })
                .unwrap_or_default(),
        )
    }

    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).filter(|v| !v.is_empty())
    }

    pub(crate) fn flag(&self, name: &str) -> Result<bool, BadParam> {
        match self.get(name) {
            None => Ok(false),
            Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
            Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
            Some(v) => Err(bad_param(name, v)),
        }
    }

    pub(crate) fn int(&self, name: &str) -> Result<Option<i64>, BadParam> {
        match self.get(name) {
            None => Ok(None),
            Some(v) => v.trim().parse().map(Some).map_err(|_| bad_param(name, v)),
        }
    }

    fn ints(&self, name: &str) -> Result<Option<Vec<i64>>, BadParam> {
        match self.get(name) {
            None => Ok(None),
            Some(v) => v
                .split(',')
                .map(|s| s.trim().parse::<i64>())
                .collect::<Result<Vec<_>, _>>()
                .map(Some)
                .map_err(|_| bad_param(name, v)),
        }
    }
}

/// Whether a row is inactive for `includeinactive` (§3 ★): inactive clients, contracts not
/// active, items with a non-zero status.
fn inactive(r: Resource, row: &Value) -> bool {
    match r {
        Resource::Client => row["inactive"] == true,
        Resource::ClientContract => row["active"] == false,
        Resource::Item => row["status"].as_i64().is_some_and(|s| s != 0),
        Resource::RecurringInvoice | Resource::Invoice => false,
    }
}

fn contains_ci(hay: &Value, needle: &str) -> bool {
    hay.as_str().is_some_and(|h| h.to_lowercase().contains(&needle.to_lowercase()))
}

fn cmp_values(a: &Value, b: &Value) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            x.as_f64().partial_cmp(&y.as_f64()).unwrap_or(Ordering::Equal)
        }
        (Value::String(x), Value::String(y)) => x.to_lowercase().cmp(&y.to_lowercase()),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Null, Value::Null) => Ordering::Equal,
        (Value::Null, _) => Ordering::Less,
        (_, Value::Null) => Ordering::Greater,
        _ => Ordering::Equal,
    }
}

/// The answer to one list request.
pub(crate) fn list(
    data: &HaloData,
    r: Resource,
    p: &Params,
    shape: ListShape,
    ignore_includelines: bool,
) -> Result<Value, BadParam> {
    let include_inactive = p.flag("includeinactive")?;
    let client = p.int("client_id")?;
    let clients = p.ints("client_ids")?;
    let contract = p.int("contract_id")?;
    let search = p.get("search");
    let recurring_only = p.flag("recurringonly")?;
    let exclude_recurring = p.flag("excluderecurring")?;
    let idonly = p.flag("idonly")?;
    let includelines = p.flag("includelines")? && !ignore_includelines;
    let paginate = p.flag("pageinate")?;
    let page_no = p.int("page_no")?;
    let page_size = p.int("page_size")?;
    let count = p.int("count")?;
    let order = p.get("order").map(str::to_ascii_lowercase);
    let desc = p.flag("orderdesc")?;

    let has_client =
        matches!(r, Resource::ClientContract | Resource::RecurringInvoice | Resource::Invoice);
    let mut rows: Vec<&Value> = data
        .rows
        .get(&r)
        .into_iter()
        .flatten()
        .filter(|row| include_inactive || !inactive(r, row))
        .filter(|row| !has_client || client.is_none_or(|c| row["client_id"] == c))
        .filter(|row| {
            r != Resource::RecurringInvoice
                || clients.as_ref().is_none_or(|cs| cs.iter().any(|c| row["client_id"] == *c))
        })
        .filter(|row| {
            r != Resource::RecurringInvoice || contract.is_none_or(|c| row["contract_id"] == c)
        })
        .filter(|row| match (search, r) {
            (None, _) => true,
            (Some(s), Resource::Client | Resource::Item) => contains_ci(&row["name"], s),
            (Some(s), Resource::ClientContract) => contains_ci(&row["ref"], s),
            (Some(s), _) => contains_ci(&row["client_name"], s),
        })
        .filter(|row| r != Resource::Item || !recurring_only || row["isrecurringitem"] == true)
        .filter(|row| r != Resource::Item || !exclude_recurring || row["isrecurringitem"] != true)
        .collect();
    if let Some(field) = &order {
        rows.sort_by(|a, b| {
            let key = |v: &Value| {
                v.as_object()
                    .and_then(|o| o.iter().find(|(k, _)| k.eq_ignore_ascii_case(field)))
                    .map_or(Value::Null, |(_, v)| v.clone())
            };
            cmp_values(&key(a), &key(b))
        });
    }
    if desc {
        rows.reverse();
    }
    let total = rows.len();
    let page: Vec<&Value> = if idonly {
        let n = count.map_or(total, |c| c.max(0) as usize);
        rows.into_iter().take(n).collect()
    } else if paginate {
        let size = page_size.unwrap_or(DEFAULT_PAGE_SIZE as i64).clamp(1, MAX_PAGE_SIZE as i64);
        let no = page_no.unwrap_or(1).max(1);
        let skip = ((no - 1) as usize).saturating_mul(size as usize);
        rows.into_iter().skip(skip).take(size as usize).collect()
    } else {
        let n = count.map_or(DEFAULT_PAGE_SIZE, |c| c.max(0) as usize);
        rows.into_iter().take(n).collect()
    };
    let out: Vec<Value> = page
        .into_iter()
        .map(|row| {
            if idonly {
                return json!({ "id": row["id"] });
            }
            let mut row = row.clone();
            if r == Resource::RecurringInvoice
                && !includelines
                && let Some(o) = row.as_object_mut()
            {
                o.remove("lines");
            }
            row
        })
        .collect();
    let bare = match shape {
        ListShape::Bare => true,
        ListShape::BareWhenCounted => count.is_some() && !paginate,
        ListShape::Envelope | ListShape::NoRecordCount => false,
    };
    if bare {
        return Ok(Value::Array(out));
    }
    let mut env = Map::new();
    if shape != ListShape::NoRecordCount {
        env.insert("record_count".into(), json!(total));
    }
    env.insert(r.key().into(), Value::Array(out));
    Ok(Value::Object(env))
}
