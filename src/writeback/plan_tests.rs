//! Planner tests: reconciliations computed by the real engine from small snapshots show each
//! rule (what becomes a change, held, not planned or a manual step, and what never is), and a
//! property test over arbitrary rows checks the laws every plan obeys.

use std::path::Path;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use proptest::prelude::*;

use super::*;
use crate::config::mapping::LinePreference;
use crate::model::{Account, BilledLine, BilledSnapshot, CustomerUsage, UsageSnapshot};
use crate::reconcile::{self, Evidence, Inputs, Observation, Settings, Since, SourceStatus};

fn at(hour: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 27, hour, 0, 0).unwrap()
}

fn cw(agreement: u64, addition: u64) -> LineRef {
    LineRef::Connectwise { agreement, addition }
}

/// A counted line of `account` billing `qty` of MP-CF at 3.50 (or `price`).
fn line(account: &str, qty: f64, line: Option<LineRef>) -> BilledLine {
    BilledLine {
        account_id: account.into(),
        product_id: "MP-CF".into(),
        quantity: qty,
        unit_price: Some(3.5),
        counted: true,
        note: None,
        source_ref: format!("agreement of {account}"),
        line,
    }
}

/// Customer `id` counts `n` CloudFilter users.
fn cf(id: u64, n: u64) -> CustomerUsage {
    CustomerUsage { id, name: format!("Customer {id}"), counts: [("CloudFilter".into(), n)].into() }
}

/// Customers 1..=4 map to accounts A1..A4; CloudFilter is billed as MP-CF with `policy`
/// (TOML lines under its table), plus `extra` TOML.
fn mapping(policy: &str, extra: &str) -> Mapping {
    let text = format!(
        "[customers]\n1 = \"A1\"\n2 = \"A2\"\n3 = \"A3\"\n4 = \"A4\"\n\
         [products.CloudFilter]\npsa_product = \"MP-CF\"\n{policy}\n{extra}"
    );
    Mapping::parse(Path::new("mapping.toml"), &text).expect("valid test mapping")
}

struct World {
    usage: Vec<CustomerUsage>,
    lines: Vec<BilledLine>,
    billing: SourceStatus,
    debounce: u32,
}

impl World {
    fn new(usage: Vec<CustomerUsage>, lines: Vec<BilledLine>) -> World {
        World { usage, lines, billing: SourceStatus::default(), debounce: 1 }
    }

    fn reconcile(&self, m: &Mapping) -> Reconciliation {
        let usage = UsageSnapshot { run_id: 7, observed_at: at(9), customers: self.usage.clone() };
        let billed = BilledSnapshot {
            run_id: 8,
            observed_at: at(9),
            accounts: (1..=4)
                .map(|i| Account { id: format!("A{i}"), name: format!("Account {i}") })
                .collect(),
            lines: self.lines.clone(),
        };
        reconcile::compute(&Inputs {
            usage: Some(&usage),
            vendor: SourceStatus::default(),
            billed: Some(&billed),
            billing: self.billing.clone(),
            mapping: m,
            settings: Settings { max_age: Duration::from_secs(7200), debounce_runs: self.debounce },
            now: at(10),
            previous_at: None,
            previous: None,
        })
    }

    fn plan(&self, m: &Mapping) -> Plan {
        build(&self.reconcile(m), m, "connectwise", true, 25, at(11))
    }
}

const REVIEW: &str = "write_back = \"review\"";

