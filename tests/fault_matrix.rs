//! The fault matrix: the real daemon against the simulators (Mailprotector, ConnectWise,
//! Autotask or HaloPSA, Gradient) under each fault of DESIGN.md's reliability bar. Every case gets its own
//! simulator, daemon and state dir, and asserts the affected run's recorded outcome and
//! reason, reconciliation rows `stale` and never wrong, `/v1/health`, recovery on the next
//! run once the fault clears, and that nothing committed earlier is lost (across a restart).
//!
//! Companion tests cover the disk being full already at start-up (exit 74), a run under way
//! when the disk fills (aborted at the next start with the write error as its reason, not as a
//! crash), and one-shot commands under a file-size limit (exit 74, never killed by SIGXFSZ:
//! no daemon here runs with SIGXFSZ trapped for it). Set `FAULT_CASE=<part of a name>` to run
//! only matching cases while working on one.
//!
//! Retry policy (src/upstream/retry.rs, `RetryPolicy::default`, not configurable): 5 attempts
//! for 5xx, timeouts and transport errors (backoff 0.5s doubling, full jitter); 30 attempts
//! while answered 429 (each pausing every caller for `Retry-After`). So a burst below those
//! limits ends `ok` after retries, a longer one `failed`; 401 and malformed bodies are never
//! retried.
//!
//! The billing cases run against ConnectWise and against Autotask. Autotask's hourly
//! threshold answers 429 "API request threshold exceeded." with a `Retry-After`; the cases
//! cause it with the simulator's storm fault (the same answer, `Retry-After: 1`) rather than by
//! spending the real threshold, whose 60-second `Retry-After` would make a case last minutes.
//!
//! The HaloPSA cases mirror them and add what Halo has of its own: its rolling limit's
//! text/plain 429 without `Retry-After` (the simulator's real limiter, shrunk to 2 requests
//! per 2 s: the client pauses its default 30 s and goes on), and a token that ends while a read
//! is under way (401, a new token, the call replayed). Past the retry budget uses the storm
//! fault (`Retry-After: 1`) for the same reason as Autotask's.

use mpsync::cli::Psa;

use crate::support::common;
use crate::support::daemon::Daemon;
use crate::support::fault::{self, Case, Fixture, Health, Inject, Outcome, Stale, Wrap};

/// The mailprotector check warns with the failed run (overall `warn`, HTTP 200: an upstream
/// outage never makes the daemon itself fail). Overall is `warn` anyway: the simulated
/// billing has planted discrepancies.
const MP_FAILED: Health = Health {
    status: "warn",
    check: "mailprotector:lastSuccess",
    check_status: "warn",
    output_has: "1 run(s) failed since the last success",
};
/// The mailprotector check passes: the fault was absorbed.
const MP_PASS: Health = Health { check_status: "pass", output_has: "", ..MP_FAILED };
/// The billing check warns with the failed run; only rows that use billing turn stale.
const BILLING_FAILED: Health = Health { check: "billing:lastSuccess", ..MP_FAILED };
/// The billing check passes: the fault was absorbed.
const BILLING_PASS: Health = Health { check_status: "pass", output_has: "", ..BILLING_FAILED };
/// The push failed: the gradient check warns; the reconciliation does not depend on it. (The
/// push runs every second, so more than one may have failed by the time health is read.)
const GRADIENT_FAILED: Health = Health {
    check: "gradient:lastSuccess",
    output_has: "run(s) failed since the last success",
    ..MP_FAILED
};

/// A body that does not parse fails the run at once (never retried) and says what to do.
const MALFORMED: Case = Case {
    name: "",
    kind: "vendor",
    psa: Psa::Connectwise,
    inject: Inject::Spec(""),
    env: &[],
    outcome: Outcome::Failed(&[
        "mailprotector sent a malformed response",
        "GET /resellers/{id}/users",
        "try again later, and if it persists report it",
    ]),
    stale: Stale::All,
    health: MP_FAILED,
};

