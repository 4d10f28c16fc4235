//! Unit tests of the dashboard's pure parts: row order, filter parsing, source states,
//! ages and the ready-to-paste mapping block.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::model::{self, Filters, SourceState};
use crate::health::{Health, Source};
use crate::reconcile::{
    CustomerMapping, Evidence, MappingState, Observation, Row, RowKey, Since, Status, Suggestion,
    UnknownStatus,
};

fn t(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn row(account: &str, status: Status, impact: Option<f64>) -> Row {
    Row {
        key: RowKey::Service { account: account.into(), psa_product: "P".into() },
        account_name: None,
        customer_name: None,
        products: vec![],
        vendor_quantity: None,
        billed_quantity: None,
        delta: None,
        unit_price: None,
        monthly_impact: impact,
        status,
        since: Since { at: t("2026-01-01T00:00:00Z"), run_id: None },
        pending_status: None,
        seen_runs: 1,
        debounce_runs: 1,
        stale_reason: None,
        suppression: None,
        observed: Observation { status: Some(status), seen_runs: 1, vendor_run: None },
        episode: None,
        accrued: None,
        excluded_seconds: None,
        evidence: Evidence::default(),
    }
}

#[test]
fn rows_are_ordered_by_need_for_action_then_money_at_stake() {
    let rows = [
        row("ok", Status::Match, None),
        row("hidden", Status::Suppressed, Some(-50.0)),
        row("small", Status::UnderBilled, Some(3.0)),
        row("over", Status::OverBilled, Some(-40.0)),
        row("big", Status::UnderBilled, Some(30.0)),
        row("unmapped", Status::UnmappedProduct, None),
        row("old", Status::Stale, None),
    ];
    let order: Vec<String> = model::order_rows(rows.iter().collect())
        .iter()
        .map(|r| match &r.key {
            RowKey::Service { account, .. } => account.clone(),
            _ => unreachable!(),
        })
        .collect();
    assert_eq!(order, ["big", "small", "over", "unmapped", "old", "hidden", "ok"]);
    // Every status has a distinct rank, and the ones needing attention come first.
    let ranked = model::statuses_by_rank();
    assert_eq!(ranked.len(), Status::ALL.len());
    let first_fine = ranked.iter().position(|s| !s.needs_attention()).unwrap();
    assert!(ranked[first_fine..].iter().all(|s| !s.needs_attention()), "{ranked:?}");
}

#[test]
fn empty_form_values_mean_any_and_bad_statuses_are_named() {
    let f = Filters::parse(Some(""), Some("  "));
    assert!(f.filter.statuses.is_empty() && f.filter.account.is_none() && f.error.is_none());
    let f = Filters::parse(Some("under_billed,unbilled"), Some(" A2 "));
    assert_eq!(f.filter.statuses, vec![Status::UnderBilled, Status::Unbilled]);
    assert_eq!(f.filter.account.as_deref(), Some("A2"));
    let f = Filters::parse(Some("nope"), None);
    assert!(f.filter.statuses.is_empty());
    let error = f.error.unwrap();
    assert_eq!(error, UnknownStatus { given: "nope".into() });
    assert!(error.to_string().starts_with("unknown status \"nope\"; use one or more of"));
    assert_eq!(f.status_text, "nope");
}

#[test]
fn source_states_follow_the_health_rules() {
    let h = Health::new(t("2026-01-01T00:00:00Z"));
    h.set_configured(Source::Billing, true, Some("csv"));
    let now = t("2026-01-01T12:00:00Z");
    let states =
        |h: &Health| model::sources(&h.snapshot(), now).iter().map(|s| s.state).collect::<Vec<_>>();
    assert_eq!(
        states(&h),
        [SourceState::NoRunYet, SourceState::NoRunYet, SourceState::NotConfigured]
    );
    h.record_success(Source::Mailprotector, 1, t("2026-01-01T11:59:00Z"));
    h.record_success(Source::Billing, 2, t("2026-01-01T09:00:00Z"));
    assert_eq!(states(&h)[..2], [SourceState::Fresh, SourceState::Stale]);
    h.record_failure(Source::Mailprotector, now, "HTTP 500");
    assert_eq!(states(&h)[0], SourceState::Failing);
    h.set_configured(Source::Gradient, true, Some("gradient"));
    h.record_waiting(Source::Gradient, now, "waiting for the first vendor snapshot");
    let push = &model::sources(&h.snapshot(), now)[2];
    assert_eq!(push.state, SourceState::Waiting);
    assert_eq!(push.waiting.as_deref(), Some("waiting for the first vendor snapshot"));
    let v = &model::sources(&h.snapshot(), now)[1];
    assert_eq!((v.age_seconds, v.component.as_deref()), (Some(3 * 3600), Some("csv")));
    assert_eq!(h.snapshot().max_age, Duration::from_secs(7200));
}

#[test]
fn ages_read_as_people_say_them() {
    assert_eq!(model::age(0), "0s");
    assert_eq!(model::age(90), "1m 30s");
    assert_eq!(model::age(3 * 3600 + 120), "3h 2m");
    assert_eq!(model::age(2 * 86_400 + 3600), "2d 1h");
    assert_eq!(model::age(-5), "0s");
}

fn mapping(customer: u64, accounts: &[&str]) -> CustomerMapping {
    CustomerMapping {
        customer,
        name: format!("Customer {customer}"),
        state: MappingState::Unmapped,
        account: None,
        account_name: None,
        suggestions: accounts
            .iter()
            .map(|a| Suggestion {
                account: a.to_string(),
                account_name: a.to_string(),
                customer_name: format!("Customer {customer}"),
                normalized: String::new(),
                stanza: format!("{customer} = \"{a}\""),
            })
            .collect(),
    }
}

#[test]
fn only_unambiguous_suggestions_go_into_the_block_to_paste() {
    let one = mapping(1, &["10"]);
    let two = mapping(2, &["20", "21"]);
    let none = mapping(3, &[]);
    assert_eq!(
        model::toml_block(&[&one, &two, &none]).as_deref(),
        Some("[customers]\n1 = \"10\"\n")
    );
    assert_eq!(model::toml_block(&[&two, &none]), None);
}
