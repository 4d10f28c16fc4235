//! `mpsync sync --once [--json]`: one poll of every configured source without the daemon —
//! the Mailprotector collection, then the billing poll, then the reconciliation, then the
//! Gradient push when enabled — each a recorded run like the daemon's. Opens the store (exit
//! 75 while a daemon holds it) and prints the summary.

use std::collections::BTreeMap;
use std::time::Instant;

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::{CommandError, Globals, report};
use crate::cli::SyncArgs;
use crate::exit::{Exit, ExitStatus};
use crate::model::{CountingReport, RunId, RunKind, RunRecord};
use crate::store::Store;
use crate::sync::{Job, JobError, JobOutput, RunContext, RunLedger};
use crate::telemetry::{self, LogOptions};
use crate::upstream::StatsSnapshot;

/// What `sync --once` reports about one run (printed as text or JSON).
#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    /// The job kind (`vendor`).
    pub kind: RunKind,
    /// The recorded run id.
    pub run_id: RunId,
    /// `ok`, `failed` or `cancelled`.
    pub outcome: String,
    /// Why it failed, in words an operator can act on.
    pub error: Option<String>,
    /// Customers counted (0 unless the run completed).
    pub customers_counted: usize,
    /// Users per product (and count definition) over all customers.
    pub totals: BTreeMap<String, u64>,
    /// Requests per upstream.
    pub requests: BTreeMap<String, UpstreamSummary>,
    /// Wall time of the run in milliseconds.
    pub duration_ms: u64,
    /// How a vendor run counted: walk, user types, `user_count`, what was counted nowhere.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub counting: Option<CountingReport>,
}

/// Requests one upstream saw during the run.
#[derive(Debug, Clone, Serialize)]
pub struct UpstreamSummary {
    /// All requests, retries included.
    pub total: u64,
    /// Per endpoint pattern.
    pub by_endpoint: BTreeMap<String, u64>,
    /// Retries among them.
    pub retries: u64,
    /// 429 answers received.
    pub rate_limited: u64,
    /// Time spent waiting on the rate limiter and 429 pauses, in milliseconds.
    pub waited_ms: u64,
}

impl From<&StatsSnapshot> for UpstreamSummary {
    fn from(s: &StatsSnapshot) -> Self {
        UpstreamSummary {
            total: s.total_requests(),
            by_endpoint: s.requests.clone(),
            retries: s.retries,
            rate_limited: s.rate_limited,
            waited_ms: s.waited.as_millis() as u64,
        }
    }
}

/// Runs one collection and prints the summary. A run that did not succeed is
/// [`CommandError::Reported`] with its status (the summary says why): the first failed run's,
/// or the reconciliation's when that failed.
pub async fn once(g: &Globals, args: SyncArgs) -> Result<(), CommandError> {
    let mut overrides = Vec::new();
    if let Some(dir) = &args.state_dir {
        overrides.push(("daemon.state_dir".to_owned(), dir.display().to_string()));
    }
    let opts = super::load_options(g, overrides);
    let config = crate::config::load(&opts)?;
    let log_opts = LogOptions::new(&config.daemon.log, config.daemon.log_format, &opts.env)
        .redacting(crate::app::secret_scrubber(&config));
    telemetry::init(&log_opts)?;
    let store = super::open_store(config.daemon.state_dir.clone()).await?;
    // The mapping is checked before anything is polled: a bad one is a config error (78).
    let mapping = match config.billing.source {
        crate::config::BillingSource::None => None,
        _ => Some(crate::config::mapping::Mapping::load(&config.reconcile.mapping_file)?),
    };
    // No daemon, so no health or metrics to publish push reports to.
    let jobs = crate::app::build_jobs(&config, &store, None)?;
    let mut summaries = Vec::new();
    let mut status = Exit::Ok;
    let mut reconciliation = None;
    for kind in [RunKind::Vendor, RunKind::Billing, RunKind::Push] {
        if kind == RunKind::Push
            && let Some(mapping) = &mapping
        {
            // Reconcile what the polls just stored before pushing anything on.
            let plan = crate::writeback::PlanSettings::from_config(&config);
            let now = chrono::Utc::now();
            match crate::sync::recompute(&store, mapping, &config.reconcile, &plan, now).await {
                Ok(rec) => reconciliation = Some(rec.summary.clone()),
                Err(e) => {
                    // Said now, and the push still runs; the store's status is the command's.
                    let e = CommandError::Reconcile(e);
                    report(&e);
                    status = e.exit();
                }
            }
        }
        let Some(spec) = jobs.iter().find(|j| j.kind == kind) else { continue };
        let (summary, run_status) = run_once(&store, kind, spec.job.as_ref()).await?;
        if status == Exit::Ok {
            status = run_status;
        }
        let cancelled = summary.outcome == "cancelled";
        summaries.push(summary);
        if cancelled {
            break;
        }
    }
    print_summary(&summaries, reconciliation.as_ref(), args.json);
    match status {
        Exit::Ok => Ok(()),
        status => Err(CommandError::Reported(status)),
    }
}

