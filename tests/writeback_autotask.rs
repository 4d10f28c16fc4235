//! The apply engine with the real store against the simulated Autotask: each change becomes
//! one contract service adjustment with `unitChange = to − from`, effective on the first day
//! of next month (or today, by config), so the units row covering that day holds the new
//! quantity and the current period is left alone; applying again sends nothing; a line
//! changed in the PSA (including a change already scheduled for next month), deleted or
//! ended is skipped; 429, 5xx, a lost answer and a revoked secret fail and stop the apply,
//! and the next apply finishes with exactly one adjustment per change — the adjustments
//! cannot be read back, so the sim's journal of them is the proof.

use chrono::{Datelike, Months, NaiveDate, Utc};
use mpsync::billing::AutotaskWriter;
use mpsync::billing::write::LineWriter;
use mpsync::config::AdjustmentEffective;
use mpsync::exit::Exit;
use mpsync::store::Store;
use mpsync::upstream::RetryPolicy;
use mpsync::writeback::{
    self, ApplyEvent, ApplyOptions, ApplyReport, AuditQuery, AuditResult, Outcome, Plan,
};
use mpsync_sim::autotask::AtAdjustment;
use mpsync_sim::faults::{Fault, FaultKind};

use crate::support::at::AtServer;
use crate::support::cw::fast_retry;
use crate::support::writeback::{AT_POST, AtLine, at_lines, at_plan_of};

fn next_month(today: NaiveDate) -> NaiveDate {
    today.with_day(1).unwrap().checked_add_months(Months::new(1)).unwrap()
}

struct Setup {
    server: AtServer,
    store: Store,
    plan: Plan,
    lines: Vec<AtLine>,
    /// Lines whose next period already bills something else than today.
    scheduled: Vec<AtLine>,
    today: NaiveDate,
    _dir: tempfile::TempDir,
}

async fn setup(seed: u64, steps: &[f64]) -> Setup {
    let server = AtServer::start(seed, 30).await;
    let today = server.at.read().today;
    let (lines, scheduled) = at_lines(&server.at.read(), next_month(today));
    assert!(lines.len() >= steps.len(), "enough lines billing the same next month");
    let picks: Vec<_> = lines.iter().zip(steps).map(|(l, s)| (l, *s)).collect();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let plan = store.save_plan(at_plan_of(&picks)).await.unwrap().plan().clone();
    Setup { server, store, plan, lines, scheduled, today, _dir: dir }
}

fn opts() -> ApplyOptions {
    ApplyOptions { who: "alice".into(), ..ApplyOptions::default() }
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
    fn writer_with(&self, policy: AdjustmentEffective, retry: RetryPolicy) -> AutotaskWriter {
        let mut cfg = self.server.config();
        cfg.adjustment_effective = policy;
        AutotaskWriter::with_retry(&cfg, retry).unwrap()
    }

    fn writer(&self) -> AutotaskWriter {
        self.writer_with(AdjustmentEffective::NextPeriod, fast_retry())
    }

    async fn run(&self, w: &dyn LineWriter) -> ApplyReport {
        writeback::apply(&self.store, w, self.plan.id, &opts(), &mut |_: &ApplyEvent| {})
            .await
            .expect("apply")
    }

    fn cs(&self, row: usize) -> u64 {
        match self.plan.changes[row].line {
            mpsync::model::LineRef::Autotask { contract_service, .. } => contract_service,
            _ => unreachable!(),
        }
    }

    /// The adjustments the PSA took for change `row`'s contract service.
    fn adjustments(&self, row: usize) -> Vec<AtAdjustment> {
        let cs = self.cs(row);
        self.server.at.adjustments().into_iter().filter(|a| a.contract_service_id == cs).collect()
    }

    fn units_on(&self, row: usize, day: NaiveDate) -> Option<f64> {
        self.server.at.units_on(self.cs(row), day)
    }

    /// Every change applied by exactly one adjustment of `to − from` from `effective`.
    fn assert_exactly_once(&self, effective: NaiveDate) {
        for (i, c) in self.plan.changes.iter().enumerate() {
            let a = self.adjustments(i);
            assert_eq!(a.len(), 1, "row {}: one adjustment, got {a:?}", c.row);
            assert_eq!(a[0].unit_change, (c.to - c.from) as i64, "row {}", c.row);
            assert_eq!(a[0].effective_date, effective, "row {}", c.row);
            assert_eq!(self.units_on(i, effective), Some(c.to), "row {}", c.row);
        }
    }
}

