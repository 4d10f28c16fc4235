//! What an event of the event log is about (`events`): a shared word, since the config's
//! notification filters name the kinds too.

use serde::{Deserialize, Serialize};

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A row entered a discrepancy status (after its debounce).
    DiscrepancyOpened,
    /// A raised discrepancy changed status, or its monthly impact moved by 10 % or more.
    DiscrepancyChanged,
    /// A raised discrepancy ended (see [`Cause`]).
    DiscrepancyResolved,
    /// A customer or product with usage and no mapping appeared.
    UnmappedAppeared,
    /// A source has been failing (or its data older than `max_age`) for longer than the
    /// threshold.
    SourceFailing,
    /// A source that was failing completed a run again.
    SourceRecovered,
    /// A Gradient push run failed.
    PushFailed,
    /// A write-back change failed.
    WritebackFailed,
}

impl EventKind {
    /// Every kind, in the order documentation lists them.
    pub const ALL: [EventKind; 8] = [
        EventKind::DiscrepancyOpened,
        EventKind::DiscrepancyChanged,
        EventKind::DiscrepancyResolved,
        EventKind::UnmappedAppeared,
        EventKind::SourceFailing,
        EventKind::SourceRecovered,
        EventKind::PushFailed,
        EventKind::WritebackFailed,
    ];

    /// The snake_case name used in JSON and filters.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::DiscrepancyOpened => "discrepancy_opened",
            EventKind::DiscrepancyChanged => "discrepancy_changed",
            EventKind::DiscrepancyResolved => "discrepancy_resolved",
            EventKind::UnmappedAppeared => "unmapped_appeared",
            EventKind::SourceFailing => "source_failing",
            EventKind::SourceRecovered => "source_recovered",
            EventKind::PushFailed => "push_failed",
            EventKind::WritebackFailed => "writeback_failed",
        }
    }

    /// Parses a snake_case name.
    pub fn parse(s: &str) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|k| k.as_str() == s.trim())
    }
}

impl std::fmt::Display for EventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
