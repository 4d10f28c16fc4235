//! The apply engine with the real store against the simulated ConnectWise: a plan is applied
//! and the PSA holds the new quantities; applying again sends no PATCH; `--only`; a dry run
//! sends nothing; lines changed or deleted in the PSA are skipped with both quantities; 429s,
//! 5xx, a hang and a revoked key are recorded, stop the apply, and the next apply finishes
//! the rest without writing anything twice; superseded and CSV plans are refused.

use mpsync::billing::ConnectwiseWriter;
use mpsync::billing::write::LineWriter;
use mpsync::exit::{Exit, ExitStatus};
use mpsync::store::Store;
use mpsync::upstream::RetryPolicy;
use mpsync::writeback::{
    self, ApplyEvent, ApplyOptions, ApplyReport, AuditQuery, AuditResult, JournalEntry, Outcome,
    Plan,
};
use mpsync_sim::faults::{Fault, FaultKind};

use crate::support::cw::{CwServer, fast_retry};
use crate::support::writeback::{PATCH, counted_additions, plan_of};

/// A simulator, a store, and a plan of `steps.len()` changes (addition i by `steps[i]`).
struct Setup {
    server: CwServer,
    store: Store,
    plan: Plan,
    _dir: tempfile::TempDir,
}

async fn setup(seed: u64, steps: &[f64]) -> Setup {
    let server = CwServer::start(seed, 30).await;
    let data = server.data();
    let adds = counted_additions(&data);
    assert!(adds.len() >= steps.len(), "the generator has enough counted additions");
    let picks: Vec<_> = adds.iter().zip(steps).map(|(a, s)| (a, *s)).collect();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let plan = store.save_plan(plan_of(&data, &picks)).await.unwrap().plan().clone();
    Setup { server, store, plan, _dir: dir }
}

fn opts(who: &str) -> ApplyOptions {
    ApplyOptions { who: who.into(), ..ApplyOptions::default() }
}

async fn run(s: &Setup, w: &dyn LineWriter, o: &ApplyOptions) -> ApplyReport {
    writeback::apply(&s.store, w, s.plan.id, o, &mut |_: &ApplyEvent| {}).await.expect("apply")
}

fn results(r: &ApplyReport) -> Vec<&'static str> {
    r.changes
        .iter()
        .map(|c| match &c.outcome {
            Outcome::Applied { .. } => "applied",
            Outcome::Skipped { .. } => "skipped",
            Outcome::Failed { .. } => "failed",
            Outcome::AlreadyDone { .. } => "done",
            Outcome::NotAttempted { .. } => "not_attempted",
            Outcome::Left { .. } => "left",
            Outcome::DryRun { .. } => "dry_run",
        })
        .collect()
}

impl Setup {
    fn writer(&self) -> ConnectwiseWriter {
        ConnectwiseWriter::with_retry(&self.server.config(), fast_retry()).unwrap()
    }

    fn quantity(&self, row: usize) -> Option<f64> {
        let c = &self.plan.changes[row];
        let mpsync::model::LineRef::Connectwise { addition, .. } = c.line else { unreachable!() };
        self.server.cw.addition(addition).map(|a| a.quantity)
    }

    /// PATCHes that reached the handler for the line of change `row` with its new quantity.
    fn patches_to(&self, row: usize) -> usize {
        let c = &self.plan.changes[row];
        let mpsync::model::LineRef::Connectwise { agreement, addition } = c.line else {
            unreachable!()
        };
        let suffix = format!("/finance/agreements/{agreement}/additions/{addition}");
        self.server.cw.writes().iter().filter(|w| w.path.ends_with(&suffix)).count()
    }
}

