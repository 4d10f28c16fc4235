//! The mapping file's validation: a walk over toml's spanned document tree that collects every
//! problem with its line, column and key path instead of stopping at the first.
//!
//! serde's `deny_unknown_fields` would stop at the first problem and lose the line of semantic
//! ones (a non-numeric customer id), so the tree is walked by hand.

use std::collections::BTreeMap;
use std::ops::Range;

use chrono::NaiveDate;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::{Mapping, MappingProblem, ProductMapping, Suppression};
use crate::config::Invalid;
use crate::model::CustomerId;

/// Collects problems against the source text (for byte offset → line:column).
struct Ctx<'s> {
    src: &'s str,
    problems: Vec<MappingProblem>,
}

impl Ctx<'_> {
    fn problem(&mut self, span: Range<usize>, key: impl Into<String>, message: impl Into<String>) {
        let (line, column) = line_col(self.src, span.start);
        self.problems.push(MappingProblem {
            line,
            column,
            key: key.into(),
            message: message.into(),
        });
    }

    fn line(&self, span: &Range<usize>) -> usize {
        line_col(self.src, span.start).0
    }
}

/// 1-based line and column (in characters) of byte `offset`.
pub(super) fn line_col(src: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(src.len());
    let before = src.get(..offset).unwrap_or(src);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

/// A table's entries in the order they appear in the file (toml's map is sorted by key), so
/// "already mapped on line N" always points backwards.
fn in_file_order<'t, 'i>(
    table: &'t DeTable<'i>,
) -> Vec<(&'t Spanned<toml::de::DeString<'i>>, &'t Spanned<DeValue<'i>>)> {
    let mut entries: Vec<_> = table.iter().collect();
    entries.sort_by_key(|(k, _)| k.span().start);
    entries
}

/// A user-given key, quoted so that the path is unambiguous: `customers."abc"`.
fn q(key: &str) -> String {
    format!("\"{}\"", key.escape_debug())
}

/// Parses and validates the whole file; `Err` holds every problem found.
pub(super) fn parse(src: &str) -> Result<Mapping, Vec<MappingProblem>> {
    let mut cx = Ctx { src, problems: Vec::new() };
    let (doc, errors) = DeTable::parse_recoverable(src);
    if !errors.is_empty() {
        // Syntax errors (including TOML's own duplicate keys): the recovered tree may be
        // partial, so semantic checks on it would only add noise.
        for e in errors {
            let span = e.span().unwrap_or(0..0);
            cx.problem(span, "", e.message().trim().to_string());
        }
        return Err(cx.problems);
    }
    let mut m = Mapping::default();
    let mut customer_lines = BTreeMap::new();
    let mut product_lines = BTreeMap::new();
    for (key, value) in in_file_order(doc.get_ref()) {
        let name = key.get_ref().as_ref();
        match name {
            "customers" => customers(&mut cx, value, &mut m, &mut customer_lines),
            "products" => products(&mut cx, value, &mut m, &mut product_lines),
            "exclude" => exclude(&mut cx, value, &mut m, &customer_lines, &product_lines),
            "suppress" => suppress(&mut cx, value, &mut m),
            other => cx.problem(
                key.span(),
                q(other),
                "unknown key; the mapping file has only [customers], [products.NAME], [exclude] \
                 and [[suppress]]",
            ),
        }
    }
    if cx.problems.is_empty() { Ok(m) } else { Err(cx.problems) }
}

fn customers(
    cx: &mut Ctx<'_>,
    value: &Spanned<DeValue<'_>>,
    m: &mut Mapping,
    lines: &mut BTreeMap<CustomerId, usize>,
) {
    let Some(table) = value.get_ref().as_table() else {
        cx.problem(
            value.span(),
            "customers",
            "must be a table: a [customers] header, then one line per customer like 329 = \"250\"",
        );
        return;
    };
    for (key, v) in in_file_order(table) {
        let raw = key.get_ref().as_ref();
        let path = format!("customers.{}", q(raw));
        let id = match customer_id(raw) {
            Ok(id) => id,
            Err(msg) => {
                cx.problem(key.span(), path, msg);
                continue;
            }
        };
        let account = match v.get_ref() {
            DeValue::String(s) if !s.trim().is_empty() => s.trim().to_string(),
            DeValue::String(_) => {
                cx.problem(v.span(), path, "the PSA account id is empty");
                continue;
            }
            DeValue::Integer(i) => {
                cx.problem(
                    v.span(),
                    path,
                    format!(
                        "the PSA account id must be a string: write {raw} = \"{}\"",
                        i.as_str()
                    ),
                );
                continue;
            }
            other => {
                cx.problem(
                    v.span(),
                    path,
                    format!("the PSA account id must be a string, not a {}", other.type_str()),
                );
                continue;
            }
        };
        let line = cx.line(&key.span());
        if let Some(first) = lines.get(&id) {
            cx.problem(
                key.span(),
                path,
                format!("customer {id} is already mapped on line {first}"),
            );
            continue;
        }
        lines.insert(id, line);
        m.customers.insert(id, account);
    }
}

fn customer_id(raw: &str) -> Result<CustomerId, Invalid> {
    let t = raw.trim();
    if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
        return Err("a Mailprotector customer id must be a number".into());
    }
    t.parse::<CustomerId>()
        .map_err(|_| "the customer id is too large to be a Mailprotector id".into())
}

