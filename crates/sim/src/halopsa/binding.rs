//! How the simulated Halo reads a JSON write body the way ASP.NET's model binding does
//! (reference F41, §3 "Writes"): the known fields of each object are converted to their
//! .NET types (`"27"` is a fine double, `"ten"` is not), dates are accepted with or without
//! an offset and stored without one, and every failure becomes one entry of the
//! model-binding map, keyed by the JSON path (`[0].lines[2].qty_order`) with the message
//! Newtonsoft writes, line and position included.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, NaiveDateTime};
use serde_json::{Map, Value, json};

/// The .NET type of a known field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Int,
    Double,
    Bool,
    Date,
}

fn kind_of(field: &str) -> Option<Kind> {
    Some(match field {
        "id"
        | "ihid"
        | "_itemid"
        | "client_id"
        | "contract_id"
        | "recurring_invoice_quantity_type"
        | "period"
        | "status"
        | "toplevel_id"
        | "site_id"
        | "billingperiod"
        | "tax_code"
        | "recurring_invoice_id" => Kind::Int,
        "qty_order" | "unit_price" | "unit_cost" | "net_amount" | "total" | "baseprice"
        | "costprice" | "recurringprice" | "periodchargeamount" | "amountdue" => Kind::Double,
        "isinactive"
        | "disabled"
        | "inactive"
        | "active"
        | "isrecurringitem"
        | "calculate_price_from_users"
        | "calculate_price_from_assets"
        | "posted"
        | "started"
        | "expired"
        | "is_recurring_invoice" => Kind::Bool,
        "startdate" | "enddate" | "start_date" | "end_date" | "lastcreated"
        | "nextcreationdate" | "invoice_date" | "next_invoice_date" => Kind::Date,
        _ => return None,
    })
}

fn type_name(k: Kind) -> &'static str {
    match k {
        Kind::Int => "System.Int32",
        Kind::Double => "System.Double",
        Kind::Bool => "System.Boolean",
        Kind::Date => "System.DateTime",
    }
}

/// Parses an inbound date (with or without `Z`/offset, or date-only) to Halo's form.
pub fn parse_date(s: &str) -> Option<String> {
    let s = s.trim();
    let t = if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        t.naive_utc()
    } else if let Ok(t) = NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f") {
        t
    } else {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()?.and_hms_opt(0, 0, 0)?
    };
    Some(t.format("%Y-%m-%dT%H:%M:%S").to_string())
}

/// Converts one value to `k`, or the message's first sentence.
fn convert(k: Kind, v: &Value) -> Result<Value, String> {
    let other = || format!("Error converting value {} to type '{}'.", display(v), type_name(k));
    match (k, v) {
        (Kind::Date, Value::Null) => Ok(Value::Null),
        (Kind::Date, Value::String(s)) => parse_date(s)
            .map(Value::String)
            .ok_or_else(|| format!("Could not convert string to DateTime: {s}.")),
        (Kind::Int, Value::Number(n)) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => Ok(json!(i)),
            (None, Some(f)) if f.fract() == 0.0 && f.abs() < 2e9 => Ok(json!(f as i64)),
            _ => Err(format!("Input string '{n}' is not a valid integer.")),
        },
        (Kind::Int, Value::String(s)) => s
            .trim()
            .parse::<i64>()
            .map(|i| json!(i))
            .map_err(|_| format!("Could not convert string to integer: {s}.")),
        (Kind::Double, Value::Number(n)) => Ok(json!(n.as_f64().unwrap_or(0.0))),
        (Kind::Double, Value::String(s)) => s
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .map(|f| json!(f))
            .ok_or_else(|| format!("Could not convert string to double: {s}.")),
        (Kind::Bool, Value::Bool(b)) => Ok(json!(b)),
        (Kind::Bool, Value::Number(n)) if n.as_i64().is_some() => Ok(json!(n.as_i64() != Some(0))),
        (Kind::Bool, Value::String(s)) => match s.trim().to_ascii_lowercase().as_str() {
            "true" => Ok(json!(true)),
            "false" => Ok(json!(false)),
            _ => Err(format!("Could not convert string to boolean: {s}.")),
        },
        _ => Err(other()),
    }
}

fn display(v: &Value) -> String {
    match v {
        Value::Null => "{null}".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::String(s) => format!("\"{s}\""),
        Value::Array(_) => "[...]".into(),
        Value::Object(_) => "{...}".into(),
        Value::Number(n) => n.to_string(),
    }
}

/// The model-binding errors of one body, by path.
pub(crate) type Errors = Map<String, Value>;

/// Where each value of a body ends: JSON path → (line, position), as Newtonsoft reports.
struct Scan<'a> {
    b: &'a [u8],
    i: usize,
    line: usize,
    line_start: usize,
    out: HashMap<String, (usize, usize)>,
}

