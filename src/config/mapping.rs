//! The mapping file (`[reconcile] mapping_file`): Mailprotector customer → PSA account,
//! product → PSA product (with tolerance, debounce and write-back policy), exclusions,
//! suppressions, and line preferences (`[[line]]`: which PSA line a write-back changes when
//! several bill one row).
//!
//! [`Mapping::load`] reads one file and validates all of it at once; every problem names the
//! file, the line and the key. [`Mapping::unseen`] compares it with what a vendor snapshot
//! saw, for `mpsync check`'s warnings. Nothing here touches the store or the clock.

mod parse;
mod policy;
#[cfg(test)]
mod tests;
mod unseen;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use serde::Serialize;

pub use self::policy::{DEFAULT_MAX_DECREASE_PERCENT, Policy, WriteBackMode};
use crate::exit::{Exit, ExitStatus};
use crate::model::{CustomerId, LineRef};

/// A validated mapping file.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Mapping {
    /// The file it was read from (empty for a mapping built in code).
    pub path: PathBuf,
    /// Mailprotector customer id → PSA account id.
    pub customers: BTreeMap<CustomerId, String>,
    /// Product (or count-definition) name, case as reported → its PSA product and limits.
    pub products: BTreeMap<String, ProductMapping>,
    /// Customers ignored entirely.
    pub exclude_customers: BTreeSet<CustomerId>,
    /// Products ignored entirely.
    pub exclude_products: BTreeSet<String>,
    /// Operator suppressions, in file order.
    pub suppressions: Vec<Suppression>,
    /// Line preferences (`[[line]]`), in file order: at most one per (account, PSA product).
    pub lines: Vec<LinePreference>,
}

/// How one Mailprotector product is billed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProductMapping {
    /// The PSA product id (ConnectWise product identifier, CSV `product_id`).
    pub psa_product: String,
    /// Absolute difference in users still counted as `within_tolerance` (default 0).
    pub tolerance: f64,
    /// Difference as a percent of the billed quantity still `within_tolerance` (default 0).
    pub tolerance_percent: f64,
    /// Overrides `[reconcile] debounce_runs` for rows of this product.
    pub debounce_runs: Option<u32>,
    /// What a write-back may do with its rows (`write_back`, `min_quantity`,
    /// `max_decrease_percent`); every product billed as one PSA product has the same.
    pub policy: Policy,
}

/// `[[line]]`: the PSA line a write-back changes for one (account, PSA product) billed by
/// several counted lines.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LinePreference {
    /// The PSA account.
    pub account: String,
    /// The PSA product.
    pub psa_product: String,
    /// The line to change.
    pub line: LineRef,
    /// The line of its `[[line]]` header, for messages.
    pub source_line: usize,
}

impl LinePreference {
    /// The `[[line]]` table that names `line` for (`account`, `psa_product`), ready to paste
    /// into the mapping file.
    pub fn stanza(account: &str, psa_product: &str, line: &LineRef) -> String {
        format!(
            "[[line]]\naccount = {account:?}\npsa_product = {psa_product:?}\nline = {:?}\n",
            line.key()
        )
    }
}

/// An operator's "I know, leave it": matching rows show as `suppressed` until `until`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Suppression {
    /// Rows this customer contributes to (or its `unmapped_customer` row).
    pub customer: Option<CustomerId>,
    /// Rows of this PSA account.
    pub account: Option<String>,
    /// Only rows of this product name or PSA product id; all products when absent.
    pub product: Option<String>,
    /// Why (required; shown on the row).
    pub reason: String,
    /// The last day (UTC, inclusive) the suppression applies.
    pub until: NaiveDate,
    /// The line of its `[[suppress]]` header, for messages.
    pub line: usize,
}

impl Suppression {
    /// Whether it still applies on `today` (UTC).
    pub fn active_on(&self, today: NaiveDate) -> bool {
        today <= self.until
    }

    /// A short description of what it covers, e.g. `customer 329, product SafeSend`.
    pub fn scope(&self) -> String {
        let mut parts = Vec::new();
        if let Some(c) = self.customer {
            parts.push(format!("customer {c}"));
        }
        if let Some(a) = &self.account {
            parts.push(format!("account {a}"));
        }
        parts.push(match &self.product {
            Some(p) => format!("product {p}"),
            None => "all products".to_string(),
        });
        parts.join(", ")
    }
}

