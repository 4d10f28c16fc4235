//! The query grammar the simulated Autotask accepts (F3.2–F3.7, C5–C7): a body (POST) or a
//! `search` parameter (GET) with `filter`, `MaxRecords` and `IncludeFields`, keys and field
//! names matched case-insensitively; the thirteen operators and nested `and`/`or` groups;
//! values compared as datetimes, numbers, booleans (`true` or `"true"`) or case-insensitive
//! text; `udf: true` items matched against `userDefinedFields`. Results by ascending id,
//! pages of `MaxRecords` (default 500) continued after the last id of the page before.

use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::{Map, Value};

/// The largest page (F3.9).
pub const MAX_RECORDS: usize = 500;
/// The most `or` leaves one query may hold (F3.18).
pub const MAX_OR_LEAVES: usize = 500;

/// Why a query is refused: the message of a 500 `{"errors": [...]}` answer, or malformed
/// JSON (400).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueryError {
    /// 400 `{"errors":["Invalid query syntax."]}`.
    Syntax,
    /// 500 with this message.
    Refused(String),
}

/// A parsed query.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    /// The top-level items, ANDed.
    pub filter: Vec<Value>,
    /// Page size.
    pub max_records: usize,
}

/// `obj[key]` with the key matched case-insensitively.
pub fn get_ci<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    obj.get(key).or_else(|| obj.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v))
}

impl Query {
    /// Reads a body or `search` value. `fields` are the entity's field names.
    pub fn parse(text: &str, fields: &[String]) -> Result<Query, QueryError> {
        let v: Value = serde_json::from_str(text).map_err(|_| QueryError::Syntax)?;
        let obj = v.as_object().ok_or(QueryError::Syntax)?;
        let filter = match get_ci(obj, "filter") {
            Some(Value::Array(a)) => a.clone(),
            None | Some(Value::Null) => Vec::new(),
            Some(_) => return Err(QueryError::Syntax),
        };
        let max_records = match get_ci(obj, "MaxRecords") {
            None | Some(Value::Null) => MAX_RECORDS,
            Some(n) => match n.as_u64().map(|n| n as usize) {
                Some(n) if (1..=MAX_RECORDS).contains(&n) => n,
                _ => {
                    return Err(QueryError::Refused(format!(
                        "MaxRecords must be between 1 and {MAX_RECORDS}, got {n}."
                    )));
                }
            },
        };
        let mut ors = 0;
        for item in &filter {
            check(item, fields, false, &mut ors)?;
        }
        if ors > MAX_OR_LEAVES {
            return Err(QueryError::Refused(format!(
                "The query holds {ors} OR conditions; at most {MAX_OR_LEAVES} are allowed."
            )));
        }
        Ok(Query { filter, max_records })
    }

    /// Whether `row` matches every top-level item.
    pub fn matches(&self, row: &Value) -> bool {
        self.filter.iter().all(|f| eval(f, row))
    }
}

const OPS: [&str; 13] = [
    "eq",
    "noteq",
    "gt",
    "gte",
    "lt",
    "lte",
    "beginswith",
    "endswith",
    "contains",
    "exist",
    "notexist",
    "in",
    "notin",
];

fn check(item: &Value, fields: &[String], in_or: bool, ors: &mut usize) -> Result<(), QueryError> {
    let obj = item.as_object().ok_or(QueryError::Syntax)?;
    let op = get_ci(obj, "op").and_then(Value::as_str).ok_or(QueryError::Syntax)?;
    let op = op.to_ascii_lowercase();
    if op == "and" || op == "or" {
        let items = get_ci(obj, "items").and_then(Value::as_array).ok_or(QueryError::Syntax)?;
        for i in items {
            check(i, fields, in_or || op == "or", ors)?;
        }
        return Ok(());
    }
    if !OPS.contains(&op.as_str()) {
        return Err(QueryError::Refused(format!("Unknown operator: {op}")));
    }
    if in_or {
        *ors += 1;
    }
    let field = get_ci(obj, "field").and_then(Value::as_str).ok_or(QueryError::Syntax)?;
    if !udf(obj) && !fields.iter().any(|f| f.eq_ignore_ascii_case(field)) {
        return Err(QueryError::Refused(format!("Unknown field: {field}")));
    }
    if op == "in" || op == "notin" {
        let n = get_ci(obj, "value").and_then(Value::as_array).map(Vec::len);
        match n {
            Some(n) => *ors += n,
            None => return Err(QueryError::Refused(format!("The {op} operator takes an array."))),
        }
    }
    Ok(())
}

