//! `mpsync apply` on HaloPSA billing, the real binary against the simulated HaloPSA with no
//! daemon running: exactly one write per change, every other line of each invoice untouched,
//! under `kill -9` at every step of an apply — after the intent, with the write in flight,
//! after the write landed but before its result was recorded, and after settling one row with
//! the next one's write landed. The simulator's journal of accepted writes and the store's
//! apply journal tell where the apply is (polled, never slept on); the next apply settles each
//! interrupted change by re-reading its invoice.

use std::process::Stdio;

use mpsync::model::LineRef;
use mpsync::writeback::{AuditResult, JournalEntry};
use mpsync_sim::faults::{Fault, FaultKind};

use crate::support::common::{KillOnDrop, TestDir, wait_for};
use crate::support::daemon::DEADLINE;
use crate::support::sync::Sim;
use crate::support::writeback::{
    HALO_GET, HALO_UPDATELINES, audit, cli, halo_lines, halo_plan_of, halo_sim_config, journal,
    output, save_plan, state_dir_of,
};

struct Fixture {
    sim: Sim,
    _dir: TestDir,
    config: std::path::PathBuf,
    state: std::path::PathBuf,
    plan: mpsync::writeback::Plan,
}

fn fixture(seed: u64, steps: &[f64], timeout: &str) -> Fixture {
    let sim = Sim::start(seed, 30);
    let dir = TestDir::new();
    let config = halo_sim_config(&sim, dir.path(), timeout);
    let state = state_dir_of(&config);
    let lines = halo_lines(&sim.control().halopsa().read());
    let picks: Vec<_> = lines.iter().zip(steps.iter().copied()).collect();
    let mut plan = halo_plan_of(&picks);
    plan.id = save_plan(&sim, &state, plan.clone());
    Fixture { sim, _dir: dir, config, state, plan }
}

impl Fixture {
    fn ids(&self, row: usize) -> (i64, i64) {
        match self.plan.changes[row].line {
            LineRef::Halopsa { invoice, line, .. } => (i64::from(invoice), i64::from(line)),
            _ => unreachable!(),
        }
    }

    /// The accepted writes that set change `row`'s line.
    fn writes_of(&self, row: usize) -> usize {
        let (_, line) = self.ids(row);
        let all = self.sim.control().halopsa().writes();
        all.iter().filter(|w| w.changes.iter().any(|c| c.line == line)).count()
    }

    fn writes(&self) -> usize {
        self.sim.control().halopsa().writes().len()
    }

    fn qty(&self, row: usize) -> Option<f64> {
        let (_, line) = self.ids(row);
        self.sim.control().halopsa().line(line).and_then(|(_, l)| l["qty_order"].as_f64())
    }

    /// Each invoice's lines (id, qty_order, unit_price), for "nothing else was touched".
    fn invoice_lines(&self, row: usize) -> Vec<(i64, f64, f64)> {
        let (invoice, _) = self.ids(row);
        let inv = self.sim.control().halopsa().invoice(invoice).unwrap();
        inv["lines"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| {
                let f = |k: &str| l[k].as_f64().unwrap_or(f64::NAN);
                (l["id"].as_i64().unwrap(), f("qty_order"), f("unit_price"))
            })
            .collect()
    }

    fn in_flight(&self) -> Vec<u32> {
        let j = journal(&self.sim, &self.state, self.plan.id);
        j.iter()
            .filter(|(_, e)| matches!(e, JournalEntry::InFlight { .. }))
            .map(|(r, _)| *r)
            .collect()
    }

    fn spawn(&self) -> KillOnDrop {
        let mut cmd = cli(&self.config, &["apply", &self.plan.id.to_string()]);
        cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
        KillOnDrop(cmd.spawn().expect("spawn mpsync apply"))
    }
}

/// SIGKILLs the child once `reached` holds (polled, never slept on); panics if it ended first.
fn kill_when(child: &mut KillOnDrop, what: &str, mut reached: impl FnMut() -> bool) {
    wait_for(DEADLINE, what, || {
        if let Ok(Some(status)) = child.0.try_wait() {
            panic!("mpsync apply ended ({status}) before {what}");
        }
        reached().then_some(())
    });
    child.0.kill().expect("SIGKILL");
    let status = child.0.wait().unwrap();
    assert_eq!(std::os::unix::process::ExitStatusExt::signal(&status), Some(9));
}

