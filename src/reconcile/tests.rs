//! Engine tests: every status, precedence, many-to-one summing, debounce, suppression
//! expiry, tolerances, and what the summary adds up to.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};

use super::*;
use crate::model::{Account, BilledLine, CustomerUsage};

pub(super) fn at(hour: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 27, hour, 0, 0).unwrap()
}

/// (customer id, name, [(product, count)]).
pub(super) type Customer<'a> = (u64, &'a str, &'a [(&'a str, u64)]);

pub(super) fn usage(run: u64, hour: u32, customers: &[Customer<'_>]) -> UsageSnapshot {
    UsageSnapshot {
        run_id: run,
        observed_at: at(hour),
        customers: customers
            .iter()
            .map(|(id, name, counts)| CustomerUsage {
                id: *id,
                name: name.to_string(),
                counts: counts.iter().map(|(p, n)| (p.to_string(), *n)).collect(),
            })
            .collect(),
    }
}

pub(super) fn line(
    account: &str,
    product: &str,
    qty: f64,
    price: Option<f64>,
    counted: bool,
) -> BilledLine {
    BilledLine {
        account_id: account.into(),
        product_id: product.into(),
        quantity: qty,
        unit_price: price,
        counted,
        note: (!counted).then(|| "agreement cancelled".to_string()),
        source_ref: format!("{account}/{product}/{qty}"),
        line: None,
    }
}

pub(super) fn billed(run: u64, hour: u32, lines: Vec<BilledLine>) -> BilledSnapshot {
    let mut ids: Vec<String> = lines.iter().map(|l| l.account_id.clone()).collect();
    ids.sort();
    ids.dedup();
    BilledSnapshot {
        run_id: run,
        observed_at: at(hour),
        accounts: ids.into_iter().map(|id| Account { name: format!("Account {id}"), id }).collect(),
        lines,
    }
}

pub(super) fn mapping(text: &str) -> Mapping {
    Mapping::parse(Path::new("mapping.toml"), text).expect("valid test mapping")
}

pub(super) fn inputs<'a>(
    u: Option<&'a UsageSnapshot>,
    b: Option<&'a BilledSnapshot>,
    m: &'a Mapping,
    now: DateTime<Utc>,
    previous: Option<&'a Reconciliation>,
) -> Inputs<'a> {
    Inputs {
        usage: u,
        vendor: SourceStatus::default(),
        billed: b,
        billing: SourceStatus::default(),
        mapping: m,
        settings: Settings { max_age: Duration::from_secs(2 * 3600), debounce_runs: 1 },
        now,
        previous_at: None,
        previous,
    }
}

fn service(account: &str, psa: &str) -> RowKey {
    RowKey::Service { account: account.into(), psa_product: psa.into() }
}

fn row<'r>(rec: &'r Reconciliation, key: &RowKey) -> &'r Row {
    rec.rows.iter().find(|r| &r.key == key).unwrap_or_else(|| panic!("no row {key:?}"))
}

fn statuses(rec: &Reconciliation) -> BTreeMap<RowKey, Status> {
    rec.rows.iter().map(|r| (r.key.clone(), r.status)).collect()
}

const SIX: &str = r#"
[customers]
1 = "A1"
2 = "A2"
3 = "A3"
4 = "A4"
5 = "A5"
6 = "A6"
[products.CloudFilter]
psa_product = "MP-CF"
tolerance = 1
"#;