#[tokio::test]
async fn each_change_is_one_adjustment_from_next_month_and_applying_again_sends_nothing() {
    let s = setup(21, &[2.0, -1.0, 3.0]).await;
    let w = s.writer();
    let next = next_month(s.today);

    // A dry run shows the exact POST of each change and sends nothing.
    let dry = ApplyOptions { dry_run: true, ..opts() };
    let r = writeback::apply(&s.store, &w, s.plan.id, &dry, &mut |_: &ApplyEvent| {}).await;
    let r = r.unwrap();
    assert_eq!(s.server.control.requests().total, 0, "not even a read");
    let Outcome::DryRun { request, .. } = &r.changes[1].outcome else { unreachable!() };
    assert_eq!(request.method, "POST");
    assert!(request.url.ends_with("/v1.0/ContractServiceAdjustments"), "{}", request.url);
    let l = &s.lines[1];
    let body = request.body.as_ref().unwrap();
    assert_eq!(
        body,
        &serde_json::json!({
            "contractID": l.contract, "contractServiceID": l.contract_service,
            "serviceID": l.service, "unitChange": -1,
            "effectiveDate": format!("{}T00:00:00", next.format("%Y-%m-%d")),
        })
    );
    assert_eq!(request.header("Secret"), Some("<redacted>"));

    let r = s.run(&w).await;
    assert_eq!(results(&r), ["applied", "applied", "applied"]);
    assert_eq!(r.exit(), Exit::Ok);
    s.assert_exactly_once(next);
    for (i, c) in s.plan.changes.iter().enumerate() {
        assert_eq!(s.units_on(i, s.today), Some(c.from), "this month is billed as it stands");
    }
    let audit = s.store.audit(AuditQuery::default()).await.unwrap();
    assert_eq!(audit.len(), 3);
    assert!(audit.iter().all(|e| e.result == AuditResult::Applied && e.found == Some(e.from)));

    // Again: done, nothing read or sent.
    let sent = s.server.control.requests().total;
    let again = s.run(&w).await;
    assert_eq!(results(&again), ["done", "done", "done"]);
    assert_eq!(s.server.control.requests().total, sent);

    // A newer plan with two of the same changes, already in the PSA: read, nothing posted.
    let picks: Vec<_> = s.lines.iter().zip([2.0, -1.0]).collect();
    let same = s.store.save_plan(at_plan_of(&picks)).await.unwrap().plan().id;
    let r = writeback::apply(&s.store, &w, same, &opts(), &mut |_: &ApplyEvent| {}).await;
    assert_eq!(results(&r.unwrap()), ["applied", "applied"]);
    assert_eq!(s.server.at.adjustments().len(), 3, "the rows already held the new units");
}

#[tokio::test]
async fn with_today_the_current_period_is_split_and_billed_at_the_new_units() {
    let s = setup(22, &[4.0, -2.0]).await;
    let w = s.writer_with(AdjustmentEffective::Today, fast_retry());
    let r = s.run(&w).await;
    assert_eq!(results(&r), ["applied", "applied"]);
    s.assert_exactly_once(s.today);
    let next = next_month(s.today);
    for (i, c) in s.plan.changes.iter().enumerate() {
        assert_eq!(s.units_on(i, next), Some(c.to), "later periods follow");
    }
    // The next billing read (as of today) bills the new units.
    let source = AtServer::source(&s.server.config());
    let cancel = tokio_util::sync::CancellationToken::new();
    let billed = mpsync::billing::BilledSource::fetch(&source, Utc::now(), &cancel).await;
    let billed = billed.outcome.unwrap();
    for c in &s.plan.changes {
        let line = billed.lines.iter().find(|l| l.line.as_ref() == Some(&c.line)).unwrap();
        assert_eq!(line.quantity, c.to, "{}", c.line_key);
    }
}

#[tokio::test]
async fn lines_changed_scheduled_deleted_or_ended_in_the_psa_are_skipped() {
    let mut s = setup(23, &[2.0, 2.0, 2.0, 2.0]).await;
    // Row 5: a line whose next month already bills something else than the plan read today.
    let sched = s.scheduled.first().cloned().expect("a line with a change scheduled");
    let mut plan = at_plan_of(&[
        (&s.lines[0], 2.0),
        (&s.lines[1], 2.0),
        (&s.lines[2], 2.0),
        (&s.lines[3], 2.0),
        (&sched, 1.0),
    ]);
    plan = s.store.save_plan(plan).await.unwrap().plan().clone();
    s.plan = plan;
    let next = next_month(s.today);
    let from = s.plan.changes[0].from;
    s.server.at.set_units(s.cs(0), s.today, from + 7.0);
    assert!(s.server.at.delete_contract_service(s.cs(1)));
    s.server.at.end_contract_service(s.cs(2), s.today);
    let scheduled_units = s.units_on(4, next).unwrap();

    let r = s.run(&s.writer()).await;
    assert_eq!(results(&r), ["skipped", "skipped", "skipped", "applied", "skipped"]);
    let q = mpsync::reconcile::quantity;
    let Outcome::Skipped { reason, found, .. } = &r.changes[0].outcome else { unreachable!() };
    assert_eq!(
        reason,
        &format!(
            "changed in the PSA since the plan (plan read {}, the PSA holds {})",
            q(from),
            q(from + 7.0)
        )
    );
    assert_eq!(*found, Some(from + 7.0));
    let Outcome::Skipped { reason, .. } = &r.changes[1].outcome else { unreachable!() };
    assert!(
        reason.starts_with("deleted in the PSA since the plan")
            && reason.contains(&format!("contract service {} does not exist", s.cs(1))),
        "{reason}"
    );
    let Outcome::Skipped { reason, .. } = &r.changes[2].outcome else { unreachable!() };
    assert!(reason.contains(&format!("no units row of contract service {}", s.cs(2))), "{reason}");
    assert!(reason.contains(&next.to_string()) && reason.contains("next_period"), "{reason}");
    // The next month's row is what the write would change: it already differs.
    let Outcome::Skipped { found, .. } = &r.changes[4].outcome else { unreachable!() };
    assert_eq!(*found, Some(scheduled_units));
    assert_eq!(s.units_on(4, next), Some(scheduled_units), "the scheduled change is kept");
    let all = s.server.at.adjustments();
    assert_eq!(all.len(), 1, "only the unchanged line got an adjustment: {all:?}");
    assert_eq!(all[0].contract_service_id, s.cs(3));
    assert_eq!(r.exit(), Exit::Ok);
}