/// Records, runs and commits (or fails) one run of `kind`: its summary and the exit status
/// its outcome deserves. Ctrl-C cancels it at the next page.
async fn run_once(
    store: &Store,
    kind: RunKind,
    job: &dyn Job,
) -> Result<(RunSummary, Exit), CommandError> {
    let record = |action: &'static str| move |source| CommandError::Record { action, source };
    let now = chrono::Utc::now();
    // A run left "running" by a process that died is over: say so before starting another.
    store.abort_leftover_runs(now).await.map_err(record("mark interrupted runs as aborted"))?;
    let run_id = store.begin_run(kind, now).await.map_err(record("record the run start"))?;
    let started = Instant::now();
    let cancel = CancellationToken::new();
    let ctx = RunContext { run_id, started_at: now, cancel: cancel.clone() };
    let run = job.run(ctx);
    tokio::pin!(run);
    let result = tokio::select! {
        r = &mut run => r,
        _ = tokio::signal::ctrl_c() => {
            eprintln!("mpsync: interrupted; stopping the run at the next page");
            cancel.cancel();
            run.await
        }
    };
    let finished = chrono::Utc::now();
    let duration_ms = started.elapsed().as_millis() as u64;
    let requests = result.requests.clone();
    let mut summary = RunSummary {
        kind,
        run_id,
        outcome: String::new(),
        error: None,
        customers_counted: 0,
        totals: BTreeMap::new(),
        requests: result.stats.iter().map(|s| (s.upstream.clone(), s.into())).collect(),
        duration_ms,
        counting: None,
    };
    if let Ok(JobOutput::Vendor { customers, .. }) = &result.outcome {
        summary.customers_counted = customers.len();
        for c in customers {
            for (product, n) in &c.counts {
                *summary.totals.entry(product.clone()).or_insert(0) += n;
            }
        }
    }
    // The same commit paths as the daemon's engine (the store is its ledger).
    let (rec, status): (RunRecord, Exit) = match result.outcome {
        Ok(output) => {
            let rec = RunLedger::complete(store, run_id, finished, requests, output)
                .await
                .map_err(record("commit the run"))?;
            let status =
                if rec.outcome == crate::model::RunOutcome::Ok { Exit::Ok } else { Exit::Software };
            (rec, status)
        }
        Err(e @ JobError::Cancelled) => {
            let stop = crate::sync::StopReason::default();
            stop.set("interrupted by Ctrl-C (SIGINT)");
            let rec = store
                .cancel_run(run_id, finished, stop.cancelled_run(), requests)
                .await
                .map_err(record("record the cancelled run"))?;
            (rec, e.exit())
        }
        Err(e) => {
            let rec = store
                .fail_run(run_id, finished, e.to_string(), requests)
                .await
                .map_err(record("record the failed run"))?;
            (rec, e.exit())
        }
    };
    summary.outcome = rec.outcome.as_str().to_owned();
    summary.error = rec.error;
    summary.counting = rec.counting;
    Ok((summary, status))
}