#[test]
fn each_comparison_gives_its_status_with_delta_and_impact() {
    let m = mapping(SIX);
    let u = usage(
        10,
        9,
        &[
            (1, "Match Co", &[("CloudFilter", 10), ("XtraMail", 3)]),
            (2, "Close Co", &[("CloudFilter", 11)]),
            (3, "Leak Co", &[("CloudFilter", 15)]),
            (4, "Over Co", &[("CloudFilter", 5)]),
            (5, "New Co", &[("CloudFilter", 7)]),
            (6, "Gone Co", &[("CloudFilter", 0)]),
            (7, "Nobody Co", &[("CloudFilter", 4)]),
        ],
    );
    let b = billed(
        11,
        9,
        vec![
            line("A1", "MP-CF", 10.0, Some(2.0), true),
            line("A2", "MP-CF", 10.0, Some(2.0), true),
            line("A3", "MP-CF", 10.0, Some(2.0), true),
            line("A4", "MP-CF", 10.0, Some(2.0), true),
            line("A6", "MP-CF", 8.0, Some(2.5), true),
            line("A9", "OTHER-SKU", 99.0, Some(1.0), true),
        ],
    );
    let rec = compute(&inputs(Some(&u), Some(&b), &m, at(10), None));
    let expected: BTreeMap<RowKey, Status> = [
        (service("A1", "MP-CF"), Status::Match),
        (service("A2", "MP-CF"), Status::WithinTolerance),
        (service("A3", "MP-CF"), Status::UnderBilled),
        (service("A4", "MP-CF"), Status::OverBilled),
        (service("A5", "MP-CF"), Status::Unbilled),
        (service("A6", "MP-CF"), Status::BilledWithoutUsage),
        (RowKey::UnmappedCustomer { customer: 7 }, Status::UnmappedCustomer),
        (RowKey::UnmappedProduct { product: "XtraMail".into() }, Status::UnmappedProduct),
    ]
    .into();
    // A PSA product nobody maps (OTHER-SKU) is not ours to judge: no row.
    assert_eq!(statuses(&rec), expected);

    let leak = row(&rec, &service("A3", "MP-CF"));
    assert_eq!((leak.vendor_quantity, leak.billed_quantity), (Some(15), Some(10.0)));
    assert_eq!(
        (leak.delta, leak.unit_price, leak.monthly_impact),
        (Some(5.0), Some(2.0), Some(10.0))
    );
    let over = row(&rec, &service("A4", "MP-CF"));
    assert_eq!(over.monthly_impact, Some(-10.0));
    let gone = row(&rec, &service("A6", "MP-CF"));
    assert_eq!((gone.vendor_quantity, gone.monthly_impact), (Some(0), Some(-20.0)));
    let new = row(&rec, &service("A5", "MP-CF"));
    assert_eq!((new.billed_quantity, new.delta, new.monthly_impact), (None, Some(7.0), None));
    assert_eq!(row(&rec, &service("A1", "MP-CF")).account_name.as_deref(), Some("Account A1"));
    let nobody = row(&rec, &RowKey::UnmappedCustomer { customer: 7 });
    assert_eq!(nobody.customer_name.as_deref(), Some("Nobody Co"));
    assert_eq!(nobody.evidence.customers[0].count, 4);

    let s = &rec.summary;
    assert_eq!(s.rows, 8);
    assert_eq!(s.by_status["under_billed"], 1);
    assert_eq!(s.by_status["pending"], 0);
    assert_eq!(s.by_status.len(), Status::ALL.len());
    assert_eq!((s.impact_under_billed, s.impact_over_billed), (10.0, 30.0));
    assert_eq!((s.discrepancies, s.unpriced_discrepancies, s.attention), (4, 1, 6));
    assert!(!s.vendor.is_stale() && !s.billing.is_stale());
    assert_eq!((rec.vendor_run, rec.billing_run), (Some(10), Some(11)));
    assert_eq!(row(&rec, &service("A1", "MP-CF")).since.run_id, Some(11));
}

#[test]
fn many_customers_and_products_on_one_line_are_summed_with_their_evidence() {
    let m = mapping(
        r#"
[customers]
1 = "A"
2 = "A"
[products.CloudFilter]
psa_product = "MP-ES"
[products.Bracket]
psa_product = "MP-ES"
"#,
    );
    let u = usage(
        5,
        9,
        &[
            (1, "Acme East", &[("CloudFilter", 5), ("Bracket", 2)]),
            (2, "Acme West", &[("CloudFilter", 3)]),
        ],
    );
    let b = billed(
        6,
        9,
        vec![
            line("A", "MP-ES", 6.0, Some(3.0), true),
            line("A", "MP-ES", 4.0, Some(3.0), true),
            line("A", "MP-ES", 3.0, Some(3.0), false),
        ],
    );
    let rec = compute(&inputs(Some(&u), Some(&b), &m, at(10), None));
    assert_eq!(rec.rows.len(), 1);
    let r = &rec.rows[0];
    assert_eq!(
        (r.vendor_quantity, r.billed_quantity, r.status),
        (Some(10), Some(10.0), Status::Match)
    );
    assert_eq!(r.products, vec!["Bracket".to_string(), "CloudFilter".to_string()]);
    assert_eq!(r.evidence.customers.len(), 3);
    assert_eq!(r.evidence.lines.len(), 3);
    assert_eq!(r.evidence.lines.iter().filter(|l| !l.counted).count(), 1);
    assert_eq!((r.evidence.vendor_run, r.evidence.billing_run), (Some(5), Some(6)));
}