#[test]
fn an_under_billed_row_becomes_one_change_of_its_line_with_money_reason_and_evidence() {
    let w = World::new(vec![cf(1, 42)], vec![line("A1", 40.0, Some(cw(12, 345)))]);
    let plan = w.plan(&mapping(REVIEW, ""));
    assert_eq!(
        (plan.vendor_run, plan.billing_run, plan.reconciliation_at),
        (Some(7), Some(8), at(10))
    );
    assert_eq!(
        (plan.created_at, plan.billing.as_str(), plan.writable),
        (at(11), "connectwise", true)
    );
    assert_eq!(plan.max_changes_per_apply, 25);
    assert_eq!(plan.changes.len(), 1, "{plan:#?}");
    let c = &plan.changes[0];
    assert_eq!((c.row, c.account.as_str(), c.psa_product.as_str()), (1, "A1", "MP-CF"));
    assert_eq!(c.account_name.as_deref(), Some("Account 1"));
    assert_eq!((c.line.clone(), c.line_key.as_str()), (cw(12, 345), "cw:12/345"));
    assert_eq!((c.from, c.to, c.vendor_quantity), (40.0, 42.0, 42));
    assert_eq!((c.unit_price, c.monthly_amount), (Some(3.5), Some(7.0)));
    assert_eq!(c.reason, "Mailprotector counts 42 users of CloudFilter; the line bills 40");
    assert_eq!(
        (c.status, c.mode, c.held.as_deref()),
        (Status::UnderBilled, WriteBackMode::Review, None)
    );
    assert_eq!((c.vendor_run, c.billing_run), (Some(7), Some(8)));
    assert!(!c.is_auto(), "review waits for `mpsync apply`");
    assert!(plan.not_planned.is_empty() && plan.manual.is_empty());
}

#[test]
fn a_drop_above_max_decrease_percent_is_held_with_its_reason_and_never_auto() {
    // 40 → 35 is 12.5%: allowed. 40 → 30 is 25%: held under the default 20%.
    let lines = vec![line("A1", 40.0, Some(cw(1, 1))), line("A2", 40.0, Some(cw(1, 2)))];
    let w = World::new(vec![cf(1, 35), cf(2, 30)], lines);
    let plan = w.plan(&mapping("write_back = \"auto\"", ""));
    let [small, big] = plan.changes.as_slice() else { panic!("{plan:#?}") };
    assert_eq!((small.from, small.to, small.status), (40.0, 35.0, Status::OverBilled));
    assert_eq!((small.held.as_deref(), small.is_auto()), (None, true));
    assert_eq!(small.monthly_amount, Some(-17.5));
    assert_eq!((big.from, big.to), (40.0, 30.0));
    assert_eq!(
        big.held.as_deref(),
        Some(
            "a drop of 25% (40 → 30) is more than max_decrease_percent 20%: check it, then apply \
             it with `mpsync apply` (the daemon never applies it on its own)"
        )
    );
    assert!(!big.is_auto(), "held even under auto");
    // A looser guard rail lets it through.
    let loose = w.plan(&mapping("write_back = \"auto\"\nmax_decrease_percent = 25", ""));
    assert!(loose.changes.iter().all(|c| c.held.is_none()), "{loose:#?}");
}

#[test]
fn billed_without_usage_goes_to_zero_and_is_held_unless_drops_are_allowed() {
    let w = World::new(vec![cf(1, 0)], vec![line("A1", 5.0, Some(cw(3, 4)))]);
    let plan = w.plan(&mapping(REVIEW, ""));
    let c = &plan.changes[0];
    assert_eq!(
        (c.status, c.from, c.to, c.vendor_quantity),
        (Status::BilledWithoutUsage, 5.0, 0.0, 0)
    );
    assert_eq!(c.reason, "Mailprotector counts no users of CloudFilter; the line bills 5");
    assert!(c.held.as_deref().unwrap().starts_with("a drop of 100% (5 → 0)"), "{c:?}");
    let all = w.plan(&mapping("write_back = \"review\"\nmax_decrease_percent = 100", ""));
    assert_eq!(all.changes[0].held, None);
}

#[test]
fn min_quantity_is_a_floor_and_a_change_it_cancels_is_listed_as_not_planned() {
    let lines = vec![line("A1", 12.0, Some(cw(1, 1))), line("A2", 10.0, Some(cw(1, 2)))];
    let w = World::new(vec![cf(1, 3), cf(2, 3)], lines);
    let plan = w.plan(&mapping("write_back = \"review\"\nmin_quantity = 10", ""));
    assert_eq!(plan.changes.len(), 1, "{plan:#?}");
    let c = &plan.changes[0];
    assert_eq!((c.account.as_str(), c.from, c.to), ("A1", 12.0, 10.0));
    assert_eq!(
        c.reason,
        "Mailprotector counts 3 users of CloudFilter; the line bills 12; min_quantity 10 keeps \
         the total at it"
    );
    let [n] = plan.not_planned.as_slice() else { panic!("{plan:#?}") };
    assert_eq!((n.account.as_str(), n.status), ("A2", Status::OverBilled));
    assert_eq!(
        n.reason,
        "min_quantity 10 keeps cw:1/2 at 10: nothing to change (Mailprotector counts 3 users)"
    );
}

