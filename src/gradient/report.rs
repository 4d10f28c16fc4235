//! What a push leaves behind: the per-pair results (accepted, unmapped in Synthesize, refused
//! by Gradient, failed, or only planned in a dry run), the summary health and metrics show, and per customer
//! whether Synthesize had it mapped as of that push. Kept in the store's metadata.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::model::{CustomerId, RunId};

/// The store metadata key of the last push's [`PushReport`].
pub const LAST_PUSH_KEY: &str = "gradient.last_push";

/// The store metadata key of the pairs last sent with a non-zero count (customer → products).
pub const SENT_PAIRS_KEY: &str = "gradient.sent_pairs";

/// What happened to one (customer, product) count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PairOutcome {
    /// 201: Synthesize stored it.
    Accepted,
    /// 404: the account or the service is not mapped in Synthesize (reported, not an error).
    Unmapped,
    /// Gradient refused this one count (e.g. 400 for a 0); `detail` has its status and words.
    /// The rest of the push goes on.
    Refused,
    /// The post failed; `detail` says why.
    Failed,
    /// Dry run: it would have been posted.
    Planned,
}

/// One (customer, product) count and its outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PairResult {
    /// The Mailprotector customer (= the account id in decimal).
    pub customer_id: CustomerId,
    /// The product or count name (= the service name).
    pub product: String,
    /// The count sent (or that would be sent).
    pub unit_count: u64,
    /// What happened.
    pub outcome: PairOutcome,
    /// Synthesize's message for unmapped and refused pairs; the reason for failed ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// Pair counts by outcome.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PairSummary {
    /// Accepted (201).
    pub accepted: u64,
    /// Not mapped in Synthesize (404).
    pub unmapped: u64,
    /// Refused by Gradient (another 4xx), one count at a time.
    #[serde(default)]
    pub refused: u64,
    /// Failed.
    pub failed: u64,
    /// Only planned (dry run).
    pub planned: u64,
}

/// Whether Synthesize had a customer mapped, as of one push.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerMapping {
    /// `Some(true)` mapped, `Some(false)` not mapped, `None` unknown (nothing told us).
    pub mapped: Option<bool>,
    /// Its pairs by outcome.
    pub pairs: PairSummary,
}

/// The record of one push run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushReport {
    /// The push run.
    pub run_id: RunId,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// When it ended.
    pub finished_at: DateTime<Utc>,
    /// A dry run: nothing was written to Synthesize.
    pub dry_run: bool,
    /// The vendor run whose snapshot was pushed.
    pub snapshot_run: Option<RunId>,
    /// When that snapshot was observed.
    pub snapshot_observed_at: Option<DateTime<Utc>>,
    /// The integration status found at the start (lower case when documented, else verbatim).
    pub integration_status: Option<String>,
    /// Statuses set, in order (only ever `pending`, from `inactive`; Gradient turns the
    /// integration `active` itself); planned only in a dry run.
    pub statuses_set: Vec<String>,
    /// Services created (or that would be).
    pub services_created: Vec<String>,
    /// Accounts created (or that would be), by id.
    pub accounts_created: Vec<String>,
    /// Accounts renamed (or that would be), by id.
    pub accounts_renamed: Vec<String>,
    /// `isMapped` per account as Synthesize listed it, when it says (§11 #15).
    pub account_mapped: BTreeMap<CustomerId, bool>,
    /// Every pair planned, with its outcome.
    pub pairs: Vec<PairResult>,
    /// Why the push failed, if it did.
    pub error: Option<String>,
}

impl PushReport {
    /// A completed, non-dry-run report of `run_id` pushing `snapshot_run` with `pairs`, for
    /// tests of everything that reads reports.
    #[cfg(test)]
    pub(crate) fn for_test(
        run_id: RunId,
        snapshot_run: RunId,
        pairs: Vec<PairResult>,
    ) -> PushReport {
        PushReport {
            run_id,
            started_at: Utc::now(),
            finished_at: Utc::now(),
            dry_run: false,
            snapshot_run: Some(snapshot_run),
            snapshot_observed_at: None,
            integration_status: Some("active".into()),
            statuses_set: vec![],
            services_created: vec![],
            accounts_created: vec![],
            accounts_renamed: vec![],
            account_mapped: BTreeMap::new(),
            pairs,
            error: None,
        }
    }

    /// Pair counts by outcome.
    pub fn summary(&self) -> PairSummary {
        let mut s = PairSummary::default();
        for p in &self.pairs {
            s.add(p.outcome);
        }
        s
    }