#[test]
fn a_vendor_outage_is_stale_never_billed_without_usage() {
    let m = mapping(SIX);
    let u =
        usage(5, 9, &[(6, "Gone Co", &[("CloudFilter", 0)]), (7, "Nobody", &[("CloudFilter", 3)])]);
    let b = billed(6, 9, vec![line("A6", "MP-CF", 8.0, Some(2.5), true)]);
    let mut inp = inputs(Some(&u), Some(&b), &m, at(10), None);
    inp.vendor = SourceStatus { last_run_failed: true, last_error: Some("HTTP 503".into()) };
    let rec = compute(&inp);
    assert!(rec.rows.iter().all(|r| r.status == Status::Stale), "{:?}", statuses(&rec));
    let r = row(&rec, &service("A6", "MP-CF"));
    assert!(r.stale_reason.as_deref().unwrap().contains("HTTP 503"));
    assert_eq!((r.delta, r.monthly_impact), (None, None));
    assert_eq!(rec.summary.discrepancies, 0);

    // No vendor run ever completed: the billed lines still show, as stale, with no vendor number.
    let rec = compute(&inputs(None, Some(&b), &m, at(10), None));
    let r = row(&rec, &service("A6", "MP-CF"));
    assert_eq!((r.status, r.vendor_quantity), (Status::Stale, None));
    assert!(rec.summary.vendor.stale_reason.as_deref().unwrap().contains("no vendor run"));
}

#[test]
fn old_billing_data_makes_service_rows_stale_but_unmapped_customers_stay_known() {
    let m = mapping(SIX);
    let u = usage(
        5,
        9,
        &[(1, "Match Co", &[("CloudFilter", 10)]), (7, "Nobody", &[("CloudFilter", 3)])],
    );
    let b = billed(6, 6, vec![line("A1", "MP-CF", 10.0, None, true)]);
    let rec = compute(&inputs(Some(&u), Some(&b), &m, at(9), None));
    let r = row(&rec, &service("A1", "MP-CF"));
    assert_eq!(r.status, Status::Stale);
    assert!(r.stale_reason.as_deref().unwrap().contains("billing data is 3h old"), "{r:?}");
    assert_eq!(
        row(&rec, &RowKey::UnmappedCustomer { customer: 7 }).status,
        Status::UnmappedCustomer
    );
    // The same data, younger than max_age, compares.
    let rec = compute(&inputs(Some(&u), Some(&b), &m, at(7), None));
    assert_eq!(row(&rec, &service("A1", "MP-CF")).status, Status::Match);
}

#[test]
fn suppressions_apply_until_their_last_day_and_stale_wins_over_them() {
    let text = format!(
        "{SIX}\n[[suppress]]\ncustomer = 3\nproduct = \"CloudFilter\"\nreason = \"trial\"\nuntil = 2026-11-27\n"
    );
    let m = mapping(&text);
    let u = usage(5, 9, &[(3, "Leak Co", &[("CloudFilter", 15)])]);
    let b = billed(6, 9, vec![line("A3", "MP-CF", 10.0, Some(2.0), true)]);
    let rec = compute(&inputs(Some(&u), Some(&b), &m, at(10), None));
    let r = row(&rec, &service("A3", "MP-CF"));
    assert_eq!(r.status, Status::Suppressed);
    assert_eq!(r.suppression.as_ref().unwrap().reason, "trial");
    assert_eq!(rec.summary.impact_under_billed, 0.0);

    // The next day it has expired: the real status shows.
    let u2 = UsageSnapshot { observed_at: at(9) + chrono::Duration::days(1), ..u.clone() };
    let b2 = BilledSnapshot { observed_at: at(9) + chrono::Duration::days(1), ..b.clone() };
    let next_day = at(10) + chrono::Duration::days(1);
    let rec = compute(&inputs(Some(&u2), Some(&b2), &m, next_day, None));
    assert_eq!(row(&rec, &service("A3", "MP-CF")).status, Status::UnderBilled);
    assert_eq!(m.expired_suppressions(next_day.date_naive()).len(), 1);

    let mut inp = inputs(Some(&u), Some(&b), &m, at(10), None);
    inp.billing.last_run_failed = true;
    assert_eq!(compute(&inp).rows[0].status, Status::Stale);
}