fn udf(obj: &Map<String, Value>) -> bool {
    matches!(get_ci(obj, "udf"), Some(Value::Bool(true)))
        || get_ci(obj, "udf")
            .and_then(Value::as_str)
            .is_some_and(|s| s.eq_ignore_ascii_case("true"))
}

fn eval(item: &Value, row: &Value) -> bool {
    let Some(obj) = item.as_object() else { return false };
    let op = get_ci(obj, "op").and_then(Value::as_str).unwrap_or("").to_ascii_lowercase();
    if op == "and" || op == "or" {
        let items = get_ci(obj, "items").and_then(Value::as_array).cloned().unwrap_or_default();
        return if op == "and" {
            items.iter().all(|i| eval(i, row))
        } else {
            items.iter().any(|i| eval(i, row))
        };
    }
    let field = get_ci(obj, "field").and_then(Value::as_str).unwrap_or("");
    let actual = if udf(obj) {
        row.get("userDefinedFields").and_then(Value::as_array).and_then(|udfs| {
            udfs.iter()
                .find(|u| u["name"].as_str().is_some_and(|n| n.eq_ignore_ascii_case(field)))
                .map(|u| u["value"].clone())
        })
    } else {
        row.as_object().and_then(|o| get_ci(o, field)).cloned()
    };
    let actual = actual.unwrap_or(Value::Null);
    let value = get_ci(obj, "value").cloned().unwrap_or(Value::Null);
    match op.as_str() {
        "exist" => !actual.is_null(),
        "notexist" => actual.is_null(),
        "in" => value.as_array().is_some_and(|vs| vs.iter().any(|v| cmp(&actual, v) == Some(0))),
        "notin" => value.as_array().is_some_and(|vs| vs.iter().all(|v| cmp(&actual, v) != Some(0))),
        "beginswith" | "endswith" | "contains" => {
            let (a, v) = (text(&actual).to_lowercase(), text(&value).to_lowercase());
            match op.as_str() {
                "beginswith" => a.starts_with(&v),
                "endswith" => a.ends_with(&v),
                _ => a.contains(&v),
            }
        }
        _ => match cmp(&actual, &value) {
            None => op == "noteq",
            Some(o) => match op.as_str() {
                "eq" => o == 0,
                "noteq" => o != 0,
                "gt" => o > 0,
                "gte" => o >= 0,
                "lt" => o < 0,
                "lte" => o <= 0,
                _ => false,
            },
        },
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn datetime(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    for f in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, f) {
            return Some(t.and_utc());
        }
    }
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
}

/// -1, 0, 1 comparing a row value with a filter value; `None` when they cannot be compared
/// (null, or different kinds).
fn cmp(actual: &Value, value: &Value) -> Option<i8> {
    let ord = |o: std::cmp::Ordering| o as i8;
    match (actual, value) {
        (Value::Null, _) | (_, Value::Null) => None,
        (Value::Bool(a), v) => {
            let b = match v {
                Value::Bool(b) => *b,
                Value::String(s) if s.eq_ignore_ascii_case("true") => true,
                Value::String(s) if s.eq_ignore_ascii_case("false") => false,
                _ => return None,
            };
            Some(ord(a.cmp(&b)))
        }
        (Value::Number(a), v) => {
            let b = match v {
                Value::Number(n) => n.as_f64()?,
                Value::String(s) => s.trim().parse::<f64>().ok()?,
                _ => return None,
            };
            a.as_f64()?.partial_cmp(&b).map(ord)
        }
        (Value::String(a), v) => {
            let b = text(v);
            if let (Some(x), Some(y)) = (datetime(a), datetime(&b)) {
                return Some(ord(x.cmp(&y)));
            }
            Some(ord(a.to_lowercase().cmp(&b.to_lowercase())))
        }
        _ => None,
    }
}

