//! `mpsync report`: the period report (see [`crate::report`]) as Markdown, CSV or JSON. Reads
//! the store itself, or asks the daemon through its control socket while the daemon holds it.

use chrono::Utc;

use super::{CommandError, Globals, load_with_state_dir, open_store};
use crate::cli::{ReportArgs, ReportFormat};
use crate::control::{self, ControlError, Reply, Request};
use crate::exit::Exit;
use crate::report::{self, Report};
use crate::store::{FILE_NAME, StoreError};

/// Prints the report `args` asks for.
pub async fn print(g: &Globals, args: ReportArgs) -> Result<(), CommandError> {
    let since = report::parse_date(&args.since)
        .map_err(|source| CommandError::ReportDate { flag: "--since", source })?;
    let until = match &args.until {
        Some(u) => report::parse_date(u)
            .map_err(|source| CommandError::ReportDate { flag: "--until", source })?,
        None => Utc::now(),
    };
    if until <= since {
        return Err(CommandError::ReportPeriod {
            since: args.since.clone(),
            until: args.until.clone().unwrap_or_else(|| "now".into()),
        });
    }
    let config = load_with_state_dir(g, args.state_dir.as_deref())?;
    let dir = config.daemon.state_dir.clone();
    // Reading must not create a store where there is none.
    let report: Report = if !dir.join(FILE_NAME).exists() {
        report::build(&report::Inputs {
            since,
            until,
            events: &[],
            events_since: None,
            current: None,
        })
    } else {
        match open_store(dir.clone()).await {
            Ok(store) => {
                if let Some(note) = store.tightened() {
                    eprintln!("mpsync: {note}");
                }
                report::load(&store, since, until).await?
            }
            Err(CommandError::Store(StoreError::Locked { .. })) => {
                let path = control::socket_path(&dir);
                match control::request(&path, &Request::Report { since, until }, |_| {}).await? {
                    Reply::PeriodReport { report } => *report,
                    Reply::Error { message, exit } => {
                        return Err(CommandError::Remote { message, exit: Exit::from_code(exit) });
                    }
                    other => {
                        let reason = format!("expected a report, got {other:?}");
                        return Err(ControlError::Malformed { path, reason }.into());
                    }
                }
            }
            Err(e) => return Err(e),
        }
    };
    let text = match args.format {
        ReportFormat::Md => report::markdown(&report),
        ReportFormat::Csv => report::csv(&report),
        ReportFormat::Json => {
            let mut s = serde_json::to_string_pretty(&report).unwrap_or_default();
            s.push('\n');
            s
        }
    };
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(CommandError::Stdout(e)),
        _ => Ok(()),
    }
}
