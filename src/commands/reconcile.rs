//! `mpsync reconcile`: print the latest stored reconciliation as a table, JSON or CSV, row by
//! row from the store (nothing holds the whole reconciliation).
//! Reads the store only; exits 75 when a daemon holds it, naming the daemon's
//! `/v1/reconciliation` that serves the same.

use super::{CommandError, Globals, load_options};
use crate::cli::{ReconcileArgs, ReconcileFormat};
use std::io::Write;

use crate::reconcile::{self, Filter, ReconciliationHead, Row};
use crate::store::{FILE_NAME, Store};

/// Prints the latest reconciliation, filtered by `--status`.
pub async fn print(g: &Globals, args: ReconcileArgs) -> Result<(), CommandError> {
    let statuses =
        args.status.as_deref().map(Filter::parse_statuses).transpose()?.unwrap_or_default();
    let filter = Filter { statuses, ..Filter::default() };
    let mut overrides = Vec::new();
    if let Some(dir) = &args.state_dir {
        overrides.push(("daemon.state_dir".to_owned(), dir.display().to_string()));
    }
    let config = crate::config::load(&load_options(g, overrides))?;
    let dir = config.daemon.state_dir.clone();
    // Reading must not create a store where there is none.
    let store = if dir.join(FILE_NAME).exists() {
        Some(open(dir).await.map_err(|e| match e {
            CommandError::Store(crate::store::StoreError::Locked { path }) => {
                let url = format!("http://{}/v1/reconciliation", config.daemon.listen);
                CommandError::StoreHeld { path, url }
            }
            e => e,
        })?)
    } else {
        None
    };
    let head = match &store {
        Some(s) => s.reconciliation_head().await?,
        None => None,
    };
    let format = args.format;
    let none_yet = head.is_none();
    // Rows are read and printed one at a time on the blocking pool: at 10,000 customers they
    // are megabytes (with their evidence in JSON).
    let printed = tokio::task::spawn_blocking(move || {
        let stdout = std::io::stdout();
        let mut out = std::io::BufWriter::new(stdout.lock());
        let written = print_rows(&mut out, store.as_ref(), head.as_deref(), &filter, format);
        written.and_then(|()| out.flush().map_err(RowsError::Io))
    })
    .await
    .map_err(CommandError::StoreTask)?;
    match printed {
        Ok(()) => {}
        // `mpsync reconcile | head` closes the pipe early: not an error.
        Err(RowsError::Io(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        Err(RowsError::Io(e)) => return Err(CommandError::Stdout(e)),
        Err(RowsError::Store(e)) => return Err(CommandError::Store(e)),
    }
    if none_yet && format == ReconcileFormat::Csv {
        // A note, not an error: an empty CSV is the right answer before the first run.
        eprintln!("mpsync reconcile: {}", reconcile::NOT_YET);
    }
    Ok(())
}

/// Rows per aligned block of the table format (alignment needs a block's rows at once).
const TABLE_BLOCK: usize = 500;

/// Why printing stopped.
#[derive(Debug)]
enum RowsError {
    Io(std::io::Error),
    Store(crate::store::StoreError),
}

async fn open(dir: std::path::PathBuf) -> Result<Store, CommandError> {
    let store = super::open_store(dir).await?;
    if let Some(note) = store.tightened() {
        // stderr: stdout may be a JSON or CSV document a script reads.
        eprintln!("mpsync: {note}");
    }
    Ok(store)
}

/// Writes the rows of `store` passing `filter` in `format`, one at a time. BLOCKING.
fn print_rows(
    out: &mut dyn Write,
    store: Option<&Store>,
    head: Option<&ReconciliationHead>,
    filter: &Filter,
    format: ReconcileFormat,
) -> Result<(), RowsError> {
    let mut io_error = None;
    let mut each = |evidence: bool, f: &mut dyn FnMut(Row) -> std::io::Result<()>| {
        let Some(store) = store.filter(|_| head.is_some()) else { return Ok(()) };
        store
            .each_reconciliation_row(filter, None, evidence, &mut |row| match f(row) {
                Ok(()) => true,
                Err(e) => {
                    io_error = Some(e);
                    false
                }
            })
            .map_err(RowsError::Store)
    };
    let vendor_run = head.and_then(|h| h.vendor_run);
    match format {
        ReconcileFormat::Json => {
            let mut store_error = None;
            reconcile::write_json_stream(out, head, filter, &mut |emit| {
                if let Err(e) = each(true, &mut |row| emit(&row)) {
                    store_error = Some(e);
                }
                Ok(())
            })
            .map_err(RowsError::Io)?;
            if let Some(e) = store_error {
                return Err(e);
            }
        }
        ReconcileFormat::Csv => {
            out.write_all(reconcile::csv_header().as_bytes()).map_err(RowsError::Io)?;
            each(false, &mut |row| {
                out.write_all(reconcile::csv_line(&row, vendor_run).as_bytes())
            })?;
        }
        ReconcileFormat::Table => match head {
            None => writeln!(out, "{}", reconcile::NOT_YET).map_err(RowsError::Io)?,
            Some(r) => {
                let runs = |id: Option<u64>| id.map_or("none".to_string(), |i| i.to_string());
                writeln!(
                    out,
                    "reconciliation of {} (vendor run {}, billing run {})\n",
                    r.computed_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    runs(r.vendor_run),
                    runs(r.billing_run),
                )
                .map_err(RowsError::Io)?;
                let mut block: Vec<Row> = Vec::new();
                let mut any = false;
                each(false, &mut |row| {
                    block.push(row);
                    any = true;
                    if block.len() == TABLE_BLOCK {
                        out.write_all(reconcile::table(&block).as_bytes())?;
                        block.clear();
                    }
                    Ok(())
                })?;
                if !block.is_empty() {
                    out.write_all(reconcile::table(&block).as_bytes()).map_err(RowsError::Io)?;
                }
                if !any {
                    writeln!(out, "no rows match").map_err(RowsError::Io)?;
                }
                writeln!(out, "\n{}", reconcile::summary_text(r)).map_err(RowsError::Io)?;
            }
        },
    }
    io_error.map_or(Ok(()), |e| Err(RowsError::Io(e)))
}
