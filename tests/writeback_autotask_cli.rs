//! `mpsync apply` on Autotask billing, the real binary against the simulated Autotask with no
//! daemon running: exactly one adjustment per change, with the right delta, under `kill -9`
//! at every step of an apply — after the intent, with the POST in flight, and after the
//! adjustment landed but before its result was recorded. An adjustment cannot be read back,
//! so the proof is the simulator's journal of them; the apply settles each interrupted change
//! by re-reading the units row.

use std::process::Stdio;

use chrono::{Datelike, Months, NaiveDate};
use mpsync::writeback::{AuditResult, JournalEntry};
use mpsync_sim::faults::{Fault, FaultKind};

use crate::support::common::{KillOnDrop, TestDir, wait_for};
use crate::support::daemon::DEADLINE;
use crate::support::sync::Sim;
use crate::support::writeback::{
    AT_POST, AT_UNITS, at_lines, at_plan_of, at_sim_config, audit, cli, journal, output, save_plan,
    state_dir_of,
};

struct Fixture {
    sim: Sim,
    _dir: TestDir,
    config: std::path::PathBuf,
    state: std::path::PathBuf,
    plan: mpsync::writeback::Plan,
    next: NaiveDate,
}

fn fixture(seed: u64, steps: &[f64], timeout: &str) -> Fixture {
    let sim = Sim::start(seed, 30);
    let dir = TestDir::new();
    let config = at_sim_config(&sim, dir.path(), timeout);
    let state = state_dir_of(&config);
    let data = sim.control().autotask().read().clone();
    let next = data.today.with_day(1).unwrap().checked_add_months(Months::new(1)).unwrap();
    let (lines, _) = at_lines(&data, next);
    let picks: Vec<_> = lines.iter().zip(steps.iter().copied()).collect();
    let mut plan = at_plan_of(&picks);
    plan.id = save_plan(&sim, &state, plan.clone());
    Fixture { sim, _dir: dir, config, state, plan, next }
}

impl Fixture {
    fn cs(&self, row: usize) -> u64 {
        match self.plan.changes[row].line {
            mpsync::model::LineRef::Autotask { contract_service, .. } => contract_service,
            _ => unreachable!(),
        }
    }

    /// The unit changes the PSA took for change `row`'s contract service.
    fn deltas(&self, row: usize) -> Vec<i64> {
        let cs = self.cs(row);
        let all = self.sim.control().autotask().adjustments();
        all.iter().filter(|a| a.contract_service_id == cs).map(|a| a.unit_change).collect()
    }

    fn adjustments(&self) -> usize {
        self.sim.control().autotask().adjustments().len()
    }

    fn units_next(&self, row: usize) -> Option<f64> {
        self.sim.control().autotask().units_on(self.cs(row), self.next)
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
fn kill_9_at_every_step_of_an_autotask_apply_never_posts_a_second_delta() {
    let f = fixture(31, &[1.0, -2.0, 3.0, 2.0], "60s");
    assert_eq!(f.plan.changes.len(), 4);
    let control = f.sim.control();
    let units = || control.requests().get(AT_UNITS);
    let posts = || control.requests().get(AT_POST);

    // The dry run prints each POST and sends nothing.
    let (code, out, err) = output(cli(&f.config, &["apply", &f.plan.id.to_string(), "--dry-run"]));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("POST ") && out.contains("/v1.0/ContractServiceAdjustments"), "{out}");
    assert!(out.contains(r#""unitChange":-2"#), "{out}");
    assert_eq!(control.requests().total, 0, "nothing sent");

    // 1. After the intent of row 1 is committed: the re-read of its units row hangs.
    let hang_read = f.sim.add_fault(Fault::new(FaultKind::Hang).on(AT_UNITS));
    let mut child = f.spawn();
    kill_when(&mut child, "the re-read of row 1", || units() >= 1);
    control.remove_fault(hang_read);
    assert_eq!(f.in_flight(), vec![1], "the intent was recorded before the read");
    assert_eq!((posts(), f.adjustments()), (0, 0));

    // 2. With the POST in flight: it reached the PSA's door, not its handler.
    let hang_post = f.sim.add_fault(Fault::new(FaultKind::Hang).on(AT_POST));
    let mut child = f.spawn();
    kill_when(&mut child, "the POST of row 1", || posts() >= 1);
    control.remove_fault(hang_post);
    assert_eq!(f.in_flight(), vec![1]);
    assert_eq!(f.adjustments(), 0, "nothing landed");
    assert_eq!(f.units_next(0), Some(f.plan.changes[0].from));

    // 3. The adjustment landed, its answer never comes, the result is never recorded.
    let lost = f.sim.add_fault(Fault::new(FaultKind::HangAfter).on(AT_POST));
    let mut child = f.spawn();
    kill_when(&mut child, "row 1's adjustment to land", || f.adjustments() == 1);
    assert_eq!(f.units_next(0), Some(f.plan.changes[0].to), "the PSA holds the new units");
    assert_eq!(f.in_flight(), vec![1], "but the result was never recorded");

    // 4. The next apply settles row 1 from its units row (no second delta), then is killed
    //    once row 2's adjustment has landed (the fault is still there).
    let mut child = f.spawn();
    kill_when(&mut child, "row 2's adjustment to land", || f.adjustments() == 2);
    control.remove_fault(lost);
    assert_eq!(f.deltas(0), vec![1], "row 1 got one adjustment");
    let j = journal(&f.sim, &f.state, f.plan.id);
    assert!(matches!(j[&1], JournalEntry::Done { result: AuditResult::Applied, .. }), "{j:?}");
    assert_eq!(f.in_flight(), vec![2]);

    // An apply left alone finishes: one adjustment per change, each with its delta.
    let (code, out, err) = output(cli(&f.config, &["apply", &f.plan.id.to_string()]));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("3 applied") && out.contains("1 already done earlier"), "{out}");
    for (row, c) in f.plan.changes.iter().enumerate() {
        assert_eq!(f.deltas(row), vec![(c.to - c.from) as i64], "row {}", c.row);
        assert_eq!(f.units_next(row), Some(c.to), "row {}", c.row);
    }
    assert!(
        control.autotask().adjustments().iter().all(|a| a.effective_date == f.next),
        "every adjustment takes effect on the first day of next month"
    );
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