#[test]
fn a_product_whose_policy_is_off_is_never_planned() {
    let w = World::new(
        vec![cf(1, 42), cf(2, 0), cf(3, 7)],
        vec![line("A1", 40.0, Some(cw(1, 1))), line("A2", 5.0, Some(cw(1, 2)))],
    );
    for policy in ["", "write_back = \"off\"\nmin_quantity = 3"] {
        let plan = w.plan(&mapping(policy, ""));
        assert!(plan.changes.is_empty() && plan.not_planned.is_empty() && plan.manual.is_empty());
    }
}

#[test]
fn an_unbilled_row_is_a_manual_step_never_a_change() {
    let w = World::new(vec![cf(3, 7)], vec![]);
    let plan = w.plan(&mapping(REVIEW, ""));
    assert!(plan.changes.is_empty(), "{plan:#?}");
    let [m] = plan.manual.as_slice() else { panic!("{plan:#?}") };
    assert_eq!((m.account.as_str(), m.psa_product.as_str(), m.quantity), ("A3", "MP-CF", 7));
    assert_eq!(m.products, ["CloudFilter"]);
    assert!(m.reason.contains("add one in the PSA (mpsync never creates lines)"), "{m:?}");
}

#[test]
fn stale_pending_suppressed_tolerated_matching_and_unmapped_rows_are_never_planned() {
    let lines = vec![
        line("A1", 40.0, Some(cw(1, 1))), // under by 2, but debounced, stale or suppressed
        line("A2", 10.0, Some(cw(1, 2))), // match
        line("A3", 20.0, Some(cw(1, 3))), // within tolerance (1)
    ];
    let usage = vec![
        cf(1, 42),
        cf(2, 10),
        cf(3, 21),
        cf(9, 5), // unmapped customer
        CustomerUsage { id: 2, name: "Customer 2".into(), counts: [("XtraMail".into(), 3)].into() },
    ];
    let policy = "write_back = \"auto\"\ntolerance = 1";
    // Debounce 2: the discrepancy is still pending.
    let mut w = World::new(usage, lines);
    w.debounce = 2;
    let plan = w.plan(&mapping(policy, ""));
    assert!(plan.changes.is_empty() && plan.not_planned.is_empty(), "pending: {plan:#?}");
    // The billing input failed: every service row is stale.
    w.debounce = 1;
    w.billing = SourceStatus { last_run_failed: true, last_error: Some("503".into()) };
    let plan = w.plan(&mapping(policy, ""));
    assert!(plan.changes.is_empty() && plan.not_planned.is_empty(), "stale: {plan:#?}");
    // Suppressed.
    w.billing = SourceStatus::default();
    let suppress = "[[suppress]]\naccount = \"A1\"\nreason = \"disputed\"\nuntil = 2099-12-31\n";
    let rec = w.reconcile(&mapping(policy, suppress));
    let statuses: Vec<Status> = rec.rows.iter().map(|r| r.status).collect();
    for s in [
        Status::Suppressed,
        Status::Match,
        Status::WithinTolerance,
        Status::UnmappedCustomer,
        Status::UnmappedProduct,
    ] {
        assert!(statuses.contains(&s), "the test covers {s}: {statuses:?}");
    }
    let plan = build(&rec, &mapping(policy, suppress), "connectwise", true, 25, at(11));
    assert!(plan.changes.is_empty() && plan.not_planned.is_empty(), "{plan:#?}");
    // Without the suppression the same data plans exactly the one under-billed row.
    let plan = w.plan(&mapping(policy, ""));
    let keys: Vec<&str> = plan.changes.iter().map(|c| c.line_key.as_str()).collect();
    assert_eq!(keys, ["cw:1/1"]);
}