impl Scan<'_> {
    fn ws(&mut self) {
        while let Some(&c) = self.b.get(self.i) {
            if !c.is_ascii_whitespace() {
                break;
            }
            if c == b'\n' {
                self.line += 1;
                self.line_start = self.i + 1;
            }
            self.i += 1;
        }
    }

    fn string(&mut self) -> String {
        let start = self.i;
        self.i += 1;
        while let Some(&c) = self.b.get(self.i) {
            self.i += 1;
            match c {
                b'\\' => self.i += 1,
                b'"' => break,
                _ => {}
            }
        }
        let raw = &self.b[start..self.i.min(self.b.len())];
        serde_json::from_slice(raw).unwrap_or_default()
    }

    fn value(&mut self, path: &str, depth: usize) {
        self.ws();
        match self.b.get(self.i) {
            None => return,
            Some(b'{') if depth < 64 => {
                self.i += 1;
                loop {
                    self.ws();
                    match self.b.get(self.i) {
                        Some(b'}') => {
                            self.i += 1;
                            break;
                        }
                        Some(b'"') => {
                            let key = self.string();
                            self.ws();
                            self.i += 1; // the colon
                            let p = if path.is_empty() { key } else { format!("{path}.{key}") };
                            self.value(&p, depth + 1);
                        }
                        Some(_) => self.i += 1, // a comma
                        None => return,
                    }
                }
            }
            Some(b'[') if depth < 64 => {
                self.i += 1;
                let mut k = 0;
                loop {
                    self.ws();
                    match self.b.get(self.i) {
                        Some(b']') => {
                            self.i += 1;
                            break;
                        }
                        Some(b',') => {
                            self.i += 1;
                            continue;
                        }
                        None => return,
                        Some(_) => {}
                    }
                    self.value(&format!("{path}[{k}]"), depth + 1);
                    k += 1;
                }
            }
            Some(b'"') => {
                self.string();
            }
            Some(_) => {
                while let Some(&c) = self.b.get(self.i) {
                    if matches!(c, b',' | b']' | b'}') || c.is_ascii_whitespace() {
                        break;
                    }
                    self.i += 1;
                }
            }
        }
        self.out.insert(path.to_owned(), (self.line, self.i - self.line_start));
    }
}

/// The model-binding reader of one body.
pub(crate) struct Binder {
    at: HashMap<String, (usize, usize)>,
    pub(crate) errors: Errors,
}

impl Binder {
    /// Scans `raw` (already known to be JSON) for positions.
    pub(crate) fn new(raw: &[u8]) -> Binder {
        let mut s = Scan { b: raw, i: 0, line: 1, line_start: 0, out: HashMap::new() };
        s.value("", 0);
        Binder { at: s.out, errors: Map::new() }
    }

    /// Records an error at `path`.
    pub(crate) fn fail(&mut self, path: &str, first: &str) {
        let (line, pos) = self.at.get(path).copied().unwrap_or((1, 0));
        let msg = format!("{first} Path '{path}', line {line}, position {pos}.");
        self.errors.insert(path.to_owned(), json!([msg]));
    }

    /// Converts the known fields of `obj` (at `path`) in place; `lines` (an array of line
    /// objects) too.
    pub(crate) fn object(&mut self, path: &str, obj: &mut Map<String, Value>) {
        for (key, v) in obj.iter_mut() {
            let p = format!("{path}.{key}");
            if key == "lines" {
                match v {
                    Value::Array(lines) => {
                        for (j, l) in lines.iter_mut().enumerate() {
                            let lp = format!("{p}[{j}]");
                            match l.as_object_mut() {
                                Some(o) => self.object(&lp, o),
                                None => self.fail(&lp, &not_object(l)),
                            }
                        }
                    }
                    Value::Null => {}
                    other => self.fail(&p, &not_list(other)),
                }
                continue;
            }
            if let Some(k) = kind_of(key) {
                match convert(k, v) {
                    Ok(c) => *v = c,
                    Err(m) => self.fail(&p, &m),
                }
            }
        }
    }
}

/// The message for an element that is not an object.
pub(crate) fn not_object(v: &Value) -> String {
    format!("Error converting value {} to type 'System.Object'.", display(v))
}

fn not_list(v: &Value) -> String {
    format!(
        "Cannot deserialize the current JSON value {} into type 'System.Collections.Generic.List`1[InvoiceDetail]'.",
        display(v)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_carry_the_path_line_and_position() {
        let raw = br#"[{"id":-94,"lines":[{"id":1},{"id":2},{"id":3,"qty_order":"ten"}]}]"#;
        let mut v: Value = serde_json::from_slice(raw).unwrap();
        let mut b = Binder::new(raw);
        let o = v[0].as_object_mut().unwrap();
        b.object("[0]", o);
        let msg = b.errors["[0].lines[2].qty_order"][0].as_str().unwrap();
        let end = raw.windows(5).position(|w| w == b"\"ten\"").unwrap() + 5;
        assert_eq!(
            msg,
            format!(
                "Could not convert string to double: ten. Path '[0].lines[2].qty_order', line 1, position {end}."
            )
        );
        // Strings that are numbers convert; dates lose their offset.
        let raw =
            br#"[{"qty_order":"27","startdate":"2026-01-01T05:00:00Z","isinactive":"false"}]"#;
        let mut v: Value = serde_json::from_slice(raw).unwrap();
        let mut b = Binder::new(raw);
        b.object("[0]", v[0].as_object_mut().unwrap());
        assert!(b.errors.is_empty());
        assert_eq!(v[0]["qty_order"], 27.0);
        assert_eq!(v[0]["startdate"], "2026-01-01T05:00:00");
        assert_eq!(v[0]["isinactive"], false);
    }
}