fn print_summary(runs: &[RunSummary], rec: Option<&crate::reconcile::Summary>, json: bool) {
    let overall = if runs.iter().all(|r| r.outcome == "ok") { "ok" } else { "failed" };
    if json {
        let by_status = rec.map(|r| &r.by_status);
        let doc =
            serde_json::json!({ "outcome": overall, "runs": runs, "reconciliation": by_status });
        println!(
            "{}",
            serde_json::to_string_pretty(&doc).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
        );
        return;
    }
    for s in runs {
        print!("{}", render_text(s));
    }
    if let Some(r) = rec {
        let rows: Vec<String> =
            r.by_status.iter().filter(|(_, n)| **n > 0).map(|(s, n)| format!("{s} {n}")).collect();
        println!("reconciliation: {} rows ({})", r.rows, rows.join(", "));
    }
}

/// The human-readable summary.
pub fn render_text(s: &RunSummary) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let secs = s.duration_ms as f64 / 1000.0;
    let _ = writeln!(out, "{} run {}: {} in {secs:.1}s", s.kind, s.run_id, s.outcome);
    if let Some(e) = &s.error {
        let _ = writeln!(out, "  reason: {e}");
    }
    if s.outcome == "ok" && s.kind == RunKind::Vendor {
        let _ = writeln!(out, "  customers counted: {}", s.customers_counted);
        if s.totals.is_empty() {
            let _ = writeln!(out, "  users per product: none");
        } else {
            let _ = writeln!(out, "  users per product:");
            let width = s.totals.keys().map(|k| k.chars().count()).max().unwrap_or(0);
            for (p, n) in &s.totals {
                let _ = writeln!(out, "    {p:<width$}  {n:>8}");
            }
        }
    }
    if let Some(c) = &s.counting {
        render_counting(&mut out, c);
    }
    for (upstream, r) in &s.requests {
        let _ = writeln!(
            out,
            "  requests to {upstream}: {} (retries {}, rate limited {}, waited {:.1}s)",
            r.total,
            r.retries,
            r.rate_limited,
            r.waited_ms as f64 / 1000.0
        );
        let width = r.by_endpoint.keys().map(|k| k.chars().count()).max().unwrap_or(0);
        for (ep, n) in &r.by_endpoint {
            let _ = writeln!(out, "    {ep:<width$}  {n:>8}");
        }
    }
    out
}

/// The counting lines of a vendor run: who was counted and how, what was not.
fn render_counting(out: &mut String, c: &CountingReport) {
    use std::fmt::Write as _;
    let how = match c.walk {
        crate::model::Walk::Users => "one by one (the user listing)",
        crate::model::Walk::UserGroups => "by user_count (the user-group listings)",
    };
    let _ = writeln!(out, "  counted: users of type {}, {how}", c.count_user_types);
    let _ = writeln!(out, "  user_count: {}", c.user_count.detail);
    for t in c.user_types.iter().filter(|t| !t.counted) {
        let what = match (t.id, t.name.as_deref()) {
            (Some(id), Some(n)) => format!("{n} ({id})"),
            (Some(id), None) => format!("type {id}"),
            (None, Some(n)) => format!("{n:?} (no type id)"),
            (None, None) => "an unnamed type".to_owned(),
        };
        if t.known {
            let _ = writeln!(out, "  not counted: {} user(s) of type {what}", t.users);
        } else {
            let _ = writeln!(
                out,
                "  not counted: {} user(s) of type {what}, which mpsync does not know; add it to \
                 [mailprotector] count_user_types to count them",
                t.users
            );
        }
    }
    if !c.orphans.is_empty() {
        let _ = writeln!(out, "  {}", c.orphans.summary());
    }
}
