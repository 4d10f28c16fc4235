//! A product's write-back policy (`[products.NAME] write_back`, `min_quantity`,
//! `max_decrease_percent`): what the planner (`crate::writeback`) may propose for its rows.
//! Defined here because the mapping file owns it; the write-back re-exports it.

use serde::{Deserialize, Serialize};

/// What a product's policy lets mpsync do with a discrepancy (mapping file,
/// `[products.NAME] write_back`).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum WriteBackMode {
    /// Never planned (the default: nothing changes until the operator opts in).
    #[default]
    Off,
    /// Planned, applied only by `mpsync apply`.
    Review,
    /// Planned, and applied by the daemon within the guard rails.
    Auto,
}

impl WriteBackMode {
    /// The name used in the mapping file and in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            WriteBackMode::Off => "off",
            WriteBackMode::Review => "review",
            WriteBackMode::Auto => "auto",
        }
    }
}

/// The default of `max_decrease_percent`: a drop of more than this share of the billed
/// quantity waits for review, even under `auto`.
pub const DEFAULT_MAX_DECREASE_PERCENT: f64 = 20.0;

/// A product's write-back policy (mapping file, `[products.NAME]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Policy {
    /// `write_back`.
    pub mode: WriteBackMode,
    /// `min_quantity`: a committed minimum the plan never goes below.
    pub min_quantity: Option<f64>,
    /// `max_decrease_percent`: a larger drop (percent of the quantity read) is held for review.
    pub max_decrease_percent: f64,
}

impl Policy {
    /// The policy as the mapping file writes it, for messages:
    /// `write_back "review", min_quantity 10, max_decrease_percent 20`.
    pub fn settings(&self) -> String {
        let min = self.min_quantity.map_or("none".to_string(), |m| m.to_string());
        format!(
            "write_back {:?}, min_quantity {min}, max_decrease_percent {}",
            self.mode.as_str(),
            self.max_decrease_percent
        )
    }

    /// What it does, for `mpsync check`: `write_back review, min_quantity 10, max_decrease
    /// 20%`, or `write_back off: never planned`.
    pub fn describe(&self) -> String {
        if self.mode == WriteBackMode::Off {
            return "write_back off: never planned".to_string();
        }
        let min = self.min_quantity.map(|m| format!(", min_quantity {m}")).unwrap_or_default();
        let what = match self.mode {
            WriteBackMode::Auto => "the daemon applies allowed changes",
            _ => "changes wait for `mpsync apply`",
        };
        format!(
            "write_back {}{min}, max_decrease {}% ({what}; a larger drop is held for review)",
            self.mode.as_str(),
            self.max_decrease_percent
        )
    }
}

impl Default for Policy {
    fn default() -> Policy {
        Policy {
            mode: WriteBackMode::Off,
            min_quantity: None,
            max_decrease_percent: DEFAULT_MAX_DECREASE_PERCENT,
        }
    }
}