    /// Per customer: whether Synthesize had it mapped, and its pairs.
    pub fn customers(&self) -> BTreeMap<CustomerId, CustomerMapping> {
        let mut out: BTreeMap<CustomerId, CustomerMapping> = BTreeMap::new();
        for p in &self.pairs {
            let m = out.entry(p.customer_id).or_default();
            m.pairs.add(p.outcome);
            if p.outcome == PairOutcome::Unmapped
                && p.detail.as_deref().is_some_and(|d| d.contains("No account map"))
            {
                m.mapped = Some(false);
            }
        }
        for (id, m) in &mut out {
            if let Some(known) = self.account_mapped.get(id) {
                m.mapped = Some(*known);
            } else if m.pairs.accepted > 0 {
                m.mapped = Some(true);
            }
        }
        for (id, known) in &self.account_mapped {
            out.entry(*id).or_default().mapped = Some(*known);
        }
        out
    }

    /// The pairs to remember as sent: non-zero counts that reached Synthesize or did not (a
    /// failed or refused pair is retried, as 0 if it is gone by then), plus earlier pairs
    /// still owed a 0 that did not get it.
    pub fn sent_pairs(
        &self,
        before: &BTreeMap<CustomerId, BTreeSet<String>>,
    ) -> BTreeMap<CustomerId, BTreeSet<String>> {
        let mut out: BTreeMap<CustomerId, BTreeSet<String>> = BTreeMap::new();
        for p in &self.pairs {
            let keep = match p.outcome {
                PairOutcome::Accepted | PairOutcome::Unmapped => p.unit_count > 0,
                PairOutcome::Refused | PairOutcome::Failed | PairOutcome::Planned => {
                    p.unit_count > 0
                        || before.get(&p.customer_id).is_some_and(|s| s.contains(&p.product))
                }
            };
            if keep {
                out.entry(p.customer_id).or_default().insert(p.product.clone());
            }
        }
        out
    }
}

impl PairSummary {
    fn add(&mut self, o: PairOutcome) {
        match o {
            PairOutcome::Accepted => self.accepted += 1,
            PairOutcome::Unmapped => self.unmapped += 1,
            PairOutcome::Refused => self.refused += 1,
            PairOutcome::Failed => self.failed += 1,
            PairOutcome::Planned => self.planned += 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(c: u64, p: &str, n: u64, o: PairOutcome, d: Option<&str>) -> PairResult {
        PairResult {
            customer_id: c,
            product: p.into(),
            unit_count: n,
            outcome: o,
            detail: d.map(Into::into),
        }
    }

    fn report(pairs: Vec<PairResult>) -> PushReport {
        PushReport::for_test(3, 1, pairs)
    }

    #[test]
    fn customers_are_mapped_when_a_count_was_accepted_and_not_when_the_account_404s() {
        let r = report(vec![
            pair(1, "CloudFilter", 3, PairOutcome::Accepted, None),
            pair(
                1,
                "SecureStore",
                3,
                PairOutcome::Unmapped,
                Some("No service map found with id: x"),
            ),
            pair(
                2,
                "CloudFilter",
                3,
                PairOutcome::Unmapped,
                Some("No account map found with id: 2"),
            ),
            pair(3, "CloudFilter", 3, PairOutcome::Failed, Some("timeout")),
        ]);
        let c = r.customers();
        assert_eq!(c[&1].mapped, Some(true));
        assert_eq!(c[&1].pairs.unmapped, 1);
        assert_eq!(c[&2].mapped, Some(false));
        assert_eq!(c[&3].mapped, None);
        assert_eq!(
            r.summary(),
            PairSummary { accepted: 1, unmapped: 2, refused: 0, failed: 1, planned: 0 }
        );
    }

    #[test]
    fn sent_pairs_forget_zeros_that_landed_and_keep_failures() {
        let before: BTreeMap<u64, BTreeSet<String>> =
            [(1, ["XtraMail".to_owned(), "Bracket".to_owned()].into())].into();
        let r = report(vec![
            pair(1, "CloudFilter", 3, PairOutcome::Unmapped, Some("x")),
            pair(1, "XtraMail", 0, PairOutcome::Accepted, None),
            pair(1, "Bracket", 0, PairOutcome::Failed, Some("timeout")),
        ]);
        let got = r.sent_pairs(&before);
        assert_eq!(got[&1], ["Bracket".to_owned(), "CloudFilter".to_owned()].into());
        // A 0 Gradient refused is still owed: the old count stays in Synthesize until a 0
        // lands, so the next push sends it again.
        let r = report(vec![
            pair(
                1,
                "XtraMail",
                0,
                PairOutcome::Refused,
                Some("400: unitCount must be greater than 0"),
            ),
            pair(1, "Bracket", 4, PairOutcome::Refused, Some("400: x")),
        ]);
        let got = r.sent_pairs(&before);
        assert_eq!(got[&1], ["Bracket".to_owned(), "XtraMail".to_owned()].into());
    }
}
