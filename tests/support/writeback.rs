//! Helpers for the write-back tests: plans built straight from the simulated ConnectWise's
//! additions (as the planner would write them), a config for the real binary against an
//! in-process simulator, and `mpsync apply` / `mpsync audit` runs with a fixed operator.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use chrono::Utc;
use mpsync::model::LineRef;
use mpsync::reconcile::Status;
use mpsync::writeback::{AuditEntry, AuditQuery, Change, JournalEntry, Plan, WriteBackMode};
use mpsync_sim::connectwise::{BillingData, CwAddition};

use crate::support::common::mpsync;
use crate::support::sync::Sim;

/// The route patterns of the write path.
pub const PATCH: &str = "PATCH /finance/agreements/{id}/additions/{id}";
pub const GET_ONE: &str = "GET /finance/agreements/{id}/additions/{id}";

/// Additions that count (open agreement, billable, in effect, not cancelled), by id.
pub fn counted_additions(data: &BillingData) -> Vec<CwAddition> {
    let mut out: Vec<CwAddition> = data
        .additions
        .iter()
        .filter(|a| {
            let Some(ag) = data.agreements.iter().find(|g| g.id == a.agreement_id) else {
                return false;
            };
            !ag.cancelled_flag
                && ag.agreement_status.as_deref().is_none_or(|s| s == "Active")
                && a.bill_customer == "Billable"
                && a.cancelled_date.is_none()
                && a.effective_date.as_deref().is_none_or(|d| d < "2030")
        })
        .cloned()
        .collect();
    out.sort_by_key(|a| a.id);
    out
}

/// The line of an addition.
pub fn line_of(a: &CwAddition) -> LineRef {
    LineRef::Connectwise { agreement: a.agreement_id, addition: a.id }
}

/// A ConnectWise plan (id 0: the store numbers it) changing each addition to its quantity
/// plus the given step, in review mode, cap 25; accounts from `data`'s agreements.
pub fn plan_of(data: &BillingData, changes: &[(&CwAddition, f64)]) -> Plan {
    let now = Utc::now();
    Plan {
        id: 0,
        created_at: now,
        reconciliation_at: now,
        vendor_run: Some(1),
        billing_run: Some(2),
        billing: "connectwise".into(),
        writable: true,
        max_changes_per_apply: 25,
        changes: changes
            .iter()
            .enumerate()
            .map(|(i, (a, step))| {
                let line = line_of(a);
                let (from, to) = (a.quantity, a.quantity + step);
                let company = data
                    .agreements
                    .iter()
                    .find(|g| g.id == a.agreement_id)
                    .map(|g| g.company.clone())
                    .expect("the addition's agreement");
                Change {
                    row: i as u32 + 1,
                    account: company.id.to_string(),
                    account_name: company.name.clone(),
                    psa_product: a.product.identifier.clone().unwrap_or_default(),
                    products: vec!["CloudFilter".into()],
                    status: if to > from { Status::UnderBilled } else { Status::OverBilled },
                    line_key: line.key(),
                    line,
                    from,
                    to,
                    vendor_quantity: to as u64,
                    unit_price: Some(a.unit_price),
                    monthly_amount: Some(step * a.unit_price),
                    reason: format!("Mailprotector counts {to}; the line bills {from}"),
                    mode: WriteBackMode::Review,
                    held: None,
                    vendor_run: Some(1),
                    billing_run: Some(2),
                }
            })
            .collect(),
        not_planned: Vec::new(),
        manual: Vec::new(),
        superseded_by: None,
    }
}

/// Saves `plan` into the store in `state_dir` (no daemon may hold it) and returns its id.
pub fn save_plan(sim: &Sim, state_dir: &Path, plan: Plan) -> u64 {
    let store = sim.open_store(state_dir);
    let saved = sim.block_on(store.save_plan(plan)).expect("save the plan");
    saved.plan().id
}

/// The apply journal of plan `plan` in the store in `state_dir` (no process may hold it).
pub fn journal(sim: &Sim, state_dir: &Path, plan: u64) -> BTreeMap<u32, JournalEntry> {
    let store = sim.open_store(state_dir);
    sim.block_on(store.apply_journal(plan)).expect("read the journal")
}

/// Every audit entry in the store in `state_dir`, newest first (no process may hold it).
pub fn audit(sim: &Sim, state_dir: &Path) -> Vec<AuditEntry> {
    let store = sim.open_store(state_dir);
    let q = AuditQuery { limit: 1000, plan: None };
    sim.block_on(store.audit(q)).expect("read the audit log")
}

