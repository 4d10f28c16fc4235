//! `mpsync audit`: the write-back audit log, newest first, as a table or as the JSON
//! `GET /v1/audit` serves. Reads the store itself, or asks the daemon through its control
//! socket while the daemon holds the store.

use super::{CommandError, Globals, load_with_state_dir, open_store};
use crate::cli::AuditArgs;
use crate::control::{self, ControlError, Reply, Request};
use crate::exit::Exit;
use crate::store::{FILE_NAME, StoreError};
use crate::writeback::{AuditEntry, AuditQuery, audit};

/// Prints the audit entries `args` asks for.
pub async fn print(g: &Globals, args: AuditArgs) -> Result<(), CommandError> {
    let config = load_with_state_dir(g, args.state_dir.as_deref())?;
    let dir = config.daemon.state_dir.clone();
    let q = AuditQuery { limit: args.limit, plan: args.plan };
    // Reading must not create a store where there is none.
    let entries: Vec<AuditEntry> = if !dir.join(FILE_NAME).exists() {
        Vec::new()
    } else {
        match open_store(dir.clone()).await {
            Ok(store) => {
                if let Some(note) = store.tightened() {
                    eprintln!("mpsync: {note}");
                }
                store.audit(q).await?
            }
            Err(CommandError::Store(StoreError::Locked { .. })) => {
                let path = control::socket_path(&dir);
                let req = Request::Audit { limit: q.limit, plan: q.plan };
                match control::request(&path, &req, |_| {}).await? {
                    Reply::Audit { entries } => entries,
                    Reply::Error { message, exit } => {
                        return Err(CommandError::Remote { message, exit: Exit::from_code(exit) });
                    }
                    other => {
                        let reason = format!("expected audit entries, got {other:?}");
                        return Err(ControlError::Malformed { path, reason }.into());
                    }
                }
            }
            Err(e) => return Err(e),
        }
    };
    if args.json {
        let doc = audit::json(&entries);
        println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
    } else {
        print!("{}", audit::table(&entries));
    }
    Ok(())
}
