//! `mpsync reconcile`: print the latest stored reconciliation as a table, JSON or CSV.
//! Reads the store only; exits 75 when a daemon holds it, naming the daemon's
//! `/v1/reconciliation` that serves the same.

use super::{CommandError, Globals, load_options};
use crate::cli::{ReconcileArgs, ReconcileFormat};
use crate::reconcile::{self, Filter, Reconciliation};
use crate::store::FILE_NAME;

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
    let rec = if dir.join(FILE_NAME).exists() {
        read_latest(dir).await.map_err(|e| match e {
            CommandError::Store(crate::store::StoreError::Locked { path }) => {
                let url = format!("http://{}/v1/reconciliation", config.daemon.listen);
                CommandError::StoreHeld { path, url }
            }
            e => e,
        })?
    } else {
        None
    };
    print!("{}", render(rec.as_ref(), &filter, args.format));
    if rec.is_none() && args.format == ReconcileFormat::Csv {
        // A note, not an error: an empty CSV is the right answer before the first run.
        eprintln!("mpsync reconcile: {}", reconcile::NOT_YET);
    }
    Ok(())
}

async fn read_latest(dir: std::path::PathBuf) -> Result<Option<Reconciliation>, CommandError> {
    let store = super::open_store(dir).await?;
    if let Some(note) = store.tightened() {
        // stderr: stdout may be a JSON or CSV document a script reads.
        eprintln!("mpsync: {note}");
    }
    Ok(store.latest_reconciliation().await?)
}

/// The text printed for `rec` (or its absence) in `format`.
pub fn render(rec: Option<&Reconciliation>, filter: &Filter, format: ReconcileFormat) -> String {
    match format {
        ReconcileFormat::Json => {
            let doc = reconcile::json_report(rec, filter);
            let mut s = serde_json::to_string_pretty(&doc).unwrap_or_default();
            s.push('\n');
            s
        }
        ReconcileFormat::Csv => {
            reconcile::csv(rec.map(|r| filter.apply(&r.rows)).unwrap_or_default())
        }
        ReconcileFormat::Table => match rec {
            None => format!("{}\n", reconcile::NOT_YET),
            Some(r) => {
                let rows = filter.apply(&r.rows);
                let runs = |id: Option<u64>| id.map_or("none".to_string(), |i| i.to_string());
                let mut out = format!(
                    "reconciliation of {} (vendor run {}, billing run {})\n\n",
                    r.computed_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    runs(r.vendor_run),
                    runs(r.billing_run),
                );
                if rows.is_empty() {
                    out.push_str("no rows match\n");
                } else {
                    out.push_str(&reconcile::table(rows));
                }
                out.push('\n');
                out.push_str(&reconcile::summary_text(r));
                out.push('\n');
                out
            }
        },
    }
}
