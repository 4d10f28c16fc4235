//! One row of the fault matrix and the runner that drives it: baseline, fault, the run it
//! affects, rows and health while it lasts, recovery once it clears, nothing lost (also across
//! a restart).

use mpsync::cli::Psa;
use mpsync_sim::{Fault, FaultKind};
use serde_json::Value;

use super::{Fixture, Observed, Wrap, get_json};
use crate::support::sync::trigger_sync;

/// How the fault is caused.
#[derive(Debug, Clone, Copy)]
pub enum Inject {
    /// A simulator fault (`Fault::parse` spec) on the Mailprotector, ConnectWise or Autotask
    /// routes.
    Spec(&'static str),
    /// Every endpoint of the case's PSA answers this status.
    PsaDown(u16),
    /// Every Gradient endpoint answers this status.
    GradientDown(u16),
    /// The Mailprotector key is revoked at the first request (401 from then on).
    RevokeKey,
    /// The PSA's API keys are revoked (ConnectWise: the API member's; Autotask: the API
    /// user's secret).
    RevokePsaKeys,
    /// The Gradient partner key is revoked.
    RevokeGradientKey,
    /// The daemon restarts with the store unable to grow (RLIMIT_FSIZE at its current size).
    DiskFull,
    /// The daemon's wall clock jumps by this libfaketime offset, e.g. "+3h".
    ClockJump(&'static str),
}

/// What the affected run records.
#[derive(Debug, Clone, Copy)]
pub enum Outcome {
    /// `ok`, after the simulator answered with the fault at least once (retries).
    Ok,
    /// `failed`, with an error containing every needle (upstream, endpoint, what to do).
    Failed(&'static [&'static str]),
    /// No run is involved: the reconciliation is recomputed (SIGHUP) under the fault.
    NoRun,
    /// The store cannot record the run at all: no new run in `/v1/runs`, and the source's
    /// health check carries the reason, which contains every needle.
    Unrecorded(&'static [&'static str]),
}

/// Which reconciliation rows turn `stale` while the fault lasts (the rest stay as they were).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Stale {
    /// None: every row keeps its status and quantities.
    None,
    /// Rows that use billing (service rows); unmapped-customer/product rows keep theirs.
    Services,
    /// Every row (the vendor feeds them all).
    All,
}

/// `/v1/health` while the fault lasts.
#[derive(Debug, Clone, Copy)]
pub struct Health {
    /// Overall status ("warn": the daemon does its job; "fail" + 503: it cannot).
    pub status: &'static str,
    /// The check that names the fault, e.g. "mailprotector:lastSuccess".
    pub check: &'static str,
    /// Its status.
    pub check_status: &'static str,
    /// Its output contains this.
    pub output_has: &'static str,
}

/// One row of the matrix.
#[derive(Debug, Clone, Copy)]
pub struct Case {
    pub name: &'static str,
    /// The run kind the fault hits: "vendor", "billing" or "push".
    pub kind: &'static str,
    /// Where billing comes from (the PSA the `--keys-dir` config names).
    pub psa: Psa,
    pub inject: Inject,
    /// `MPSYNC_*` overrides for this case (short timeouts).
    pub env: &'static [(&'static str, &'static str)],
    pub outcome: Outcome,
    pub stale: Stale,
    pub health: Health,
}

impl Case {
    fn gradient(&self) -> bool {
        self.kind == "push"
    }

    fn wrap(&self) -> Wrap {
        match self.inject {
            Inject::ClockJump(_) => Wrap::FakeClock,
            _ => Wrap::Plain,
        }
    }

    /// The health check of the affected run's source.
    fn health_source(&self) -> &'static str {
        match self.kind {
            "vendor" => "mailprotector:lastSuccess",
            "billing" => "billing:lastSuccess",
            _ => "gradient:lastSuccess",
        }
    }

    /// The kinds of the runs one trigger produces.
    fn kinds(&self) -> &'static [&'static str] {
        if self.gradient() { &["push"] } else { &["vendor", "billing"] }
    }
}