#[tokio::test]
async fn a_plan_is_applied_once_and_applying_it_again_sends_no_patch() {
    let s = setup(7, &[2.0, -1.0, 3.0]).await;
    let w = s.writer();
    let mut events = Vec::new();
    let report =
        writeback::apply(&s.store, &w, s.plan.id, &opts("alice"), &mut |e: &ApplyEvent| {
            events.push(e.clone())
        })
        .await
        .unwrap();
    assert_eq!(results(&report), ["applied", "applied", "applied"]);
    assert_eq!(report.exit(), Exit::Ok);
    for (i, c) in s.plan.changes.iter().enumerate() {
        assert_eq!(s.quantity(i), Some(c.to), "the PSA holds the new quantity of row {}", c.row);
    }
    let moved: f64 = s.plan.changes.iter().filter_map(|c| c.monthly_amount).sum();
    assert!((report.summary.money_moved - moved).abs() < 1e-9);
    assert_eq!(events.len(), 4, "started plus one event per change");
    assert_eq!(s.server.cw.writes().len(), 3);

    let audit = s.store.audit(AuditQuery::default()).await.unwrap();
    assert_eq!(audit.len(), 3);
    let first = audit.last().unwrap();
    assert_eq!((first.plan, first.row, first.result), (s.plan.id, 1, AuditResult::Applied));
    assert_eq!(
        (first.from, first.to, first.found),
        (s.plan.changes[0].from, s.plan.changes[0].to, Some(s.plan.changes[0].from))
    );
    assert_eq!(
        (first.who.as_str(), first.line.as_str()),
        ("alice", s.plan.changes[0].line_key.as_str())
    );

    // Again: every change is done; nothing is read or written, nothing recorded.
    let before = s.server.control.requests().total;
    let again = run(&s, &w, &opts("bob")).await;
    assert_eq!(results(&again), ["done", "done", "done"]);
    assert_eq!(s.server.cw.writes().len(), 3, "no second PATCH");
    assert_eq!(s.server.control.requests().total, before, "not even a read");
    assert_eq!(s.store.audit(AuditQuery::default()).await.unwrap().len(), 3);
}

#[tokio::test]
async fn only_applies_the_rows_and_lines_named() {
    let s = setup(7, &[1.0, 1.0, 1.0]).await;
    let w = s.writer();
    let key = s.plan.changes[2].line_key.clone();
    let o = ApplyOptions { only: vec!["1".into(), key], ..opts("alice") };
    let r = run(&s, &w, &o).await;
    assert_eq!(r.changes.iter().map(|c| c.row).collect::<Vec<_>>(), vec![1, 3]);
    assert_eq!(s.quantity(1), Some(s.plan.changes[1].from), "row 2 is left alone");
    assert_eq!((s.patches_to(0), s.patches_to(1), s.patches_to(2)), (1, 0, 1));
    let bad = ApplyOptions { only: vec!["cw:1/999999".into()], ..opts("alice") };
    let e = writeback::apply(&s.store, &w, s.plan.id, &bad, &mut |_: &ApplyEvent| {})
        .await
        .unwrap_err();
    assert_eq!(e.exit(), Exit::Usage);
}