#[test]
fn several_counted_lines_are_not_guessed_at_they_are_listed_with_the_stanza_to_pick_one() {
    let lines = vec![line("A1", 30.0, Some(cw(5, 50))), line("A1", 10.0, Some(cw(5, 51)))];
    let w = World::new(vec![cf(1, 45)], lines);
    let plan = w.plan(&mapping(REVIEW, ""));
    assert!(plan.changes.is_empty(), "{plan:#?}");
    let [n] = plan.not_planned.as_slice() else { panic!("{plan:#?}") };
    assert_eq!(
        (n.account.as_str(), n.psa_product.as_str(), n.status),
        ("A1", "MP-CF", Status::UnderBilled)
    );
    let keys: Vec<(&str, f64)> =
        n.lines.iter().map(|l| (l.line_key.as_str(), l.quantity)).collect();
    assert_eq!(keys, [("cw:5/50", 30.0), ("cw:5/51", 10.0)]);
    assert!(
        n.reason.starts_with(
            "billed by 2 counted lines (cw:5/50 30, cw:5/51 10); mpsync does not guess"
        ),
        "{}",
        n.reason
    );
    assert_eq!(
        n.stanza.as_deref(),
        Some("[[line]]\naccount = \"A1\"\npsa_product = \"MP-CF\"\nline = \"cw:5/50\"\n")
    );

    // Pasting the stanza (naming the second line) makes the next plan change that line so the
    // row's total becomes the vendor count: 45 − 30 = 15.
    let pick = LinePreference::stanza("A1", "MP-CF", &cw(5, 51));
    let m = mapping(REVIEW, &pick);
    let plan = w.plan(&m);
    let [c] = plan.changes.as_slice() else { panic!("{plan:#?}") };
    assert_eq!((c.line_key.as_str(), c.from, c.to), ("cw:5/51", 10.0, 15.0));
    assert_eq!(
        c.reason,
        format!(
            "Mailprotector counts 45 users of CloudFilter; the 2 counted lines bill 40 (cw:5/50 \
             30, cw:5/51 10); the [[line]] on line {} picks cw:5/51",
            m.lines[0].source_line
        )
    );
}

#[test]
fn a_preference_that_cannot_reach_the_count_or_names_another_line_is_not_planned() {
    let lines = vec![line("A1", 30.0, Some(cw(5, 50))), line("A1", 10.0, Some(cw(5, 51)))];
    // 20 users: the other line alone bills 30, so no quantity of cw:5/51 gets the row to 20.
    let w = World::new(vec![cf(1, 20)], lines);
    let plan = w.plan(&mapping(REVIEW, &LinePreference::stanza("A1", "MP-CF", &cw(5, 51))));
    assert!(plan.changes.is_empty());
    assert_eq!(
        plan.not_planned[0].reason,
        "the other counted lines already bill 30, more than the 20 this row should bill; lower \
         them in the PSA by hand"
    );
    let plan = w.plan(&mapping(REVIEW, &LinePreference::stanza("A1", "MP-CF", &cw(5, 99))));
    assert!(plan.not_planned[0].reason.contains("names cw:5/99, which is not a counted line"));
}

#[test]
fn a_line_without_an_id_asks_for_a_billing_sync() {
    let w = World::new(vec![cf(1, 42)], vec![line("A1", 40.0, None)]);
    let plan = w.plan(&mapping(REVIEW, ""));
    assert!(plan.changes.is_empty());
    assert!(plan.not_planned[0].reason.contains("run a billing sync"), "{plan:#?}");
    assert_eq!(plan.not_planned[0].lines[0].line_key, "");
}

#[test]
fn a_line_whose_quantity_halo_computes_is_never_planned() {
    let computed = LineRef::Halopsa { invoice: -94, line: 24967, item: 17, computed: true };
    let w = World::new(vec![cf(1, 42)], vec![line("A1", 40.0, Some(computed))]);
    let plan = w.plan(&mapping(REVIEW, ""));
    assert!(plan.changes.is_empty(), "{plan:#?}");
    let not = &plan.not_planned[0];
    assert_eq!(not.lines[0].line_key, "halo:-94/24967/17/computed");
    assert!(not.reason.contains("computes itself") && not.reason.contains("never changes it"));
    let manual = LineRef::Halopsa { invoice: -94, line: 24967, item: 17, computed: false };
    let w = World::new(vec![cf(1, 42)], vec![line("A1", 40.0, Some(manual))]);
    let plan = w.plan(&mapping(REVIEW, ""));
    assert_eq!(plan.changes[0].line_key, "halo:-94/24967/17", "a manual line is planned");
}