/// Short per-request timeout for the hang case: 5 attempts of 1s plus backoff.
const SHORT_TIMEOUT: &[(&str, &str)] = &[("MPSYNC_MAILPROTECTOR__TIMEOUT", "1s")];
/// The same for HaloPSA (its default is 60 s).
const HALO_SHORT_TIMEOUT: &[(&str, &str)] = &[("MPSYNC_BILLING__HALOPSA__TIMEOUT", "1s")];

/// A HaloPSA invoice list that does not parse fails the billing run at once, naming the list.
const HALO_MALFORMED: Case = Case {
    name: "",
    kind: "billing",
    psa: Psa::Halopsa,
    inject: Inject::Spec(""),
    env: &[],
    outcome: Outcome::Failed(&[
        "halopsa sent a malformed response",
        "GET /RecurringInvoice",
        "try again later, and if it persists report it",
    ]),
    stale: Stale::Services,
    health: BILLING_FAILED,
};

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "429 storm shorter than the retry budget",
            kind: "vendor",
            psa: Psa::Connectwise,
            inject: Inject::Spec("kind=storm,retry_after=1,times=3,endpoint=customers"),
            env: &[],
            outcome: Outcome::Ok,
            stale: Stale::None,
            health: MP_PASS,
        },
        Case {
            name: "429 storm longer than the retry budget (30 answers)",
            kind: "vendor",
            psa: Psa::Connectwise,
            inject: Inject::Spec("kind=storm,retry_after=1,endpoint=customers"),
            env: &[],
            outcome: Outcome::Failed(&[
                "mailprotector kept answering 429",
                "GET /resellers/{id}/customers",
                "lower the configured rate_limit or try later",
            ]),
            stale: Stale::All,
            health: MP_FAILED,
        },
        Case {
            name: "5xx burst below the attempt limit",
            kind: "vendor",
            psa: Psa::Connectwise,
            inject: Inject::Spec("status=503,times=3,endpoint=users"),
            env: &[],
            outcome: Outcome::Ok,
            stale: Stale::None,
            health: MP_PASS,
        },
        Case {
            name: "5xx on every attempt",
            kind: "vendor",
            psa: Psa::Connectwise,
            inject: Inject::Spec("status=503,endpoint=users"),
            env: &[],
            outcome: Outcome::Failed(&[
                "mailprotector is unavailable",
                "GET /resellers/{id}/users",
                "after 5 attempts",
                "503",
                "try later",
            ]),
            stale: Stale::All,
            health: MP_FAILED,
        },
        Case {
            name: "hang (no answer within the timeout)",
            kind: "vendor",
            psa: Psa::Connectwise,
            inject: Inject::Spec("kind=hang,endpoint=users"),
            env: SHORT_TIMEOUT,
            outcome: Outcome::Failed(&[
                "mailprotector did not answer",
                "GET /resellers/{id}/users",
                "raise the timeout",
            ]),
            stale: Stale::All,
            health: MP_FAILED,
        },
        Case {
            name: "truncated JSON",
            inject: Inject::Spec("kind=truncate,endpoint=users"),
            ..MALFORMED
        },
        Case {
            name: "wrong field types",
            inject: Inject::Spec("kind=wrong_types,endpoint=users"),
            ..MALFORMED
        },
        Case {
            name: "body is not JSON",
            inject: Inject::Spec("kind=malformed,endpoint=users"),
            ..MALFORMED
        },
        Case {
            name: "connection dropped mid-answer",
            kind: "vendor",
            psa: Psa::Connectwise,
            inject: Inject::Spec("kind=disconnect,endpoint=users"),
            env: &[],
            outcome: Outcome::Failed(&[
                "mailprotector is unavailable",
                "GET /resellers/{id}/users",
                "after 5 attempts",
                "try later",
            ]),
            stale: Stale::All,
            health: MP_FAILED,
        },
        Case {
            name: "revoked key",
            kind: "vendor",
            psa: Psa::Connectwise,
            inject: Inject::RevokeKey,
            env: &[],
            outcome: Outcome::Failed(&[
                "mailprotector rejected the credentials",
                "GET /resellers/{id}/",
                "mailprotector.api_key_file",
                "revoked",
            ]),
            stale: Stale::All,
            health: MP_FAILED,
        },
        Case {
            name: "PSA (ConnectWise) down",
            kind: "billing",
            psa: Psa::Connectwise,
            inject: Inject::PsaDown(503),
            env: &[],
            outcome: Outcome::Failed(&["connectwise is unavailable", "503", "try later"]),
            stale: Stale::Services,
            health: BILLING_FAILED,
        },
        Case {
            name: "PSA 5xx burst below the attempt limit",
            kind: "billing",
            psa: Psa::Connectwise,
            inject: Inject::Spec("status=503,times=2,endpoint=additions"),
            env: &[],
            outcome: Outcome::Ok,
            stale: Stale::None,
            health: Health { check_status: "pass", output_has: "", ..BILLING_FAILED },
        },
        Case {
            name: "PSA keys revoked",
            kind: "billing",
            psa: Psa::Connectwise,
            inject: Inject::RevokePsaKeys,
            env: &[],
            outcome: Outcome::Failed(&[
                "connectwise rejected the credentials",
                "billing.connectwise",
                "revoked",
            ]),
            stale: Stale::Services,
            health: BILLING_FAILED,
        },
        Case {
            name: "PSA (Autotask) down",
            kind: "billing",
            psa: Psa::Autotask,
            inject: Inject::PsaDown(503),
            env: &[],
            outcome: Outcome::Failed(&[
                "autotask is unavailable",
                "after 5 attempts",
                "503",
                "try later",
            ]),
            stale: Stale::Services,
            health: BILLING_FAILED,
        },
        Case {
            name: "Autotask 5xx burst below the attempt limit",
            kind: "billing",
            psa: Psa::Autotask,
            inject: Inject::Spec("status=503,times=2,endpoint=POST /ContractServices/query"),
            env: &[],
            outcome: Outcome::Ok,
            stale: Stale::None,
            health: Health { check_status: "pass", output_has: "", ..BILLING_FAILED },
        },
        Case {
            name: "Autotask API user's secret revoked",
            kind: "billing",
            psa: Psa::Autotask,
            inject: Inject::RevokePsaKeys,
            env: &[],
            outcome: Outcome::Failed(&[
                "autotask rejected the credentials",
                "billing.autotask.username",
                "integration code and secret",
                "secret_file",
                "revoked",
            ]),
            stale: Stale::Services,
            health: BILLING_FAILED,
        },
        Case {
            name: "Autotask hourly threshold exceeded for a few answers",
            kind: "billing",
            psa: Psa::Autotask,
            inject: Inject::Spec(
                "kind=storm,retry_after=1,times=3,endpoint=POST /ContractServices/query",
            ),
            env: &[],
            outcome: Outcome::Ok,
            stale: Stale::None,
            health: Health { check_status: "pass", output_has: "", ..BILLING_FAILED },
        },
        Case {
            name: "Autotask hourly threshold exceeded past the retry budget (30 answers)",
            kind: "billing",
            psa: Psa::Autotask,
            inject: Inject::Spec("kind=storm,retry_after=1,endpoint=POST /ContractServices/query"),
            env: &[],
            outcome: Outcome::Failed(&[
                "autotask kept answering 429",
                "POST /ContractServices/query",
                "after 30 attempts",
                "try later",
            ]),
            stale: Stale::Services,
            health: BILLING_FAILED,
        },
        Case {
            name: "PSA (HaloPSA) down",
            kind: "billing",
            psa: Psa::Halopsa,
            inject: Inject::PsaDown(503),
            env: &[],
            outcome: Outcome::Failed(&[
                // Whichever list gave up first (they are read at once); the token is cached.
                "halopsa is unavailable: GET /",
                "after 5 attempts",
                "503",
                "try later",
            ]),
            stale: Stale::Services,
            health: BILLING_FAILED,
        },
        Case {
            name: "HaloPSA 500 burst below the attempt limit",
            kind: "billing",
            psa: Psa::Halopsa,
            inject: Inject::Spec("status=500,times=2,endpoint=GET /RecurringInvoice"),
            env: &[],
            outcome: Outcome::Ok,
            stale: Stale::None,
            health: BILLING_PASS,
        },
        Case {
            name: "HaloPSA 500 on every attempt",
            kind: "billing",
            psa: Psa::Halopsa,
            inject: Inject::Spec("status=500,endpoint=GET /RecurringInvoice"),
            env: &[],
            outcome: Outcome::Failed(&[
                "halopsa is unavailable",
                "GET /RecurringInvoice",
                "after 5 attempts",
                "500",
                "try later",
            ]),
            stale: Stale::Services,
            health: BILLING_FAILED,
        },
        Case {
            name: "HaloPSA client secret revoked",
            kind: "billing",
            psa: Psa::Halopsa,
            inject: Inject::RevokePsaKeys,
            env: &[],
            outcome: Outcome::Failed(&[
                "halopsa rejected the credentials",
                "billing.halopsa.client_id",
                "revoked",
            ]),
            stale: Stale::Services,
            health: BILLING_FAILED,
        },
        Case {
            name: "HaloPSA hang (no answer within the timeout)",
            kind: "billing",
            psa: Psa::Halopsa,
            inject: Inject::Spec("kind=hang,endpoint=GET /ClientContract"),
            env: HALO_SHORT_TIMEOUT,
            outcome: Outcome::Failed(&[
                "halopsa did not answer",
                "GET /ClientContract",
                "raise the timeout",
            ]),
            stale: Stale::Services,
            health: BILLING_FAILED,
        },
        Case {
            name: "HaloPSA slow (answers within the timeout)",
            kind: "billing",
            psa: Psa::Halopsa,
            inject: Inject::Spec("kind=latency,ms=400,endpoint=GET /RecurringInvoice"),
            env: HALO_SHORT_TIMEOUT,
            outcome: Outcome::Ok,
            stale: Stale::None,
            health: BILLING_PASS,
        },
        Case {
            name: "HaloPSA truncated JSON",
            inject: Inject::Spec("kind=truncate,endpoint=GET /RecurringInvoice"),
            ..HALO_MALFORMED
        },
        Case {
            // Ids and quantities as numeric strings are read as the numbers: the same rows.
            name: "HaloPSA numbers sent as strings",
            kind: "billing",
            psa: Psa::Halopsa,
            inject: Inject::Spec("kind=wrong_types,endpoint=GET /RecurringInvoice"),
            env: &[],
            outcome: Outcome::Ok,
            stale: Stale::None,
            health: BILLING_PASS,
        },
        Case {
            name: "HaloPSA body is not JSON",
            inject: Inject::Spec("kind=malformed,endpoint=GET /RecurringInvoice"),
            ..HALO_MALFORMED
        },
        Case {
            name: "HaloPSA rolling limit reached (text 429, no Retry-After)",
            kind: "billing",
            psa: Psa::Halopsa,
            inject: Inject::HaloRollingLimit { limit: 2, window_secs: 2 },
            env: &[],
            outcome: Outcome::Ok,
            stale: Stale::None,
            health: BILLING_PASS,
        },
        Case {
            name: "HaloPSA rolling limit past the retry budget (30 answers)",
            kind: "billing",
            psa: Psa::Halopsa,
            inject: Inject::Spec("kind=storm,retry_after=1,endpoint=GET /RecurringInvoice"),
            env: &[],
            outcome: Outcome::Failed(&[
                "halopsa kept answering 429",
                "GET /RecurringInvoice",
                "after 30 attempts",
                "try later",
            ]),
            stale: Stale::Services,
            health: BILLING_FAILED,
        },
        Case {
            name: "HaloPSA token expires mid-read",
            kind: "billing",
            psa: Psa::Halopsa,
            inject: Inject::HaloTokensExpireMidRead,
            env: &[],
            outcome: Outcome::Ok,
            stale: Stale::None,
            health: BILLING_PASS,
        },
        Case {
            name: "Gradient down",
            kind: "push",
            psa: Psa::Connectwise,
            inject: Inject::GradientDown(503),
            env: &[],
            outcome: Outcome::Failed(&["gradient", "503", "try later"]),
            stale: Stale::None,
            health: GRADIENT_FAILED,
        },
        Case {
            name: "Gradient partner key revoked",
            kind: "push",
            psa: Psa::Connectwise,
            inject: Inject::RevokeGradientKey,
            env: &[],
            outcome: Outcome::Failed(&["gradient", "re-enter it"]),
            stale: Stale::None,
            health: GRADIENT_FAILED,
        },
        Case {
            name: "disk full (the store cannot grow)",
            kind: "vendor",
            psa: Psa::Connectwise,
            inject: Inject::DiskFull,
            env: &[],
            outcome: Outcome::Unrecorded(&[
                "the run could not be recorded",
                "cannot record the start of a vendor run",
                "mpsync.redb",
                "space",
            ]),
            stale: Stale::None,
            health: Health {
                status: "fail",
                check: "store:open",
                check_status: "fail",
                output_has: "runs cannot be recorded",
            },
        },
        Case {
            name: "clock jumps forward past max_age",
            kind: "vendor",
            psa: Psa::Connectwise,
            inject: Inject::ClockJump("+3h"),
            env: &[],
            outcome: Outcome::NoRun,
            stale: Stale::All,
            health: Health {
                status: "warn",
                check: "mailprotector:lastSuccess",
                check_status: "warn",
                output_has: "older than reconcile.max_age",
            },
        },
        Case {
            name: "clock jumps backwards",
            kind: "vendor",
            psa: Psa::Connectwise,
            inject: Inject::ClockJump("-3h"),
            env: &[],
            outcome: Outcome::Ok,
            stale: Stale::None,
            health: MP_PASS,
        },
    ]
}

