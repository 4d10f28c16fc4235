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

use super::{
    LinePreference, Mapping, MappingProblem, Policy, ProductMapping, Suppression, WriteBackMode,
};
use crate::config::Invalid;
use crate::model::{CustomerId, LineRef};

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
    let mut line_tables = Vec::new();
    for (key, value) in in_file_order(doc.get_ref()) {
        let name = key.get_ref().as_ref();
        match name {
            "customers" => customers(&mut cx, value, &mut m, &mut customer_lines),
            "products" => products(&mut cx, value, &mut m, &mut product_lines),
            "exclude" => exclude(&mut cx, value, &mut m, &customer_lines, &product_lines),
            "suppress" => suppress(&mut cx, value, &mut m),
            "line" => line_tables.extend(lines(&mut cx, value)),
            other => cx.problem(
                key.span(),
                q(other),
                "unknown key; the mapping file has only [customers], [products.NAME], [exclude], \
                 [[suppress]] and [[line]]",
            ),
        }
    }
    // After the whole file (a [[line]] may come before the tables it refers to), and only
    // when the rest is valid: a broken [customers] table would make every account unknown.
    if cx.problems.is_empty() {
        lines_refer_to_mapped(&mut cx, &mut m, &line_tables);
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

const PRODUCT_KEYS: &str = "psa_product, tolerance, tolerance_percent, debounce_runs, \
                            write_back, min_quantity or max_decrease_percent";

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
            let line = cx.line(&key.span());
            if let Some((other, other_line)) = policy_conflict(m, lines, &p) {
                cx.problem(
                    key.span(),
                    path,
                    format!(
                        "products {other:?} (line {other_line}) and {name:?} (line {line}) are both \
                         billed as PSA product {:?} but their write-back policies differ ({} vs \
                         {}); give both the same write_back, min_quantity and \
                         max_decrease_percent",
                        p.psa_product,
                        m.products[&other].policy.settings(),
                        p.policy.settings(),
                    ),
                );
                continue;
            }
            lines.insert(name.to_string(), line);
            m.products.insert(name.to_string(), p);
        }
    }
}

