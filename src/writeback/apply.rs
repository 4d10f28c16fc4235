//! The apply engine: a stored plan's changes written to the PSA exactly once.
//!
//! For each selected change, in row order: a change the journal says is done is left alone;
//! otherwise the intent is committed, the line is written with the guard
//! ([`write_if_unchanged`]: re-read, write only if it still holds the plan's quantity), and the
//! result is committed with its audit entry in one transaction. A crash between the two
//! commits leaves the intent; the next apply settles it through the same guarded path (the
//! line holds the new quantity → applied without a write; the old one → written once;
//! anything else → skipped), so no change is ever written twice.
//!
//! A failure that concerns the whole account (revoked key, missing rights, rate limit, outage,
//! timeout, a write that changed other lines too) stops the apply: the rest is "not
//! attempted" and recorded nowhere, so the next apply does it. A failure of one line (a refused value) is recorded and the apply goes on.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use tokio_util::sync::CancellationToken;

use super::audit::{AuditEntry, AuditResult, JournalEntry};
use super::ledger::{ApplyLedger, LedgerError};
use super::report::{ApplyEvent, ApplyReport, ChangeOutcome, Outcome};
use super::{Change, Plan, PlanId};
use crate::billing::write::{GuardError, Guarded, LineWriter, WriteError, write_if_unchanged};
use crate::exit::{Exit, ExitStatus};
use crate::reconcile::quantity;
use crate::upstream::{Scrubber, UpstreamError};

/// How to apply.
#[derive(Debug, Clone, Default)]
pub struct ApplyOptions {
    /// Print the requests, send nothing (not even reads), record nothing.
    pub dry_run: bool,
    /// Only these changes: row numbers (`3`) or line keys (`cw:12/345`). Empty: all.
    pub only: Vec<String>,
    /// Who applies: the operator's login, or `daemon`.
    pub who: String,
    /// Only the changes the daemon may apply on its own ([`Change::is_auto`]).
    pub auto_only: bool,
    /// Cuts every configured secret out of the errors recorded (the clients already do; this
    /// is the second net).
    pub scrub: Scrubber,
    /// Stops the apply between two changes (shutdown, a client that went away).
    pub stop: CancellationToken,
}

/// Why a plan was not applied at all.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// No such plan.
    #[error(
        "there is no plan {plan} in the store; `mpsync plan` shows the current plan and its id"
    )]
    UnknownPlan {
        /// The id asked for.
        plan: PlanId,
    },
    /// A newer reconciliation replaced the plan.
    #[error(
        "plan {plan} was replaced by plan {by}: a newer reconciliation changed what to do; \
         review `mpsync plan` and apply {by}"
    )]
    Superseded {
        /// The plan asked for.
        plan: PlanId,
        /// The plan that replaced it.
        by: PlanId,
    },
    /// The plan's billing source has no write path (a CSV export).
    #[error(
        "plan {plan} is for billing source \"{billing}\", which mpsync does not write to: enter \
         its changes in the PSA by hand (`mpsync plan --csv` lists them)"
    )]
    NotWritable {
        /// The plan.
        plan: PlanId,
        /// Its billing source.
        billing: String,
    },
    /// The plan was made for another billing source than the configured one.
    #[error(
        "plan {plan} was made for billing source \"{billing}\", but the configured billing \
         source is {psa}; make a new plan (`mpsync plan`)"
    )]
    OtherSource {
        /// The plan.
        plan: PlanId,
        /// Its billing source.
        billing: String,
        /// The configured writer's PSA.
        psa: &'static str,
    },
    /// `--only` names something that is no change of the plan.
    #[error("--only {given}: plan {plan} has no change with that row or line; it has {known}")]
    OnlyNamesNothing {
        /// The plan.
        plan: PlanId,
        /// The argument.
        given: String,
        /// The rows and lines it has, for the message.
        known: String,
    },
    /// The store failed; what was committed before stays, an intent without its result is
    /// settled by the next apply.
    #[error(
        "cannot {action} for plan {plan}: {source}. Nothing further was sent; once the store \
         works, run `mpsync apply {plan}` again (a change left in flight is settled by \
         re-reading its line, never written twice)"
    )]
    Ledger {
        /// The plan.
        plan: PlanId,
        /// What was being recorded.
        action: &'static str,
        /// The store's error.
        #[source]
        source: LedgerError,
    },
}

impl ExitStatus for ApplyError {
    fn exit(&self) -> Exit {
        match self {
            ApplyError::UnknownPlan { .. }
            | ApplyError::Superseded { .. }
            | ApplyError::OtherSource { .. } => Exit::DataErr,
            ApplyError::NotWritable { .. } => Exit::Config,
            ApplyError::OnlyNamesNothing { .. } => Exit::Usage,
            ApplyError::Ledger { source, .. } => source.exit(),
        }
    }
}

