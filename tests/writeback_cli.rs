//! `mpsync apply` and `mpsync audit`, the real binary against the simulated ConnectWise with
//! no daemon running: the dry run prints the PATCH and sends nothing, `--only`, the refusals
//! and their exit statuses, a revoked key (69) and the apply after it, the audit log naming
//! the operator behind sudo — and exactly once under `kill -9` at every point of an apply.

use std::process::Stdio;

use mpsync::writeback::{AuditResult, JournalEntry};
use mpsync_sim::faults::{Fault, FaultKind};

use crate::support::common::{KillOnDrop, TestDir, wait_for};
use crate::support::daemon::DEADLINE;
use crate::support::sync::Sim;
use crate::support::writeback::{
    GET_ONE, PATCH, audit, cli, counted_additions, journal, output, plan_of, save_plan, sim_config,
    state_dir_of,
};

/// What one test needs: a simulator, a config for it, its state directory, a saved plan with
/// one change per step (addition i by `steps[i]`), and that plan's lines.
struct Fixture {
    sim: Sim,
    _dir: TestDir,
    config: std::path::PathBuf,
    state: std::path::PathBuf,
    plan: mpsync::writeback::Plan,
}

fn fixture(seed: u64, steps: &[f64], cw_timeout: &str) -> Fixture {
    let sim = Sim::start(seed, 30);
    let dir = TestDir::new();
    let config = sim_config(&sim, dir.path(), cw_timeout);
    let state = state_dir_of(&config);
    let data = sim.control().connectwise().read().clone();
    let adds = counted_additions(&data);
    let picks: Vec<_> = adds.iter().zip(steps).map(|(a, s)| (a, *s)).collect();
    let mut plan = plan_of(&data, &picks);
    plan.id = save_plan(&sim, &state, plan.clone());
    Fixture { sim, _dir: dir, config, state, plan }
}

impl Fixture {
    fn quantity(&self, row: usize) -> Option<f64> {
        let mpsync::model::LineRef::Connectwise { addition, .. } = self.plan.changes[row].line
        else {
            unreachable!()
        };
        self.sim.control().connectwise().addition(addition).map(|a| a.quantity)
    }

    /// PATCHes the PSA took for change `row`'s line.
    fn patches_to(&self, row: usize) -> usize {
        let mpsync::model::LineRef::Connectwise { agreement, addition } =
            self.plan.changes[row].line
        else {
            unreachable!()
        };
        let suffix = format!("/finance/agreements/{agreement}/additions/{addition}");
        self.sim
            .control()
            .connectwise()
            .writes()
            .iter()
            .filter(|w| w.path.ends_with(&suffix))
            .count()
    }

    fn apply(&self, extra: &[&str]) -> (i32, String, String) {
        let id = self.plan.id.to_string();
        let mut args = vec!["apply", id.as_str()];
        args.extend_from_slice(extra);
        output(cli(&self.config, &args))
    }
}