#[test]
fn money_is_unknown_without_a_price_and_rows_are_numbered_in_reconciliation_order() {
    let mut lines = vec![
        line("A1", 40.0, Some(cw(1, 1))),
        line("A2", 40.0, Some(cw(1, 2))),
        line("A4", 1.0, Some(cw(1, 4))),
    ];
    lines[1].unit_price = None;
    let w = World::new(vec![cf(1, 41), cf(2, 39), cf(3, 2), cf(4, 2)], lines);
    let plan = w.plan(&mapping("write_back = \"review\"\nmax_decrease_percent = 100", ""));
    let got: Vec<(u32, &str, Option<f64>)> =
        plan.changes.iter().map(|c| (c.row, c.account.as_str(), c.monthly_amount)).collect();
    assert_eq!(got, [(1, "A1", Some(3.5)), (2, "A2", None), (3, "A4", Some(3.5))]);
    assert_eq!(plan.manual.len(), 1, "A3 is unbilled");
}

// ---- properties over arbitrary rows ----

const ALL: [Status; 11] = Status::ALL;

/// One arbitrary service row: status, vendor count, lines (has id, quantity, counted,
/// price), policy (mode, min, max decrease) and which counted line a preference names.
type RowSpec = (usize, u64, Vec<(bool, u8, bool, Option<u8>)>, (u8, Option<u8>, u8), Option<usize>);

fn spec() -> impl Strategy<Value = Vec<RowSpec>> {
    prop::collection::vec(
        (
            0usize..ALL.len(),
            0u64..40,
            prop::collection::vec(
                (prop::bool::weighted(0.9), 0u8..40, any::<bool>(), prop::option::of(1u8..9)),
                0..4,
            ),
            (0u8..3, prop::option::of(0u8..20), 0u8..=100),
            prop::option::of(0usize..4),
        ),
        0..8,
    )
}

fn world_of(specs: &[RowSpec]) -> (Reconciliation, Mapping) {
    let mut m = Mapping::default();
    let mut rows = Vec::new();
    for (i, (status, vendor, lines, (mode, min, max), pref)) in specs.iter().enumerate() {
        let (account, psa) = (format!("A{i}"), format!("P{i}"));
        let mode = [WriteBackMode::Off, WriteBackMode::Review, WriteBackMode::Auto][*mode as usize];
        let policy = Policy {
            mode,
            min_quantity: min.map(f64::from),
            max_decrease_percent: f64::from(*max),
        };
        m.customers.insert(i as u64, account.clone());
        m.products.insert(
            format!("Product{i}"),
            crate::config::ProductMapping {
                psa_product: psa.clone(),
                tolerance: 0.0,
                tolerance_percent: 0.0,
                debounce_runs: None,
                policy,
            },
        );
        let evidence: Vec<LineEvidence> = lines
            .iter()
            .enumerate()
            .map(|(k, (id, qty, counted, price))| LineEvidence {
                source_ref: format!("line {k}"),
                line: id.then(|| cw(i as u64, k as u64)),
                quantity: f64::from(*qty),
                unit_price: price.map(f64::from),
                counted: *counted,
                note: None,
            })
            .collect();
        if let Some(k) = pref.filter(|k| *k < lines.len()) {
            m.lines.push(LinePreference {
                account: account.clone(),
                psa_product: psa.clone(),
                line: cw(i as u64, k as u64),
                source_line: 100 + i,
            });
        }
        rows.push(Row {
            key: RowKey::Service { account, psa_product: psa },
            account_name: None,
            customer_name: None,
            products: vec![format!("Product{i}")],
            vendor_quantity: Some(*vendor),
            billed_quantity: None,
            delta: None,
            unit_price: Some(2.0),
            monthly_impact: None,
            status: ALL[*status],
            since: Since { at: at(1), run_id: None },
            pending_status: None,
            seen_runs: 1,
            debounce_runs: 1,
            stale_reason: None,
            suppression: None,
            observed: Observation { status: None, seen_runs: 1, vendor_run: Some(1) },
            episode: None,
            accrued: None,
            excluded_seconds: None,
            evidence: Evidence {
                vendor_run: Some(1),
                customers: vec![],
                billing_run: Some(2),
                lines: evidence,
            },
        });
    }
    // An engine-made reconciliation gives the summary; the rows are the arbitrary ones.
    let mut rec = World::new(vec![], vec![]).reconcile(&Mapping::default());
    rec.rows = rows;
    (rec, m)
}

