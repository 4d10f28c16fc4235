//! The page's secondary sections: unmapped customers with their suggestions and a ready
//! `[customers]` block, source freshness, and the last runs.

use std::collections::HashMap;

use super::html::{Html, when};
use super::model::{self, SourceView};
use crate::model::{CustomerId, RunOutcome, RunRecord};
use crate::reconcile::{Reconciliation, Row, RowKey};

/// Unmapped customers, their users from the unmapped-customer row, name suggestions and the
/// stanza to paste.
pub fn unmapped(h: &mut Html, rec: &Reconciliation) {
    let list = model::unmapped(rec);
    h.raw("<section id=\"unmapped\"><h2>Unmapped customers (").display(list.len());
    h.raw(")</h2>");
    if list.is_empty() {
        h.raw("<p class=\"note\">Every customer is mapped to an account or excluded.</p>");
        h.raw("</section>");
        return;
    }
    h.raw("<p class=\"note\">Suggestions match names only; they are never applied. ");
    h.raw("Check each one, then add it under <code>[customers]</code> in the mapping file ");
    h.raw("and reload (SIGHUP).</p>");
    h.raw("<table id=\"unmapped-table\"><thead><tr><th class=\"n\">Customer</th><th>Name</th>");
    h.raw("<th>Users per product</th><th>Suggested account</th>");
    h.raw("<th>Mapping line</th></tr></thead><tbody>");
    // Each unmapped customer's row, looked up once (thousands of them at 10,000 customers).
    let rows: HashMap<CustomerId, &Row> = rec
        .rows
        .iter()
        .filter_map(|r| match r.key {
            RowKey::UnmappedCustomer { customer } => Some((customer, r)),
            _ => None,
        })
        .collect();
    for c in list.iter().take(model::MAX_UNMAPPED) {
        let row = rows.get(&c.customer).copied();
        h.raw("<tr").attr("data-customer", c.customer.to_string()).raw("><td class=\"n\">");
        h.display(c.customer).raw("</td><td>").text(&c.name).raw("</td><td>");
        h.text(row.map(products_with_users).unwrap_or_default()).raw("</td><td>");
        if c.suggestions.is_empty() {
            h.raw("<span class=\"dim\">no account with a matching name</span>");
        }
        for (i, s) in c.suggestions.iter().enumerate() {
            if i > 0 {
                h.raw("<br>");
            }
            h.text(&s.account).raw(" ").text(&s.account_name);
        }
        h.raw("</td><td>");
        for (i, s) in c.suggestions.iter().enumerate() {
            if i > 0 {
                h.raw("<br>");
            }
            h.raw("<code>").text(&s.stanza).raw("</code>");
        }
        h.raw("</td></tr>");
    }
    h.raw("</tbody></table>");
    if list.len() > model::MAX_UNMAPPED {
        h.raw("<p class=\"note\" id=\"unmapped-more\">").display(list.len() - model::MAX_UNMAPPED);
        h.raw(" more unmapped customers are not listed here: ");
        h.raw("<a href=\"/v1/customers\">/v1/customers</a> has every one.</p>");
    }
    if let Some(block) = model::toml_block(&list) {
        h.raw("<p class=\"note\">Customers with exactly one suggestion, ready to paste:</p>");
        h.raw("<pre id=\"toml\">").text(block).raw("</pre>");
    }
    h.raw("</section>");
}

/// `CloudFilter 12, SafeSend 3`: the users of each product the row's customer has.
fn products_with_users(row: &Row) -> String {
    let parts: Vec<String> =
        row.evidence.customers.iter().map(|c| format!("{} {}", c.product, c.count)).collect();
    if parts.is_empty() { row.products.join(", ") } else { parts.join(", ") }
}

/// Vendor, billing and push: last success, its age, and whether that is fresh.
pub fn sources(h: &mut Html, sources: &[SourceView]) {
    h.raw("<section id=\"sources\"><h2>Sources</h2><table id=\"sources-table\"><thead><tr>");
    h.raw("<th>Source</th><th>State</th><th>Last success</th><th class=\"n\">Age</th>");
    h.raw("<th>Last error</th></tr></thead><tbody>");
    for s in sources {
        h.raw("<tr").attr("data-source", s.label).raw("><td>").text(s.label);
        if let Some(c) = &s.component {
            h.raw(" <span class=\"dim\">(").text(c).raw(")</span>");
        }
        h.raw("</td><td><span").attr("class", format!("badge src-{}", s.state.as_str()));
        h.raw(">").text(s.state.as_str()).raw("</span></td><td>");
        if let Some((run, at)) = s.last_success {
            h.raw("run #").display(run).raw(" at ").text(when(at));
        } else if let Some(why) = s.waiting.as_deref().filter(|_| s.configured) {
            h.raw("<span class=\"dim\">").text(why).raw("</span>");
        } else if s.configured {
            h.raw("<span class=\"dim\">never</span>");
        }
        h.raw("</td><td class=\"n\">");
        if let Some(age) = s.age_seconds {
            h.text(model::age(age));
        }
        h.raw("</td><td>");
        if let Some((at, reason)) = &s.last_error {
            h.text(when(*at)).raw(": ").text(reason);
            if s.consecutive_failures > 0 {
                h.raw(" <span class=\"dim\">(").display(s.consecutive_failures);
                h.raw(" failed since the last success)</span>");
            }
        }
        h.raw("</td></tr>");
    }
    h.raw("</tbody></table></section>");
}

/// The most recent runs, newest first.
pub fn runs(h: &mut Html, runs: &[RunRecord]) {
    h.raw("<section id=\"runs\"><h2>Last runs</h2>");
    if runs.is_empty() {
        h.raw("<p class=\"note\">No run yet.</p></section>");
        return;
    }
    h.raw("<table id=\"runs-table\"><thead><tr><th class=\"n\">Run</th><th>Kind</th>");
    h.raw("<th>Started</th><th class=\"n\">Duration</th><th>Outcome</th>");
    h.raw("<th class=\"n\">Requests</th><th>Error</th></tr></thead><tbody>");
    for r in runs {
        let outcome = r.outcome.as_str();
        h.raw("<tr><td class=\"n\">").display(r.id).raw("</td><td>").text(r.kind.as_str());
        h.raw("</td><td>").text(when(r.started_at)).raw("</td><td class=\"n\">");
        if let Some(f) = r.finished_at {
            let ms = (f - r.started_at).num_milliseconds().max(0);
            h.text(format!("{:.1}s", ms as f64 / 1000.0));
        }
        let class = match r.outcome {
            RunOutcome::Ok => "badge src-fresh",
            RunOutcome::Running => "badge src-running",
            _ => "badge src-failing",
        };
        h.raw("</td><td><span").attr("class", class).raw(">").text(outcome).raw("</span></td>");
        h.raw("<td class=\"n\">").display(r.requests.values().sum::<u64>()).raw("</td><td>");
        h.text(r.error.as_deref().unwrap_or("")).raw("</td></tr>");
    }
    h.raw("</tbody></table></section>");
}
