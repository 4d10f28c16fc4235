//! A plan for people and scripts, shared by `mpsync plan` and `GET /v1/plan`: the JSON
//! document (the [`Plan`] plus its `state`), the CSV of its changes (what an operator on CSV
//! billing enters by hand), an aligned table, and the `status`/`account` filters.

use serde_json::{Value, json};

use super::{Change, ManualStep, NotPlanned, Plan};
use crate::reconcile::{Status, csv_field, money, quantity};

/// What is said before the first plan.
pub const NO_PLAN: &str = "no plan yet: a plan is built after each reconciliation, once the \
                           first vendor and billing runs complete; products are planned only \
                           when the mapping file opts them in (write_back = \"review\" or \
                           \"auto\")";

/// The CSV header of [`csv`], in column order.
pub const CSV_COLUMNS: [&str; 12] = [
    "row",
    "account",
    "account_name",
    "psa_product",
    "line",
    "from",
    "to",
    "monthly_amount",
    "status",
    "reason",
    "mode",
    "held",
];

/// Which changes, not-planned items and manual steps to show; an empty filter shows all.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PlanFilter {
    /// Keep items with any of these statuses (a manual step's is `unbilled`).
    pub statuses: Vec<Status>,
    /// Keep items of this PSA account (id, or name ignoring case).
    pub account: Option<String>,
}

impl PlanFilter {
    fn keeps(&self, status: Status, account: &str, name: Option<&str>) -> bool {
        let status_ok = self.statuses.is_empty() || self.statuses.contains(&status);
        let account_ok = self
            .account
            .as_deref()
            .is_none_or(|a| account == a || name.is_some_and(|n| n.eq_ignore_ascii_case(a)));
        status_ok && account_ok
    }

    /// Whether the filter keeps everything.
    pub fn is_empty(&self) -> bool {
        self.statuses.is_empty() && self.account.is_none()
    }

    /// `plan` with only the items that pass (rows keep their numbers).
    pub fn apply(&self, plan: &Plan) -> Plan {
        let change = |c: &&Change| self.keeps(c.status, &c.account, c.account_name.as_deref());
        let not = |n: &&NotPlanned| self.keeps(n.status, &n.account, n.account_name.as_deref());
        let manual =
            |m: &&ManualStep| self.keeps(Status::Unbilled, &m.account, m.account_name.as_deref());
        Plan {
            changes: plan.changes.iter().filter(change).cloned().collect(),
            not_planned: plan.not_planned.iter().filter(not).cloned().collect(),
            manual: plan.manual.iter().filter(manual).cloned().collect(),
            ..plan.clone()
        }
    }
}

/// `current`, or `superseded` once a newer plan replaced it (it can no longer be applied).
pub fn state(plan: &Plan) -> &'static str {
    if plan.superseded_by.is_some() { "superseded" } else { "current" }
}

/// The JSON document: the filtered plan with `state` and `filters`, or, before the first
/// plan, empty lists with `"state": "none"` and a note.
pub fn json(plan: Option<&Plan>, filter: &PlanFilter) -> Value {
    let filters = json!({
        "status": filter.statuses.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
        "account": filter.account,
    });
    let Some(plan) = plan else {
        return json!({
            "id": null,
            "state": "none",
            "changes": [],
            "not_planned": [],
            "manual": [],
            "filters": filters,
            "note": NO_PLAN,
        });
    };
    let mut doc = serde_json::to_value(filter.apply(plan)).unwrap_or_else(|_| json!({}));
    doc["state"] = json!(state(plan));
    doc["filters"] = filters;
    doc
}

/// The changes as CSV: a header row, then one line per change (CRLF, RFC 4180).
pub fn csv(plan: Option<&Plan>, filter: &PlanFilter) -> String {
    let mut out = CSV_COLUMNS.join(",");
    out.push_str("\r\n");
    let Some(plan) = plan else { return out };
    for c in filter.apply(plan).changes {
        let fields = [
            c.row.to_string(),
            c.account.clone(),
            c.account_name.clone().unwrap_or_default(),
            c.psa_product.clone(),
            c.line_key.clone(),
            quantity(c.from),
            quantity(c.to),
            c.monthly_amount.map(money).unwrap_or_default(),
            c.status.to_string(),
            c.reason.clone(),
            c.mode.as_str().to_string(),
            c.held.clone().unwrap_or_default(),
        ];
        let line: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
        out.push_str(&line.join(","));
        out.push_str("\r\n");
    }
    out
}

/// `+7.00`, `-3.50`.
fn signed(x: f64) -> String {
    if x > 0.0 { format!("+{}", money(x)) } else { money(x) }
}

fn who(account: &str, name: Option<&str>) -> String {
    match name {
        Some(n) => format!("{account} {n}"),
        None => account.to_string(),
    }
}