/// The paging token of a next-page URL (C7): page size and the boundary ids.
pub fn token(page_size: usize, first: u64, last: u64) -> String {
    serde_json::json!({ "pageSize": page_size, "previousIds": [first], "nextIds": [last] })
        .to_string()
}

/// The id after which a next page starts, from its token.
pub fn after_id(paging: &str) -> Option<u64> {
    let v: Value = serde_json::from_str(paging).ok()?;
    v.as_object().and_then(|o| get_ci(o, "nextIds"))?.as_array()?.last()?.as_u64()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn fields() -> Vec<String> {
        ["id", "companyID", "isActive", "startDate", "companyName"].map(String::from).to_vec()
    }

    #[test]
    fn operators_groups_and_case_insensitive_names() {
        let row = json!({"id": 5, "companyID": 10, "isActive": true, "companyName": "Contoso Ltd",
            "startDate": "2026-06-01T00:00:00.000Z",
            "userDefinedFields": [{"name": "Tier", "value": "Gold"}]});
        let q = |body: Value| Query::parse(&body.to_string(), &fields()).unwrap().matches(&row);
        assert!(q(json!({"Filter": [{"op": "eq", "field": "CompanyId", "value": 10}]})));
        assert!(q(json!({"filter": [{"op": "eq", "field": "isactive", "value": "true"}]})));
        assert!(q(json!({"filter": [{"op": "in", "field": "id", "value": [1, 5]}]})));
        assert!(!q(json!({"filter": [{"op": "notIn", "field": "id", "value": [5]}]})));
        assert!(q(
            json!({"filter": [{"op": "lte", "field": "startDate", "value": "2026-06-15T00:00:00"}]})
        ));
        assert!(!q(json!({"filter": [{"op": "gt", "field": "startDate", "value": "2026-06-01"}]})));
        assert!(q(
            json!({"filter": [{"op": "beginsWith", "field": "companyName", "value": "conto"}]})
        ));
        assert!(q(json!({"filter": [{"op": "or", "items": [
            {"op": "eq", "field": "id", "value": 4}, {"op": "contains", "field": "companyName", "value": "LTD"}]}]})));
        assert!(q(
            json!({"filter": [{"op": "eq", "field": "Tier", "value": "gold", "udf": true}]})
        ));
        assert!(!q(json!({"filter": [{"op": "notExist", "field": "companyID", "value": null}]})));
    }

    #[test]
    fn refusals() {
        let f = fields();
        assert_eq!(Query::parse("{", &f), Err(QueryError::Syntax));
        let e = Query::parse(r#"{"filter":[{"op":"eq","field":"nope","value":1}]}"#, &f);
        assert_eq!(e, Err(QueryError::Refused("Unknown field: nope".into())));
        let e = Query::parse(r#"{"MaxRecords": 501}"#, &f).unwrap_err();
        assert!(matches!(e, QueryError::Refused(m) if m.contains("between 1 and 500")));
        let ids: Vec<u64> = (0..501).collect();
        let body = json!({"filter": [{"op": "in", "field": "id", "value": ids}]}).to_string();
        assert!(matches!(Query::parse(&body, &f), Err(QueryError::Refused(_))));
        assert_eq!(after_id(&token(500, 3, 9)), Some(9));
    }
}
