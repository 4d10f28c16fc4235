//! `mpsync apply PLAN_ID`: apply a stored plan with the engine in [`crate::writeback::apply`].
//! Without a daemon it opens the store itself; while a daemon holds the store it asks the
//! daemon through the control socket, which runs the same engine. Progress goes to stderr as
//! each change is decided, the summary to stdout; a dry run prints each request to stdout.

use tokio_util::sync::CancellationToken;

use super::{CommandError, Globals, load_with_state_dir, open_store};
use crate::cli::ApplyArgs;
use crate::control::{self, ControlError, Reply, Request};
use crate::exit::Exit;
use crate::store::{FILE_NAME, StoreError};
use crate::writeback::{self, ApplyError, ApplyEvent, ApplyOptions};

/// Applies the plan, printing as it goes; fails with the first failure's exit status.
pub async fn run(g: &Globals, args: ApplyArgs) -> Result<(), CommandError> {
    let config = load_with_state_dir(g, args.state_dir.as_deref())?;
    let dir = config.daemon.state_dir.clone();
    if !dir.join(FILE_NAME).exists() {
        // Applying must not create a store where there is none: there is no plan in it.
        return Err(ApplyError::UnknownPlan { plan: args.plan }.into());
    }
    let who = who();
    let dry_run = args.dry_run;
    let mut print = move |e: &ApplyEvent| print_event(e, dry_run);
    let report = match open_store(dir.clone()).await {
        Ok(store) => {
            if let Some(note) = store.tightened() {
                eprintln!("mpsync: {note}");
            }
            let writer = crate::billing::configured_writer(&config.billing);
            let opts = ApplyOptions {
                dry_run,
                only: args.only,
                who,
                auto_only: false,
                scrub: crate::app::secret_scrubber(&config),
                stop: CancellationToken::new(),
            };
            writeback::apply(&store, &*writer, args.plan, &opts, &mut print).await?
        }
        Err(CommandError::Store(StoreError::Locked { .. })) => {
            let path = control::socket_path(&dir);
            let req = Request::Apply { plan: args.plan, dry_run, only: args.only, who };
            match control::request(&path, &req, &mut print).await? {
                Reply::Report(report) => report,
                Reply::Error { message, exit } => {
                    return Err(CommandError::Remote { message, exit: Exit::from_code(exit) });
                }
                other => {
                    let reason = format!("expected the apply's report, got {other:?}");
                    return Err(ControlError::Malformed { path, reason }.into());
                }
            }
        }
        Err(e) => return Err(e),
    };
    println!("{}", report.summary_text());
    match report.exit() {
        Exit::Ok => Ok(()),
        failed => Err(CommandError::Reported(failed)),
    }
}

/// Who applies, for the audit log: the login behind `sudo`, else the user (`$USER`, then
/// `$LOGNAME`), else the process's user id (`uid 1000`) when the environment names nobody
/// (cron, a bare `systemd-run`).
pub fn who() -> String {
    use std::os::unix::fs::MetadataExt;
    ["SUDO_USER", "USER", "LOGNAME"]
        .iter()
        .find_map(|var| std::env::var(var).ok().filter(|v| !v.trim().is_empty()))
        .or_else(|| std::fs::metadata("/proc/self").ok().map(|m| format!("uid {}", m.uid())))
        .unwrap_or_else(|| "unknown".into())
}

fn print_event(e: &ApplyEvent, dry_run: bool) {
    match e {
        ApplyEvent::Started { plan, selected, cap, dry_run: true } => eprintln!(
            "dry run of plan {plan}: {selected} change(s) selected, at most {cap} per apply; \
             nothing is sent"
        ),
        ApplyEvent::Started { plan, selected, cap, .. } => {
            eprintln!(
                "applying plan {plan}: {selected} change(s) selected, at most {cap} per apply"
            )
        }
        // The requests are the dry run's output.
        ApplyEvent::Change(c) if dry_run => println!("{}", c.text()),
        ApplyEvent::Change(c) => eprintln!("{}", c.text()),
    }
}
