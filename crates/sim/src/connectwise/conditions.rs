//! The `conditions` query parameter as the simulator supports it (reference §7): clauses
//! `field=value` or `field!=value` joined by `and`; nested fields with `/`; values are
//! integers, `true`/`false`, double-quoted strings (`\"` escapes a quote) or bracketed dates.
//! Anything else is refused with a message for the 400 body.

use chrono::{DateTime, Utc};
use serde_json::Value;

/// A literal on the right of a clause.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    /// `42`, `-1`.
    Int(i64),
    /// `true`, `false`.
    Bool(bool),
    /// `"Acme"` (compared case-insensitively, as ConnectWise does).
    Str(String),
    /// `[2024-01-01T00:00:00Z]`.
    Date(DateTime<Utc>),
}

/// One `field op value` clause.
#[derive(Debug, Clone, PartialEq)]
pub struct Clause {
    /// The field path, split at `/` (e.g. `["company", "id"]`).
    pub field: Vec<String>,
    /// `true` for `!=`.
    pub negated: bool,
    /// The value compared with.
    pub value: Literal,
}

/// Parsed conditions: every clause must hold.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Conditions(pub Vec<Clause>);

impl Conditions {
    /// Parses `text`; `known` lists the resource's top-level fields (an unknown field is
    /// refused like the real API does).
    pub fn parse(text: &str, known: &[&str]) -> Result<Conditions, String> {
        let mut p = Parser { s: text, i: 0 };
        let mut clauses = Vec::new();
        p.ws();
        if p.done() {
            return Ok(Conditions(clauses));
        }
        loop {
            let clause = p.clause()?;
            if !known.iter().any(|k| k.eq_ignore_ascii_case(&clause.field[0])) {
                return Err(format!("Unknown field {:?} in conditions", clause.field.join("/")));
            }
            clauses.push(clause);
            p.ws();
            if p.done() {
                return Ok(Conditions(clauses));
            }
            let word = p.word();
            match word.to_ascii_lowercase().as_str() {
                "and" => p.ws(),
                "" => return Err(format!("unexpected {:?} at position {}", p.rest(), p.i)),
                other => {
                    return Err(format!(
                        "operator {other:?} at position {} is not supported here (only \"and\")",
                        p.i - other.len()
                    ));
                }
            }
        }
    }

    /// Whether `item` (a resource as JSON) satisfies every clause.
    pub fn matches(&self, item: &Value) -> bool {
        self.0.iter().all(|c| {
            let mut v = item;
            for part in &c.field {
                let found = v.as_object().and_then(|o| {
                    o.iter().find(|(k, _)| k.eq_ignore_ascii_case(part)).map(|(_, v)| v)
                });
                match found {
                    Some(next) => v = next,
                    None => return c.negated,
                }
            }
            equal(v, &c.value) != c.negated
        })
    }
}

fn equal(v: &Value, lit: &Literal) -> bool {
    match lit {
        Literal::Int(n) => v.as_i64() == Some(*n) || v.as_f64() == Some(*n as f64),
        Literal::Bool(b) => v.as_bool() == Some(*b),
        Literal::Str(s) => v.as_str().is_some_and(|x| x.eq_ignore_ascii_case(s)),
        Literal::Date(d) => v
            .as_str()
            .and_then(|x| DateTime::parse_from_rfc3339(x).ok())
            .is_some_and(|x| x.with_timezone(&Utc) == *d),
    }
}

struct Parser<'a> {
    s: &'a str,
    i: usize,
}