#[tokio::test]
async fn a_dry_run_sends_nothing_and_shows_the_patch() {
    let s = setup(7, &[2.0, 5.0]).await;
    let w = s.writer();
    let o = ApplyOptions { dry_run: true, ..opts("alice") };
    let r = run(&s, &w, &o).await;
    assert_eq!(results(&r), ["dry_run", "dry_run"]);
    assert_eq!(s.server.control.requests().total, 0, "not even a read");
    let Outcome::DryRun { request, .. } = &r.changes[1].outcome else { unreachable!() };
    assert_eq!(request.method, "PATCH");
    assert!(request.url.starts_with(&s.server.base_url()));
    let value = s.plan.changes[1].to as u64;
    assert_eq!(
        request.body.as_ref().unwrap().to_string(),
        format!(r#"[{{"op":"replace","path":"/quantity","value":{value}}}]"#)
    );
    assert_eq!(request.header("clientId"), Some("<redacted>"));
    assert!(s.store.apply_journal(s.plan.id).await.unwrap().is_empty());
    assert!(s.store.audit(AuditQuery::default()).await.unwrap().is_empty());
}

#[tokio::test]
async fn lines_changed_or_deleted_in_the_psa_are_skipped_with_both_quantities() {
    let s = setup(7, &[2.0, 2.0, 2.0]).await;
    let w = s.writer();
    let id = |row: usize| match s.plan.changes[row].line {
        mpsync::model::LineRef::Connectwise { addition, .. } => addition,
        _ => unreachable!(),
    };
    let from = s.plan.changes[0].from;
    s.server.cw.set_quantity(id(0), from + 7.0).unwrap();
    s.server.cw.delete_addition(id(1)).unwrap();
    let r = run(&s, &w, &opts("alice")).await;
    assert_eq!(results(&r), ["skipped", "skipped", "applied"]);
    let Outcome::Skipped { reason, found, .. } = &r.changes[0].outcome else { unreachable!() };
    let q = mpsync::reconcile::quantity;
    assert_eq!(
        reason,
        &format!(
            "changed in the PSA since the plan (plan read {}, the PSA holds {})",
            q(from),
            q(from + 7.0)
        )
    );
    assert_eq!(*found, Some(from + 7.0));
    assert_eq!(s.quantity(0), Some(from + 7.0), "the PSA's edit is kept");
    let Outcome::Skipped { reason, .. } = &r.changes[1].outcome else { unreachable!() };
    assert!(reason.starts_with("deleted in the PSA since the plan"), "{reason}");
    assert_eq!(s.server.cw.writes().len(), 1, "only the unchanged line is written");
    let audit = s.store.audit(AuditQuery { limit: 10, plan: Some(s.plan.id) }).await.unwrap();
    assert_eq!(audit.iter().filter(|e| e.result == AuditResult::Skipped).count(), 2);
    assert_eq!(r.exit(), Exit::Ok);
}

/// The fault, what it is called, and whether the PSA could have taken the write.
async fn account_wide_fault_then_recovery(
    fault: Fault,
    kind: &str,
    writer: impl Fn(&Setup) -> ConnectwiseWriter,
) {
    let s = setup(9, &[1.0, 2.0, 3.0, 4.0]).await;
    let w = writer(&s);
    // The first change goes through; the fault hits the second.
    let id = s.server.control.add_fault(fault.after(1));
    let r = run(&s, &w, &opts("alice")).await;
    assert_eq!(results(&r), ["applied", "failed", "not_attempted", "not_attempted"], "{kind}");
    let Outcome::Failed { kind: got, exit, .. } = &r.changes[1].outcome else { unreachable!() };
    assert_eq!((got.as_str(), *exit), (kind, Exit::Unavailable.code()));
    assert_eq!(r.exit(), Exit::Unavailable);
    assert!(r.stopped.is_some());
    let audit = s.store.audit(AuditQuery::default()).await.unwrap();
    assert_eq!(audit.len(), 2, "{kind}: the failure is recorded, what was not attempted is not");
    assert_eq!((audit[0].result, audit[0].kind.as_deref()), (AuditResult::Failed, Some(kind)));
    let creds = s.server.cw.credentials();
    let reason = audit[0].reason.clone().unwrap();
    assert!(
        !reason.contains(&creds.private_key) && !reason.contains(&creds.public_key),
        "{reason}"
    );
    let journal = s.store.apply_journal(s.plan.id).await.unwrap();
    assert_eq!(journal.len(), 1, "only row 1 is settled: the failure stays retryable");

    // The fault is gone: the next apply finishes, writing each remaining line once.
    s.server.control.remove_fault(id);
    s.server.cw.restore();
    let r = run(&s, &w, &opts("alice")).await;
    assert_eq!(results(&r), ["done", "applied", "applied", "applied"], "{kind}");
    for (i, c) in s.plan.changes.iter().enumerate() {
        assert_eq!(s.quantity(i), Some(c.to), "{kind}: row {}", c.row);
        assert_eq!(s.patches_to(i), 1, "{kind}: row {} reached the PSA once", c.row);
    }
    assert!(
        s.store
            .apply_journal(s.plan.id)
            .await
            .unwrap()
            .values()
            .all(|e| matches!(e, JournalEntry::Done { result: AuditResult::Applied, .. }))
    );
}

#[tokio::test]
async fn rate_limits_are_retried_and_a_lasting_storm_fails_and_stops() {
    // Two 429s: retried, applied.
    let s = setup(9, &[1.0]).await;
    s.server.control.add_fault(Fault::new(FaultKind::Storm { retry_after: 1 }).on(PATCH).times(2));
    let r = run(&s, &s.writer(), &opts("alice")).await;
    assert_eq!(results(&r), ["applied"]);
    assert_eq!(s.server.control.requests().get(PATCH), 3);

    let patient = |s: &Setup| {
        let retry = RetryPolicy { max_rate_limited_attempts: 3, ..fast_retry() };
        ConnectwiseWriter::with_retry(&s.server.config(), retry).unwrap()
    };
    let storm = Fault::new(FaultKind::Storm { retry_after: 1 }).on(PATCH);
    account_wide_fault_then_recovery(storm, "rate_limited", patient).await;
}

#[tokio::test]
async fn an_outage_fails_and_stops_and_the_next_apply_finishes() {
    let outage = Fault::new(FaultKind::Status { status: 503 }).on(PATCH);
    account_wide_fault_then_recovery(outage, "unavailable", Setup::writer).await;
}

#[tokio::test]
async fn a_hang_times_out_fails_and_stops_and_the_next_apply_finishes() {
    let impatient = |s: &Setup| {
        let mut cfg = s.server.config();
        cfg.limits.timeout = std::time::Duration::from_millis(200);
        ConnectwiseWriter::with_retry(&cfg, fast_retry()).unwrap()
    };
    let hang = Fault::new(FaultKind::Hang).on(PATCH);
    account_wide_fault_then_recovery(hang, "timeout", impatient).await;
}

#[tokio::test]
async fn a_revoked_key_fails_and_stops_and_the_next_apply_finishes() {
    let revoke = Fault::new(FaultKind::Revoke { key: None }).on(PATCH);
    account_wide_fault_then_recovery(revoke, "unauthorized", Setup::writer).await;
}

#[tokio::test]
async fn superseded_and_csv_plans_are_refused() {
    let s = setup(7, &[1.0]).await;
    let w = s.writer();
    let data = s.server.data();
    let adds = counted_additions(&data);
    let newer = s.store.save_plan(plan_of(&data, &[(&adds[0], 5.0)])).await.unwrap();
    let newer = newer.plan().id;
    let e = writeback::apply(&s.store, &w, s.plan.id, &opts("alice"), &mut |_: &ApplyEvent| {})
        .await
        .unwrap_err();
    assert_eq!(e.exit(), Exit::DataErr);
    assert_eq!(
        e.to_string(),
        format!(
            "plan {} was replaced by plan {newer}: a newer reconciliation changed what to do; \
             review `mpsync plan` and apply {newer}",
            s.plan.id
        )
    );

    let mut csv = plan_of(&data, &[(&adds[0], 9.0)]);
    (csv.billing, csv.writable) = ("csv".into(), false);
    let csv = s.store.save_plan(csv).await.unwrap().plan().id;
    let e = writeback::apply(&s.store, &w, csv, &opts("alice"), &mut |_: &ApplyEvent| {})
        .await
        .unwrap_err();
    assert_eq!(e.exit(), Exit::Config);
    assert!(e.to_string().contains("enter its changes in the PSA by hand"), "{e}");
    assert_eq!(s.server.control.requests().total, 0);
}