#[test]
fn kill_9_at_every_step_of_a_halopsa_apply_writes_each_line_once() {
    let f = fixture(51, &[1.0, 2.0, 3.0, 2.0], "60s");
    assert_eq!(f.plan.changes.len(), 4);
    let control = f.sim.control();
    let reads = || control.requests().get(HALO_GET);
    let updates = || control.requests().get(HALO_UPDATELINES);
    let before: Vec<_> = (0..4).map(|row| f.invoice_lines(row)).collect();

    // The dry run prints each POST with its body, the token redacted, and sends nothing.
    let (code, out, err) = output(cli(&f.config, &["apply", &f.plan.id.to_string(), "--dry-run"]));
    assert_eq!(code, 0, "{err}");
    let (invoice, line) = f.ids(1);
    let c = &f.plan.changes[1];
    assert!(
        out.contains("POST ") && out.contains("/halo/api/RecurringInvoice/updatelines"),
        "{out}"
    );
    let body = format!(r#"[{{"id":{line},"ihid":{invoice},"qty_order":{:?}}}]"#, c.to);
    assert!(out.contains(&body), "{out}\nwant {body}");
    assert!(out.contains("Authorization: Bearer <redacted>"), "{out}");
    assert_eq!(control.requests().total, 0, "nothing sent, not even a token");

    // 1. After the intent of row 1 is committed: the re-read of its invoice hangs.
    let hang_read = f.sim.add_fault(Fault::new(FaultKind::Hang).on(HALO_GET));
    let mut child = f.spawn();
    kill_when(&mut child, "the re-read of row 1", || reads() >= 1);
    control.remove_fault(hang_read);
    assert_eq!(f.in_flight(), vec![1], "the intent was recorded before the read");
    assert_eq!((updates(), f.writes()), (0, 0));

    // 2. With the write in flight: it reached the PSA's door, not its handler.
    let hang_write = f.sim.add_fault(Fault::new(FaultKind::Hang).on(HALO_UPDATELINES));
    let mut child = f.spawn();
    kill_when(&mut child, "the write of row 1", || updates() >= 1);
    control.remove_fault(hang_write);
    assert_eq!(f.in_flight(), vec![1]);
    assert_eq!(f.writes(), 0, "nothing landed");
    assert_eq!(f.qty(0), Some(f.plan.changes[0].from));

    // 3. The write landed, its answer never comes, the result is never recorded.
    let lost = f.sim.add_fault(Fault::new(FaultKind::HangAfter).on(HALO_UPDATELINES));
    let mut child = f.spawn();
    kill_when(&mut child, "row 1's write to land", || f.writes() == 1);
    assert_eq!(f.qty(0), Some(f.plan.changes[0].to), "the PSA holds the new quantity");
    assert_eq!(f.in_flight(), vec![1], "but the result was never recorded");

    // 4. The next apply settles row 1 by re-reading (no second write), then is killed once
    //    row 2's write has landed (the fault is still there).
    let mut child = f.spawn();
    kill_when(&mut child, "row 2's write to land", || f.writes() == 2);
    control.remove_fault(lost);
    assert_eq!(f.writes_of(0), 1, "row 1 was written once");
    let j = journal(&f.sim, &f.state, f.plan.id);
    assert!(matches!(j[&1], JournalEntry::Done { result: AuditResult::Applied, .. }), "{j:?}");
    assert_eq!(f.in_flight(), vec![2]);

    // An apply left alone finishes: one write per change, nothing else on the invoices moved.
    let (code, out, err) = output(cli(&f.config, &["apply", &f.plan.id.to_string()]));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("3 applied") && out.contains("1 already done earlier"), "{out}");
    for (row, c) in f.plan.changes.iter().enumerate() {
        assert_eq!(f.writes_of(row), 1, "row {}", c.row);
        assert_eq!(f.qty(row), Some(c.to), "row {}", c.row);
        let (_, line) = f.ids(row);
        let after = f.invoice_lines(row);
        assert_eq!(after.len(), before[row].len(), "row {}: no line lost", c.row);
        for (b, a) in before[row].iter().zip(&after) {
            if b.0 != line {
                assert_eq!(a, b, "row {}: line {} untouched", c.row, b.0);
            }
        }
    }
    assert_eq!(f.writes(), 4);
    let entries = audit(&f.sim, &f.state);
    let mut rows: Vec<u32> = entries.iter().map(|e| e.row).collect();
    rows.sort();
    assert_eq!(rows, vec![1, 2, 3, 4], "one audit entry per change: {entries:#?}");
    assert!(entries.iter().all(|e| e.result == AuditResult::Applied && e.who == "alice"));
    let settled = entries.iter().find(|e| e.row == 2).unwrap();
    assert!(
        settled.reason.as_deref().is_some_and(|r| r.contains("write had landed")),
        "{settled:?}"
    );
    // And again: nothing left, nothing sent.
    let sent = control.requests().total;
    assert_eq!(output(cli(&f.config, &["apply", &f.plan.id.to_string()])).0, 0);
    assert_eq!(control.requests().total, sent);
}
