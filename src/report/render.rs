//! The period report as Markdown (for people: month-end close) and as CSV (one line per
//! discrepancy and section).

use std::fmt::Write;

use chrono::{DateTime, Utc};

use super::{AccountReport, Item, Report, Totals};
use crate::reconcile::{csv_field, money};

fn day(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn opt_money(x: Option<f64>) -> String {
    x.map(money).unwrap_or_default()
}

fn status(i: &Item) -> String {
    i.status.map(|s| s.as_str().to_owned()).unwrap_or_default()
}

/// Markdown cells cannot hold `|` or line breaks.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace(['\n', '\r'], " ")
}

fn totals_line(t: &Totals) -> String {
    format!(
        "{} appeared, {} fixed, {} still open; in the period {} missed and {} overcharged; the \
         open ones {} a month missed and {} a month overcharged",
        t.appeared,
        t.fixed,
        t.open,
        money(t.missed_in_period),
        money(t.overcharged_in_period),
        money(t.open_monthly_under),
        money(t.open_monthly_over),
    )
}

/// The report as Markdown.
pub fn markdown(r: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# mpsync report {} – {}\n", day(r.since), day(r.until));
    if let Some(at) = r.reconciliation_at {
        let _ = writeln!(out, "Still open as of the reconciliation of {}.", day(at));
    }
    match r.events_since {
        Some(oldest) if oldest > r.since => {
            let _ = writeln!(
                out,
                "The event log starts at {} (older events were pruned or not recorded): the \
                 period before it is incomplete.",
                day(oldest)
            );
        }
        None => {
            let _ = writeln!(out, "The event log is empty: nothing has been recorded yet.");
        }
        _ => {}
    }
    let _ = writeln!(out, "\n**Total:** {}.\n", totals_line(&r.totals));
    if r.accounts.is_empty() {
        out.push_str("No discrepancy appeared, was fixed or was open in this period.\n");
    }
    for a in &r.accounts {
        account_md(&mut out, a);
    }
    if !r.notices.is_empty() {
        out.push_str("## Other events\n\n");
        for n in &r.notices {
            let _ = writeln!(out, "- {} `{}` {}", day(n.at), n.kind, n.text);
        }
        out.push('\n');
    }
    out
}

fn account_md(out: &mut String, a: &AccountReport) {
    let name = a.account_name.as_deref().map(|n| format!("{n} ({})", a.account));
    let _ = writeln!(out, "## {}\n", cell(&name.unwrap_or_else(|| a.account.clone())));
    let _ = writeln!(out, "{}.\n", totals_line(&a.totals));
    let sections: [(&str, &[Item]); 3] =
        [("Appeared", &a.appeared), ("Fixed", &a.fixed), ("Still open", &a.open)];
    for (title, items) in sections {
        if items.is_empty() {
            continue;
        }
        let _ = writeln!(out, "### {title}\n");
        out.push_str(
            "| PSA product | status | since | fixed | how | monthly impact | in period | total |\n",
        );
        out.push_str("|---|---|---|---|---|--:|--:|--:|\n");
        for i in items {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} | {} |",
                cell(&i.psa_product),
                status(i),
                day(i.since),
                i.resolved_at.map(day).unwrap_or_default(),
                i.cause.map(|c| c.words()).unwrap_or_default(),
                opt_money(i.monthly_impact),
                money(i.accrued_in_period),
                money(i.accrued_total),
            );
        }
        out.push('\n');
    }
}

/// The CSV header.
pub const CSV_COLUMNS: [&str; 13] = [
    "section",
    "account",
    "account_name",
    "psa_product",
    "products",
    "status",
    "since",
    "opened_at",
    "resolved_at",
    "cause",
    "monthly_impact",
    "accrued_in_period",
    "accrued_total",
];

/// The report as CSV: one line per discrepancy and section (`appeared`, `fixed`, `open`;
/// one that appeared and was fixed in the period has a line in each), CRLF line ends.
pub fn csv(r: &Report) -> String {
    let mut out = CSV_COLUMNS.join(",");
    out.push_str("\r\n");
    for a in &r.accounts {
        let sections: [(&str, &[Item]); 3] =
            [("appeared", &a.appeared), ("fixed", &a.fixed), ("open", &a.open)];
        for (section, items) in sections {
            for i in items {
                let fields = [
                    section.to_owned(),
                    a.account.clone(),
                    a.account_name.clone().unwrap_or_default(),
                    i.psa_product.clone(),
                    i.products.join(";"),
                    status(i),
                    day(i.since),
                    i.opened_at.map(day).unwrap_or_default(),
                    i.resolved_at.map(day).unwrap_or_default(),
                    i.cause.map(|c| c.as_str().to_owned()).unwrap_or_default(),
                    opt_money(i.monthly_impact),
                    money(i.accrued_in_period),
                    money(i.accrued_total),
                ];
                let line: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
                out.push_str(&line.join(","));
                out.push_str("\r\n");
            }
        }
    }
    out
}