impl Mapping {
    /// Reads and validates the mapping file at `path`. Pure apart from reading that one file,
    /// so it is cheap to call again on SIGHUP.
    pub fn load(path: &Path) -> Result<Mapping, MappingError> {
        let text = std::fs::read_to_string(path).map_err(|source| {
            if source.kind() == std::io::ErrorKind::NotFound {
                MappingError::Missing { path: path.to_path_buf() }
            } else {
                MappingError::Read { path: path.to_path_buf(), source }
            }
        })?;
        Mapping::parse(path, &text)
    }

    /// Validates mapping `text`; `path` only names the file in messages.
    pub fn parse(path: &Path, text: &str) -> Result<Mapping, MappingError> {
        match parse::parse(text) {
            Ok(mut m) => {
                m.path = path.to_path_buf();
                Ok(m)
            }
            Err(mut problems) => {
                problems.sort_by_key(|p| (p.line, p.column));
                Err(MappingError::Invalid { path: path.to_path_buf(), problems })
            }
        }
    }

    /// The PSA account customer `id` maps to.
    pub fn account_of(&self, id: CustomerId) -> Option<&str> {
        self.customers.get(&id).map(String::as_str)
    }

    /// The write-back policy of rows billed as `psa_product` (the default, `off`, when no
    /// product maps to it). Products billed as one PSA product share one policy (validated).
    pub fn policy_for(&self, psa_product: &str) -> Policy {
        self.products
            .values()
            .find(|p| p.psa_product == psa_product)
            .map(|p| p.policy.clone())
            .unwrap_or_default()
    }

    /// The `[[line]]` preference for (`account`, `psa_product`), if any.
    pub fn line_for(&self, account: &str, psa_product: &str) -> Option<&LinePreference> {
        self.lines.iter().find(|l| l.account == account && l.psa_product == psa_product)
    }

    /// Suppressions whose last day is before `today`: they no longer apply and should go.
    pub fn expired_suppressions(&self, today: NaiveDate) -> Vec<&Suppression> {
        self.suppressions.iter().filter(|s| !s.active_on(today)).collect()
    }

    /// One line for `mpsync check`: what the file maps.
    pub fn describe(&self) -> String {
        let accounts: BTreeSet<&String> = self.customers.values().collect();
        let psa: BTreeSet<&String> = self.products.values().map(|p| &p.psa_product).collect();
        format!(
            "{}: {} customers → {} accounts, {} products → {} PSA products, {} excluded \
             customers, {} excluded products, {} suppressions, {} line preferences",
            self.path.display(),
            self.customers.len(),
            accounts.len(),
            self.products.len(),
            psa.len(),
            self.exclude_customers.len(),
            self.exclude_products.len(),
            self.suppressions.len(),
            self.lines.len()
        )
    }
}

/// One problem in the mapping file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MappingProblem {
    /// 1-based line.
    pub line: usize,
    /// 1-based column (characters).
    pub column: usize,
    /// Key path, e.g. `customers."abc"` or `suppress[0].until`; empty for syntax errors.
    pub key: String,
    /// What is wrong and what to write instead.
    pub message: String,
}

/// Why the mapping file could not be used. Exit status 78 (bad config).
#[derive(Debug, thiserror::Error)]
pub enum MappingError {
    /// The file does not exist.
    #[error(
        "the mapping file {path} does not exist. Create it by copying the commented example \
         config/mapping.toml shipped with mpsync, then map each Mailprotector customer to its \
         PSA account (or point [reconcile] mapping_file at your mapping)"
    )]
    Missing {
        /// The path looked at.
        path: PathBuf,
    },
    /// The file exists but cannot be read.
    #[error(
        "cannot read the mapping file {path}: {source}. Check that it is UTF-8 text readable by \
         the user running mpsync"
    )]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file has problems; every one is listed.
    #[error("{}", invalid_message(path, problems))]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Every problem, in line order.
        problems: Vec<MappingProblem>,
    },
}

fn invalid_message(path: &Path, problems: &[MappingProblem]) -> String {
    let n = problems.len();
    let name = path
        .file_name()
        .map_or_else(|| path.display().to_string(), |f| f.to_string_lossy().into_owned());
    let mut out = format!(
        "the mapping file {} has {n} problem{}; fix each one, then check with `mpsync check`:",
        path.display(),
        if n == 1 { "" } else { "s" }
    );
    for p in problems {
        out.push_str(&format!("\n  {name} {p}"));
    }
    out
}

impl fmt::Display for MappingProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            write!(f, "line {}: {}", self.line, self.message)
        } else {
            write!(f, "line {}: {}: {}", self.line, self.key, self.message)
        }
    }
}

impl ExitStatus for MappingError {
    fn exit(&self) -> Exit {
        Exit::Config
    }
}