/// Runs every case at once (each in its own thread, simulator, daemon and state dir: they
/// spend their time waiting on retries and timeouts) and reports every case that broke.
#[test]
fn every_fault_ends_in_a_recorded_outcome_stale_rows_and_recovery() {
    let only = std::env::var("FAULT_CASE").ok();
    let handles: Vec<_> = cases()
        .into_iter()
        .enumerate()
        .filter(|(_, c)| only.as_deref().is_none_or(|o| c.name.contains(o)))
        .map(|(i, case)| {
            let thread = std::thread::Builder::new().name(case.name.to_owned());
            let h = thread.spawn(move || fault::run(&case, 100 + i as u64)).unwrap();
            (case.name, h)
        })
        .collect();
    let failed: Vec<&str> =
        handles.into_iter().filter_map(|(name, h)| h.join().is_err().then_some(name)).collect();
    assert!(failed.is_empty(), "fault cases that broke (see their panics above): {failed:?}");
}

/// The disk-full case at start-up rather than mid-run: the store cannot even be opened for
/// writing, so the daemon stops with EX_IOERR (74) and a message naming the file and what to
/// do; once there is room it starts and serves everything committed before, unchanged.
#[test]
fn a_store_that_cannot_be_written_at_start_up_stops_with_74_and_keeps_its_data() {
    let mut fx = Fixture::new(7, false, &[]);
    fx.start(Wrap::Plain);
    fx.settle(0, &["vendor", "billing"]);
    let sample = fx.sample();
    let before = fx.observe(&sample);
    fx.stop();

    let (code, stderr) = Daemon::run_to_exit(fx.command(Wrap::WritesLimited(4096)));
    assert_eq!(code, Some(74), "{stderr}");
    for needle in ["cannot start", "mpsync.redb", "File too large", "free space"] {
        assert!(stderr.contains(needle), "the message says {needle:?}: {stderr}");
    }

    fx.start(Wrap::Plain);
    let after = fx.observe(&sample);
    assert_eq!(after.runs, before.runs, "every run is still served");
    assert_eq!(after.rows, before.rows, "the reconciliation is unchanged");
    assert_eq!(after.customers, before.customers, "the counts are unchanged");
    assert_eq!(after.history, before.history, "the history is unchanged");
    fx.stop();
}