const PRODUCT_KEYS: &str = "psa_product, tolerance, tolerance_percent or debounce_runs";

fn products(
    cx: &mut Ctx<'_>,
    value: &Spanned<DeValue<'_>>,
    m: &mut Mapping,
    lines: &mut BTreeMap<String, usize>,
) {
    let Some(table) = value.get_ref().as_table() else {
        cx.problem(
            value.span(),
            "products",
            "must hold one table per product, e.g. [products.CloudFilter] then psa_product = \"MP-CF\"",
        );
        return;
    };
    for (key, v) in in_file_order(table) {
        let name = key.get_ref().as_ref();
        let path = format!("products.{}", q(name));
        if name.trim().is_empty() {
            cx.problem(key.span(), path, "a product name cannot be empty");
            continue;
        }
        let Some(fields) = v.get_ref().as_table() else {
            cx.problem(
                key.span(),
                path,
                format!("must be a table: [products.{}] then psa_product = \"...\"", q(name)),
            );
            continue;
        };
        if let Some(p) = product(cx, &path, key.span(), fields) {
            lines.insert(name.to_string(), cx.line(&key.span()));
            m.products.insert(name.to_string(), p);
        }
    }
}

fn product(
    cx: &mut Ctx<'_>,
    path: &str,
    header: Range<usize>,
    fields: &DeTable<'_>,
) -> Option<ProductMapping> {
    let before = cx.problems.len();
    let mut psa = None;
    let mut p = ProductMapping {
        psa_product: String::new(),
        tolerance: 0.0,
        tolerance_percent: 0.0,
        debounce_runs: None,
    };
    for (key, v) in in_file_order(fields) {
        let k = key.get_ref().as_ref();
        let kpath = format!("{path}.{k}");
        match k {
            "psa_product" => psa = non_empty_string(cx, v, &kpath, "the PSA product id"),
            "tolerance" => {
                if let Some(t) = non_negative(cx, v, &kpath, "users") {
                    p.tolerance = t;
                }
            }
            "tolerance_percent" => {
                if let Some(t) = non_negative(cx, v, &kpath, "percent of the billed quantity") {
                    p.tolerance_percent = t;
                }
            }
            "debounce_runs" => match integer(v) {
                Some(n @ 1..=1000) => p.debounce_runs = Some(n as u32),
                _ => cx.problem(
                    v.span(),
                    kpath,
                    "must be a whole number of vendor runs from 1 to 1000 (1 raises a \
                     discrepancy at once)",
                ),
            },
            other => cx.problem(
                key.span(),
                kpath,
                format!("unknown key {other:?}; expected {PRODUCT_KEYS}"),
            ),
        }
    }
    match psa {
        Some(s) => p.psa_product = s,
        None if cx.problems.len() == before => {
            cx.problem(
                header,
                path,
                "psa_product is required: the PSA product id this product is billed as",
            );
            return None;
        }
        None => return None,
    }
    (cx.problems.len() == before).then_some(p)
}

