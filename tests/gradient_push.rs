//! The Gradient push job against the simulated Synthesize: a full push stays under the rate
//! limit and leaves Synthesize's view equal to the snapshot for every mapped pair; 404s are
//! reported per pair; a revoked key fails the run with a "re-enter it" message; a dry run
//! writes nothing; a reconnect is healed; a failed or stale vendor snapshot is never pushed.

mod gradient_support;

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Duration as Age, Utc};
use gradient_support::{failed_vendor_run, push, push_job, sim, store, usage, vendor_run};
use mpsync::gradient::{PairOutcome, PushReport};
use mpsync::model::{CustomerUsage, RunKind, RunOutcome};
use mpsync::sim::gradient::GradientSim;

const COUNT: &str = "POST /api/vendor-api/service/{serviceId}/count";

/// Every (account id, service) Synthesize has mapped on both sides, with the snapshot count.
fn expected_view(g: &GradientSim, customers: &[CustomerUsage]) -> BTreeMap<(String, String), f64> {
    let accounts: BTreeSet<String> = g.mapped_account_ids().into_iter().collect();
    let services: BTreeSet<String> =
        g.services().into_iter().filter(|(_, m)| *m).map(|(n, _)| n).collect();
    let mut out = BTreeMap::new();
    for c in customers.iter().filter(|c| accounts.contains(&c.id.to_string())) {
        for (p, n) in c.counts.iter().filter(|(p, _)| services.contains(*p)) {
            out.insert((c.id.to_string(), p.clone()), *n as f64);
        }
    }
    out
}

fn view(g: &GradientSim) -> BTreeMap<(String, String), f64> {
    g.view().into_iter().map(|r| ((r.account_id, r.service), r.vendor_units)).collect()
}

