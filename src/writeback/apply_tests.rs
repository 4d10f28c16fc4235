//! The engine against an in-memory ledger and PSA: selection, refusals, the journal, the cap,
//! stops, and settling what a crash left in flight. The same behaviours against the real store
//! and the simulated ConnectWise are in `tests/writeback_apply.rs`.

use std::collections::BTreeMap;
use std::sync::Mutex;

use chrono::TimeZone;
use futures_util::future::BoxFuture;

use super::*;
use crate::billing::write::{LineState, PlannedRequest};
use crate::model::LineRef;
use crate::upstream::StatsSnapshot;
use crate::writeback::{ApplySummary, WriteBackMode};

#[derive(Default)]
struct MemLedger {
    plans: BTreeMap<PlanId, Plan>,
    journal: Mutex<BTreeMap<(PlanId, u32), JournalEntry>>,
    audit: Mutex<Vec<AuditEntry>>,
}

#[derive(Debug, thiserror::Error)]
#[error("memory ledger")]
struct Never;

impl ExitStatus for Never {
    fn exit(&self) -> Exit {
        Exit::IoErr
    }
}

impl ApplyLedger for MemLedger {
    fn plan(&self, id: PlanId) -> BoxFuture<'_, Result<Option<Plan>, LedgerError>> {
        Box::pin(async move { Ok(self.plans.get(&id).cloned()) })
    }

    fn journal(
        &self,
        plan: PlanId,
    ) -> BoxFuture<'_, Result<BTreeMap<u32, JournalEntry>, LedgerError>> {
        Box::pin(async move {
            let j = self.journal.lock().unwrap();
            Ok(j.iter()
                .filter(|((p, _), _)| *p == plan)
                .map(|((_, r), e)| (*r, e.clone()))
                .collect())
        })
    }

    fn record_intent(
        &self,
        plan: PlanId,
        row: u32,
        since: DateTime<Utc>,
        who: String,
    ) -> BoxFuture<'_, Result<(), LedgerError>> {
        Box::pin(async move {
            if who == "broken" {
                return Err(LedgerError::new(Never));
            }
            self.journal.lock().unwrap().insert((plan, row), JournalEntry::InFlight { since, who });
            Ok(())
        })
    }

    fn record_result(
        &self,
        mut entry: AuditEntry,
    ) -> BoxFuture<'_, Result<AuditEntry, LedgerError>> {
        Box::pin(async move {
            let mut audit = self.audit.lock().unwrap();
            entry.seq = audit.len() as u64 + 1;
            audit.push(entry.clone());
            let mut j = self.journal.lock().unwrap();
            match entry.result {
                AuditResult::Failed => {
                    j.remove(&(entry.plan, entry.row));
                }
                result => {
                    j.insert(
                        (entry.plan, entry.row),
                        JournalEntry::Done {
                            result,
                            at: entry.at,
                            who: entry.who.clone(),
                            seq: entry.seq,
                            reason: entry.reason.clone(),
                        },
                    );
                }
            }
            Ok(entry)
        })
    }
}

/// Lines by addition id: quantity (`None`: deleted); writes made; a failure per addition.
#[derive(Default)]
struct MemPsa {
    lines: Mutex<BTreeMap<u64, Option<f64>>>,
    writes: Mutex<Vec<(u64, f64)>>,
    reads: Mutex<usize>,
    fail_write: Mutex<BTreeMap<u64, WriteError>>,
    /// Reads never answer.
    hang: Mutex<bool>,
}

fn addition(line: &LineRef) -> u64 {
    match line {
        LineRef::Connectwise { addition, .. } => *addition,
        LineRef::Autotask { contract_service, .. } => *contract_service,
        LineRef::Halopsa { line, .. } => *line as u64,
        LineRef::Csv { line } => *line,
    }
}

impl MemPsa {
    fn state(&self, line: &LineRef) -> Result<LineState, WriteError> {
        match self.lines.lock().unwrap().get(&addition(line)).copied().flatten() {
            Some(quantity) => Ok(LineState {
                line: line.clone(),
                quantity,
                unit_price: None,
                product_id: None,
                inactive: None,
                locked: None,
            }),
            None => Err(WriteError::Gone {
                psa: "connectwise",
                line: line.clone(),
                endpoint: "GET /line".into(),
                message: "not found".into(),
            }),
        }
    }
}