impl<'a> Parser<'a> {
    fn rest(&self) -> &'a str {
        &self.s[self.i..]
    }
    fn done(&self) -> bool {
        self.i >= self.s.len()
    }
    fn ws(&mut self) {
        while self.rest().starts_with(char::is_whitespace) {
            self.i += self.rest().chars().next().map_or(1, char::len_utf8);
        }
    }
    fn word(&mut self) -> &'a str {
        let start = self.i;
        while self.rest().starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_') {
            self.i += 1;
        }
        &self.s[start..self.i]
    }

    fn clause(&mut self) -> Result<Clause, String> {
        let mut field = Vec::new();
        loop {
            let w = self.word();
            if w.is_empty() || w.starts_with(|c: char| c.is_ascii_digit()) {
                return Err(format!("expected a field name at position {} in conditions", self.i));
            }
            field.push(w.to_owned());
            if self.rest().starts_with('/') {
                self.i += 1;
            } else {
                break;
            }
        }
        self.ws();
        let negated = if self.rest().starts_with("!=") {
            self.i += 2;
            true
        } else if self.rest().starts_with('=') {
            self.i += 1;
            false
        } else {
            let op: String =
                self.rest().chars().take_while(|c| !c.is_whitespace()).take(8).collect();
            return Err(format!(
                "operator {op:?} after {:?} is not supported (only = and !=)",
                field.join("/")
            ));
        };
        self.ws();
        let value = self.literal()?;
        Ok(Clause { field, negated, value })
    }

    fn literal(&mut self) -> Result<Literal, String> {
        let rest = self.rest();
        if let Some(body) = rest.strip_prefix('"') {
            let mut out = String::new();
            let mut chars = body.char_indices();
            while let Some((k, c)) = chars.next() {
                match c {
                    '\\' => match chars.next() {
                        Some((_, e)) => out.push(e),
                        None => break,
                    },
                    '"' => {
                        self.i += 1 + k + 1;
                        return Ok(Literal::Str(out));
                    }
                    c => out.push(c),
                }
            }
            return Err("a string value is not closed with \"".into());
        }
        if let Some(body) = rest.strip_prefix('[') {
            let end = body.find(']').ok_or("a date value is not closed with ]")?;
            let d = DateTime::parse_from_rfc3339(body[..end].trim())
                .map_err(|e| format!("[{}] is not a date: {e}", &body[..end]))?;
            self.i += end + 2;
            return Ok(Literal::Date(d.with_timezone(&Utc)));
        }
        let token: &str = {
            let start = self.i;
            while self.rest().starts_with(|c: char| {
                c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.'
            }) {
                self.i += 1;
            }
            &self.s[start..self.i]
        };
        match token {
            "true" => Ok(Literal::Bool(true)),
            "false" => Ok(Literal::Bool(false)),
            t => t.parse().map(Literal::Int).map_err(|_| {
                format!("value {t:?} must be an integer, true/false, a \"string\" or a [date]")
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const KNOWN: &[&str] = &["id", "company", "cancelledFlag", "name", "lastUpdated"];

    #[test]
    fn supported_forms_parse_and_match() {
        let c = Conditions::parse(
            "company/id=250 and cancelledFlag=false AND name!=\"Old \\\"x\\\"\" and lastUpdated=[2024-01-01T00:00:00Z]",
            KNOWN,
        )
        .unwrap();
        assert_eq!(c.0.len(), 4);
        let item = json!({"id": 1, "company": {"id": 250}, "cancelledFlag": false, "name": "New",
                          "lastUpdated": "2024-01-01T00:00:00Z"});
        assert!(c.matches(&item));
        assert!(!c.matches(&json!({"company": {"id": 251}, "cancelledFlag": false})));
        let s = Conditions::parse("name=\"acme\"", KNOWN).unwrap();
        assert!(s.matches(&json!({"name": "ACME"})), "strings compare case-insensitively");
        assert!(Conditions::parse("  ", KNOWN).unwrap().matches(&json!({})));
        assert!(Conditions::parse("cancelledFlag != true", KNOWN).unwrap().matches(&json!({})));
    }

    #[test]
    fn anything_else_is_refused_with_a_reason() {
        for bad in [
            "id>5",
            "id=5 or id=6",
            "id like 5",
            "name=Acme",
            "name=\"open",
            "lastUpdated=[yesterday]",
            "bogus=1",
            "=5",
            "id=5 and",
            "id=5 andid=6",
        ] {
            let e = Conditions::parse(bad, KNOWN).unwrap_err();
            assert!(!e.is_empty(), "{bad}");
        }
    }
}