/// The config `mpsync sim --keys-dir` writes for `sim` into `dir`, with both polls once a year
/// (only the daemon's start-up catch-up and `POST /v1/sync` start runs), the ConnectWise
/// timeout set to `cw_timeout`, and room for every planted change in one apply.
pub fn sim_config(sim: &Sim, dir: &Path, cw_timeout: &str) -> PathBuf {
    let config =
        mpsync::commands::write_sim_config(dir, sim.control(), &sim.base_url(), Some(1000.0))
            .expect("write the config");
    crate::support::e2e::pin_for_test(&config, 1);
    let mut t: toml::Table = std::fs::read_to_string(&config).unwrap().parse().unwrap();
    let cw = t["billing"]["connectwise"].as_table().cloned().unwrap();
    let mut cw = cw;
    cw.insert("timeout".into(), cw_timeout.into());
    t["billing"].as_table_mut().unwrap().insert("connectwise".into(), toml::Value::Table(cw));
    let mut wb = toml::Table::new();
    wb.insert("max_changes_per_apply".into(), 1000.into());
    t.insert("write_back".into(), toml::Value::Table(wb));
    std::fs::write(&config, toml::to_string(&t).unwrap()).unwrap();
    config
}

/// The state directory of a config written by [`sim_config`].
pub fn state_dir_of(config: &Path) -> PathBuf {
    let t: toml::Table = std::fs::read_to_string(config).unwrap().parse().unwrap();
    PathBuf::from(t["daemon"]["state_dir"].as_str().unwrap())
}

/// `mpsync --config CONFIG <args>` run by operator `alice` (via sudo, as root).
pub fn cli(config: &Path, args: &[&str]) -> Command {
    let mut cmd = mpsync();
    cmd.arg("--config").arg(config).args(args);
    cmd.env("USER", "root").env("SUDO_USER", "alice");
    cmd
}