fn integer(v: &Spanned<DeValue<'_>>) -> Option<i64> {
    v.get_ref().as_integer().and_then(|i| i64::from_str_radix(i.as_str(), i.radix()).ok())
}

fn number(v: &Spanned<DeValue<'_>>) -> Option<f64> {
    match v.get_ref() {
        DeValue::Integer(_) => integer(v).map(|i| i as f64),
        DeValue::Float(f) => f.as_str().parse::<f64>().ok().filter(|f| f.is_finite()),
        _ => None,
    }
}

fn non_negative(cx: &mut Ctx<'_>, v: &Spanned<DeValue<'_>>, path: &str, unit: &str) -> Option<f64> {
    match number(v) {
        Some(n) if n >= 0.0 => Some(n),
        _ => {
            cx.problem(v.span(), path, format!("must be a number of {unit}, 0 or more"));
            None
        }
    }
}

fn non_empty_string(
    cx: &mut Ctx<'_>,
    v: &Spanned<DeValue<'_>>,
    path: &str,
    what: &str,
) -> Option<String> {
    match v.get_ref() {
        DeValue::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        DeValue::String(_) => {
            cx.problem(v.span(), path, format!("{what} is empty"));
            None
        }
        DeValue::Integer(i) => {
            cx.problem(
                v.span(),
                path,
                format!("{what} must be a string: write \"{}\"", i.as_str()),
            );
            None
        }
        other => {
            cx.problem(
                v.span(),
                path,
                format!("{what} must be a string, not a {}", other.type_str()),
            );
            None
        }
    }
}

fn exclude(
    cx: &mut Ctx<'_>,
    value: &Spanned<DeValue<'_>>,
    m: &mut Mapping,
    customer_lines: &BTreeMap<CustomerId, usize>,
    product_lines: &BTreeMap<String, usize>,
) {
    let Some(table) = value.get_ref().as_table() else {
        cx.problem(
            value.span(),
            "exclude",
            "must be a table: [exclude] then customers = [..] and products = [..]",
        );
        return;
    };
    for (key, v) in in_file_order(table) {
        let k = key.get_ref().as_ref();
        let path = format!("exclude.{k}");
        let Some(items) = v.get_ref().as_array().filter(|_| matches!(k, "customers" | "products"))
        else {
            match k {
                "customers" | "products" => {
                    cx.problem(
                        v.span(),
                        path,
                        "must be a list, e.g. customers = [7114] or products = [\"ForceEncrypt\"]",
                    );
                }
                other => cx.problem(
                    key.span(),
                    path,
                    format!("unknown key {other:?}; expected customers or products"),
                ),
            }
            continue;
        };
        for (i, item) in items.iter().enumerate() {
            let ipath = format!("{path}[{i}]");
            if k == "customers" {
                let id = integer(item).and_then(|n| u64::try_from(n).ok());
                let Some(id) = id else {
                    cx.problem(item.span(), ipath, "a Mailprotector customer id must be a number");
                    continue;
                };
                if let Some(line) = customer_lines.get(&id) {
                    cx.problem(item.span(), ipath, format!("customer {id} is excluded but also mapped on line {line}; remove one of the two"));
                } else if !m.exclude_customers.insert(id) {
                    cx.problem(item.span(), ipath, format!("customer {id} is listed twice"));
                }
            } else {
                let Some(name) = non_empty_string(cx, item, &ipath, "a product name") else {
                    continue;
                };
                if let Some(line) = product_lines.get(&name) {
                    cx.problem(item.span(), ipath, format!("product {name:?} is excluded but also mapped on line {line}; remove one of the two"));
                } else if !m.exclude_products.insert(name.clone()) {
                    cx.problem(item.span(), ipath, format!("product {name:?} is listed twice"));
                }
            }
        }
    }
}