#[test]
fn account_and_unmapped_customer_suppressions_match_their_rows() {
    let text = format!(
        "{SIX}\n[[suppress]]\naccount = \"A4\"\nreason = \"disputed\"\nuntil = 2027-01-01\n\
         [[suppress]]\ncustomer = 7\nreason = \"internal\"\nuntil = 2027-01-01\n"
    );
    let m = mapping(&text);
    let u = usage(
        5,
        9,
        &[
            (4, "Over", &[("CloudFilter", 5)]),
            (7, "Us", &[("CloudFilter", 2)]),
            (3, "Leak", &[("CloudFilter", 15)]),
        ],
    );
    let b = billed(
        6,
        9,
        vec![line("A4", "MP-CF", 10.0, None, true), line("A3", "MP-CF", 1.0, None, true)],
    );
    let rec = compute(&inputs(Some(&u), Some(&b), &m, at(10), None));
    assert_eq!(row(&rec, &service("A4", "MP-CF")).status, Status::Suppressed);
    assert_eq!(row(&rec, &RowKey::UnmappedCustomer { customer: 7 }).status, Status::Suppressed);
    assert_eq!(row(&rec, &service("A3", "MP-CF")).status, Status::UnderBilled);
}

#[test]
fn a_discrepancy_is_pending_until_seen_in_debounce_runs_vendor_runs() {
    let m = mapping(SIX);
    let b = billed(2, 9, vec![line("A3", "MP-CF", 10.0, Some(1.0), true)]);
    let u1 = usage(3, 9, &[(3, "Leak", &[("CloudFilter", 15)])]);
    let mut inp = inputs(Some(&u1), Some(&b), &m, at(9), None);
    inp.settings.debounce_runs = 2;
    let first = compute(&inp);
    let r = &first.rows[0];
    assert_eq!(
        (r.status, r.pending_status, r.seen_runs),
        (Status::Pending, Some(Status::UnderBilled), 1)
    );
    assert_eq!(first.summary.by_status["pending"], 1);
    assert_eq!(first.summary.discrepancies, 0);

    // A billing run recomputes without a new vendor run: still pending, not counted twice.
    let b2 = BilledSnapshot { run_id: 4, ..b.clone() };
    let again = compute(&Inputs { billed: Some(&b2), previous: Some(&first), ..inp.clone() });
    assert_eq!((again.rows[0].status, again.rows[0].seen_runs), (Status::Pending, 1));
    assert_eq!(again.rows[0].since, first.rows[0].since);

    let u2 = usage(5, 9, &[(3, "Leak", &[("CloudFilter", 15)])]);
    let raised = compute(&Inputs { usage: Some(&u2), previous: Some(&again), ..inp.clone() });
    let r = &raised.rows[0];
    assert_eq!((r.status, r.seen_runs, r.pending_status), (Status::UnderBilled, 2, None));
    assert_eq!(r.since.run_id, Some(5));

    // The discrepancy changes kind: the count starts again.
    let u3 = usage(6, 9, &[(3, "Leak", &[("CloudFilter", 4)])]);
    let changed = compute(&Inputs { usage: Some(&u3), previous: Some(&raised), ..inp.clone() });
    assert_eq!(
        (changed.rows[0].status, changed.rows[0].pending_status),
        (Status::Pending, Some(Status::OverBilled))
    );
}

#[test]
fn a_product_debounce_overrides_the_default_and_matches_are_never_pending() {
    let m = mapping(
        "[customers]\n1 = \"A\"\n[products.CloudFilter]\npsa_product = \"CF\"\ndebounce_runs = 3\n",
    );
    let b = billed(1, 9, vec![line("A", "CF", 10.0, None, true)]);
    let mut prev: Option<Reconciliation> = None;
    let mut seen = Vec::new();
    for run in 2..=4 {
        let u = usage(run, 9, &[(1, "A", &[("CloudFilter", 12)])]);
        let rec = compute(&inputs(Some(&u), Some(&b), &m, at(9), prev.as_ref()));
        seen.push(rec.rows[0].status);
        prev = Some(rec);
    }
    assert_eq!(seen, vec![Status::Pending, Status::Pending, Status::UnderBilled]);
    let u = usage(9, 9, &[(1, "A", &[("CloudFilter", 10)])]);
    assert_eq!(compute(&inputs(Some(&u), Some(&b), &m, at(9), None)).rows[0].status, Status::Match);
}

