//! The apply engine with the real store against the simulated HaloPSA: each change is one
//! `POST /RecurringInvoice/updatelines` (or, on an instance without that route, one re-POST
//! of the invoice with every line as read), verified by re-reading the invoice; applying
//! again sends nothing; a line changed, deleted, made inactive, computed by Halo or on a
//! disabled invoice is skipped with the reason; a write that also changed or dropped another
//! line of the invoice is a failed apply naming the line before → after, and stops the apply;
//! 429, 5xx, a lost answer and a revoked secret fail and stop the apply, and the next apply
//! finishes with exactly one write per line (the simulator's journal of writes is the proof).

use mpsync::billing::HalopsaWriter;
use mpsync::billing::write::LineWriter;
use mpsync::exit::Exit;
use mpsync::model::LineRef;
use mpsync::store::Store;
use mpsync::upstream::RetryPolicy;
use mpsync::writeback::{
    self, ApplyEvent, ApplyOptions, ApplyReport, AuditQuery, AuditResult, Outcome, Plan,
};
use mpsync_sim::faults::{Fault, FaultKind};
use mpsync_sim::halopsa::{LineChange, Resource};
use serde_json::{Value, json};

use crate::support::cw::fast_retry;
use crate::support::halo::HaloServer;
use crate::support::writeback::{
    HALO_GET, HALO_REPOST, HALO_UPDATELINES, HaloLine, halo_lines, halo_plan_of,
};

struct Setup {
    server: HaloServer,
    store: Store,
    plan: Plan,
    lines: Vec<HaloLine>,
    _dir: tempfile::TempDir,
}

async fn setup(seed: u64, steps: &[f64]) -> Setup {
    let server = HaloServer::start(seed, 30).await;
    let lines = halo_lines(&server.halo.read());
    assert!(lines.len() >= steps.len() + 2, "enough writable lines: {}", lines.len());
    let picks: Vec<_> = lines.iter().zip(steps).map(|(l, s)| (l, *s)).collect();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let plan = store.save_plan(halo_plan_of(&picks)).await.unwrap().plan().clone();
    Setup { server, store, plan, lines, _dir: dir }
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

/// The fields of each line of invoice `id` the verification compares, by line id.
fn lines_of(s: &Setup, id: i64) -> Vec<(i64, Value)> {
    let inv = s.server.halo.invoice(id).expect("the invoice");
    let mut out: Vec<(i64, Value)> = inv["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            let keep = |k: &str| l[k].clone();
            (
                l["id"].as_i64().unwrap(),
                json!([
                    keep("_itemid"),
                    keep("qty_order"),
                    keep("unit_price"),
                    keep("isinactive"),
                    keep("startdate"),
                    keep("enddate"),
                    keep("recurring_invoice_quantity_type")
                ]),
            )
        })
        .collect();
    out.sort_by_key(|(id, _)| *id);
    out
}

impl Setup {
    fn writer_with(&self, cfg: mpsync::config::HalopsaConfig, retry: RetryPolicy) -> HalopsaWriter {
        HalopsaWriter::with_retry(&cfg, retry).unwrap()
    }

    fn writer(&self) -> HalopsaWriter {
        self.writer_with(self.server.config(), fast_retry())
    }

    async fn run(&self, w: &dyn LineWriter) -> ApplyReport {
        writeback::apply(&self.store, w, self.plan.id, &opts(), &mut |_: &ApplyEvent| {})
            .await
            .expect("apply")
    }

    fn line_id(&self, row: usize) -> i64 {
        match self.plan.changes[row].line {
            LineRef::Halopsa { line, .. } => i64::from(line),
            _ => unreachable!(),
        }
    }

    fn qty(&self, row: usize) -> Option<f64> {
        self.server.halo.line(self.line_id(row)).and_then(|(_, l)| l["qty_order"].as_f64())
    }

    /// The accepted writes that set change `row`'s line.
    fn writes_of(&self, row: usize) -> usize {
        let id = self.line_id(row);
        self.server.halo.writes().iter().filter(|w| w.changes.iter().any(|c| c.line == id)).count()
    }

