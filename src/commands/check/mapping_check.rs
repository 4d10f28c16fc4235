//! `mpsync check`'s mapping check (only when a billing source is configured): the file is
//! valid (the write-back policy included, described by `write_back_check`), which suppressions have expired, suggestions for unmapped customers from the latest
//! stored reconciliation, and warnings for mapped customers and products Mailprotector never
//! showed (from the latest stored vendor snapshot, or the product vocabulary before the
//! first run). What comes from the store is best effort: skipped while a daemon holds it.

use super::CheckResult;
use crate::config::{Config, Mapping};
use crate::exit::{Exit, ExitStatus};
use crate::model::UsageSnapshot;
use crate::reconcile::Reconciliation;
use crate::store::{FILE_NAME, Store, StoreError};

/// What the store holds for the mapping check.
#[derive(Default)]
struct Stored {
    reconciliation: Option<Reconciliation>,
    snapshot: Option<UsageSnapshot>,
    /// A daemon holds the store, so neither could be read.
    locked: bool,
}

/// The mapping check, or nothing when no billing source is configured (the mapping is
/// unused then). Warnings never fail it.
pub async fn mapping_check(cfg: &Config) -> Vec<CheckResult> {
    if matches!(cfg.billing.source, crate::config::BillingSource::None) {
        return Vec::new();
    }
    let path = cfg.reconcile.mapping_file.clone();
    let loaded = tokio::task::spawn_blocking(move || Mapping::load(&path)).await;
    let mapping = match loaded {
        Ok(Ok(m)) => m,
        Ok(Err(e)) => return vec![CheckResult::fail("mapping", e.to_string(), e.exit())],
        Err(e) => {
            let detail = format!("the mapping check crashed: {e}");
            return vec![CheckResult::fail("mapping", detail, Exit::Software)];
        }
    };
    let mut detail = mapping.describe();
    let today = chrono::Utc::now().date_naive();
    for s in mapping.expired_suppressions(today) {
        detail.push_str(&format!(
            "\n  expired suppression on line {} ({}, until {}): remove it",
            s.line,
            s.scope(),
            s.until
        ));
    }
    let stored = read_stored(cfg).await;
    if stored.locked {
        detail.push_str(
            "\n  (a running daemon holds the store: mapped customers are not compared with the \
             latest vendor run; suggestions for unmapped customers: see /v1/customers on the \
             daemon)",
        );
    }
    detail.push_str(&suggestion_lines(&mapping, stored.reconciliation.as_ref()));
    // Products a configured count defines are as real as Mailprotector's own.
    let mut known: Vec<String> =
        crate::mailprotector::products::CANONICAL.iter().map(|p| (*p).to_owned()).collect();
    known.extend(cfg.mailprotector.counts.iter().map(|c| c.name.clone()));
    let warnings = mapping.unseen(stored.snapshot.as_ref(), &known);
    vec![
        CheckResult::pass("mapping", detail).with_warnings(warnings),
        super::write_back_check::write_back_check(cfg, &mapping),
    ]
}

/// Whether some product of the mapping opts in to write-back (so the billing check tests the
/// write scope too); false when the mapping cannot be read (its own check says why).
pub async fn write_back_wanted(cfg: &Config) -> bool {
    let path = cfg.reconcile.mapping_file.clone();
    let loaded = tokio::task::spawn_blocking(move || Mapping::load(&path)).await;
    matches!(loaded, Ok(Ok(m)) if m.products.values().any(|p| p.policy.mode != crate::writeback::WriteBackMode::Off))
}

/// The latest reconciliation and vendor snapshot, when a store exists (checking must not
/// create one) and no daemon holds it.
async fn read_stored(cfg: &Config) -> Stored {
    let dir = cfg.daemon.state_dir.clone();
    if !dir.join(FILE_NAME).exists() {
        return Stored::default();
    }
    match tokio::task::spawn_blocking(move || Store::open(&dir)).await {
        Ok(Ok(store)) => Stored {
            reconciliation: store.latest_reconciliation().await.ok().flatten(),
            snapshot: store.latest_usage_snapshot().await.ok().flatten(),
            locked: false,
        },
        Ok(Err(StoreError::Locked { .. })) => Stored { locked: true, ..Stored::default() },
        // The store check reports why it cannot be opened.
        _ => Stored::default(),
    }
}

/// Ready-to-paste lines for customers the current mapping leaves unmapped, from `rec`.
fn suggestion_lines(mapping: &Mapping, rec: Option<&Reconciliation>) -> String {
    let Some(rec) = rec else {
        return String::new();
    };
    let unmapped = rec.customers.iter().filter(|c| {
        !mapping.customers.contains_key(&c.customer)
            && !mapping.exclude_customers.contains(&c.customer)
    });
    let mut out = String::new();
    for c in unmapped.filter(|c| !c.suggestions.is_empty()) {
        if out.is_empty() {
            out.push_str("\n  suggestions for unmapped customers (same normalized name; check, then paste under [customers]):");
        }
        for s in &c.suggestions {
            out.push_str(&format!("\n    {}", s.stanza));
        }
    }
    out
}