/// Applies plan `plan_id` (see the module doc), telling `progress` about each change as it is
/// decided. `Err` only when nothing could be started (see [`ApplyError`]) or the store failed
/// midway; a change that fails is in the report, whose [`ApplyReport::exit`] says so.
pub async fn apply(
    ledger: &dyn ApplyLedger,
    writer: &dyn LineWriter,
    plan_id: PlanId,
    opts: &ApplyOptions,
    progress: &mut (dyn FnMut(&ApplyEvent) + Send),
) -> Result<ApplyReport, ApplyError> {
    let started_at = Utc::now();
    let store_err = |action| move |source| ApplyError::Ledger { plan: plan_id, action, source };
    let plan = ledger
        .plan(plan_id)
        .await
        .map_err(store_err("read the plan"))?
        .ok_or(ApplyError::UnknownPlan { plan: plan_id })?;
    check_applicable(&plan, writer)?;
    let selected = select(&plan, opts)?;
    let journal = ledger.journal(plan.id).await.map_err(store_err("read the apply journal"))?;

    // Changes an interrupted apply left in flight are settled first, whatever the selection:
    // someone meant to make them, and until they are settled nobody knows what the PSA holds.
    let mut order: Vec<(&Change, Option<Interrupted>)> = Vec::new();
    for (row, entry) in &journal {
        if let (JournalEntry::InFlight { since, who }, Some(change)) = (entry, plan.change(*row)) {
            order.push((change, Some(Interrupted { since: *since, who: who.clone() })));
        }
    }
    let in_flight = |row: u32| matches!(journal.get(&row), Some(JournalEntry::InFlight { .. }));
    order.extend(selected.iter().filter(|c| !in_flight(c.row)).map(|c| (*c, None)));

    let cap = plan.max_changes_per_apply;
    progress(&ApplyEvent::Started {
        plan: plan.id,
        selected: order.len(),
        cap,
        dry_run: opts.dry_run,
    });
    let mut changes = Vec::with_capacity(order.len());
    let mut attempted: u32 = 0;
    // Why the apply stopped (for the report), and what each change after it says.
    let mut stopped: Option<Stop> = None;
    for (change, interrupted) in order {
        let outcome = if let Some(JournalEntry::Done { result, at, who, reason, .. }) =
            journal.get(&change.row)
        {
            Outcome::AlreadyDone {
                done: *result,
                at: *at,
                who: who.clone(),
                reason: reason.clone(),
            }
        } else if let Some(stop) = &stopped {
            Outcome::NotAttempted { reason: stop.each.clone() }
        } else if opts.stop.is_cancelled() {
            let why = format!(
                "the apply was stopped before row {} (shutdown, or the command went away); \
                 the next apply does the rest",
                change.row
            );
            stopped = Some(Stop { report: why.clone(), each: why.clone() });
            Outcome::NotAttempted { reason: why }
        } else if attempted >= cap {
            Outcome::Left { cap }
        } else {
            attempted += 1;
            if opts.dry_run {
                dry_run(writer, change, interrupted.is_some())
            } else {
                let (outcome, stop) =
                    attempt(ledger, writer, &plan, change, interrupted, opts).await?;
                stopped = stop;
                outcome
            }
        };
        let decided = ChangeOutcome::of(change, outcome);
        progress(&ApplyEvent::Change(Box::new(decided.clone())));
        changes.push(decided);
    }
    let summary = ApplyReport::summarize(&changes);
    Ok(ApplyReport {
        plan: plan.id,
        who: opts.who.clone(),
        dry_run: opts.dry_run,
        cap,
        started_at,
        finished_at: Utc::now(),
        changes,
        summary,
        stopped: stopped.map(|s| s.report),
    })
}

/// The intent an earlier apply left in flight: when, and whose.
struct Interrupted {
    since: DateTime<Utc>,
    who: String,
}

/// Why an apply stopped early: in full for the report, and shortly for each change left.
struct Stop {
    report: String,
    each: String,
}

/// Refuses a plan that cannot be applied with `writer`.
fn check_applicable(plan: &Plan, writer: &dyn LineWriter) -> Result<(), ApplyError> {
    if !plan.writable {
        return Err(ApplyError::NotWritable { plan: plan.id, billing: plan.billing.clone() });
    }
    if let Some(by) = plan.superseded_by {
        return Err(ApplyError::Superseded { plan: plan.id, by });
    }
    if plan.billing != writer.psa() {
        return Err(ApplyError::OtherSource {
            plan: plan.id,
            billing: plan.billing.clone(),
            psa: writer.psa(),
        });
    }
    Ok(())
}