    /// Every change in by exactly one write, and nothing else on its invoice touched.
    fn assert_exactly_once(&self) {
        for (i, c) in self.plan.changes.iter().enumerate() {
            assert_eq!(self.writes_of(i), 1, "row {}: {:?}", c.row, self.server.halo.writes());
            assert_eq!(self.qty(i), Some(c.to), "row {}", c.row);
        }
        for w in self.server.halo.writes() {
            assert_eq!(w.changes.len(), 1, "one line changed per write: {w:?}");
        }
    }
}

#[tokio::test]
async fn each_change_is_one_verified_per_line_update_and_applying_again_sends_nothing() {
    let s = setup(41, &[2.0, -1.0, 3.0]).await;
    let w = s.writer();
    let invoices: Vec<i64> = s.lines[..3].iter().map(|l| l.invoice).collect();
    let before: Vec<_> = invoices.iter().map(|i| lines_of(&s, *i)).collect();

    // A dry run shows the exact POST of each change and sends nothing, not even a token.
    let dry = ApplyOptions { dry_run: true, ..opts() };
    let r = writeback::apply(&s.store, &w, s.plan.id, &dry, &mut |_: &ApplyEvent| {}).await;
    let r = r.unwrap();
    assert_eq!(s.server.control.requests().total, 0, "nothing sent");
    let Outcome::DryRun { request, .. } = &r.changes[1].outcome else { unreachable!() };
    assert_eq!(request.method, "POST");
    assert!(request.url.ends_with("/halo/api/RecurringInvoice/updatelines"), "{}", request.url);
    let l = &s.lines[1];
    assert_eq!(
        request.body.as_ref().unwrap(),
        &json!([{"id": l.line, "ihid": l.invoice, "qty_order": l.qty - 1.0}])
    );
    assert_eq!(request.header("Authorization"), Some("Bearer <redacted>"));

    let r = s.run(&w).await;
    assert_eq!(results(&r), ["applied", "applied", "applied"]);
    assert_eq!(r.exit(), Exit::Ok);
    s.assert_exactly_once();
    assert!(s.server.halo.writes().iter().all(|w| w.route == HALO_UPDATELINES));
    assert_eq!(s.server.control.requests().get(HALO_REPOST), 0);
    // Every other line of the invoices is as it was.
    for (i, inv) in invoices.iter().enumerate() {
        let after = lines_of(&s, *inv);
        assert_eq!(after.len(), before[i].len());
        for ((id, b), (_, a)) in before[i].iter().zip(&after) {
            if *id != s.line_id(i) {
                assert_eq!(a, b, "line {id}");
            }
        }
    }
    let audit = s.store.audit(AuditQuery::default()).await.unwrap();
    assert_eq!(audit.len(), 3);
    assert!(audit.iter().all(|e| e.result == AuditResult::Applied && e.found == Some(e.from)));

    // Again: done, nothing read or sent.
    let sent = s.server.control.requests().total;
    let again = s.run(&w).await;
    assert_eq!(results(&again), ["done", "done", "done"]);
    assert_eq!(s.server.control.requests().total, sent);

    // A newer plan with two of the same changes, already in the PSA: read, nothing written.
    let picks: Vec<_> = s.lines.iter().zip([2.0, -1.0]).collect();
    let same = s.store.save_plan(halo_plan_of(&picks)).await.unwrap().plan().id;
    let r = writeback::apply(&s.store, &w, same, &opts(), &mut |_: &ApplyEvent| {}).await;
    assert_eq!(results(&r.unwrap()), ["applied", "applied"]);
    assert_eq!(s.server.halo.writes().len(), 3, "the lines already held the new quantity");

    // --only: one change of a fresh plan.
    let picks: Vec<_> = s.lines[3..5].iter().zip([1.0, 1.0]).collect();
    let next = s.store.save_plan(halo_plan_of(&picks)).await.unwrap().plan().clone();
    let only = ApplyOptions { only: vec![next.changes[1].line_key.clone()], ..opts() };
    let r = writeback::apply(&s.store, &w, next.id, &only, &mut |_: &ApplyEvent| {}).await;
    assert_eq!(results(&r.unwrap()), ["applied"]);
    assert_eq!(s.server.halo.writes().len(), 4);
    let written = s.lines[4].line;
    assert_eq!(s.server.halo.writes()[3].changes[0].line, written);

    // The next billing read bills the new quantities.
    let source = HaloServer::source(&s.server.config());
    let cancel = tokio_util::sync::CancellationToken::new();
    let billed = mpsync::billing::BilledSource::fetch(&source, chrono::Utc::now(), &cancel).await;
    let billed = billed.outcome.unwrap();
    for c in &s.plan.changes {
        let line = billed.lines.iter().find(|l| l.line.as_ref() == Some(&c.line)).unwrap();
        assert_eq!((line.quantity, line.counted), (c.to, true), "{}", c.line_key);
    }
}

