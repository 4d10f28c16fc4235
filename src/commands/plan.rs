//! `mpsync plan`: print the write-back plan from the store as a table, JSON or CSV (the
//! changes to enter by hand), filtered by status and account. Reads the store only; while a
//! daemon holds it, asks the daemon through its control socket, and exits 75 naming the
//! daemon's `/v1/plan` when the socket cannot be reached.

use super::{CommandError, Globals, load_options};
use crate::cli::PlanArgs;
use crate::control::{self, ControlError, Reply, Request};
use crate::exit::Exit;
use crate::reconcile::Filter;
use crate::store::{FILE_NAME, StoreError};
use crate::writeback::Plan;
use crate::writeback::view::{self, PlanFilter};

/// Prints the latest plan (or `--id N`), filtered by `--status` and `--account`.
pub async fn print(g: &Globals, args: PlanArgs) -> Result<(), CommandError> {
    let statuses = args
        .status
        .as_deref()
        .map(Filter::parse_statuses)
        .transpose()
        .map_err(CommandError::PlanStatus)?
        .unwrap_or_default();
    let account = args.account.map(|a| a.trim().to_string()).filter(|a| !a.is_empty());
    let filter = PlanFilter { statuses, account };
    let mut overrides = Vec::new();
    if let Some(dir) = &args.state_dir {
        overrides.push(("daemon.state_dir".to_owned(), dir.display().to_string()));
    }
    let config = crate::config::load(&load_options(g, overrides))?;
    let dir = config.daemon.state_dir.clone();
    // Reading must not create a store where there is none.
    let plan = if dir.join(FILE_NAME).exists() {
        match read(dir.clone(), args.id).await {
            Ok(plan) => plan,
            // A daemon holds the store: ask it through its control socket, or, when that
            // cannot be reached, point at its HTTP endpoint.
            Err(CommandError::Store(StoreError::Locked { path })) => {
                match ask_daemon(&dir, args.id).await {
                    Err(CommandError::Control(ControlError::Unreachable { .. })) => {
                        return Err(CommandError::StoreHeld {
                            path,
                            url: format!("http://{}/v1/plan", config.daemon.listen),
                        });
                    }
                    other => other?,
                }
            }
            Err(e) => return Err(e),
        }
    } else {
        None
    };
    if let (Some(id), None) = (args.id, &plan) {
        return Err(CommandError::NoSuchPlan(id));
    }
    if args.json {
        let doc = view::json(plan.as_ref(), &filter);
        println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
    } else if args.csv {
        print!("{}", view::csv(plan.as_ref(), &filter));
        if plan.is_none() {
            // A note, not an error: an empty CSV is the right answer before the first plan.
            eprintln!("mpsync plan: {}", view::NO_PLAN);
        }
    } else {
        match &plan {
            Some(p) => print!("{}", view::table(p, &filter)),
            None => println!("{}", view::NO_PLAN),
        }
    }
    Ok(())
}

/// Plan `id` (or the latest) from the daemon, through its control socket.
async fn ask_daemon(dir: &std::path::Path, id: Option<u64>) -> Result<Option<Plan>, CommandError> {
    let path = control::socket_path(dir);
    match control::request(&path, &Request::Plan { id }, |_| {}).await? {
        Reply::Plan { plan } => Ok(plan.map(|p| *p)),
        Reply::Error { message, exit } => {
            Err(CommandError::Remote { message, exit: Exit::from_code(exit) })
        }
        other => {
            let reason = format!("expected a plan, got {other:?}");
            Err(ControlError::Malformed { path, reason }.into())
        }
    }
}

async fn read(dir: std::path::PathBuf, id: Option<u64>) -> Result<Option<Plan>, CommandError> {
    let store = super::open_store(dir).await?;
    if let Some(note) = store.tightened() {
        // stderr: stdout may be a JSON or CSV document a script reads.
        eprintln!("mpsync: {note}");
    }
    Ok(match id {
        Some(id) => store.plan(id).await?,
        None => store.latest_plan().await?,
    })
}