/// The changes `opts` selects, in row order.
fn select<'p>(plan: &'p Plan, opts: &ApplyOptions) -> Result<Vec<&'p Change>, ApplyError> {
    let mut rows: Vec<u32> = Vec::new();
    for given in &opts.only {
        let g = given.trim();
        let found = match g.parse::<u32>() {
            Ok(row) => plan.change(row),
            Err(_) => plan.changes.iter().find(|c| c.line_key.eq_ignore_ascii_case(g)),
        };
        match found {
            Some(c) => rows.push(c.row),
            None => {
                return Err(ApplyError::OnlyNamesNothing {
                    plan: plan.id,
                    given: given.clone(),
                    known: known_changes(plan),
                });
            }
        }
    }
    let mut selected: Vec<&Change> = plan
        .changes
        .iter()
        .filter(|c| opts.only.is_empty() || rows.contains(&c.row))
        .filter(|c| !opts.auto_only || c.is_auto())
        .collect();
    selected.sort_by_key(|c| c.row);
    Ok(selected)
}

/// "rows 1–3 (cw:1/2, cw:1/3, cw:4/5)", or "no changes".
fn known_changes(plan: &Plan) -> String {
    match (plan.changes.first(), plan.changes.last()) {
        (Some(first), Some(last)) => {
            let lines: Vec<&str> =
                plan.changes.iter().take(10).map(|c| c.line_key.as_str()).collect();
            let more = if plan.changes.len() > 10 { ", ..." } else { "" };
            let rows = if first.row == last.row {
                format!("row {}", first.row)
            } else {
                format!("rows {}–{}", first.row, last.row)
            };
            format!("{rows} ({}{more})", lines.join(", "))
        }
        _ => "no changes".into(),
    }
}

/// A dry run's outcome: the exact request, or why it could not be built.
fn dry_run(writer: &dyn LineWriter, change: &Change, interrupted: bool) -> Outcome {
    match writer.describe(&change.line, change.from, change.to) {
        Ok(request) => Outcome::DryRun { request, interrupted },
        Err(e) => Outcome::Failed {
            reason: e.to_string(),
            kind: e.kind().into(),
            exit: e.exit().code(),
            seq: None,
        },
    }
}

/// Whether a failure concerns every line of the account (keys, rights, rate limit, outage,
/// timeout, a client that cannot be built), so the apply stops instead of failing each line.
/// A write that changed other lines than its own (a HaloPSA invoice re-read after the write)
/// stops it too: something else is editing the invoices, or the PSA recalculates them, and
/// more writes would only hide what happened.
fn account_wide(e: &WriteError) -> bool {
    matches!(
        e,
        WriteError::SideEffect { .. }
            | WriteError::Upstream(
                UpstreamError::Unauthorized { .. }
                    | UpstreamError::Forbidden { .. }
                    | UpstreamError::RateLimited { .. }
                    | UpstreamError::Unavailable { .. }
                    | UpstreamError::Timeout { .. }
                    | UpstreamError::Setup { .. }
            )
    )
}

fn stamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// What the guarded write of one change ended in, before it is recorded.
struct Decided {
    result: AuditResult,
    reason: Option<String>,
    kind: Option<String>,
    found: Option<f64>,
    exit: Exit,
    stop: Option<Stop>,
}

/// Records the intent (unless an interrupted apply's is being settled), writes with the
/// guard, records the result; the outcome, and why the apply must stop, if it must.
async fn attempt(
    ledger: &dyn ApplyLedger,
    writer: &dyn LineWriter,
    plan: &Plan,
    change: &Change,
    interrupted: Option<Interrupted>,
    opts: &ApplyOptions,
) -> Result<(Outcome, Option<Stop>), ApplyError> {
    let store_err = |action| move |source| ApplyError::Ledger { plan: plan.id, action, source };
    if interrupted.is_none() {
        ledger
            .record_intent(plan.id, change.row, Utc::now(), opts.who.clone())
            .await
            .map_err(store_err("record the intent to write"))?;
    }
    let guarded = tokio::select! {
        biased;
        g = write_if_unchanged(writer, &change.line, change.from, change.to) => g,
        // Shutdown (or the client went away) mid-write: the intent stays in flight, and the
        // next apply settles it by re-reading the line, as after a crash.
        _ = opts.stop.cancelled() => {
            let each = format!(
                "interrupted while writing row {} (shutdown, or the command went away); the \
                 next apply re-reads the line and settles it",
                change.row
            );
            let report = each.clone();
            return Ok((Outcome::NotAttempted { reason: each.clone() }, Some(Stop { report, each })));
        }
    };
    let d = decide(change, guarded, interrupted.as_ref(), &opts.scrub);
    let entry = AuditEntry {
        seq: 0,
        plan: plan.id,
        row: change.row,
        line: change.line_key.clone(),
        account: change.account.clone(),
        account_name: change.account_name.clone(),
        psa_product: change.psa_product.clone(),
        from: change.from,
        to: change.to,
        result: d.result,
        reason: d.reason.clone(),
        kind: d.kind.clone(),
        found: d.found,
        monthly_amount: change.monthly_amount,
        at: Utc::now(),
        who: opts.who.clone(),
    };
    let stored =
        ledger.record_result(entry).await.map_err(store_err("record the result of a write"))?;
    let outcome = match d.result {
        AuditResult::Applied => {
            Outcome::Applied { found: d.found, reason: d.reason, seq: stored.seq }
        }
        AuditResult::Skipped => Outcome::Skipped {
            reason: d.reason.unwrap_or_default(),
            found: d.found,
            seq: stored.seq,
        },
        AuditResult::Failed => Outcome::Failed {
            reason: d.reason.unwrap_or_default(),
            kind: d.kind.unwrap_or_default(),
            exit: d.exit.code(),
            seq: Some(stored.seq),
        },
    };
    Ok((outcome, d.stop))
}