#[test]
fn tolerance_is_absolute_or_percent_of_billed_whichever_is_wider() {
    let m = mapping(
        "[customers]\n1 = \"A\"\n2 = \"B\"\n[products.CloudFilter]\npsa_product = \"CF\"\n\
         tolerance = 1\ntolerance_percent = 2.0\n",
    );
    let cases = [
        (10.0, 11, Status::WithinTolerance),
        (10.0, 12, Status::UnderBilled),
        (10.0, 9, Status::WithinTolerance),
        (100.0, 102, Status::WithinTolerance),
        (100.0, 103, Status::UnderBilled),
        (100.0, 98, Status::WithinTolerance),
        (100.0, 97, Status::OverBilled),
    ];
    for (billed_qty, vendor, expected) in cases {
        let u = usage(2, 9, &[(1, "A", &[("CloudFilter", vendor)])]);
        let b = billed(1, 9, vec![line("A", "CF", billed_qty, None, true)]);
        let rec = compute(&inputs(Some(&u), Some(&b), &m, at(9), None));
        assert_eq!(rec.rows[0].status, expected, "billed {billed_qty}, vendor {vendor}");
    }
}

#[test]
fn excluded_customers_and_products_leave_no_trace() {
    let m = mapping(
        "[customers]\n1 = \"A\"\n[products.CloudFilter]\npsa_product = \"CF\"\n[exclude]\ncustomers = [9]\nproducts = [\"ForceEncrypt\"]\n",
    );
    let u = usage(
        2,
        9,
        &[
            (1, "A", &[("CloudFilter", 3), ("ForceEncrypt", 5)]),
            (9, "Internal", &[("CloudFilter", 50)]),
        ],
    );
    let b = billed(1, 9, vec![line("A", "CF", 3.0, None, true)]);
    let rec = compute(&inputs(Some(&u), Some(&b), &m, at(9), None));
    assert_eq!(statuses(&rec), [(service("A", "CF"), Status::Match)].into());
    let states: Vec<(u64, MappingState)> =
        rec.customers.iter().map(|c| (c.customer, c.state)).collect();
    assert_eq!(states, vec![(1, MappingState::Mapped), (9, MappingState::Excluded)]);
}

#[test]
fn since_is_kept_while_the_status_holds_and_reset_when_it_changes() {
    let m = mapping(SIX);
    let b = billed(1, 9, vec![line("A1", "MP-CF", 10.0, None, true)]);
    let u = usage(2, 9, &[(1, "A", &[("CloudFilter", 10)])]);
    let first = compute(&inputs(Some(&u), Some(&b), &m, at(9), None));
    let u3 = usage(3, 10, &[(1, "A", &[("CloudFilter", 10)])]);
    let second = compute(&inputs(Some(&u3), Some(&b), &m, at(10), Some(&first)));
    assert_eq!(second.rows[0].since, Since { at: at(9), run_id: Some(2) });
    let u4 = usage(4, 11, &[(1, "A", &[("CloudFilter", 20)])]);
    let b4 = BilledSnapshot { observed_at: at(11), ..b.clone() };
    let third = compute(&inputs(Some(&u4), Some(&b4), &m, at(11), Some(&second)));
    assert_eq!(third.rows[0].since, Since { at: at(11), run_id: Some(4) });
}

#[test]
fn unmapped_customers_carry_suggestions_from_billed_accounts() {
    let m = mapping(SIX);
    let u = usage(2, 9, &[(329, "Acme, Inc.", &[("CloudFilter", 4)])]);
    let mut b = billed(1, 9, vec![]);
    b.accounts.push(Account { id: "250".into(), name: "ACME Inc".into() });
    let rec = compute(&inputs(Some(&u), Some(&b), &m, at(9), None));
    let c = &rec.customers[0];
    assert_eq!(c.state, MappingState::Unmapped);
    assert_eq!(c.suggestions[0].stanza, "329 = \"250\"  # Acme, Inc. ↔ ACME Inc");
}