const PLANNED: [Status; 3] = [Status::UnderBilled, Status::OverBilled, Status::BilledWithoutUsage];

proptest! {
    #[test]
    fn every_plan_obeys_the_rules(specs in spec()) {
        let (rec, m) = world_of(&specs);
        let plan = build(&rec, &m, "connectwise", true, 25, at(3));
        // Rows are numbered 1..=n in order.
        let rows: Vec<u32> = plan.changes.iter().map(|c| c.row).collect();
        prop_assert_eq!(rows, (1..=plan.changes.len() as u32).collect::<Vec<_>>());
        for c in &plan.changes {
            let row = rec.rows.iter().find(|r| matches!(&r.key, RowKey::Service { account, .. } if *account == c.account)).unwrap();
            let policy = m.policy_for(&c.psa_product);
            prop_assert!(PLANNED.contains(&c.status) && c.status == row.status);
            prop_assert!(policy.mode != WriteBackMode::Off && c.mode == policy.mode);
            // The changed line is a counted line of the row, and chosen when there are several.
            let counted: Vec<&LineEvidence> = row.evidence.lines.iter().filter(|l| l.counted).collect();
            prop_assert!(counted.iter().any(|l| l.line.as_ref() == Some(&c.line) && l.quantity == c.from));
            if counted.len() > 1 {
                prop_assert_eq!(m.line_for(&c.account, &c.psa_product).map(|p| &p.line), Some(&c.line));
            }
            // The row's new total is the vendor count, never below the minimum, and it moves.
            let others: f64 = counted.iter().filter(|l| l.line.as_ref() != Some(&c.line)).map(|l| l.quantity).sum();
            let vendor = if c.status == Status::BilledWithoutUsage { 0.0 } else { c.vendor_quantity as f64 };
            let floor = policy.min_quantity.unwrap_or(0.0);
            prop_assert!(c.to >= 0.0);
            prop_assert!(c.to + others >= floor - 1e-9);
            prop_assert!((c.to + others - vendor.max(floor)).abs() < 1e-9);
            prop_assert!(!same_quantity(c.to, c.from));
            // Held exactly when the drop is more than the allowed percent.
            let drop = if c.from > 0.0 { (c.from - c.to) / c.from * 100.0 } else { 0.0 };
            prop_assert_eq!(c.held.is_some(), drop > policy.max_decrease_percent + 1e-9);
            prop_assert_eq!(c.monthly_amount.is_some(), true, "the row's price stands in");
        }
        // Each discrepancy row of an opted-in product is a change or not planned, once;
        // unbilled ones are manual steps; nothing else appears.
        for row in &rec.rows {
            let RowKey::Service { account, psa_product } = &row.key else { continue };
            let on = m.policy_for(psa_product).mode != WriteBackMode::Off;
            let changes = plan.changes.iter().filter(|c| &c.account == account).count();
            let nots = plan.not_planned.iter().filter(|n| &n.account == account).count();
            let manual = plan.manual.iter().filter(|s| &s.account == account).count();
            let (want_planned, want_manual) = match row.status {
                s if on && PLANNED.contains(&s) => (1, 0),
                Status::Unbilled if on => (0, 1),
                _ => (0, 0),
            };
            prop_assert_eq!((changes + nots, manual), (want_planned, want_manual), "{:?}", row.status);
        }
    }
}