#[tokio::test]
async fn without_updatelines_the_invoice_is_re_posted_with_every_line_and_verified() {
    for status in [404, 405] {
        let s = setup(42, &[1.0, 4.0, 2.0]).await;
        let gone = Fault::new(FaultKind::Status { status }).on(HALO_UPDATELINES);
        s.server.control.add_fault(gone);
        let invoices: Vec<i64> = s.lines[..3].iter().map(|l| l.invoice).collect();
        let before: Vec<_> = invoices.iter().map(|i| lines_of(&s, *i)).collect();
        let w = s.writer();
        let r = s.run(&w).await;
        assert_eq!(results(&r), ["applied", "applied", "applied"], "{status}: {:?}", r.changes);
        assert!(w.writes_whole_invoices());
        let req = s.server.control.requests();
        assert_eq!(req.get(HALO_UPDATELINES), 1, "{status}: tried once, then remembered");
        assert_eq!(req.get(HALO_REPOST), 3, "{status}");
        s.assert_exactly_once();
        for (i, inv) in invoices.iter().enumerate() {
            let after = lines_of(&s, *inv);
            assert_eq!(after.len(), before[i].len(), "{status}: no line lost");
            for ((id, b), (_, a)) in before[i].iter().zip(&after) {
                if *id != s.line_id(i) {
                    assert_eq!(a, b, "{status}: line {id}");
                }
            }
        }
    }
}

#[tokio::test]
async fn lines_changed_deleted_or_locked_in_the_psa_are_skipped_with_the_reason() {
    let mut s = setup(43, &[]).await;
    let halo = s.server.halo.clone();
    let auto = halo.read().plants_of("auto_calculated_line")[0].clone();
    let auto_qty = halo.line(auto.line_id.unwrap()).unwrap().1["qty_order"].as_f64().unwrap();
    let auto_line = HaloLine {
        invoice: auto.invoice_id.unwrap(),
        line: auto.line_id.unwrap(),
        item: auto.item_id.unwrap(),
        client: auto.client_id,
        qty: auto_qty,
        price: 1.0,
    };
    // Lines on other invoices than the computed one, so each keeps its own reason.
    let l: Vec<HaloLine> =
        s.lines.iter().filter(|l| l.invoice != auto_line.invoice).cloned().collect();
    let picks = [
        (&l[0], 2.0),
        (&l[1], 2.0),
        (&l[2], 2.0),
        (&l[3], 2.0),
        (&l[4], 2.0),
        (&auto_line, 2.0),
        (&l[5], 2.0),
    ];
    s.plan = s.store.save_plan(halo_plan_of(&picks)).await.unwrap().plan().clone();
    halo.set_line_qty(l[0].line, l[0].qty + 7.0).unwrap();
    halo.remove_line(l[1].line).unwrap();
    halo.set_line_field(l[2].line, "isinactive", json!(true)).unwrap();
    halo.set_field(Resource::RecurringInvoice, l[3].invoice, "disabled", json!(true)).unwrap();
    halo.set_line_field(l[4].line, "recurring_invoice_quantity_type", json!(2)).unwrap();

    let r = s.run(&s.writer()).await;
    assert_eq!(
        results(&r),
        ["skipped", "skipped", "skipped", "skipped", "skipped", "skipped", "applied"]
    );
    let reason = |i: usize| match &r.changes[i].outcome {
        Outcome::Skipped { reason, .. } => reason.clone(),
        other => panic!("{other:?}"),
    };
    let q = mpsync::reconcile::quantity;
    assert_eq!(
        reason(0),
        format!(
            "changed in the PSA since the plan (plan read {}, the PSA holds {})",
            q(l[0].qty),
            q(l[0].qty + 7.0)
        )
    );
    assert!(
        reason(1).starts_with("deleted in the PSA since the plan")
            && reason(1).contains(&format!(
                "recurring invoice {} no longer has line {}",
                l[1].invoice, l[1].line
            )),
        "{}",
        reason(1)
    );
    assert!(reason(2).contains(&format!("not written: line {} is inactive", l[2].line)));
    assert!(reason(3).contains(&format!("recurring invoice {} is disabled", l[3].invoice)));
    for i in [4, 5] {
        assert!(reason(i).contains("Halo computes this line's quantity"), "{}", reason(i));
    }
    let writes = s.server.halo.writes();
    assert_eq!(writes.len(), 1, "only the untouched line was written: {writes:?}");
    assert_eq!(writes[0].changes[0].line, l[5].line);
    assert_eq!(r.exit(), Exit::Ok);

    // A line the plan knows Halo computes is refused before anything is sent.
    let computed = LineRef::Halopsa {
        invoice: auto_line.invoice as i32,
        line: auto_line.line as i32,
        item: auto_line.item as i32,
        computed: true,
    };
    let e = s.writer().describe(&computed, 1.0, 2.0).unwrap_err();
    assert_eq!(e.kind(), "locked", "{e}");
    let sent = s.server.control.requests().total;
    let e = s.writer().set_quantity(&computed, 2.0).await.unwrap_err();
    assert_eq!(e.kind(), "locked", "{e}");
    assert_eq!(s.server.control.requests().total, sent, "nothing sent");
}