/// Lines of cells, left-aligned in columns two spaces apart.
fn aligned(lines: &[Vec<String>]) -> String {
    let cols = lines.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|i| {
            lines.iter().filter_map(|l| l.get(i)).map(|c| c.chars().count()).max().unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for l in lines {
        let mut line = String::new();
        for (i, cell) in l.iter().enumerate() {
            line.push_str(cell);
            if i + 1 < l.len() {
                line.push_str(&" ".repeat(widths[i] - cell.chars().count() + 2));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// The plan as text for a terminal: what it is based on, its changes (each with its reason
/// and, when held, why), what is not planned and how to fix it, the manual steps, and how to
/// apply it.
pub fn table(plan: &Plan, filter: &PlanFilter) -> String {
    let at =
        |t: &chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let run = |id: Option<u64>| id.map_or("none".to_string(), |i| i.to_string());
    let mut out = format!(
        "plan {} ({}), built from the reconciliation of {} (vendor run {}, billing run {}); first \
         built {}\nbilling: {}; at most {} changes per apply\n",
        plan.id,
        match plan.superseded_by {
            Some(n) => format!("superseded by plan {n}"),
            None => "current".to_string(),
        },
        at(&plan.reconciliation_at),
        run(plan.vendor_run),
        run(plan.billing_run),
        at(&plan.created_at),
        plan.billing,
        plan.max_changes_per_apply,
    );
    let shown = filter.apply(plan);
    if !filter.is_empty() {
        out.push_str(&format!(
            "filtered: {} of {} changes, {} of {} not planned, {} of {} manual steps\n",
            shown.changes.len(),
            plan.changes.len(),
            shown.not_planned.len(),
            plan.not_planned.len(),
            shown.manual.len(),
            plan.manual.len()
        ));
    }
    out.push('\n');
    out.push_str(&changes_text(&shown.changes));
    if plan.changes.is_empty() && plan.not_planned.is_empty() && plan.manual.is_empty() {
        out.push_str(
            "nothing to correct: the products that opt in (write_back = \"review\" or \"auto\" in \
             the mapping file) agree with the PSA, or none opts in yet; `mpsync check` shows each \
             product's policy\n",
        );
    }
    if !shown.not_planned.is_empty() {
        out.push_str(&format!("\nnot planned ({}):\n", shown.not_planned.len()));
        for n in &shown.not_planned {
            out.push_str(&format!(
                "  {}  {}  ({}): {}\n",
                who(&n.account, n.account_name.as_deref()),
                n.psa_product,
                n.status,
                n.reason
            ));
            for line in n.stanza.iter().flat_map(|s| s.lines()) {
                out.push_str(&format!("      {line}\n"));
            }
        }
    }
    if !shown.manual.is_empty() {
        out.push_str(&format!(
            "\nmanual steps ({}), never written by mpsync:\n",
            shown.manual.len()
        ));
        for m in &shown.manual {
            out.push_str(&format!(
                "  {}  {}: bill {} — {}\n",
                who(&m.account, m.account_name.as_deref()),
                m.psa_product,
                m.quantity,
                m.reason
            ));
        }
    }
    out.push('\n');
    out.push_str(&how_to_apply(plan));
    out.push('\n');
    out
}

fn changes_text(changes: &[Change]) -> String {
    if changes.is_empty() {
        return "no changes\n".to_string();
    }
    let header = ["ROW", "ACCOUNT", "PSA PRODUCT", "LINE", "FROM → TO", "MONTHLY", "MODE"];
    let mut lines: Vec<Vec<String>> = vec![header.iter().map(|s| s.to_string()).collect()];
    let mut notes = Vec::new();
    for c in changes {
        lines.push(vec![
            c.row.to_string(),
            who(&c.account, c.account_name.as_deref()),
            c.psa_product.clone(),
            c.line_key.clone(),
            format!("{} → {}", quantity(c.from), quantity(c.to)),
            c.monthly_amount.map_or("?".to_string(), signed),
            match (&c.held, c.mode.as_str()) {
                (Some(_), mode) => format!("{mode}, held"),
                (None, mode) => mode.to_string(),
            },
        ]);
        let mut note = format!("  {}: {}", c.row, c.reason);
        if let Some(h) = &c.held {
            note.push_str(&format!("\n     held: {h}"));
        }
        notes.push(note);
    }
    let total: f64 = changes.iter().filter_map(|c| c.monthly_amount).sum();
    let unpriced = changes.iter().filter(|c| c.monthly_amount.is_none()).count();
    let mut out =
        format!("{} change{}:\n", changes.len(), if changes.len() == 1 { "" } else { "s" });
    out.push_str(&aligned(&lines));
    out.push_str("why:\n");
    for n in notes {
        out.push_str(&n);
        out.push('\n');
    }
    out.push_str(&format!("the changes move {} a month", signed(total)));
    if unpriced > 0 {
        out.push_str(&format!(" ({unpriced} without a unit price)"));
    }
    out.push('\n');
    out
}

/// The last line: how to apply the plan, or why it cannot be.
pub fn how_to_apply(plan: &Plan) -> String {
    if let Some(newer) = plan.superseded_by {
        return format!(
            "plan {} was replaced by plan {newer} (a newer reconciliation changed what to do) and \
             can no longer be applied: see `mpsync plan`",
            plan.id
        );
    }
    if !plan.writable {
        return if plan.billing == "csv" {
            "enter these changes in your PSA by hand (`mpsync plan --csv` lists them); apply is \
             not available for CSV billing"
                .to_string()
        } else {
            format!(
                "billing source {:?} has no write path: enter these changes in your PSA by hand",
                plan.billing
            )
        };
    }
    if plan.changes.is_empty() {
        return "nothing to apply".to_string();
    }
    let mut out =
        format!("to apply: mpsync apply {} (add --dry-run to see the requests first)", plan.id);
    if plan.billing == "autotask" {
        out.push_str(
            "; in Autotask each change is one contract service adjustment of (new − billed) \
             units, effective on the first day of next month, or today with \
             billing.autotask.adjustment_effective = \"today\" (for contracts that prorate)",
        );
    }
    if plan.changes.len() > plan.max_changes_per_apply as usize {
        out.push_str(&format!(
            "; {} changes, at most {} per apply: run it again for the rest",
            plan.changes.len(),
            plan.max_changes_per_apply
        ));
    }
    out
}

#[cfg(test)]
#[path = "view_tests.rs"]
mod tests;
