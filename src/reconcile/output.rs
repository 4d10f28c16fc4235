//! Text renderings of rows shared by `/v1/reconciliation?format=csv` and `mpsync reconcile`:
//! CSV with a header row, and an aligned table for people.

use serde::Serialize;

use super::{Row, RowKey};

/// The CSV header, in column order.
pub const CSV_COLUMNS: [&str; 24] = [
    "kind",
    "status",
    "account",
    "account_name",
    "psa_product",
    "customer",
    "customer_name",
    "product",
    "products",
    "vendor_quantity",
    "billed_quantity",
    "delta",
    "unit_price",
    "monthly_impact",
    "since",
    "since_run",
    "pending_status",
    "seen_runs",
    "debounce_runs",
    "note",
    "vendor_run",
    "accrued",
    "accrued_since",
    "excluded_seconds",
];

/// A quantity without a needless `.0`: `12`, `12.5`.
pub fn quantity(x: f64) -> String {
    if (x - x.round()).abs() < 1e-9 {
        format!("{}", x.round() as i64)
    } else {
        let s = format!("{x:.4}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// A span of seconds in words: "3 days", "5 hours", "12 minutes".
pub fn span_words(secs: i64) -> String {
    let secs = secs.max(0);
    let (n, unit) = if secs >= 2 * 86_400 {
        (secs / 86_400, "day")
    } else if secs >= 2 * 3600 {
        (secs / 3600, "hour")
    } else {
        (secs / 60, "minute")
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

/// Money with two decimals.
pub fn money(x: f64) -> String {
    format!("{x:.2}")
}

fn opt<T>(v: Option<T>, f: impl FnOnce(T) -> String) -> String {
    v.map(f).unwrap_or_default()
}

/// Why the row has its status, in words: stale reason, suppression or pending count.
pub fn note(r: &Row) -> String {
    if let Some(s) = &r.stale_reason {
        return s.clone();
    }
    if let Some(s) = &r.suppression {
        return format!("suppressed until {}: {}", s.until, s.reason);
    }
    let mut out = match r.pending_status {
        Some(p) => format!("{p} seen in {} of {} vendor runs", r.seen_runs, r.debounce_runs),
        None => String::new(),
    };
    if let Some(secs) = r.excluded_seconds.filter(|s| *s > 0) {
        if !out.is_empty() {
            out.push_str("; ");
        }
        out.push_str(&format!(
            "{} excluded from accrued (inputs stale or the daemon down)",
            span_words(secs)
        ));
    }
    out
}

/// The row's fields as text, in [`CSV_COLUMNS`] order.
fn fields(r: &Row, vendor_run: Option<crate::model::RunId>) -> Vec<String> {
    let (kind, account, psa, customer, product) = match &r.key {
        RowKey::Service { account, psa_product } => {
            ("service", account.clone(), psa_product.clone(), String::new(), String::new())
        }
        RowKey::UnmappedCustomer { customer } => {
            ("unmapped_customer", String::new(), String::new(), customer.to_string(), String::new())
        }
        RowKey::UnmappedProduct { product } => {
            ("unmapped_product", String::new(), String::new(), String::new(), product.clone())
        }
    };
    vec![
        kind.to_string(),
        r.status.to_string(),
        account,
        r.account_name.clone().unwrap_or_default(),
        psa,
        customer,
        r.customer_name.clone().unwrap_or_default(),
        product,
        r.products.join(";"),
        opt(r.vendor_quantity, |v| v.to_string()),
        opt(r.billed_quantity, quantity),
        opt(r.delta, quantity),
        opt(r.unit_price, money),
        opt(r.monthly_impact, money),
        r.since.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        opt(r.since.run_id, |v| v.to_string()),
        opt(r.pending_status, |s| s.to_string()),
        r.seen_runs.to_string(),
        r.debounce_runs.to_string(),
        note(r),
        opt(vendor_run, |v| v.to_string()),
        opt(r.accrued, money),
        opt(r.episode.as_ref().filter(|e| e.is_open()), |e| {
            e.started_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        }),
        opt(r.excluded_seconds, |v| v.to_string()),
    ]
}

/// One CSV field (RFC 4180). Text that a spreadsheet would run as a formula gets a leading `'`.
pub fn csv_field(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '@']) || (s.starts_with('-') && s.parse::<f64>().is_err()) {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if s.contains([',', '"', '\n', '\r']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s }
}

/// The rows as CSV: a header row, then one line per row (CRLF line ends, RFC 4180).
pub fn csv<'a>(rows: impl IntoIterator<Item = &'a Row>) -> String {
    let mut out = csv_header();
    for r in rows {
        out.push_str(&csv_line(r, r.evidence.vendor_run));
    }
    out
}

/// The CSV header line, with its CRLF.
pub fn csv_header() -> String {
    let mut out = CSV_COLUMNS.join(",");
    out.push_str("\r\n");
    out
}

/// One row as a CSV line, with its CRLF (for answers written row by row); `vendor_run` is
/// the reconciliation's (rows read without their evidence do not carry it).
pub fn csv_line(r: &Row, vendor_run: Option<crate::model::RunId>) -> String {
    let line: Vec<String> = fields(r, vendor_run).iter().map(|f| csv_field(f)).collect();
    let mut out = line.join(",");
    out.push_str("\r\n");
    out
}

/// The rows as an aligned table for a terminal.
pub fn table<'a>(rows: impl IntoIterator<Item = &'a Row>) -> String {
    let header = [
        "STATUS",
        "ACCOUNT",
        "PSA PRODUCT",
        "VENDOR",
        "BILLED",
        "DELTA",
        "IMPACT",
        "ACCRUED",
        "NOTE",
    ];
    let mut lines: Vec<Vec<String>> = vec![header.iter().map(|s| s.to_string()).collect()];
    for r in rows {
        let (who, what) = match &r.key {
            RowKey::Service { account, psa_product } => {
                let who = match &r.account_name {
                    Some(n) => format!("{account} {n}"),
                    None => account.clone(),
                };
                (who, psa_product.clone())
            }
            RowKey::UnmappedCustomer { customer } => (
                format!("customer {customer} {}", r.customer_name.as_deref().unwrap_or("")),
                r.products.join(", "),
            ),
            RowKey::UnmappedProduct { product } => ("-".into(), format!("product {product}")),
        };
        let mut note = note(r);
        if note.is_empty() && !r.products.is_empty() && matches!(r.key, RowKey::Service { .. }) {
            note = r.products.join(", ");
        }
        lines.push(vec![
            r.status.to_string(),
            who.trim_end().to_string(),
            what,
            opt(r.vendor_quantity, |v| v.to_string()),
            opt(r.billed_quantity, quantity),
            opt(r.delta, quantity),
            opt(r.monthly_impact, money),
            opt(r.accrued, money),
            note,
        ]);
    }
    let cols = header.len();
    let widths: Vec<usize> =
        (0..cols).map(|i| lines.iter().map(|l| l[i].chars().count()).max().unwrap_or(0)).collect();
    let mut out = String::new();
    for l in &lines {
        let mut line = String::new();
        for (i, cell) in l.iter().enumerate() {
            if i + 1 == cols {
                line.push_str(cell);
            } else {
                let pad = widths[i] - cell.chars().count();
                line.push_str(cell);
                line.push_str(&" ".repeat(pad + 2));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// What was looked at when there is no reconciliation yet.
pub const NOT_YET: &str = "no reconciliation yet: it is computed after the first vendor and \
                           billing runs complete (POST /v1/sync, or wait for the schedule)";

/// The JSON document of `/v1/reconciliation`: when and from which runs, the summary (of
/// all rows), the filters, one page of the rows that pass them and where the next page
/// starts (`next_cursor`, absent on the last page).
#[derive(Debug, Serialize)]
pub struct JsonPage<'a> {
    computed_at: Option<&'a chrono::DateTime<chrono::Utc>>,
    vendor_run: Option<crate::model::RunId>,
    billing_run: Option<crate::model::RunId>,
    summary: Option<&'a super::Summary>,
    filters: JsonFilters<'a>,
    count: usize,
    limit: usize,
    rows: &'a [Row],
    #[serde(skip_serializing_if = "Option::is_none")]
    next_cursor: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<&'static str>,
}

#[derive(Debug, Serialize)]
struct JsonFilters<'a> {
    status: Vec<&'static str>,
    account: &'a Option<String>,
    product: &'a Option<String>,
}

fn filters(filter: &super::Filter) -> JsonFilters<'_> {
    JsonFilters {
        status: filter.statuses.iter().map(|s| s.as_str()).collect(),
        account: &filter.account,
        product: &filter.product,
    }
}

/// One page of rows of `head` (or the "not yet" note) under `filter`.
pub fn json_page<'a>(
    head: Option<&'a super::ReconciliationHead>,
    filter: &'a super::Filter,
    rows: &'a [Row],
    limit: usize,
    next_cursor: Option<String>,
) -> JsonPage<'a> {
    JsonPage {
        computed_at: head.map(|r| &r.computed_at),
        vendor_run: head.and_then(|r| r.vendor_run),
        billing_run: head.and_then(|r| r.billing_run),
        summary: head.map(|r| &r.summary),
        filters: filters(filter),
        count: rows.len(),
        limit,
        rows,
        next_cursor,
        note: head.is_none().then_some(NOT_YET),
    }
}

/// Writes one row of a streamed document.
pub type RowWriter<'a> = dyn FnMut(&Row) -> std::io::Result<()> + 'a;

/// The whole JSON document of `mpsync reconcile --format json`, written row by row: the head
/// fields, `rows` (one per line, from `each`, which calls its argument per row), then
/// `count`. Nothing holds more than one row.
pub fn write_json_stream(
    w: &mut dyn std::io::Write,
    head: Option<&super::ReconciliationHead>,
    filter: &super::Filter,
    each: &mut dyn FnMut(&mut RowWriter<'_>) -> std::io::Result<()>,
) -> std::io::Result<()> {
    #[derive(Serialize)]
    struct Start<'a> {
        computed_at: Option<&'a chrono::DateTime<chrono::Utc>>,
        vendor_run: Option<crate::model::RunId>,
        billing_run: Option<crate::model::RunId>,
        summary: Option<&'a super::Summary>,
        filters: JsonFilters<'a>,
        #[serde(skip_serializing_if = "Option::is_none")]
        note: Option<&'static str>,
    }
    let start = Start {
        computed_at: head.map(|r| &r.computed_at),
        vendor_run: head.and_then(|r| r.vendor_run),
        billing_run: head.and_then(|r| r.billing_run),
        summary: head.map(|r| &r.summary),
        filters: filters(filter),
        note: head.is_none().then_some(NOT_YET),
    };
    let start = serde_json::to_string(&start).map_err(std::io::Error::from)?;
    // Reopen the object to append the rows and their count.
    w.write_all(start.strip_suffix('}').unwrap_or(&start).as_bytes())?;
    w.write_all(b",\"rows\":[")?;
    let mut count = 0usize;
    each(&mut |row| {
        w.write_all(if count == 0 { b"\n" } else { b",\n" })?;
        serde_json::to_writer(&mut *w, row).map_err(std::io::Error::from)?;
        count += 1;
        Ok(())
    })?;
    write!(w, "\n],\"count\":{count}}}\n")
}

/// The summary in two lines for people: rows per status (non-zero ones) and money.
pub fn summary_text(rec: &super::ReconciliationHead) -> String {
    let s = &rec.summary;
    let statuses: Vec<String> =
        s.by_status.iter().filter(|(_, n)| **n > 0).map(|(k, n)| format!("{n} {k}")).collect();
    let mut out = format!(
        "{} rows: {}\nmonthly impact: under-billed {}, over-billed {}\naccrued so far: \
         under-billed {}, over-billed {}",
        s.rows,
        if statuses.is_empty() { "none".to_string() } else { statuses.join(", ") },
        money(s.impact_under_billed),
        money(s.impact_over_billed),
        money(s.accrued_under_billed),
        money(s.accrued_over_billed),
    );
    if s.unpriced_discrepancies > 0 {
        out.push_str(&format!(
            " ({} discrepancies without a unit price)",
            s.unpriced_discrepancies
        ));
    }
    for (what, f) in [("vendor", &s.vendor), ("billing", &s.billing)] {
        if let Some(reason) = &f.stale_reason {
            out.push_str(&format!("\n{what} input is stale: {reason}"));
        }
    }
    out
}