#[test]
fn dry_run_only_refusals_and_the_audit_log_from_the_command_line() {
    let f = fixture(11, &[2.0, 3.0, -1.0], "10s");
    let cw = f.sim.control().connectwise();
    let before = f.sim.control().requests().total;

    // Dry run: the exact PATCH of each change on stdout, nothing sent, nothing recorded.
    let (code, out, err) = f.apply(&["--dry-run"]);
    assert_eq!(code, 0, "{err}");
    for c in &f.plan.changes {
        let mpsync::model::LineRef::Connectwise { agreement, addition } = c.line else {
            unreachable!()
        };
        let url = format!(
            "PATCH {}/v4_6_release/apis/3.0/finance/agreements/{agreement}/additions/{addition}",
            f.sim.base_url()
        );
        assert!(out.contains(&url), "{url} in:\n{out}");
        let body = format!(r#"[{{"op":"replace","path":"/quantity","value":{}}}]"#, c.to as u64);
        assert!(out.contains(&body), "{body} in:\n{out}");
    }
    assert!(out.contains("Authorization: <redacted>") && out.contains("clientId: <redacted>"));
    let creds = cw.credentials();
    for secret in [&creds.public_key, &creds.private_key] {
        assert!(!out.contains(secret.as_str()) && !err.contains(secret.as_str()));
    }
    assert!(out.contains("3 change(s) would be sent, nothing was sent or recorded"), "{out}");
    assert_eq!(f.sim.control().requests().total, before, "nothing sent, not even a read");
    assert!(journal(&f.sim, &f.state, f.plan.id).is_empty());

    // --only: row 2 alone.
    let (code, out, err) = f.apply(&["--only", "2"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("row 2 ") && err.contains(": applied"), "{err}");
    assert!(out.contains("1 applied, 0 skipped, 0 failed, 0 not attempted"), "{out}");
    assert_eq!(
        (f.quantity(0), f.quantity(1)),
        (Some(f.plan.changes[0].from), Some(f.plan.changes[1].to))
    );

    // Refusals, each with its status and without a request.
    let sent = f.sim.control().requests().total;
    let (code, _, err) = f.apply(&["--only", "9"]);
    assert_eq!(code, 64, "{err}");
    assert!(err.contains("--only 9: plan") && err.contains("rows 1–3"), "{err}");
    let (code, _, err) = output(cli(&f.config, &["apply", "99"]));
    assert_eq!(code, 65, "{err}");
    assert!(err.contains("there is no plan 99"), "{err}");
    assert_eq!(f.sim.control().requests().total, sent);

    // The audit log names the operator behind sudo.
    let (code, out, err) = output(cli(&f.config, &["audit", "--json"]));
    assert_eq!(code, 0, "{err}");
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    let entries = doc["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1);
    let e = &entries[0];
    assert_eq!(e["plan"], f.plan.id);
    assert_eq!(e["line"], f.plan.changes[1].line_key.as_str());
    assert_eq!(
        (e["from"].as_f64(), e["to"].as_f64()),
        (Some(f.plan.changes[1].from), Some(f.plan.changes[1].to))
    );
    assert_eq!((e["result"].as_str(), e["who"].as_str()), (Some("applied"), Some("alice")));
    let (code, table, _) = output(cli(&f.config, &["audit", "--plan", &f.plan.id.to_string()]));
    assert_eq!(code, 0);
    assert!(
        table.lines().nth(1).is_some_and(|l| l.contains("alice") && l.ends_with("applied")),
        "{table}"
    );

    // A newer plan replaces this one: applying the old one is refused (65).
    let data = cw.read().clone();
    let adds = counted_additions(&data);
    let newer = save_plan(&f.sim, &f.state, plan_of(&data, &[(&adds[5], 4.0)]));
    let (code, _, err) = f.apply(&[]);
    assert_eq!(code, 65, "{err}");
    assert!(
        err.contains(&format!("replaced by plan {newer}"))
            && err.contains(&format!("apply {newer}")),
        "{err}"
    );

    // A plan of a CSV export is entered by hand (78).
    let mut csv = plan_of(&data, &[(&adds[6], 1.0)]);
    (csv.billing, csv.writable) = ("csv".into(), false);
    let csv = save_plan(&f.sim, &f.state, csv);
    let (code, _, err) = output(cli(&f.config, &["apply", &csv.to_string()]));
    assert_eq!(code, 78, "{err}");
    assert!(err.contains("enter its changes in the PSA by hand"), "{err}");
}

#[test]
fn a_revoked_key_exits_69_and_the_next_apply_finishes_once() {
    let f = fixture(12, &[1.0, 2.0, 3.0], "10s");
    let cw = f.sim.control().connectwise();
    cw.revoke();
    let (code, out, err) = f.apply(&[]);
    assert_eq!(code, 69, "{err}");
    assert!(err.contains("row 1 ") && err.contains("failed:") && err.contains("401"), "{err}");
    assert!(err.contains("row 2 ") && err.contains("not attempted"), "{err}");
    assert!(out.contains("0 applied, 0 skipped, 1 failed, 2 not attempted"), "{out}");
    let entries = audit(&f.sim, &f.state);
    assert_eq!(entries.len(), 1);
    assert_eq!(
        (entries[0].result, entries[0].kind.as_deref()),
        (AuditResult::Failed, Some("unauthorized"))
    );

    cw.restore();
    let (code, out, err) = f.apply(&[]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("3 applied"), "{out}");
    for row in 0..3 {
        assert_eq!(f.quantity(row), Some(f.plan.changes[row].to));
        assert_eq!(f.patches_to(row), 1);
    }
}

/// Starts `mpsync apply` as a child process.
fn spawn_apply(f: &Fixture) -> KillOnDrop {
    let mut cmd = cli(&f.config, &["apply", &f.plan.id.to_string()]);
    cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
    KillOnDrop(cmd.spawn().expect("spawn mpsync apply"))
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
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(9),
        "killed by SIGKILL"
    );
}

fn in_flight(f: &Fixture) -> Vec<u32> {
    let j = journal(&f.sim, &f.state, f.plan.id);
    j.iter().filter(|(_, e)| matches!(e, JournalEntry::InFlight { .. })).map(|(r, _)| *r).collect()
}

#[test]
fn kill_9_at_every_point_of_an_apply_never_writes_a_change_twice() {
    let f = fixture(13, &[1.0, 2.0, 3.0, 4.0], "60s");
    let control = f.sim.control();
    let cw = control.connectwise();

    // 1. After the intent of row 1 is committed, before anything is sent: the re-read hangs.
    let hang_read = f.sim.add_fault(Fault::new(FaultKind::Hang).on(GET_ONE));
    let mut child = spawn_apply(&f);
    kill_when(&mut child, "the re-read of row 1", || control.requests().get(GET_ONE) >= 1);
    control.remove_fault(hang_read);
    assert_eq!(in_flight(&f), vec![1], "the intent was recorded before the read");
    assert!(cw.writes().is_empty() && audit(&f.sim, &f.state).is_empty());

    // 2. While the write is in flight: the PATCH reached the PSA's door, not its handler.
    let hang_write = f.sim.add_fault(Fault::new(FaultKind::Hang).on(PATCH));
    let mut child = spawn_apply(&f);
    kill_when(&mut child, "the PATCH of row 1", || control.requests().get(PATCH) >= 1);
    control.remove_fault(hang_write);
    assert_eq!(in_flight(&f), vec![1]);
    assert!(cw.writes().is_empty(), "nothing landed");
    assert_eq!(f.quantity(0), Some(f.plan.changes[0].from));

    // 3. After the write landed, before its result was recorded: the answer never comes.
    let lost = f.sim.add_fault(Fault::new(FaultKind::HangAfter).on(PATCH));
    let mut child = spawn_apply(&f);
    kill_when(&mut child, "row 1's write to land", || cw.writes().len() == 1);
    assert_eq!(f.quantity(0), Some(f.plan.changes[0].to), "the PSA holds the new quantity");
    assert_eq!(in_flight(&f), vec![1], "but the result was never recorded");

    // 4. The next apply settles row 1 without writing it, then is killed while row 2's write
    //    has landed (the same fault is still there).
    let mut child = spawn_apply(&f);
    kill_when(&mut child, "row 2's write to land", || cw.writes().len() == 2);
    control.remove_fault(lost);
    assert_eq!(f.patches_to(0), 1, "row 1 was not written again");
    let j = journal(&f.sim, &f.state, f.plan.id);
    assert!(matches!(j[&1], JournalEntry::Done { result: AuditResult::Applied, .. }), "{j:?}");
    assert_eq!(in_flight(&f), vec![2]);

    // Finally an apply that is left alone finishes: every change applied exactly once.
    let (code, out, err) = f.apply(&[]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("3 applied") && out.contains("1 already done earlier"), "{out}");
    for row in 0..4 {
        assert_eq!(f.quantity(row), Some(f.plan.changes[row].to), "row {}", row + 1);
        assert_eq!(f.patches_to(row), 1, "row {} got one PATCH", row + 1);
    }
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
    assert!(in_flight(&f).is_empty());
    // And again: nothing left to do, nothing sent.
    let sent = control.requests().total;
    assert_eq!(f.apply(&[]).0, 0);
    assert_eq!(control.requests().total, sent);
}