/// Runs one case end to end; panics with the case name on the first broken expectation.
pub fn run(case: &Case, seed: u64) {
    let mut fx = Fixture::with_psa(seed, case.gradient(), case.env, case.psa);
    fx.start(case.wrap());
    let mut after = 0;
    fx.settle(after, case.kinds());
    if case.gradient() {
        // The start-up push may have raced the first vendor run; wait for one that worked.
        after = wait_ok_push(&fx);
    }
    let sample = fx.sample();
    let before = fx.observe(&sample);

    inject(&mut fx, case);
    // Only runs that start under the fault count (a scheduled push may start any moment).
    after = after.max(fx.last_run_id());
    let affected = provoke(&fx, case, after);
    let during = fx.observe(&sample);
    check_outcome(&fx, case, affected.as_ref());
    check_rows(case, &before, &during);
    check_health(&fx, case);

    clear(&mut fx, case);
    let last = fx.last_run_id();
    let recovered = if case.gradient() {
        fx.settle(last, &["push"])
    } else {
        trigger_sync(fx.d());
        fx.settle(last, &["vendor", "billing"])
    };
    for r in &recovered {
        assert_eq!(r["outcome"], "ok", "{}: recovery run {r}", case.name);
    }
    let after_fault = fx.observe(&sample);
    assert_eq!(after_fault.rows, before.rows, "{}: rows are back to what they were", case.name);
    let check = &fx.d().get("/v1/health").json()["checks"][case.health.check][0];
    assert_eq!(
        check["status"], "pass",
        "{}: {} after recovery: {check}",
        case.name, case.health.check
    );
    check_kept(case, &before, &after_fault);

    // Committed means durable: a restart serves the same runs, rows, counts and history.
    fx.stop();
    fx.start(case.wrap());
    let restarted = fx.observe(&sample);
    assert_eq!(restarted.rows, after_fault.rows, "{}: rows after a restart", case.name);
    check_kept(case, &after_fault, &restarted);
    fx.stop();
}

/// Waits for an ok push (one of the first few); returns its id.
fn wait_ok_push(fx: &Fixture) -> u64 {
    let mut after = 0;
    for _ in 0..5 {
        let r = &fx.settle(after, &["push"])[0];
        if r["outcome"] == "ok" {
            return r["id"].as_u64().unwrap();
        }
        after = r["id"].as_u64().unwrap();
    }
    panic!("no push succeeded before the fault: {:?}", crate::support::sync::runs(fx.d()));
}

fn inject(fx: &mut Fixture, case: &Case) {
    let control = fx.sim.control().clone();
    match case.inject {
        Inject::Spec(spec) => {
            fx.sim.add_fault(Fault::parse(spec).expect("a valid fault spec"));
        }
        Inject::PsaDown(status) => {
            let faults = match case.psa {
                Psa::Connectwise => mpsync_sim::connectwise::outage(status),
                Psa::Autotask => mpsync_sim::autotask::outage(status),
                Psa::Halopsa => mpsync_sim::halopsa::outage(status),
            };
            for f in faults {
                fx.sim.add_fault(f);
            }
        }
        Inject::GradientDown(status) => {
            let g = control.gradient().clone();
            fx.sim.block_on(async move { g.add_fault(Fault::new(FaultKind::Status { status })) });
        }
        Inject::RevokeKey => {
            fx.sim.add_fault(Fault::new(FaultKind::Revoke { key: None }).on("customers"));
        }
        Inject::RevokePsaKeys => match case.psa {
            Psa::Connectwise => control.connectwise().revoke(),
            Psa::Autotask => control.autotask().revoke(),
            Psa::Halopsa => control.halopsa().revoke(),
        },
        Inject::RevokeGradientKey => control.gradient().revoke_partner_key(),
        Inject::DiskFull => fx.limit_writes(Some(4096)),
        Inject::ClockJump(offset) => fx.set_clock(offset),
    }
}

/// Takes the fault away: the simulator answers normally again, a revoked key is accepted
/// again (the operator re-entered it), the disk has room, the clock stays where it jumped.
fn clear(fx: &mut Fixture, case: &Case) {
    let control = fx.sim.control().clone();
    control.clear_faults();
    control.gradient().clear_faults();
    match case.inject {
        Inject::RevokeKey => control.restore_key(&control.reseller_key()),
        Inject::RevokePsaKeys => match case.psa {
            Psa::Connectwise => control.connectwise().restore(),
            Psa::Autotask => control.autotask().restore(),
            Psa::Halopsa => control.halopsa().restore(),
        },
        Inject::RevokeGradientKey => control.gradient().restore_partner_key(),
        Inject::DiskFull => {
            fx.limit_writes(None);
            fx.stop();
            fx.start(Wrap::Plain);
        }
        _ => {}
    }
}

/// Causes the affected run (or recomputation); returns the run.
fn provoke(fx: &Fixture, case: &Case, after: u64) -> Option<Value> {
    match case.outcome {
        Outcome::NoRun => {
            let before =
                get_json(fx.d(), "/v1/reconciliation?evidence=true&limit=5000")["computed_at"]
                    .clone();
            fx.d().signal("HUP");
            crate::support::common::wait_for(
                crate::support::daemon::DEADLINE,
                "a recomputation",
                || {
                    (get_json(fx.d(), "/v1/reconciliation?evidence=true&limit=5000")["computed_at"]
                        != before)
                        .then_some(())
                },
            );
            assert_eq!(fx.last_run_id(), after, "{}: no run was started", case.name);
            None
        }
        Outcome::Unrecorded(_) => {
            trigger_sync(fx.d());
            let source = case.health_source();
            crate::support::common::wait_for(
                crate::support::daemon::DEADLINE,
                "an unrecorded run",
                || {
                    let h = fx.d().get("/v1/health").json();
                    let failures = h["checks"][source][0]["consecutiveFailures"].as_u64();
                    failures.is_some_and(|n| n > 0).then_some(())
                },
            );
            assert_eq!(fx.last_run_id(), after, "{}: no run could be recorded", case.name);
            None
        }
        _ if case.gradient() => Some(fx.settle(after, &["push"]).remove(0)),
        _ => {
            trigger_sync(fx.d());
            let settled = fx.settle(after, case.kinds());
            settled.into_iter().find(|r| r["kind"] == case.kind)
        }
    }
}