/// Runs `cmd` to completion: exit code, stdout, stderr.
pub fn output(mut cmd: Command) -> (i32, String, String) {
    let out = cmd.output().expect("run mpsync");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Opts every mapped product of the mapping file `mapping` in with `write_back = mode`.
pub fn opt_in(mapping: &Path, mode: &str) {
    let mut t: toml::Table = std::fs::read_to_string(mapping).unwrap().parse().unwrap();
    let products = t.get_mut("products").and_then(toml::Value::as_table_mut).expect("[products]");
    for (_, p) in products.iter_mut() {
        p.as_table_mut().unwrap().insert("write_back".into(), mode.into());
    }
    std::fs::write(mapping, toml::to_string(&t).unwrap()).unwrap();
}

/// The route patterns of the Autotask write path.
pub const AT_POST: &str = "POST /ContractServiceAdjustments";
pub const AT_UNITS: &str = "POST /ContractServiceUnits/query";

/// One simulated Autotask contract service a write-back can change: it bills the same units
/// today and from `effective` (the day a write takes effect), on an active contract of an
/// active company.
#[derive(Debug, Clone)]
pub struct AtLine {
    pub contract: u64,
    pub service: u64,
    pub contract_service: u64,
    pub company: u64,
    pub units: f64,
}

impl AtLine {
    pub fn line(&self) -> LineRef {
        LineRef::Autotask {
            contract: self.contract as u32,
            service: self.service as u32,
            contract_service: self.contract_service,
        }
    }
}

/// The contract services of `data` whose units are the same today and on `effective`,
/// by id; and (second) those whose units on `effective` differ from today's (a change
/// already scheduled for the next period).
pub fn at_lines(
    data: &mpsync_sim::autotask::AtData,
    effective: chrono::NaiveDate,
) -> (Vec<AtLine>, Vec<AtLine>) {
    let (mut same, mut scheduled) = (Vec::new(), Vec::new());
    let today = data.today;
    let rows = |e: &str| data.rows.get(e).cloned().unwrap_or_default();
    let contracts = rows("Contracts");
    let companies = rows("Companies");
    for cs in rows("ContractServices") {
        let id = cs["id"].as_u64().unwrap();
        let contract = cs["contractID"].as_u64().unwrap();
        let Some(c) = contracts.iter().find(|c| c["id"] == contract) else { continue };
        let company = c["companyID"].as_u64().unwrap();
        let Some(co) = companies.iter().find(|co| co["id"] == company) else { continue };
        if c["status"] != 1 || !c["endDate"].as_str().unwrap().starts_with("2099") {
            continue;
        }
        if co["isActive"] != true || co["companyType"] != 1 {
            continue;
        }
        let (Some(now), Some(then)) = (
            mpsync_sim::autotask::adjust::units_on(data, id, today),
            mpsync_sim::autotask::adjust::units_on(data, id, effective),
        ) else {
            continue;
        };
        let line = AtLine {
            contract,
            service: cs["serviceID"].as_u64().unwrap(),
            contract_service: id,
            company,
            units: now,
        };
        if now == then { same.push(line) } else { scheduled.push(line) }
    }
    (same, scheduled)
}

/// An Autotask plan (id 0) changing each line to its units plus the given step, in review
/// mode, cap 25.
pub fn at_plan_of(changes: &[(&AtLine, f64)]) -> Plan {
    let now = Utc::now();
    Plan {
        id: 0,
        created_at: now,
        reconciliation_at: now,
        vendor_run: Some(1),
        billing_run: Some(2),
        billing: "autotask".into(),
        writable: true,
        max_changes_per_apply: 25,
        changes: changes
            .iter()
            .enumerate()
            .map(|(i, (l, step))| {
                let line = l.line();
                let (from, to) = (l.units, l.units + step);
                Change {
                    row: i as u32 + 1,
                    account: l.company.to_string(),
                    account_name: Some(format!("Company {}", l.company)),
                    psa_product: l.service.to_string(),
                    products: vec!["CloudFilter".into()],
                    status: if to > from { Status::UnderBilled } else { Status::OverBilled },
                    line_key: line.key(),
                    line,
                    from,
                    to,
                    vendor_quantity: to as u64,
                    unit_price: Some(1.0),
                    monthly_amount: Some(*step),
                    reason: format!("Mailprotector counts {to}; the line bills {from}"),
                    mode: WriteBackMode::Review,
                    held: None,
                    vendor_run: Some(1),
                    billing_run: Some(2),
                }
            })
            .collect(),
        not_planned: Vec::new(),
        manual: Vec::new(),
        superseded_by: None,
    }
}

/// The config `mpsync sim --psa autotask --keys-dir` writes for `sim` into `dir`, pinned for
/// tests, the Autotask timeout set to `timeout`, room for every change in one apply.
pub fn at_sim_config(sim: &Sim, dir: &Path, timeout: &str) -> PathBuf {
    let config = mpsync::commands::write_sim_config_for(
        dir,
        sim.control(),
        &sim.base_url(),
        Some(1000.0),
        mpsync::cli::Psa::Autotask,
    )
    .expect("write the config");
    crate::support::e2e::pin_for_test(&config, 1);
    let mut t: toml::Table = std::fs::read_to_string(&config).unwrap().parse().unwrap();
    let mut at = t["billing"]["autotask"].as_table().cloned().unwrap();
    at.insert("timeout".into(), timeout.into());
    t["billing"].as_table_mut().unwrap().insert("autotask".into(), toml::Value::Table(at));
    let mut wb = toml::Table::new();
    wb.insert("max_changes_per_apply".into(), 1000.into());
    t.insert("write_back".into(), toml::Value::Table(wb));
    std::fs::write(&config, toml::to_string(&t).unwrap()).unwrap();
    config
}

/// The route patterns of the HaloPSA write path.
pub const HALO_GET: &str = "GET /RecurringInvoice/{id}";
pub const HALO_UPDATELINES: &str = "POST /RecurringInvoice/updatelines";
pub const HALO_REPOST: &str = "POST /RecurringInvoice";

/// One simulated HaloPSA recurring-invoice line a write-back may change: a manual quantity,
/// active and in date, on an enabled invoice in date of an active client, with at least one
/// other line on the same invoice (so a write that disturbs another line can be seen).
#[derive(Debug, Clone)]
pub struct HaloLine {
    pub invoice: i64,
    pub line: i64,
    pub item: i64,
    pub client: i64,
    pub qty: f64,
    pub price: f64,
}

impl HaloLine {
    pub fn line_ref(&self) -> LineRef {
        LineRef::Halopsa {
            invoice: self.invoice as i32,
            line: self.line as i32,
            item: self.item as i32,
            computed: false,
        }
    }
}

/// The writable lines of `data` (see [`HaloLine`]), by line id; at most one per invoice, so
/// that changes of one plan never share an invoice.
pub fn halo_lines(data: &mpsync_sim::halopsa::HaloData) -> Vec<HaloLine> {
    use mpsync_sim::halopsa::Resource;
    let today = data.today.format("%Y-%m-%d").to_string();
    let in_date = |v: &serde_json::Value, start: &str, end: &str| {
        v[start].as_str().is_none_or(|s| s[..10] <= *today)
            && v[end].as_str().is_none_or(|e| e[..10] >= *today)
    };
    let mut out = Vec::new();
    for h in data.rows.get(&Resource::RecurringInvoice).into_iter().flatten() {
        let client = h["client_id"].as_i64().unwrap_or(0);
        let active = data.row(Resource::Client, client).is_some_and(|c| c["inactive"] == false);
        if h["disabled"] != false || !in_date(h, "startdate", "enddate") || !active {
            continue;
        }
        let lines = h["lines"].as_array().cloned().unwrap_or_default();
        if lines.len() < 2 {
            continue;
        }
        let pick = lines.iter().find(|l| {
            l["recurring_invoice_quantity_type"] == 0
                && l["isinactive"] == false
                && l["_itemid"].as_i64().unwrap_or(0) != 0
                && in_date(l, "startdate", "enddate")
        });
        if let Some(l) = pick {
            out.push(HaloLine {
                invoice: h["id"].as_i64().unwrap(),
                line: l["id"].as_i64().unwrap(),
                item: l["_itemid"].as_i64().unwrap(),
                client,
                qty: l["qty_order"].as_f64().unwrap(),
                price: l["unit_price"].as_f64().unwrap_or(0.0),
            });
        }
    }
    out.sort_by_key(|l| l.line);
    out
}

/// A HaloPSA plan (id 0) changing each line to its quantity plus the given step, in review
/// mode, cap 25.
pub fn halo_plan_of(changes: &[(&HaloLine, f64)]) -> Plan {
    let now = Utc::now();
    Plan {
        id: 0,
        created_at: now,
        reconciliation_at: now,
        vendor_run: Some(1),
        billing_run: Some(2),
        billing: "halopsa".into(),
        writable: true,
        max_changes_per_apply: 25,
        changes: changes
            .iter()
            .enumerate()
            .map(|(i, (l, step))| {
                let line = l.line_ref();
                let (from, to) = (l.qty, l.qty + step);
                Change {
                    row: i as u32 + 1,
                    account: l.client.to_string(),
                    account_name: Some(format!("Client {}", l.client)),
                    psa_product: l.item.to_string(),
                    products: vec!["CloudFilter".into()],
                    status: if to > from { Status::UnderBilled } else { Status::OverBilled },
                    line_key: line.key(),
                    line,
                    from,
                    to,
                    vendor_quantity: to as u64,
                    unit_price: Some(l.price),
                    monthly_amount: Some(step * l.price),
                    reason: format!("Mailprotector counts {to}; the line bills {from}"),
                    mode: WriteBackMode::Review,
                    held: None,
                    vendor_run: Some(1),
                    billing_run: Some(2),
                }
            })
            .collect(),
        not_planned: Vec::new(),
        manual: Vec::new(),
        superseded_by: None,
    }
}

/// The config `mpsync sim --psa halopsa --keys-dir` writes for `sim` into `dir`, pinned for
/// tests, the HaloPSA timeout set to `timeout`, room for every change in one apply.
pub fn halo_sim_config(sim: &Sim, dir: &Path, timeout: &str) -> PathBuf {
    let config = mpsync::commands::write_sim_config_for(
        dir,
        sim.control(),
        &sim.base_url(),
        Some(1000.0),
        mpsync::cli::Psa::Halopsa,
    )
    .expect("write the config");
    crate::support::e2e::pin_for_test(&config, 1);
    let mut t: toml::Table = std::fs::read_to_string(&config).unwrap().parse().unwrap();
    let mut h = t["billing"]["halopsa"].as_table().cloned().unwrap();
    h.insert("timeout".into(), timeout.into());
    t["billing"].as_table_mut().unwrap().insert("halopsa".into(), toml::Value::Table(h));
    let mut wb = toml::Table::new();
    wb.insert("max_changes_per_apply".into(), 1000.into());
    t.insert("write_back".into(), toml::Value::Table(wb));
    std::fs::write(&config, toml::to_string(&t).unwrap()).unwrap();
    config
}