/// A vendor run under way when the disk fills (the file-size limit drops below the store's
/// size while its first request hangs) cannot write its end. The daemon survives on its own
/// (no SIGXFSZ trap around it), and after a restart with room again that run is aborted with
/// the store's write error as its reason, not as "crash, kill or power loss".
#[test]
fn a_run_cut_short_by_a_full_disk_is_recorded_with_that_reason_not_as_a_crash() {
    use crate::support::common::wait_for;
    use crate::support::daemon::DEADLINE;
    use crate::support::sync::{runs, trigger_sync};

    // One hung request of up to 5 s: the window to lower the limit while the run is under way.
    let mut fx = Fixture::new(11, false, &[("MPSYNC_MAILPROTECTOR__TIMEOUT", "5s")]);
    fx.start(Wrap::Plain);
    fx.settle(0, &["vendor", "billing"]);
    let after = fx.last_run_id();
    let spec = mpsync_sim::Fault::parse("kind=hang,times=1,endpoint=users").unwrap();
    let hang = fx.sim.add_fault(spec);
    trigger_sync(fx.d());
    wait_for(DEADLINE, "the vendor run's request to hang", || {
        fx.sim.control().faults().iter().any(|f| f.id == hang && f.fired > 0).then_some(())
    });
    fx.limit_writes(Some(4096));
    // The retry is answered and the run ends, but its end cannot be written.
    wait_for(DEADLINE * 2, "the vendor run to end unrecorded", || {
        let h = fx.d().get("/v1/health").json();
        let check = &h["checks"]["mailprotector:lastSuccess"][0];
        check["consecutiveFailures"].as_u64().is_some_and(|n| n > 0).then_some(())
    });
    let run = runs(fx.d())
        .into_iter()
        .find(|r| r["kind"] == "vendor" && r["id"].as_u64().unwrap() > after)
        .expect("the run's start was recorded");
    assert_eq!(run["outcome"], "running", "its end could not be written: {run}");
    let id = run["id"].clone();

    // Room again: the daemon, still alive, stops cleanly (exit 0) and starts again.
    fx.limit_writes(None);
    fx.stop();
    fx.start(Wrap::Plain);
    let aborted = runs(fx.d()).into_iter().find(|r| r["id"] == id).unwrap();
    assert_eq!(aborted["outcome"], "aborted", "{aborted}");
    let error = aborted["error"].as_str().unwrap();
    for needle in [
        "the store could not be written: File too large (os error 27) (disk full or a \
         file-size limit); writes stopped at: commit the",
        "mpsync.redb",
        "The end of this run was not recorded and nothing it collected was stored",
    ] {
        assert!(error.contains(needle), "the reason says {needle:?}: {error}");
    }
    assert!(!error.contains("crash"), "{error}");
    let side = fx.dir.state_dir().join(mpsync::store::UNRECORDED_FILE_NAME);
    let side = std::fs::read_to_string(&side).expect("the side record exists");
    assert_eq!(side.trim(), "{}", "the side record was emptied once recorded");

    // And the next sync works and is recorded as usual.
    let last = fx.last_run_id();
    trigger_sync(fx.d());
    for r in fx.settle(last, &["vendor", "billing"]) {
        assert_eq!(r["outcome"], "ok", "{r}");
    }
    fx.stop();
}

/// One-shot commands survive a file-size limit too: `sync --once` and `check` on a state dir
/// the limit does not let them write exit 74 with the store's error, not killed by SIGXFSZ.
#[test]
fn one_shot_commands_under_a_file_size_limit_exit_74_instead_of_being_killed() {
    use std::os::unix::process::ExitStatusExt;

    let dir = common::TestDir::new();
    let config = dir.valid_config("127.0.0.1:9", "http://127.0.0.1:9");
    for args in [&["sync", "--once"][..], &["check"]] {
        let mut cmd = common::clean_command("prlimit");
        cmd.arg("--fsize=4096").arg("--").arg(common::bin()).arg("-c").arg(&config).args(args);
        let out = cmd.output().expect("run prlimit (util-linux)");
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.status.signal(), None, "{args:?} was killed: {}\n{said}", out.status);
        assert_eq!(out.status.code(), Some(74), "{args:?}: {said}");
        for needle in ["mpsync.redb", "File too large", "a file-size limit was reached"] {
            assert!(said.contains(needle), "{args:?} says {needle:?}: {said}");
        }
    }
}