impl LineWriter for MemPsa {
    fn psa(&self) -> &'static str {
        "connectwise"
    }

    fn read_line<'a>(&'a self, line: &'a LineRef) -> BoxFuture<'a, Result<LineState, WriteError>> {
        Box::pin(async move {
            *self.reads.lock().unwrap() += 1;
            if *self.hang.lock().unwrap() {
                std::future::pending::<()>().await;
            }
            self.state(line)
        })
    }

    fn set_quantity<'a>(
        &'a self,
        line: &'a LineRef,
        q: f64,
    ) -> BoxFuture<'a, Result<LineState, WriteError>> {
        Box::pin(async move {
            let id = addition(line);
            self.writes.lock().unwrap().push((id, q));
            if let Some(e) = self.fail_write.lock().unwrap().get(&id) {
                return Err(e.clone());
            }
            self.lines.lock().unwrap().insert(id, Some(q));
            self.state(line)
        })
    }

    fn describe(&self, line: &LineRef, _: f64, q: f64) -> Result<PlannedRequest, WriteError> {
        Ok(PlannedRequest {
            method: "PATCH".into(),
            url: format!("http://psa/additions/{}", addition(line)),
            headers: vec![("Authorization".into(), "<redacted>".into())],
            body: Some(serde_json::json!([{"op": "replace", "path": "/quantity", "value": q}])),
        })
    }

    fn stats(&self) -> StatsSnapshot {
        StatsSnapshot::default()
    }
}

/// A plan whose row i changes addition i from `from` to `to`, each with `mode`.
fn plan(id: PlanId, changes: &[(f64, f64, WriteBackMode)]) -> Plan {
    let changes: Vec<_> = changes
        .iter()
        .enumerate()
        .map(|(i, &(from, to, mode))| (i as u64 + 1, from, to, mode))
        .collect();
    crate::writeback::sample_plan(id, &changes)
}

fn setup(p: Plan) -> (MemLedger, MemPsa) {
    let psa = MemPsa::default();
    for c in &p.changes {
        psa.lines.lock().unwrap().insert(addition(&c.line), Some(c.from));
    }
    let mut ledger = MemLedger::default();
    ledger.plans.insert(p.id, p);
    (ledger, psa)
}

fn opts(who: &str) -> ApplyOptions {
    ApplyOptions { who: who.into(), ..ApplyOptions::default() }
}