/// Reads the guarded write's result as an audit result with its reason.
fn decide(
    change: &Change,
    guarded: Result<Guarded, GuardError>,
    interrupted: Option<&Interrupted>,
    scrub: &Scrubber,
) -> Decided {
    let settling = interrupted.map(|i| {
        format!("settling the change the apply of {} by {} left in flight", stamp(i.since), i.who)
    });
    let with_settling = |text: String| match &settling {
        Some(s) => format!("{text}; {s}"),
        None => text,
    };
    let ok = |result, reason: Option<String>, found| Decided {
        result,
        reason,
        kind: None,
        found,
        exit: Exit::Ok,
        stop: None,
    };
    match guarded {
        Ok(Guarded::Written { before, .. }) => {
            ok(AuditResult::Applied, settling.clone(), Some(before.quantity))
        }
        Ok(Guarded::AlreadySet { found }) => {
            let note = match interrupted {
                Some(_) => {
                    "the line already held the new quantity: the interrupted apply's \
                            write had landed, nothing was sent again"
                }
                None => "the line already held the new quantity; nothing was sent",
            };
            ok(AuditResult::Applied, Some(with_settling(note.into())), Some(found.quantity))
        }
        Ok(Guarded::Changed { found }) => {
            let why = format!(
                "changed in the PSA since the plan (plan read {}, the PSA holds {})",
                quantity(change.from),
                quantity(found.quantity)
            );
            ok(AuditResult::Skipped, Some(with_settling(why)), Some(found.quantity))
        }
        Ok(Guarded::Locked { found, why }) => {
            let why = format!("not written: {why}");
            ok(AuditResult::Skipped, Some(with_settling(why)), Some(found.quantity))
        }
        Err(GuardError { error: WriteError::Locked { why, .. }, .. }) => {
            let why = format!("not written: {why}");
            ok(AuditResult::Skipped, Some(with_settling(why)), None)
        }
        Err(GuardError { error: WriteError::Gone { psa, endpoint, message, .. }, .. }) => {
            let why = format!(
                "deleted in the PSA since the plan ({psa} answered 404 on {endpoint}: {})",
                scrub.scrub(&message)
            );
            ok(AuditResult::Skipped, Some(with_settling(why)), None)
        }
        Err(e) => {
            let mut reason = scrub.scrub(&e.to_string()).into_owned();
            if e.may_have_applied() {
                reason.push_str(
                    "; the PSA may hold the new quantity anyway: the next apply re-reads the \
                     line and does not write it twice",
                );
            }
            let kind = e.error.kind();
            let stop = account_wide(&e.error).then(|| Stop {
                report: format!(
                    "row {} failed ({kind}), a problem for every line of this PSA account, so \
                     the changes after it were not attempted; the next apply does them",
                    change.row
                ),
                each: format!(
                    "the apply stopped when row {} failed ({kind}); the next apply does this one",
                    change.row
                ),
            });
            Decided {
                result: AuditResult::Failed,
                reason: Some(with_settling(reason)),
                kind: Some(kind.into()),
                found: None,
                exit: e.error.exit(),
                stop,
            }
        }
    }
}

/// How many of `plan`'s auto changes `journal` does not call done: whether the daemon's auto
/// mode has anything to apply.
pub fn pending_auto(plan: &Plan, journal: &BTreeMap<u32, JournalEntry>) -> usize {
    plan.changes
        .iter()
        .filter(|c| c.is_auto())
        .filter(|c| !matches!(journal.get(&c.row), Some(JournalEntry::Done { .. })))
        .count()
}

#[cfg(test)]
#[path = "apply_tests.rs"]
mod tests;
