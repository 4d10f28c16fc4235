//! `mpsync plan`: print the write-back plan from the store as a table, JSON or CSV (the
//! changes to enter by hand), filtered by status and account. Reads the store only; exits 75
//! when a daemon holds it, naming the daemon's `/v1/plan` that serves the same.

use super::{CommandError, Globals, load_options};
use crate::cli::PlanArgs;
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
        read(dir, args.id).await.map_err(|e| match e {
            CommandError::Store(StoreError::Locked { path }) => CommandError::StoreHeld {
                path,
                url: format!("http://{}/v1/plan", config.daemon.listen),
            },
            e => e,
        })?
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
