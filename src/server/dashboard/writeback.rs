//! The write-back section: the latest plan (its id, how many changes, the money they move,
//! and whether a newer plan replaced it) and the latest audit entries. Changes are applied
//! from the command line (`mpsync apply`); the page only shows them.

use super::html::{Html, when};
use crate::reconcile::quantity;
use crate::writeback::{AuditEntry, AuditResult, Plan, signed_money};

/// How many audit entries the page lists (`/v1/audit` has them all).
pub const AUDIT_SHOWN: usize = 10;

/// The section.
pub fn section(h: &mut Html, plan: Option<&Plan>, audit: &[AuditEntry]) {
    h.raw("<section id=\"writeback\"><h2>Write-back</h2>");
    match plan {
        None => {
            h.raw("<p class=\"note\" id=\"no-plan\">No write-back plan yet. Products opt in ");
            h.raw("with <code>write_back = \"review\"</code> or <code>\"auto\"</code> in the ");
            h.raw("mapping file; <code>mpsync plan</code> then lists what would change.</p>");
        }
        Some(p) => {
            let auto = p.changes.iter().filter(|c| c.is_auto()).count();
            let held = p.changes.iter().filter(|c| c.held.is_some()).count();
            let money: f64 = p.changes.iter().filter_map(|c| c.monthly_amount).sum();
            h.raw("<p id=\"plan\"").attr("data-plan", p.id.to_string()).raw(">Plan ");
            h.raw("<b>#").display(p.id).raw("</b> of ").text(when(p.reconciliation_at));
            h.raw(": ").display(p.changes.len()).raw(" change(s)");
            if auto > 0 {
                h.raw(", ").display(auto).raw(" applied automatically");
            }
            if held > 0 {
                h.raw(", ").display(held).raw(" held for review");
            }
            h.raw(", moving ").text(signed_money(money)).raw(" per month");
            if !p.manual.is_empty() {
                h.raw("; ").display(p.manual.len()).raw(" line(s) to create by hand");
            }
            h.raw(".");
            if let Some(by) = p.superseded_by {
                h.raw(" <span class=\"dim\">Replaced by plan #").display(by).raw(".</span>");
            } else if !p.writable {
                h.raw(" <span class=\"dim\">The billing source is not written to: enter ");
                h.raw("the changes in the PSA by hand (<code>mpsync plan --csv</code>).</span>");
            } else if !p.changes.is_empty() {
                h.raw(" Review it with <code>mpsync plan</code>, apply it with <code>mpsync ");
                h.raw("apply ").display(p.id).raw("</code>.");
            }
            h.raw("</p>");
        }
    }
    if audit.is_empty() {
        h.raw("<p class=\"note\" id=\"no-audit\">Nothing has been applied yet.</p></section>");
        return;
    }
    h.raw("<table id=\"audit-table\"><thead><tr><th>When</th><th>Who</th>");
    h.raw("<th class=\"n\">Plan</th><th>Line</th><th>Account</th><th>Product</th>");
    h.raw("<th class=\"n\">From</th><th class=\"n\">To</th><th>Result</th><th>Why</th>");
    h.raw("</tr></thead><tbody>");
    for e in audit.iter().take(AUDIT_SHOWN) {
        let class = match e.result {
            AuditResult::Applied => "badge src-fresh",
            AuditResult::Skipped => "badge src-stale",
            AuditResult::Failed => "badge src-failing",
        };
        h.raw("<tr").attr("data-seq", e.seq.to_string()).raw("><td>").text(when(e.at));
        h.raw("</td><td>").text(&e.who).raw("</td><td class=\"n\">").display(e.plan);
        h.raw("</td><td>").text(&e.line).raw("</td><td>").text(&e.account);
        if let Some(name) = &e.account_name {
            h.raw(" <span class=\"dim\">").text(name).raw("</span>");
        }
        h.raw("</td><td>").text(&e.psa_product).raw("</td><td class=\"n\">");
        h.text(quantity(e.from)).raw("</td><td class=\"n\">").text(quantity(e.to));
        h.raw("</td><td><span").attr("class", class).raw(">").text(e.result.as_str());
        h.raw("</span></td><td>").text(e.reason.as_deref().unwrap_or("")).raw("</td></tr>");
    }
    h.raw("</tbody></table>");
    h.raw("<p class=\"note\"><a href=\"/v1/audit\">/v1/audit</a> and <code>mpsync audit</code> ");
    h.raw("list every attempt.</p></section>");
}