async fn run(
    ledger: &MemLedger,
    psa: &MemPsa,
    id: PlanId,
    o: &ApplyOptions,
) -> Result<(ApplyReport, Vec<ApplyEvent>), ApplyError> {
    let mut events = Vec::new();
    let report = apply(ledger, psa, id, o, &mut |e: &ApplyEvent| events.push(e.clone())).await?;
    Ok((report, events))
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

const R: WriteBackMode = WriteBackMode::Review;

#[tokio::test]
async fn applies_each_change_once_and_a_second_apply_writes_nothing() {
    let (ledger, psa) = setup(plan(1, &[(10.0, 12.0, R), (5.0, 3.0, R)]));
    let (report, events) = run(&ledger, &psa, 1, &opts("alice")).await.unwrap();
    assert_eq!(results(&report), ["applied", "applied"]);
    assert_eq!(*psa.writes.lock().unwrap(), vec![(1, 12.0), (2, 3.0)]);
    assert_eq!(report.summary.money_moved, 4.0 - 4.0);
    assert_eq!(report.exit(), Exit::Ok);
    assert!(matches!(events[0], ApplyEvent::Started { selected: 2, cap: 25, .. }));
    assert_eq!(events.len(), 3, "started, then one event per change as it is decided");
    let audit = ledger.audit.lock().unwrap().clone();
    assert_eq!(audit.len(), 2);
    assert_eq!(
        (audit[0].who.as_str(), audit[0].found, audit[0].result),
        ("alice", Some(10.0), AuditResult::Applied)
    );

    let (again, _) = run(&ledger, &psa, 1, &opts("bob")).await.unwrap();
    assert_eq!(results(&again), ["done", "done"]);
    assert!(
        matches!(&again.changes[0].outcome, Outcome::AlreadyDone { who, done: AuditResult::Applied, .. } if who == "alice")
    );
    assert_eq!(psa.writes.lock().unwrap().len(), 2, "nothing written twice");
    assert_eq!(ledger.audit.lock().unwrap().len(), 2, "no second audit entry");
    assert!(
        again.changes[0].text().contains("already applied by the apply of 2"),
        "{}",
        again.changes[0].text()
    );
}

#[tokio::test]
async fn refuses_unknown_superseded_unwritable_and_foreign_plans_and_bad_only() {
    let (mut ledger, psa) = setup(plan(1, &[(10.0, 12.0, R)]));
    let e = run(&ledger, &psa, 9, &opts("a")).await.unwrap_err();
    assert_eq!(e.exit(), Exit::DataErr);
    assert!(e.to_string().contains("no plan 9"), "{e}");

    let mut old = plan(2, &[(1.0, 2.0, R)]);
    old.superseded_by = Some(3);
    ledger.plans.insert(2, old);
    let e = run(&ledger, &psa, 2, &opts("a")).await.unwrap_err();
    assert_eq!(e.exit(), Exit::DataErr);
    assert!(
        e.to_string().contains("plan 2 was replaced by plan 3")
            && e.to_string().contains("apply 3"),
        "{e}"
    );

    let mut csv = plan(4, &[(1.0, 2.0, R)]);
    (csv.billing, csv.writable) = ("csv".into(), false);
    ledger.plans.insert(4, csv);
    let e = run(&ledger, &psa, 4, &opts("a")).await.unwrap_err();
    assert_eq!(e.exit(), Exit::Config);
    assert!(e.to_string().contains("by hand"), "{e}");

    let mut foreign = plan(5, &[(1.0, 2.0, R)]);
    foreign.billing = "halopsa".into();
    ledger.plans.insert(5, foreign);
    assert_eq!(run(&ledger, &psa, 5, &opts("a")).await.unwrap_err().exit(), Exit::DataErr);

    let only = ApplyOptions { only: vec!["1".into(), "7".into()], ..opts("a") };
    let e = run(&ledger, &psa, 1, &only).await.unwrap_err();
    assert_eq!(e.exit(), Exit::Usage);
    assert!(e.to_string().contains("--only 7") && e.to_string().contains("cw:1/1"), "{e}");
    assert!(psa.writes.lock().unwrap().is_empty() && *psa.reads.lock().unwrap() == 0);
    assert!(ledger.audit.lock().unwrap().is_empty());
}

#[tokio::test]
async fn only_selects_by_row_or_line_and_auto_skips_held_and_review_changes() {
    let mut p =
        plan(1, &[(1.0, 2.0, R), (1.0, 3.0, WriteBackMode::Auto), (1.0, 4.0, WriteBackMode::Auto)]);
    p.changes[2].held = Some("a drop above 20%".into());
    let (ledger, psa) = setup(p);
    let only = ApplyOptions { only: vec!["CW:1/3".into()], ..opts("a") };
    let (r, _) = run(&ledger, &psa, 1, &only).await.unwrap();
    assert_eq!(r.changes.iter().map(|c| c.row).collect::<Vec<_>>(), vec![3]);
    let auto = ApplyOptions { auto_only: true, ..opts("daemon") };
    let (r, _) = run(&ledger, &psa, 1, &auto).await.unwrap();
    assert_eq!(
        r.changes.iter().map(|c| c.row).collect::<Vec<_>>(),
        vec![2],
        "held and review wait for a person"
    );
    assert_eq!(*psa.writes.lock().unwrap(), vec![(3, 4.0), (2, 3.0)]);
    // The operator applies the rest, held one (already done) included.
    let (r, _) = run(&ledger, &psa, 1, &opts("a")).await.unwrap();
    assert_eq!(results(&r), ["applied", "done", "done"]);
}

#[tokio::test]
async fn changed_and_deleted_lines_are_skipped_with_both_quantities() {
    let (ledger, psa) = setup(plan(1, &[(10.0, 12.0, R), (5.0, 6.0, R), (7.0, 8.0, R)]));
    psa.lines.lock().unwrap().insert(1, Some(15.0));
    psa.lines.lock().unwrap().insert(2, None);
    let (r, _) = run(&ledger, &psa, 1, &opts("a")).await.unwrap();
    assert_eq!(results(&r), ["skipped", "skipped", "applied"]);
    let Outcome::Skipped { reason, found, .. } = &r.changes[0].outcome else { unreachable!() };
    assert_eq!(reason, "changed in the PSA since the plan (plan read 10, the PSA holds 15)");
    assert_eq!(*found, Some(15.0));
    let Outcome::Skipped { reason, .. } = &r.changes[1].outcome else { unreachable!() };
    assert!(reason.starts_with("deleted in the PSA since the plan"), "{reason}");
    assert_eq!(*psa.writes.lock().unwrap(), vec![(3, 8.0)]);
    assert_eq!(r.exit(), Exit::Ok, "a skip is not a failure");
    // Skipped is settled: the next apply does not look again.
    let (again, _) = run(&ledger, &psa, 1, &opts("a")).await.unwrap();
    assert_eq!(results(&again), ["done", "done", "done"]);
}

fn upstream(kind: &str) -> WriteError {
    let (upstream, endpoint) = ("connectwise".to_owned(), "PATCH /line".to_owned());
    WriteError::Upstream(match kind {
        "unauthorized" => UpstreamError::Unauthorized {
            upstream,
            endpoint,
            credential: "billing.connectwise.private_key_file".into(),
            message: "bad key sekrit-value".into(),
        },
        _ => UpstreamError::Unavailable { upstream, endpoint, attempts: 3, detail: "503".into() },
    })
}

#[tokio::test]
async fn an_account_wide_failure_stops_and_the_next_apply_finishes_without_double_writes() {
    let (ledger, psa) =
        setup(plan(1, &[(1.0, 2.0, R), (1.0, 3.0, R), (1.0, 4.0, R), (1.0, 5.0, R)]));
    psa.fail_write.lock().unwrap().insert(2, upstream("unauthorized"));
    let o = ApplyOptions { scrub: Scrubber::new(["sekrit-value"]), ..opts("a") };
    let (r, _) = run(&ledger, &psa, 1, &o).await.unwrap();
    assert_eq!(results(&r), ["applied", "failed", "not_attempted", "not_attempted"]);
    assert_eq!(r.exit(), Exit::Unavailable);
    let Outcome::Failed { reason, kind, .. } = &r.changes[1].outcome else { unreachable!() };
    assert_eq!(kind, "unauthorized");
    assert!(!reason.contains("sekrit-value") && reason.contains("<redacted>"), "{reason}");
    assert!(r.stopped.as_deref().is_some_and(|s| s.contains("row 2 failed (unauthorized)")));
    assert_eq!(
        r.summary,
        ApplySummary {
            applied: 1,
            failed: 1,
            not_attempted: 2,
            money_moved: 2.0,
            ..Default::default()
        }
    );
    assert!(
        r.summary_text().contains("1 applied, 0 skipped, 1 failed, 2 not attempted"),
        "{}",
        r.summary_text()
    );
    let audit = ledger.audit.lock().unwrap().clone();
    assert_eq!(audit.len(), 2, "nothing recorded for what was not attempted");
    assert_eq!(audit[1].kind.as_deref(), Some("unauthorized"));

    // The key is fixed: the next apply does the failed change and the rest, each once.
    psa.fail_write.lock().unwrap().clear();
    let (r, _) = run(&ledger, &psa, 1, &opts("a")).await.unwrap();
    assert_eq!(results(&r), ["done", "applied", "applied", "applied"]);
    let writes = psa.writes.lock().unwrap().clone();
    assert_eq!(writes, vec![(1, 2.0), (2, 3.0), (2, 3.0), (3, 4.0), (4, 5.0)]);
}

#[tokio::test]
async fn a_line_failure_is_recorded_and_the_apply_goes_on() {
    let (ledger, psa) = setup(plan(1, &[(1.0, 2.0, R), (1.0, 3.0, R)]));
    let refused = WriteError::Rejected {
        psa: "connectwise",
        line: LineRef::Connectwise { agreement: 1, addition: 1 },
        quantity: 2.0,
        endpoint: "PATCH /line".into(),
        status: 400,
        message: "locked".into(),
        fields: vec!["quantity".into()],
    };
    psa.fail_write.lock().unwrap().insert(1, refused);
    let (r, _) = run(&ledger, &psa, 1, &opts("a")).await.unwrap();
    assert_eq!(results(&r), ["failed", "applied"]);
    assert_eq!(r.exit(), Exit::DataErr);
    assert!(r.stopped.is_none());
}

#[tokio::test]
async fn the_cap_leaves_the_rest_for_the_next_apply() {
    let mut p = plan(1, &[(1.0, 2.0, R), (1.0, 3.0, R), (1.0, 4.0, R)]);
    p.max_changes_per_apply = 2;
    let (ledger, psa) = setup(p);
    let (r, _) = run(&ledger, &psa, 1, &opts("a")).await.unwrap();
    assert_eq!(results(&r), ["applied", "applied", "left"]);
    assert!(r.summary_text().contains("1 left for the next apply (cap 2)"), "{}", r.summary_text());
    let (r, _) = run(&ledger, &psa, 1, &opts("a")).await.unwrap();
    assert_eq!(results(&r), ["done", "done", "applied"]);
}

#[tokio::test]
async fn in_flight_changes_are_settled_by_re_reading_the_line() {
    let (ledger, psa) =
        setup(plan(1, &[(1.0, 2.0, R), (1.0, 3.0, R), (1.0, 4.0, R), (1.0, 5.0, R)]));
    let since = Utc.with_ymd_and_hms(2026, 12, 1, 9, 0, 0).unwrap();
    // Row 1: the crash came after the write landed; row 2: before it was sent; row 3: someone
    // changed the line meanwhile.
    psa.lines.lock().unwrap().insert(1, Some(2.0));
    psa.lines.lock().unwrap().insert(3, Some(9.0));
    for row in 1..=3 {
        ledger
            .journal
            .lock()
            .unwrap()
            .insert((1, row), JournalEntry::InFlight { since, who: "carol".into() });
    }
    // Settled even when the new apply selects only row 4.
    let only = ApplyOptions { only: vec!["4".into()], ..opts("dave") };
    let (r, _) = run(&ledger, &psa, 1, &only).await.unwrap();
    assert_eq!(results(&r), ["applied", "applied", "skipped", "applied"]);
    assert_eq!(*psa.writes.lock().unwrap(), vec![(2, 3.0), (4, 5.0)], "row 1 is not written again");
    let Outcome::Applied { reason, .. } = &r.changes[0].outcome else { unreachable!() };
    assert!(
        reason.as_deref().is_some_and(|n| n.contains("write had landed") && n.contains("carol")),
        "{reason:?}"
    );
    assert!(
        ledger.journal.lock().unwrap().values().all(|e| matches!(e, JournalEntry::Done { .. }))
    );
}

#[tokio::test]
async fn a_dry_run_sends_nothing_and_records_nothing() {
    let mut p = plan(1, &[(1.0, 2.0, R), (1.0, 3.0, R), (1.0, 4.0, R)]);
    p.max_changes_per_apply = 2;
    let (ledger, psa) = setup(p);
    let o = ApplyOptions { dry_run: true, ..opts("a") };
    let (r, _) = run(&ledger, &psa, 1, &o).await.unwrap();
    assert_eq!(results(&r), ["dry_run", "dry_run", "left"]);
    assert_eq!((*psa.reads.lock().unwrap(), psa.writes.lock().unwrap().len()), (0, 0));
    assert!(ledger.journal.lock().unwrap().is_empty() && ledger.audit.lock().unwrap().is_empty());
    let text = r.changes[0].text();
    assert!(text.contains("would send") && text.contains("PATCH http://psa/additions/1"), "{text}");
    assert!(text.contains(r#"[{"op":"replace","path":"/quantity","value":2.0}]"#), "{text}");
}

#[tokio::test]
async fn a_stopped_apply_and_a_failing_store_leave_the_rest_untouched() {
    let (ledger, psa) = setup(plan(1, &[(1.0, 2.0, R), (1.0, 3.0, R)]));
    let stopped = ApplyOptions::default();
    stopped.stop.cancel();
    let (r, _) = run(&ledger, &psa, 1, &ApplyOptions { who: "a".into(), ..stopped }).await.unwrap();
    assert_eq!(results(&r), ["not_attempted", "not_attempted"]);
    assert!(psa.writes.lock().unwrap().is_empty());

    let e = run(&ledger, &psa, 1, &opts("broken")).await.unwrap_err();
    assert_eq!(e.exit(), Exit::IoErr, "the store's own status");
    assert!(e.to_string().contains("record the intent"), "{e}");
    assert_eq!(*psa.reads.lock().unwrap(), 0, "nothing is sent without a recorded intent");
}

#[tokio::test]
async fn a_stop_during_a_write_leaves_the_intent_for_the_next_apply_to_settle() {
    let (ledger, psa) = setup(plan(1, &[(1.0, 2.0, R), (1.0, 3.0, R)]));
    *psa.hang.lock().unwrap() = true;
    let o = opts("a");
    let stop = o.stop.clone();
    let (r, _) = tokio::join!(run(&ledger, &psa, 1, &o), async {
        // The read has started once the intent is in the journal.
        while ledger.journal.lock().unwrap().is_empty() {
            tokio::task::yield_now().await;
        }
        stop.cancel();
    });
    let (r, _) = r.unwrap();
    assert_eq!(results(&r), ["not_attempted", "not_attempted"]);
    assert!(r.stopped.as_deref().is_some_and(|s| s.contains("interrupted while writing row 1")));
    assert!(matches!(ledger.journal.lock().unwrap()[&(1, 1)], JournalEntry::InFlight { .. }));
    assert!(ledger.audit.lock().unwrap().is_empty());

    *psa.hang.lock().unwrap() = false;
    let (r, _) = run(&ledger, &psa, 1, &opts("a")).await.unwrap();
    assert_eq!(results(&r), ["applied", "applied"]);
    let Outcome::Applied { reason, .. } = &r.changes[0].outcome else { unreachable!() };
    assert!(reason.as_deref().is_some_and(|n| n.contains("left in flight")), "{reason:?}");
}
