//! The page: head (inline CSS under a nonce, self-refresh), totals, the filter form and the
//! rows table. The secondary sections (unmapped customers, sources, runs) are in `sections`,
//! the write-back's in `writeback`.
//! Every value from the store goes through [`Html::text`]/[`Html::attr`].

use super::html::{Html, query_value, when};
use super::model::{self, View};
use super::sections;
use super::sparkline;
use crate::reconcile::{Row, RowKey, Status, Summary, money, quantity};

/// Seconds between the page's own refreshes (`<meta http-equiv="refresh">` reloads the same
/// URL, so the filters in the query string are kept).
pub const REFRESH_SECONDS: u32 = 60;

const CSS: &str = include_str!("style.css");

/// `under_billed` → `under billed`.
pub fn status_label(s: Status) -> String {
    s.as_str().replace('_', " ")
}

/// The whole document. `nonce` is the Content-Security-Policy nonce of the inline style.
pub fn page(view: &View<'_>, nonce: &str) -> String {
    let mut h = Html::new();
    h.raw("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">");
    h.raw("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">");
    h.raw("<meta http-equiv=\"refresh\"").attr("content", REFRESH_SECONDS.to_string()).raw(">");
    h.raw("<title>");
    match view.rec {
        Some(rec) => h.display(rec.summary.attention).raw(" need attention · mpsync"),
        None => h.raw("mpsync"),
    };
    h.raw("</title><link rel=\"icon\" href=\"data:,\">");
    h.raw("<style").attr("nonce", nonce).raw(">").raw(CSS).raw("</style></head><body>");
    header(&mut h, view);
    h.raw("<main>");
    if let Some(err) = &view.error {
        h.raw("<p class=\"banner bad\" id=\"error\">").text(err).raw("</p>");
    }
    match view.rec {
        Some(rec) => {
            totals(&mut h, &rec.summary);
            filters(&mut h, view);
            rows(&mut h, view);
            sections::unmapped(&mut h, rec);
        }
        None if view.error.is_none() => {
            h.raw("<p class=\"banner\" id=\"no-reconciliation\">")
                .text(crate::reconcile::NOT_YET)
                .raw("</p>");
        }
        None => {}
    }
    super::writeback::section(&mut h, view.plan, view.audit);
    sections::sources(&mut h, &view.sources);
    sections::runs(&mut h, view.runs);
    h.raw("</main><footer>mpsync ").text(env!("CARGO_PKG_VERSION"));
    h.raw(" · served on this machine only; nothing on this page is loaded from elsewhere.");
    h.raw("</footer></body></html>\n");
    h.finish()
}

fn header(h: &mut Html, view: &View<'_>) {
    h.raw("<header><h1>mpsync</h1><p class=\"meta\">");
    match view.rec {
        Some(rec) => {
            h.raw("Reconciliation of ").text(when(rec.computed_at));
            if let Some(v) = rec.vendor_run {
                h.raw(" from vendor run #").display(v);
            }
            if let Some(b) = rec.billing_run {
                h.raw(" and billing run #").display(b);
            }
        }
        None => {
            h.raw("No reconciliation yet");
        }
    }
    h.raw(" · page built ").text(when(view.now));
    h.raw(" · refreshes every ").display(REFRESH_SECONDS).raw("s · ");
    h.raw("<a href=\"/v1/reconciliation\">JSON</a> · ");
    h.raw("<a href=\"/v1/reconciliation?format=csv\">CSV</a> · ");
    h.raw("<a href=\"/v1/health\">health</a></p></header>");
}

fn card(h: &mut Html, class: &'static str, id: &'static str, label: &'static str, value: String) {
    h.raw("<div class=\"card ").raw(class).raw("\"><span class=\"label\">").raw(label);
    h.raw("</span><span class=\"big\"").attr("id", id).raw(">").text(value).raw("</span></div>");
}

fn totals(h: &mut Html, s: &Summary) {
    h.raw("<section id=\"totals\"><h2>Totals</h2><div class=\"cards\">");
    let attention_class = if s.attention > 0 { "bad" } else { "good" };
    card(h, attention_class, "attention", "rows need attention", s.attention.to_string());
    card(h, "bad", "impact-under", "under-billed per month", money(s.impact_under_billed));
    card(h, "warn", "impact-over", "over-billed per month", money(s.impact_over_billed));
    card(h, "bad", "accrued-under", "missed so far", money(s.accrued_under_billed));
    card(h, "warn", "accrued-over", "overcharged so far", money(s.accrued_over_billed));
    card(h, "plain", "rows-total", "rows reconciled", s.rows.to_string());
    h.raw("</div>");
    if s.unpriced_discrepancies > 0 {
        h.raw("<p class=\"note\">").display(s.unpriced_discrepancies);
        h.raw(if s.unpriced_discrepancies == 1 {
            " discrepancy has no unit price, so its money is not in these totals.</p>"
        } else {
            " discrepancies have no unit price, so their money is not in these totals.</p>"
        });
    }
    status_bar(h, s);
    h.raw("<div class=\"chips\">");
    for st in model::statuses_by_rank() {
        let n = s.by_status.get(st.as_str()).copied().unwrap_or(0);
        h.raw("<a").attr("class", format!("chip s-{}{}", st, if n == 0 { " zero" } else { "" }));
        h.attr("href", format!("?status={}", st.as_str()));
        h.raw("><b").attr("id", format!("count-{}", st.as_str())).raw(">").display(n);
        h.raw("</b> ").text(status_label(st)).raw("</a>");
    }
    h.raw("</div></section>");
}

/// Rows by status as one stacked bar, in rank order, so the share needing action shows at a
/// glance.
fn status_bar(h: &mut Html, s: &Summary) {
    if s.rows == 0 {
        return;
    }
    h.raw("<svg class=\"bar\" viewBox=\"0 0 1000 14\" preserveAspectRatio=\"none\" ");
    h.raw("width=\"100%\" height=\"14\" role=\"img\" aria-label=\"rows by status\">");
    let mut x = 0.0;
    for st in model::statuses_by_rank() {
        let n = s.by_status.get(st.as_str()).copied().unwrap_or(0);
        if n == 0 {
            continue;
        }
        let w = n as f64 / s.rows as f64 * 1000.0;
        h.raw("<rect height=\"14\"").attr("class", format!("s-{st}"));
        h.attr("x", format!("{x:.1}")).attr("width", format!("{w:.1}")).raw("><title>");
        h.display(n).raw(" ").text(status_label(st)).raw("</title></rect>");
        x += w;
    }
    h.raw("</svg>");
}

fn filters(h: &mut Html, view: &View<'_>) {
    let f = view.filters;
    h.raw("<section id=\"filter\"><form id=\"filters\" method=\"get\" action=\"/\">");
    h.raw("<label>Status <select name=\"status\" id=\"f-status\">");
    h.raw("<option value=\"\">all statuses</option>");
    let rec = view.rec;
    let mut known = f.status_text.is_empty();
    for st in model::statuses_by_rank() {
        let n = rec.and_then(|r| r.summary.by_status.get(st.as_str()).copied()).unwrap_or(0);
        h.raw("<option").attr("value", st.as_str());
        if f.status_text == st.as_str() {
            known = true;
            h.raw(" selected");
        }
        h.raw(">").text(status_label(st)).raw(" (").display(n).raw(")</option>");
    }
    if !known {
        // A list from a link (`?status=under_billed,unbilled`) stays selected as given.
        h.raw("<option selected").attr("value", &f.status_text).raw(">");
        h.text(&f.status_text).raw("</option>");
    }
    h.raw("</select></label> <label>Account <input name=\"account\" id=\"f-account\" ");
    h.raw("list=\"accounts\" placeholder=\"id or name\"");
    h.attr("value", f.filter.account.as_deref().unwrap_or("")).raw("></label>");
    h.raw("<datalist id=\"accounts\">");
    if let Some(rec) = rec {
        for (id, name) in model::accounts(rec) {
            h.raw("<option").attr("value", &id).raw(">");
            h.text(name.as_deref().unwrap_or("")).raw("</option>");
        }
    }
    h.raw("</datalist> <button type=\"submit\" id=\"f-apply\">Apply</button> ");
    h.raw("<a href=\"/\" id=\"f-clear\">Clear</a></form>");
    if let Some(err) = &f.error {
        h.raw("<p class=\"banner bad\" id=\"filter-error\">").text(err.to_string());
        h.raw(" — showing every status.</p>");
    }
    h.raw("</section>");
}

fn rows(h: &mut Html, view: &View<'_>) {
    h.raw("<section id=\"rows-section\"><h2>Rows</h2><p class=\"note\" id=\"rows-count\">");
    h.display(view.rows.len());
    match view.matching {
        Some(n) => h.raw(" of ").display(n).raw(" matching rows shown"),
        None => h.raw(" matching rows shown"),
    };
    if view.next_cursor.is_some() {
        h.raw(" on this page (the next page is linked below the table)");
    }
    h.raw(", those needing action first.</p>");
    h.raw("<table id=\"rows\"><thead><tr><th>Status</th><th>Account / subject</th>");
    h.raw("<th>PSA product</th><th>Products</th><th class=\"n\">Vendor</th>");
    h.raw("<th class=\"n\">Billed</th><th class=\"n\">Δ</th><th class=\"n\">Impact/mo</th>");
    h.raw("<th class=\"n\">Accrued</th>");
    h.raw("<th>Since</th><th>Vendor history</th><th>Note</th></tr></thead><tbody>");
    let end = view.rec.map(|r| r.computed_at).unwrap_or(view.now);
    for (row, steps) in &view.rows {
        row_html(h, row, steps, end);
    }
    if view.rows.is_empty() {
        h.raw("<tr><td colspan=\"11\" class=\"empty\">No rows match these filters.</td></tr>");
    }
    h.raw("</tbody></table>");
    if let Some(cursor) = &view.next_cursor {
        let f = view.filters;
        let mut href = format!("?cursor={}", query_value(cursor));
        if !f.status_text.is_empty() {
            href.push_str(&format!("&status={}", query_value(&f.status_text)));
        }
        if let Some(a) = &f.filter.account {
            href.push_str(&format!("&account={}", query_value(a)));
        }
        h.raw("<p class=\"note\"><a id=\"next-page\"").attr("href", href);
        h.raw(">Next page of rows →</a> <a href=\"/\" id=\"first-page\">first page</a></p>");
    }
    h.raw("</section>");
}

fn row_html(h: &mut Html, r: &Row, steps: &[sparkline::Step], end: chrono::DateTime<chrono::Utc>) {
    let num = |h: &mut Html, v: Option<String>| {
        h.raw("<td class=\"n\">").text(v.unwrap_or_default()).raw("</td>");
    };
    h.raw("<tr").attr("class", format!("s-{}", r.status)).attr("data-status", r.status.as_str());
    if let RowKey::Service { account, .. } = &r.key {
        h.attr("data-account", account);
    }
    h.raw("><td><span").attr("class", format!("badge s-{}", r.status)).raw(">");
    h.text(status_label(r.status)).raw("</span></td><td>");
    let psa = match &r.key {
        RowKey::Service { account, psa_product } => {
            h.raw("<a").attr("href", format!("?account={}", query_value(account))).raw(">");
            h.text(account).raw("</a> ").text(r.account_name.as_deref().unwrap_or(""));
            psa_product.as_str()
        }
        RowKey::UnmappedCustomer { customer } => {
            h.raw("customer ").display(customer).raw(" ");
            h.text(r.customer_name.as_deref().unwrap_or(""));
            ""
        }
        RowKey::UnmappedProduct { product } => {
            h.raw("product ").text(product);
            ""
        }
    };
    h.raw("</td><td>").text(psa).raw("</td><td>").text(r.products.join(", ")).raw("</td>");
    num(h, r.vendor_quantity.map(|v| v.to_string()));
    num(h, r.billed_quantity.map(quantity));
    num(h, r.delta.map(|d| if d > 0.0 { format!("+{}", quantity(d)) } else { quantity(d) }));
    num(h, r.monthly_impact.map(money));
    num(h, r.accrued.map(money));
    h.raw("<td>").text(r.since.at.format("%Y-%m-%d").to_string()).raw("</td><td>");
    // The chart is the vendor quantity over time, so only rows that have one draw it (an
    // unmapped customer's products are not one quantity).
    match r.evidence.customers.len() {
        _ if r.vendor_quantity.is_none() => {}
        0 => {}
        n if n > model::MAX_PAIRS_PER_ROW => {
            h.raw("<span class=\"dim\">").display(n).raw(" customers</span>");
        }
        _ => {
            h.append(sparkline::svg(steps, end));
        }
    }
    h.raw("</td><td>").text(crate::reconcile::note(r)).raw("</td></tr>");
}