/// What a suppression covers: (customer, account, product).
type Scope = (Option<CustomerId>, Option<String>, Option<String>);

fn suppress(cx: &mut Ctx<'_>, value: &Spanned<DeValue<'_>>, m: &mut Mapping) {
    let Some(items) = value.get_ref().as_array() else {
        cx.problem(
            value.span(),
            "suppress",
            "must be a list of tables: write each suppression under its own [[suppress]] header",
        );
        return;
    };
    let mut seen: BTreeMap<Scope, usize> = BTreeMap::new();
    for (i, item) in items.iter().enumerate() {
        let path = format!("suppress[{i}]");
        let Some(fields) = item.get_ref().as_table() else {
            cx.problem(item.span(), path, "must be a table under a [[suppress]] header");
            continue;
        };
        let before = cx.problems.len();
        let line = cx.line(&item.span());
        let mut s = Suppression {
            customer: None,
            account: None,
            product: None,
            reason: String::new(),
            until: NaiveDate::MIN,
            line,
        };
        let mut until = None;
        for (key, v) in in_file_order(fields) {
            let k = key.get_ref().as_ref();
            let kpath = format!("{path}.{k}");
            match k {
                "customer" => match integer(v).and_then(|n| u64::try_from(n).ok()) {
                    Some(id) => s.customer = Some(id),
                    None => cx.problem(v.span(), kpath, "a Mailprotector customer id must be a number"),
                },
                "account" => s.account = non_empty_string(cx, v, &kpath, "the PSA account id"),
                "product" => s.product = non_empty_string(cx, v, &kpath, "the product"),
                "reason" => {
                    if let Some(r) = non_empty_string(cx, v, &kpath, "the reason") {
                        s.reason = r;
                    }
                }
                "until" => until = date(cx, v, &kpath),
                other => cx.problem(
                    key.span(),
                    kpath,
                    format!("unknown key {other:?}; expected customer, account, product, reason or until"),
                ),
            }
        }
        let missing = |k: &str| !fields.contains_key(k);
        if missing("customer") && missing("account") {
            cx.problem(
                item.span(),
                path.clone(),
                "give customer = <id> or account = \"<PSA id>\" (or both)",
            );
        }
        if missing("reason") {
            cx.problem(item.span(), path.clone(), "reason is required: say why this is suppressed");
        }
        if missing("until") {
            cx.problem(
                item.span(),
                path.clone(),
                "until is required: the last day it applies, e.g. until = 2026-12-31",
            );
        }
        if let (Some(c), Some(a)) = (s.customer, &s.account)
            && let Some(mapped) = m.customers.get(&c)
            && mapped != a
        {
            cx.problem(
                item.span(),
                path.clone(),
                format!("customer {c} is mapped to account {mapped:?}, not {a:?}; fix one of them"),
            );
        }
        if cx.problems.len() != before {
            continue;
        }
        if let Some(u) = until {
            s.until = u;
        }
        let scope = (s.customer, s.account.clone(), s.product.clone());
        if let Some(first) = seen.get(&scope) {
            cx.problem(
                item.span(),
                path,
                format!("suppresses the same rows as the [[suppress]] on line {first}; keep one"),
            );
            continue;
        }
        seen.insert(scope, line);
        m.suppressions.push(s);
    }
}

fn date(cx: &mut Ctx<'_>, v: &Spanned<DeValue<'_>>, path: &str) -> Option<NaiveDate> {
    let parsed = match v.get_ref() {
        DeValue::Datetime(d) if d.time.is_none() && d.offset.is_none() => d.date.and_then(|d| {
            NaiveDate::from_ymd_opt(i32::from(d.year), u32::from(d.month), u32::from(d.day))
        }),
        DeValue::String(s) => NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").ok(),
        _ => None,
    };
    if parsed.is_none() {
        cx.problem(v.span(), path, "must be a date like 2026-12-31 (the last day, UTC, inclusive)");
    }
    parsed
}