fn check_outcome(fx: &Fixture, case: &Case, run: Option<&Value>) {
    let name = case.name;
    match case.outcome {
        Outcome::NoRun => {}
        Outcome::Unrecorded(needles) => {
            let h = fx.d().get("/v1/health").json();
            let check = &h["checks"][case.health_source()][0];
            let reason = check["lastError"]["reason"].as_str().unwrap_or_default();
            for n in needles {
                assert!(reason.contains(n), "{name}: the reason names {n:?}: {check}");
            }
        }
        Outcome::Ok => {
            let run = run.unwrap();
            assert_eq!(run["outcome"], "ok", "{name}: {run}");
            // The newest run's data is compared, whatever its clock said (ids order runs).
            let field = if case.kind == "billing" { "billing_run" } else { "vendor_run" };
            if case.kind != "push" {
                let rec = get_json(fx.d(), "/v1/reconciliation?evidence=true&limit=5000");
                assert_eq!(rec[field], run["id"], "{name}: the reconciliation uses run {run}");
            }
            if let Inject::Spec(_) = case.inject {
                let fired: u64 = fx.sim.control().faults().iter().map(|f| f.fired).sum();
                assert!(
                    fired > 0,
                    "{name}: the fault never fired, so nothing was retried: {run} {:?}",
                    fx.sim.control().faults()
                );
            }
        }
        Outcome::Failed(needles) => {
            let run = run.unwrap();
            assert_eq!(run["outcome"], "failed", "{name}: {run}");
            let error = run["error"].as_str().unwrap_or_else(|| panic!("{name}: no error: {run}"));
            for n in needles {
                assert!(error.contains(n), "{name}: the reason names {n:?}: {error}");
            }
        }
    }
}

/// Rows never turn wrong: each keeps its status and quantities, or (in the fault's scope)
/// turns `stale` with the same quantities; none appears or disappears.
fn check_rows(case: &Case, before: &Observed, during: &Observed) {
    let name = case.name;
    assert_eq!(
        before.rows.keys().collect::<Vec<_>>(),
        during.rows.keys().collect::<Vec<_>>(),
        "{name}: no row appears or disappears"
    );
    let mut stale = 0;
    for (key, b) in &before.rows {
        let d = &during.rows[key];
        let in_scope = match case.stale {
            Stale::None => false,
            Stale::Services => b.service,
            Stale::All => true,
        };
        let expected = if in_scope { "stale" } else { b.status.as_str() };
        assert_eq!(d.status, expected, "{name}: row {key} was {b:?}, is {d:?}");
        assert_eq!(
            (d.vendor_quantity, d.billed_quantity),
            (b.vendor_quantity, b.billed_quantity),
            "{name}: row {key} keeps its last good quantities"
        );
        stale += usize::from(in_scope);
    }
    assert_eq!(stale > 0, case.stale != Stale::None, "{name}: {stale} rows in the fault's scope");
}

fn check_health(fx: &Fixture, case: &Case) {
    let (name, h) = (case.name, &case.health);
    let r = fx.d().get("/v1/health");
    let body = r.json();
    let http = if h.status == "fail" { 503 } else { 200 };
    assert_eq!((r.status, body["status"].as_str()), (http, Some(h.status)), "{name}: {body}");
    let check = &body["checks"][h.check][0];
    assert_eq!(check["status"], h.check_status, "{name}: {}: {check}", h.check);
    let output = check["output"].as_str().unwrap_or_default();
    assert!(output.contains(h.output_has), "{name}: {} says {:?}: {check}", h.check, h.output_has);
}

/// Everything in `before` is still served in `after`: its runs (same outcome and reason),
/// every customer's counts, and every history point.
fn check_kept(case: &Case, before: &Observed, after: &Observed) {
    let name = case.name;
    for run in before.runs.iter().filter(|r| r["outcome"] != "running") {
        let kept = after.runs.iter().find(|r| r["id"] == run["id"]);
        assert_eq!(kept, Some(run), "{name}: run {} is still served as it was", run["id"]);
    }
    assert_eq!(after.customers, before.customers, "{name}: the counts are still served");
    for p in &before.history {
        assert!(after.history.contains(p), "{name}: history point {p} is still served");
    }
}