/// A fault on the second change's POST, what it is called, then recovery: every change in
/// with one adjustment each.
async fn fault_then_recovery(fault: Fault, kind: &str, retry: RetryPolicy, exit: Exit) {
    let s = setup(24, &[1.0, 2.0, 3.0, -1.0]).await;
    let w = s.writer_with(AdjustmentEffective::NextPeriod, retry);
    let id = s.server.control.add_fault(fault.after(1));
    let r = s.run(&w).await;
    assert_eq!(results(&r), ["applied", "failed", "not_attempted", "not_attempted"], "{kind}");
    let Outcome::Failed { kind: got, exit: code, .. } = &r.changes[1].outcome else {
        unreachable!()
    };
    assert_eq!((got.as_str(), *code), (kind, exit.code()));
    assert_eq!(r.exit(), exit);
    let audit = s.store.audit(AuditQuery::default()).await.unwrap();
    assert_eq!(audit.len(), 2, "{kind}");
    let creds = s.server.at.credentials();
    let reason = audit[0].reason.clone().unwrap();
    assert!(
        !reason.contains(&creds.secret) && !reason.contains(&creds.integration_code),
        "{reason}"
    );

    s.server.control.remove_fault(id);
    s.server.at.restore();
    let r = s.run(&w).await;
    assert_eq!(results(&r), ["done", "applied", "applied", "applied"], "{kind}");
    s.assert_exactly_once(next_month(s.today));
}

#[tokio::test]
async fn a_429_fails_at_once_and_the_next_apply_finishes() {
    // A create is not retried: a 429 refused it, the next apply sends it.
    let storm = Fault::new(FaultKind::Storm { retry_after: 1 }).on(AT_POST);
    fault_then_recovery(storm, "rate_limited", fast_retry(), Exit::Unavailable).await;
}

#[tokio::test]
async fn a_5xx_fails_and_the_next_apply_finishes() {
    let outage = Fault::new(FaultKind::Status { status: 503 }).on(AT_POST);
    fault_then_recovery(outage, "unavailable", fast_retry(), Exit::Unavailable).await;
}

#[tokio::test]
async fn a_revoked_secret_fails_and_the_next_apply_finishes() {
    let revoke = Fault::new(FaultKind::Revoke { key: None }).on(AT_POST);
    fault_then_recovery(revoke, "unauthorized", fast_retry(), Exit::Unavailable).await;
}

#[tokio::test]
async fn a_lost_answer_is_settled_by_the_units_row_never_by_a_second_adjustment() {
    // The adjustment lands, its answer never comes: the write times out (it may have been
    // applied); the next apply finds the row holding the new units and sends nothing.
    let s = setup(25, &[3.0, 1.0]).await;
    let mut cfg = s.server.config();
    cfg.limits.timeout = std::time::Duration::from_millis(300);
    let w = AutotaskWriter::with_retry(&cfg, fast_retry()).unwrap();
    let lost = s.server.control.add_fault(Fault::new(FaultKind::HangAfter).on(AT_POST).times(1));
    let r = s.run(&w).await;
    assert_eq!(results(&r), ["failed", "not_attempted"]);
    let Outcome::Failed { kind, reason, .. } = &r.changes[0].outcome else { unreachable!() };
    assert_eq!(kind, "timeout");
    assert!(reason.contains("may hold the new quantity anyway"), "{reason}");
    assert_eq!(s.adjustments(0).len(), 1, "it landed");
    s.server.control.remove_fault(lost);

    let r = s.run(&w).await;
    assert_eq!(results(&r), ["applied", "applied"]);
    let Outcome::Applied { reason, .. } = &r.changes[0].outcome else { unreachable!() };
    assert!(reason.as_deref().is_some_and(|r| r.contains("already held")), "{reason:?}");
    s.assert_exactly_once(next_month(s.today));
}