/// The first product already read that is billed as `p`'s PSA product with another policy,
/// and its line.
fn policy_conflict(
    m: &Mapping,
    lines: &BTreeMap<String, usize>,
    p: &ProductMapping,
) -> Option<(String, usize)> {
    let (name, _) = m
        .products
        .iter()
        .filter(|(_, o)| o.psa_product == p.psa_product && o.policy != p.policy)
        .min_by_key(|(name, _)| lines.get(*name))?;
    Some((name.clone(), lines.get(name).copied().unwrap_or(0)))
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
        policy: Policy::default(),
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
            "write_back" => match v.get_ref() {
                DeValue::String(s) => match s.trim() {
                    "off" => p.policy.mode = WriteBackMode::Off,
                    "review" => p.policy.mode = WriteBackMode::Review,
                    "auto" => p.policy.mode = WriteBackMode::Auto,
                    other => cx.problem(
                        v.span(),
                        kpath,
                        format!(
                            "{other:?} is not a write-back mode; use \"off\" (never planned), \
                             \"review\" (planned, applied by `mpsync apply`) or \"auto\""
                        ),
                    ),
                },
                other => cx.problem(
                    v.span(),
                    kpath,
                    format!(
                        "must be \"off\", \"review\" or \"auto\" in quotes, not a {}",
                        other.type_str()
                    ),
                ),
            },
            "min_quantity" => {
                if let Some(n) = non_negative(cx, v, &kpath, "units the plan never goes below") {
                    p.policy.min_quantity = Some(n);
                }
            }
            "max_decrease_percent" => match number(v) {
                Some(n) if (0.0..=100.0).contains(&n) => p.policy.max_decrease_percent = n,
                _ => cx.problem(
                    v.span(),
                    kpath,
                    "must be a percent from 0 to 100: a larger drop of the billed quantity waits \
                     for review (default 20)",
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

/// A `[[line]]` table as read, before it is checked against the rest of the file.
struct LineTable {
    pref: LinePreference,
    span: Range<usize>,
    path: String,
}

/// Reads the `[[line]]` tables; duplicates for one (account, PSA product) are refused here.
fn lines(cx: &mut Ctx<'_>, value: &Spanned<DeValue<'_>>) -> Vec<LineTable> {
    let Some(items) = value.get_ref().as_array() else {
        cx.problem(
            value.span(),
            "line",
            "must be a list of tables: write each line preference under its own [[line]] header",
        );
        return Vec::new();
    };
    let mut out: Vec<LineTable> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let path = format!("line[{i}]");
        let Some(fields) = item.get_ref().as_table() else {
            cx.problem(item.span(), path, "must be a table under a [[line]] header");
            continue;
        };
        let before = cx.problems.len();
        let (mut account, mut psa_product, mut line) = (None, None, None);
        for (key, v) in in_file_order(fields) {
            let k = key.get_ref().as_ref();
            let kpath = format!("{path}.{k}");
            match k {
                "account" => account = non_empty_string(cx, v, &kpath, "the PSA account id"),
                "psa_product" => {
                    psa_product = non_empty_string(cx, v, &kpath, "the PSA product id");
                }
                "line" => {
                    let Some(text) = non_empty_string(cx, v, &kpath, "the PSA line") else {
                        continue;
                    };
                    line = LineRef::parse(&text);
                    if line.is_none() {
                        cx.problem(
                            v.span(),
                            kpath,
                            format!(
                                "{text:?} is not a PSA line; write it as `mpsync plan` lists it, \
                                 e.g. \"cw:12/345\" (ConnectWise agreement 12, addition 345) or \
                                 \"csv:7\" (line 7 of the CSV export)"
                            ),
                        );
                    }
                }
                other => cx.problem(
                    key.span(),
                    kpath,
                    format!("unknown key {other:?}; expected account, psa_product or line"),
                ),
            }
        }
        for (k, given) in [
            ("account", account.is_some()),
            ("psa_product", psa_product.is_some()),
            ("line", line.is_some()),
        ] {
            if !given && !fields.contains_key(k) {
                cx.problem(
                    item.span(),
                    path.clone(),
                    format!(
                        "{k} is required: a [[line]] names the account, the PSA product and the \
                         line to change, e.g. account = \"250\", psa_product = \"MP-CF\", \
                         line = \"cw:12/345\""
                    ),
                );
            }
        }
        let (Some(account), Some(psa_product), Some(line)) = (account, psa_product, line) else {
            continue;
        };
        if cx.problems.len() != before {
            continue;
        }
        let source_line = cx.line(&item.span());
        if let Some(first) =
            out.iter().find(|t| t.pref.account == account && t.pref.psa_product == psa_product)
        {
            cx.problem(
                item.span(),
                path,
                format!(
                    "the [[line]] on line {} already names the line of account {account:?} and \
                     PSA product {psa_product:?}; keep one",
                    first.pref.source_line
                ),
            );
            continue;
        }
        let pref = LinePreference { account, psa_product, line, source_line };
        out.push(LineTable { pref, span: item.span(), path });
    }
    out
}

/// Keeps the `[[line]]` preferences whose account and PSA product the file maps; one that
/// names neither could never apply, so it is a problem rather than silently ignored.
fn lines_refer_to_mapped(cx: &mut Ctx<'_>, m: &mut Mapping, tables: &[LineTable]) {
    for t in tables {
        let p = &t.pref;
        let before = cx.problems.len();
        if !m.customers.values().any(|a| *a == p.account) {
            cx.problem(
                t.span.clone(),
                t.path.clone(),
                format!(
                    "account {:?} is not the account of any customer under [customers]; check \
                     the id (a [[line]] only applies to a mapped account)",
                    p.account
                ),
            );
        }
        if !m.products.values().any(|mp| mp.psa_product == p.psa_product) {
            cx.problem(
                t.span.clone(),
                t.path.clone(),
                format!(
                    "no [products.NAME] is billed as PSA product {:?}; check the id (a [[line]] \
                     only applies to a mapped PSA product)",
                    p.psa_product
                ),
            );
        }
        if cx.problems.len() == before {
            m.lines.push(p.clone());
        }
    }
}
