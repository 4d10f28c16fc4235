//! What an apply reports: an [`ApplyEvent`] as each change is decided (the command line
//! prints them as they happen; the control socket streams them) and the [`ApplyReport`] at
//! the end, with its summary, the money moved and the exit status it deserves. Text forms for
//! people are here too, so the command line and the daemon say the same thing.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::audit::AuditResult;
use super::{Change, PlanId};
use crate::exit::Exit;
use crate::reconcile::{money, quantity};
use crate::upstream::PlannedRequest;

/// Something an apply says while it runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum ApplyEvent {
    /// The plan was accepted; `selected` changes are about to be gone through.
    Started {
        /// The plan.
        plan: PlanId,
        /// Changes selected (by `--only`, or auto), done ones included.
        selected: usize,
        /// The most changes this apply attempts.
        cap: u32,
        /// Nothing is sent and nothing recorded.
        dry_run: bool,
    },
    /// One change was decided.
    Change(Box<ChangeOutcome>),
}

/// One change of the plan and what this apply did with it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangeOutcome {
    /// Its row in the plan.
    pub row: u32,
    /// The PSA line's key.
    pub line: String,
    /// The PSA account.
    pub account: String,
    /// Its name, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_name: Option<String>,
    /// The PSA product.
    pub psa_product: String,
    /// The quantity the plan read.
    pub from: f64,
    /// The quantity proposed.
    pub to: f64,
    /// The monthly money it moves, when the price is known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monthly_amount: Option<f64>,
    /// What happened.
    #[serde(flatten)]
    pub outcome: Outcome,
}

impl ChangeOutcome {
    /// The outcome of `change`.
    pub fn of(change: &Change, outcome: Outcome) -> ChangeOutcome {
        ChangeOutcome {
            row: change.row,
            line: change.line_key.clone(),
            account: change.account.clone(),
            account_name: change.account_name.clone(),
            psa_product: change.psa_product.clone(),
            from: change.from,
            to: change.to,
            monthly_amount: change.monthly_amount,
            outcome,
        }
    }
}

/// What an apply did with one change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Outcome {
    /// Written now, or found already holding the new quantity; audit entry `seq`.
    Applied {
        /// The quantity the line held when read.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        found: Option<f64>,
        /// A note (the line already held it; an interrupted apply was settled).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
        /// The audit entry.
        seq: u64,
    },
    /// Left alone on purpose; audit entry `seq`.
    Skipped {
        /// Why.
        reason: String,
        /// The quantity the line held, when it was read.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        found: Option<f64>,
        /// The audit entry.
        seq: u64,
    },
    /// The attempt failed; audit entry `seq` (none in a dry run). The next apply retries.
    Failed {
        /// The PSA's error, secrets cut out.
        reason: String,
        /// Its kind (`unauthorized`, `rate_limited`, `rejected`, ...).
        kind: String,
        /// The exit status it deserves.
        exit: u8,
        /// The audit entry.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        seq: Option<u64>,
    },
    /// An earlier apply settled it; nothing was done and nothing recorded.
    AlreadyDone {
        /// `applied` or `skipped`.
        done: AuditResult,
        /// When.
        at: DateTime<Utc>,
        /// By whom.
        who: String,
        /// The earlier apply's reason, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// Not attempted (an earlier change failed in a way that stops the apply, or the apply
    /// was stopped); nothing recorded, so the next apply does it.
    NotAttempted {
        /// Why.
        reason: String,
    },
    /// Beyond this apply's cap; the next apply does it.
    Left {
        /// The cap.
        cap: u32,
    },
    /// Dry run: the request that would be sent; nothing was sent.
    DryRun {
        /// The request, credentials redacted.
        request: PlannedRequest,
        /// An earlier apply stopped while writing this change: a real apply re-reads the
        /// line first and sends this only if it still holds the plan's quantity.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        interrupted: bool,
    },
}

/// Counts of an apply's outcomes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ApplySummary {
    /// Applied by this apply.
    pub applied: usize,
    /// Skipped by this apply.
    pub skipped: usize,
    /// Failed in this apply.
    pub failed: usize,
    /// Not attempted (after a stop).
    pub not_attempted: usize,
    /// Left for the next apply (cap).
    pub left: usize,
    /// Settled by an earlier apply.
    pub already_done: usize,
    /// Dry run: requests shown.
    pub dry_run: usize,
    /// The monthly money the applied changes move (their `monthly_amount`s; positive: the
    /// PSA bills more).
    pub money_moved: f64,
    /// Applied changes whose price is unknown (not in `money_moved`).
    pub unpriced: usize,
}