fn pairs(customers: &[CustomerUsage]) -> u64 {
    customers.iter().map(|c| c.counts.len() as u64).sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_push_of_2000_customers_stays_under_the_rate_limit_and_matches_the_snapshot() {
    let sim = sim(2000).await;
    let g = sim.control().gradient().clone();
    g.set_rate_limit(Some(500.0));
    let (store, _dir) = store().await;
    let customers = usage(&sim);
    assert_eq!(customers.len(), 2000);
    vendor_run(&store, Utc::now(), customers.clone()).await;
    let (rps, burst) = (400.0, 400);
    let job = push_job(&sim, &store, rps, 16, false);

    let (record, report) = push(&store, &job).await;
    let report = report.expect("the push left a report");
    assert_eq!(record.outcome, RunOutcome::Ok, "{:?}", record.error);
    assert_eq!(record.kind, RunKind::Push);

    let r = g.requests();
    assert_eq!(r.status(429), 0, "no request was refused for rate");
    // The client's bucket sends at most burst + rps in any second; the simulator stamps
    // arrivals, which scheduling delay can bunch by a few requests across a second's edge
    // (801 was seen once on a loaded machine), so 1% is allowed for that.
    let most = (rps as u64 + burst) * 101 / 100;
    assert!(g.max_requests_per_second() <= most, "{}", g.max_requests_per_second());
    assert_eq!(r.get("POST /api/vendor-api/organization/accounts"), 1, "one array request");
    assert_eq!(r.get(COUNT), pairs(&customers), "one post per (customer, product)");
    assert_eq!(g.status(), "active");
    assert_eq!(report.statuses_set, ["pending", "active"]);
    assert_eq!(g.account_ids().len(), 2000);

    let expected = expected_view(&g, &customers);
    assert!(expected.len() > 1000, "most pairs are mapped: {}", expected.len());
    assert_eq!(view(&g), expected, "Synthesize holds the snapshot for every mapped pair");
    let s = report.summary();
    assert_eq!((s.accepted, s.failed), (expected.len() as u64, 0));
    assert_eq!(s.unmapped, pairs(&customers) - expected.len() as u64);
    assert!(s.unmapped > 0, "some accounts and services are not mapped");
}

#[tokio::test]
async fn unmapped_pairs_are_reported_per_pair_and_are_not_errors() {
    let sim = sim(40).await;
    let g = sim.control().gradient().clone();
    let (store, _dir) = store().await;
    let customers = usage(&sim);
    vendor_run(&store, Utc::now(), customers.clone()).await;
    let (record, report) = push(&store, &push_job(&sim, &store, 80.0, 4, false)).await;
    assert_eq!(record.outcome, RunOutcome::Ok, "{:?}", record.error);
    let report = report.unwrap();
    let unmapped: Vec<_> =
        report.pairs.iter().filter(|p| p.outcome == PairOutcome::Unmapped).collect();
    let details: BTreeSet<&str> =
        unmapped.iter().map(|p| p.detail.as_deref().unwrap().split(':').next().unwrap()).collect();
    assert!(details.contains("No account map found with id"), "{details:?}");
    assert!(details.contains("No service map found with id"), "{details:?}");
    // The per-customer mapping follows what Synthesize said.
    let mapped: BTreeSet<String> = g.mapped_account_ids().into_iter().collect();
    for (id, m) in report.customers() {
        assert_eq!(m.mapped, Some(mapped.contains(&id.to_string())), "customer {id}");
    }
    assert_eq!(view(&g), expected_view(&g, &customers));
}

#[tokio::test]
async fn a_revoked_partner_key_fails_the_run_with_a_message_to_re_enter_it() {
    let sim = sim(20).await;
    let g = sim.control().gradient().clone();
    let (store, _dir) = store().await;
    vendor_run(&store, Utc::now(), usage(&sim)).await;
    g.revoke_partner_key();
    let (record, _) = push(&store, &push_job(&sim, &store, 80.0, 4, false)).await;
    assert_eq!(record.outcome, RunOutcome::Failed);
    let error = record.error.unwrap();
    assert!(error.contains("re-enter it"), "{error}");
    assert!(!error.contains(&g.partner_key()), "the key is never shown");
    assert_eq!(g.write_requests(), 0);

    // Revoked in the middle of the counts: the run stops and says the same.
    g.restore_partner_key();
    g.add_fault(
        mpsync::sim::faults::Fault::new(mpsync::sim::faults::FaultKind::Revoke { key: None })
            .on("count")
            .after(5),
    );
    let (record, report) = push(&store, &push_job(&sim, &store, 80.0, 1, false)).await;
    assert_eq!(record.outcome, RunOutcome::Failed);
    assert!(record.error.unwrap().contains("re-enter it"));
    let s = report.unwrap().summary();
    assert_eq!(s.accepted + s.unmapped, 5);
    assert!(s.failed > 0);
}

#[tokio::test]
async fn a_dry_run_records_the_plan_and_sends_nothing() {
    let sim = sim(30).await;
    let g = sim.control().gradient().clone();
    let (store, _dir) = store().await;
    let customers = usage(&sim);
    vendor_run(&store, Utc::now(), customers.clone()).await;
    let (record, report) = push(&store, &push_job(&sim, &store, 80.0, 4, true)).await;
    assert_eq!(record.outcome, RunOutcome::Ok, "{:?}", record.error);
    let r = g.requests();
    assert!(r.total > 0 && r.by_endpoint.keys().all(|k| k.starts_with("GET ")), "{r:?}");
    assert_eq!(g.write_requests(), 0);
    assert_eq!((g.status().as_str(), g.account_ids().len()), ("inactive", 0));
    let report: PushReport = report.unwrap();
    assert!(report.dry_run);
    assert_eq!(report.summary().planned, pairs(&customers));
    assert_eq!(report.accounts_created.len(), 30);
    assert_eq!(report.statuses_set, ["pending", "active"]);
    assert!(!report.services_created.is_empty());
}

#[tokio::test]
async fn after_a_disconnect_and_reconnect_the_next_push_recreates_accounts_and_resends_all() {
    let sim = sim(30).await;
    let g = sim.control().gradient().clone();
    let (store, _dir) = store().await;
    let customers = usage(&sim);
    vendor_run(&store, Utc::now(), customers.clone()).await;
    let job = push_job(&sim, &store, 80.0, 4, false);
    assert_eq!(push(&store, &job).await.0.outcome, RunOutcome::Ok);
    let before = view(&g);

    g.disconnect_reconnect();
    assert!(g.account_ids().is_empty() && g.view().is_empty());
    g.reset_requests();
    let (record, report) = push(&store, &job).await;
    assert_eq!(record.outcome, RunOutcome::Ok, "{:?}", record.error);
    assert_eq!(g.account_ids().len(), 30);
    assert_eq!(g.requests().get(COUNT), pairs(&customers));
    assert_eq!(view(&g), before);
    assert_eq!(g.status(), "active");
    assert_eq!(report.unwrap().accounts_created.len(), 30);
}

#[tokio::test]
async fn a_product_the_customer_no_longer_has_is_sent_as_zero() {
    let sim = sim(30).await;
    let g = sim.control().gradient().clone();
    let (store, _dir) = store().await;
    let mut customers = usage(&sim);
    vendor_run(&store, Utc::now(), customers.clone()).await;
    let job = push_job(&sim, &store, 80.0, 4, false);
    assert_eq!(push(&store, &job).await.0.outcome, RunOutcome::Ok);
    let (key, _) = view(&g).into_iter().find(|(_, n)| *n > 0.0).expect("a mapped pair");
    let c = customers.iter_mut().find(|c| c.id.to_string() == key.0).unwrap();
    c.counts.remove(&key.1);
    vendor_run(&store, Utc::now(), customers.clone()).await;
    assert_eq!(push(&store, &job).await.0.outcome, RunOutcome::Ok);
    assert_eq!(view(&g)[&key], 0.0, "the dropped product reads 0, not the old count");
}

#[tokio::test]
async fn a_failed_or_stale_vendor_snapshot_is_never_pushed() {
    let sim = sim(10).await;
    let g = sim.control().gradient().clone();
    let (store, _dir) = store().await;
    let job = push_job(&sim, &store, 80.0, 4, false);

    let (record, _) = push(&store, &job).await;
    assert_eq!(record.outcome, RunOutcome::Failed);
    assert!(record.error.unwrap().contains("no vendor run has completed"));

    vendor_run(&store, Utc::now() - Age::hours(3), usage(&sim)).await;
    let (record, _) = push(&store, &job).await;
    assert_eq!(record.outcome, RunOutcome::Failed);
    let error = record.error.unwrap();
    assert!(error.contains("older than [reconcile] max_age"), "{error}");

    vendor_run(&store, Utc::now(), usage(&sim)).await;
    failed_vendor_run(&store, Utc::now()).await;
    let (record, report) = push(&store, &job).await;
    assert_eq!(record.outcome, RunOutcome::Failed);
    let error = record.error.unwrap();
    assert!(error.contains("the last vendor run") && error.contains("failed"), "{error}");
    assert!(report.is_none());
    assert_eq!(g.requests().total, 0, "nothing at all was sent to Gradient");
}
