//! List mechanics per §6 and §12 #2–#5, #15: `page` (1-based) and `per_page` (default 25,
//! clamped to 100), 400 on values below 1 or not numeric, `X-Pagination` as compact JSON on
//! every list response, equality filters on top-level scalar fields, `field[op]=` date filters,
//! unknown parameters ignored.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::ApiError;

/// The default page size.
pub const DEFAULT_PER_PAGE: u64 = 25;
/// The largest page size; larger requests are clamped silently.
pub const MAX_PER_PAGE: u64 = 100;

/// A comparison in a `field[op]=value` filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Gt,
    Geq,
    Lt,
    Leq,
}

#[derive(Debug, Clone, PartialEq)]
struct Filter {
    field: String,
    op: Option<Op>,
    value: String,
}

/// A parsed list query.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ListQuery {
    pub(crate) page: u64,
    pub(crate) per_page: u64,
    filters: Vec<Filter>,
}

fn positive(name: &str, v: &str) -> Result<u64, ApiError> {
    match v.trim().parse::<u64>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("{name} must be a whole number of at least 1, got {v:?}"),
        )),
    }
}

impl ListQuery {
    /// Parses the raw query string of a list request.
    pub(crate) fn parse(raw: Option<&str>) -> Result<ListQuery, ApiError> {
        let mut q = ListQuery { page: 1, per_page: DEFAULT_PER_PAGE, filters: Vec::new() };
        for (k, v) in url::form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
            match k.as_ref() {
                "page" => q.page = positive("page", &v)?,
                "per_page" => q.per_page = positive("per_page", &v)?.min(MAX_PER_PAGE),
                key => {
                    let (field, op) = match key.split_once('[') {
                        Some((f, rest)) => {
                            let op = match rest.trim_end_matches(']').to_ascii_lowercase().as_str()
                            {
                                "eq" => Op::Eq,
                                "gt" => Op::Gt,
                                "geq" => Op::Geq,
                                "lt" => Op::Lt,
                                "leq" => Op::Leq,
                                _ => continue, // unknown operator: ignored like unknown params
                            };
                            (f.to_owned(), Some(op))
                        }
                        None => (key.to_owned(), None),
                    };
                    q.filters.push(Filter { field, op, value: v.into_owned() });
                }
            }
        }
        Ok(q)
    }

    /// Whether any parameter could filter (so the list must be rendered in full first).
    pub(crate) fn has_filters(&self) -> bool {
        !self.filters.is_empty()
    }

    /// The zero-based index of the page's first item.
    pub(crate) fn offset(&self) -> u64 {
        (self.page - 1).saturating_mul(self.per_page)
    }

    /// Whether a rendered item passes every filter that names one of its scalar fields.
    pub(crate) fn matches(&self, item: &Value) -> bool {
        self.filters.iter().all(|f| {
            let Some(v) = item.get(&f.field) else { return true };
            let text = match v {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                Value::Null => "null".to_owned(),
                // Objects and arrays are not top-level scalars: the filter is ignored.
                _ => return true,
            };
            match f.op {
                None => text == f.value,
                Some(op) => {
                    // Compare at the precision given: `2026-06-01` compares by day.
                    let cut = &text[..text.len().min(f.value.len())];
                    let ord = cut.cmp(f.value.as_str());
                    match op {
                        Op::Eq => ord.is_eq(),
                        Op::Gt => ord.is_gt(),
                        Op::Geq => ord.is_ge(),
                        Op::Lt => ord.is_lt(),
                        Op::Leq => ord.is_le(),
                    }
                }
            }
        })
    }

    /// Pages and renders a full list of ids; filters force rendering every item first.
    pub(crate) fn respond<T: Copy>(&self, all: &[T], render: impl Fn(T) -> Value) -> Response {
        if self.has_filters() {
            let kept: Vec<Value> =
                all.iter().map(|t| render(*t)).filter(|v| self.matches(v)).collect();
            let total = kept.len() as u64;
            let page = kept.into_iter().skip(self.offset() as usize).take(self.per_page as usize);
            return self.page_response(total, page.collect());
        }
        let total = all.len() as u64;
        let start = (self.offset() as usize).min(all.len());
        let end = start.saturating_add(self.per_page as usize).min(all.len());
        self.page_response(total, all[start..end].iter().map(|t| render(*t)).collect())
    }

    /// A 200 list response: bare array plus `X-Pagination`.
    pub(crate) fn page_response(&self, total: u64, items: Vec<Value>) -> Response {
        let mut resp = axum::Json(Value::Array(items)).into_response();
        resp.headers_mut()
            .insert("x-pagination", pagination_header(self.page, self.per_page, total));
        resp
    }
}

/// `{"page":1,"per_page":25,"total":123,"total_pages":5}`, compact, integers.
pub(crate) fn pagination_header(page: u64, per_page: u64, total: u64) -> HeaderValue {
    let total_pages = total.div_ceil(per_page.max(1));
    let text = format!(
        r#"{{"page":{page},"per_page":{per_page},"total":{total},"total_pages":{total_pages}}}"#
    );
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static("{}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn defaults_clamp_and_rejections() {
        let q = ListQuery::parse(None).unwrap();
        assert_eq!((q.page, q.per_page), (1, 25));
        let q = ListQuery::parse(Some("page=3&per_page=500&unknown=1")).unwrap();
        assert_eq!((q.page, q.per_page, q.offset()), (3, 100, 200));
        for bad in ["page=0", "per_page=0", "page=x", "per_page=-1", "page=1.5"] {
            assert_eq!(ListQuery::parse(Some(bad)).unwrap_err().status, StatusCode::BAD_REQUEST);
        }
    }

    #[test]
    fn header_is_compact_with_ceil_pages() {
        assert_eq!(
            pagination_header(1, 25, 123),
            r#"{"page":1,"per_page":25,"total":123,"total_pages":5}"#
        );
        assert_eq!(
            pagination_header(1, 25, 0),
            r#"{"page":1,"per_page":25,"total":0,"total_pages":0}"#
        );
    }

    #[test]
    fn filters_compare_scalars_and_dates() {
        let item = json!({"id": 7, "name": "Bob", "created_at": "2026-06-01T10:00:00.000Z", "domain": {"id": 1}});
        let m = |q: &str| ListQuery::parse(Some(q)).unwrap().matches(&item);
        assert!(m("name=Bob") && !m("name=Alice") && m("id=7") && m("nope=1") && m("domain=1"));
        assert!(m("created_at[geq]=2026-06-01") && !m("created_at[gt]=2026-06-01"));
        assert!(m("created_at[Lt]=2026-06-02") && m("created_at[eq]=2026-06"));
    }
}