/// The end of an apply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApplyReport {
    /// The plan.
    pub plan: PlanId,
    /// Who applied.
    pub who: String,
    /// Whether nothing was sent.
    pub dry_run: bool,
    /// The cap in force.
    pub cap: u32,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// When it ended.
    pub finished_at: DateTime<Utc>,
    /// Every selected change, in the order gone through.
    pub changes: Vec<ChangeOutcome>,
    /// The counts.
    pub summary: ApplySummary,
    /// Why the apply stopped early, if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped: Option<String>,
}

impl ApplyReport {
    /// Counts `changes` into `summary`.
    pub(super) fn summarize(changes: &[ChangeOutcome]) -> ApplySummary {
        let mut s = ApplySummary::default();
        for c in changes {
            match &c.outcome {
                Outcome::Applied { .. } => {
                    s.applied += 1;
                    match c.monthly_amount {
                        Some(m) => s.money_moved += m,
                        None => s.unpriced += 1,
                    }
                }
                Outcome::Skipped { .. } => s.skipped += 1,
                Outcome::Failed { .. } => s.failed += 1,
                Outcome::AlreadyDone { .. } => s.already_done += 1,
                Outcome::NotAttempted { .. } => s.not_attempted += 1,
                Outcome::Left { .. } => s.left += 1,
                Outcome::DryRun { .. } => s.dry_run += 1,
            }
        }
        s
    }

    /// 0 when nothing failed, else the exit status of the first failure.
    pub fn exit(&self) -> Exit {
        self.changes
            .iter()
            .find_map(|c| match &c.outcome {
                Outcome::Failed { exit, .. } => Some(Exit::from_code(*exit)),
                _ => None,
            })
            .unwrap_or(Exit::Ok)
    }

    /// The closing lines for people: the counts and the money moved.
    pub fn summary_text(&self) -> String {
        let s = &self.summary;
        if self.dry_run {
            let mut out = format!(
                "dry run of plan {}: {} change(s) would be sent, nothing was sent or recorded",
                self.plan, s.dry_run
            );
            if s.already_done > 0 {
                out.push_str(&format!("; {} already done", s.already_done));
            }
            if s.left > 0 {
                out.push_str(&format!("; {} left for a later apply (cap {})", s.left, self.cap));
            }
            return out;
        }
        let mut out = format!(
            "plan {}: {} applied, {} skipped, {} failed, {} not attempted",
            self.plan, s.applied, s.skipped, s.failed, s.not_attempted
        );
        if s.left > 0 {
            out.push_str(&format!(", {} left for the next apply (cap {})", s.left, self.cap));
        }
        if s.already_done > 0 {
            out.push_str(&format!(", {} already done earlier", s.already_done));
        }
        out.push_str(&format!("\nmoney moved: {} per month", signed_money(s.money_moved)));
        if s.unpriced > 0 {
            out.push_str(&format!(" (plus {} change(s) without a known price)", s.unpriced));
        }
        if let Some(why) = &self.stopped {
            out.push_str(&format!("\nstopped early: {why}"));
        }
        if s.failed > 0 || s.not_attempted > 0 || s.left > 0 {
            out.push_str(&format!(
                "\nrun `mpsync apply {}` again to retry what failed and do what is left",
                self.plan
            ));
        }
        out
    }
}

/// `+12.50` / `-3.00`.
pub fn signed_money(x: f64) -> String {
    if x >= 0.0 { format!("+{}", money(x)) } else { money(x) }
}

impl ChangeOutcome {
    /// One line (several for a dry run's request) for people, as the command line prints it
    /// while the apply runs.
    pub fn text(&self) -> String {
        let head = format!(
            "row {} {} ({} {}{}): {} → {}",
            self.row,
            self.line,
            self.account,
            self.account_name.as_deref().map(|n| format!("{n}, ")).unwrap_or_default(),
            self.psa_product,
            quantity(self.from),
            quantity(self.to),
        );
        match &self.outcome {
            Outcome::Applied { reason, .. } => match reason {
                Some(r) => format!("{head}: applied ({r})"),
                None => format!("{head}: applied"),
            },
            Outcome::Skipped { reason, .. } => format!("{head}: skipped: {reason}"),
            Outcome::Failed { reason, .. } => format!("{head}: failed: {reason}"),
            Outcome::AlreadyDone { done, at, who, .. } => format!(
                "{head}: already {} by the apply of {} ({who})",
                done.as_str(),
                at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            ),
            Outcome::NotAttempted { reason } => format!("{head}: not attempted: {reason}"),
            Outcome::Left { cap } => format!("{head}: left for the next apply (cap {cap})"),
            Outcome::DryRun { request, interrupted } => {
                let note = if *interrupted {
                    " (an earlier apply stopped while writing this change: a real apply \
                     re-reads the line first)"
                } else {
                    ""
                };
                let indented = request.to_string().replace('\n', "\n    ");
                format!("{head}: would send{note}:\n    {indented}")
            }
        }
    }
}