/// A write that also disturbs another line of its invoice (`fault` on `route`): failed with
/// the line's before → after, the apply stops, and the next apply finishes the rest (the
/// disturbed change's line already holds its new quantity: not written again).
async fn side_effect(
    seed: u64,
    fault: FaultKind,
    route: &str,
    want: impl Fn(&LineChange, i64) -> String,
) {
    let s = setup(seed, &[1.0, 2.0, 3.0]).await;
    if route == HALO_REPOST {
        s.server
            .control
            .add_fault(Fault::new(FaultKind::Status { status: 404 }).on(HALO_UPDATELINES));
    }
    let id = s.server.control.add_fault(Fault::new(fault).on(route).after(1).times(1));
    let inv = s.lines[1].invoice;
    let items: Vec<(i64, i64)> = s.server.halo.invoice(inv).unwrap()["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| (l["id"].as_i64().unwrap(), l["_itemid"].as_i64().unwrap()))
        .collect();
    let r = s.run(&s.writer()).await;
    assert_eq!(results(&r), ["applied", "failed", "not_attempted"]);
    let disturbed = s.server.halo.writes()[1].side_effect.clone().expect("the fault fired");
    let before = s.server.halo.writes();
    let Outcome::Failed { kind, reason, exit, .. } = &r.changes[1].outcome else { unreachable!() };
    assert_eq!((kind.as_str(), *exit), ("side_effect", Exit::DataErr.code()));
    assert!(reason.contains(&format!("re-reading recurring invoice {inv} after it")), "{reason}");
    let item = items.iter().find(|(l, _)| *l == disturbed.line).expect("a line of the invoice").1;
    let want = want(&disturbed, item);
    assert!(reason.contains(&want), "{reason}\nwant {want}");
    assert!(r.stopped.as_deref().is_some_and(|s| s.contains("side_effect")), "{:?}", r.stopped);
    assert_eq!(r.exit(), Exit::DataErr);
    let audit = s.store.audit(AuditQuery::default()).await.unwrap();
    assert_eq!(audit.len(), 2);
    assert_eq!(audit[0].result, AuditResult::Failed);
    assert_eq!(audit[0].reason.as_deref(), Some(reason.as_str()), "the audit keeps it whole");
    assert_eq!(s.qty(1), Some(s.plan.changes[1].to), "the line itself took the write");

    s.server.control.remove_fault(id);
    let r = s.run(&s.writer()).await;
    assert_eq!(results(&r), ["done", "applied", "applied"]);
    let Outcome::Applied { reason, .. } = &r.changes[1].outcome else { unreachable!() };
    assert!(reason.as_deref().is_some_and(|r| r.contains("already held")), "{reason:?}");
    assert_eq!(s.server.halo.writes().len(), before.len() + 1, "only row 3 written");
    for row in 0..3 {
        assert_eq!(s.writes_of(row), 1, "row {}", row + 1);
    }
}

#[tokio::test]
async fn a_write_that_changes_another_line_is_a_failed_apply_with_before_and_after() {
    side_effect(44, FaultKind::ChangeOtherLine, HALO_UPDATELINES, |c, item| {
        let q = |x: Option<f64>| mpsync::reconcile::quantity(x.unwrap());
        format!("line {} (item {item}): qty_order {} → {}", c.line, q(c.before), q(c.after))
    })
    .await;
}

#[tokio::test]
async fn a_re_post_that_drops_another_line_is_a_failed_apply_naming_the_line() {
    side_effect(45, FaultKind::DropOtherLine, HALO_REPOST, |c, item| {
        assert_eq!(c.after, None);
        let q = mpsync::reconcile::quantity(c.before.unwrap());
        format!("line {} (item {item}) disappeared (it held qty_order {q} at unit_price", c.line)
    })
    .await;
}

/// A fault on the second change's write, what it is called, then recovery: every change in
/// with one write each.
async fn fault_then_recovery(fault: Fault, kind: &str, timeout_ms: u64, exit: Exit) {
    let s = setup(46, &[1.0, 2.0, 3.0, -1.0]).await;
    let mut cfg = s.server.config();
    cfg.limits.timeout = std::time::Duration::from_millis(timeout_ms);
    let w = s.writer_with(cfg, fast_retry());
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
    let secret = s.server.halo.credentials().client_secret;
    assert!(!audit[0].reason.clone().unwrap().contains(&secret));

    s.server.control.remove_fault(id);
    s.server.halo.restore();
    let r = s.run(&w).await;
    assert_eq!(results(&r), ["done", "applied", "applied", "applied"], "{kind}");
    s.assert_exactly_once();
}

#[tokio::test]
async fn a_429_fails_at_once_and_the_next_apply_finishes() {
    // A write is never retried: the 429 refused it, the next apply sends it.
    let storm = Fault::new(FaultKind::Storm { retry_after: 1 }).on(HALO_UPDATELINES);
    fault_then_recovery(storm, "rate_limited", 2000, Exit::Unavailable).await;
}

#[tokio::test]
async fn a_503_fails_and_the_next_apply_finishes() {
    let outage = Fault::new(FaultKind::Status { status: 503 }).on(HALO_UPDATELINES);
    fault_then_recovery(outage, "unavailable", 2000, Exit::Unavailable).await;
}

#[tokio::test]
async fn a_revoked_secret_fails_and_the_next_apply_finishes() {
    let revoke = Fault::new(FaultKind::Revoke { key: None }).on(HALO_UPDATELINES);
    fault_then_recovery(revoke, "unauthorized", 2000, Exit::Unavailable).await;
}

#[tokio::test]
async fn a_lost_answer_is_settled_by_re_reading_never_by_a_second_write() {
    // The write lands, its answer never comes: it times out (it may have applied, and is not
    // retried); the next apply finds the line holding the new quantity and sends nothing.
    let lost = Fault::new(FaultKind::HangAfter).on(HALO_UPDATELINES).times(1);
    fault_then_recovery(lost, "timeout", 300, Exit::Unavailable).await;
}

#[tokio::test]
async fn a_write_without_edit_invoices_names_the_scope_to_grant() {
    let s = setup(47, &[1.0, 2.0]).await;
    let mut cfg = s.server.config();
    cfg.scope = Some("read:customers read:contracts read:items read:invoices".into());
    let w = s.writer_with(cfg, fast_retry());
    let r = s.run(&w).await;
    assert_eq!(results(&r), ["failed", "not_attempted"]);
    let Outcome::Failed { kind, reason, .. } = &r.changes[0].outcome else { unreachable!() };
    assert_eq!(kind, "forbidden");
    assert!(
        reason.contains("this needs scope edit:invoices: grant it to the API application"),
        "{reason}"
    );
    assert!(s.server.halo.writes().is_empty());
    assert_eq!(s.server.control.requests().get(HALO_GET), 1, "read, then refused");
}

#[tokio::test]
async fn a_token_that_ends_mid_apply_is_renewed_once_and_the_apply_goes_on() {
    let s = setup(48, &[1.0, 2.0]).await;
    let w = s.writer();
    // The writer holds a token; Halo ends it (a 401 on the next call, empty body).
    w.read_line(&s.plan.changes[0].line).await.unwrap();
    s.server.halo.expire_tokens();
    let r = s.run(&w).await;
    assert_eq!(results(&r), ["applied", "applied"]);
    assert_eq!(s.server.control.requests().get("POST /auth/token"), 2, "one renewal");
    s.assert_exactly_once();
}
