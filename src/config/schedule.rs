//! Cron schedules: 6 fields with seconds, UTC, parsed the way tokio-cron-scheduler parses them.

use std::fmt;

use crate::config::Invalid;
use chrono::{DateTime, Utc};
use croner::Cron;
use croner::parser::{CronParser, Seconds};
use serde::Serialize;

/// A validated 6-field cron schedule (`sec min hour day-of-month month day-of-week`), UTC.
#[derive(Clone)]
pub struct Schedule {
    text: String,
    cron: Cron,
}

impl Schedule {
    /// Parses `text`, returning a message that shows the expected form on failure.
    pub fn parse(text: &str) -> Result<Schedule, Invalid> {
        let trimmed = text.trim();
        let fields = trimmed.split_whitespace().count();
        if fields == 5 {
            return Err(Invalid(format!(
                "\"{trimmed}\" has 5 fields, but mpsync schedules need 6, starting with seconds: \
                 \"sec min hour day-of-month month day-of-week\", e.g. \"0 {trimmed}\""
            )));
        }
        let cron = CronParser::builder()
            .seconds(Seconds::Required)
            .dom_and_dow(true)
            .build()
            .parse(trimmed)
            .map_err(|e| {
                format!(
                    "\"{trimmed}\" is not a valid cron schedule ({e}); expected 6 fields \
                     \"sec min hour day-of-month month day-of-week\", e.g. \"0 */30 * * * *\""
                )
            })?;
        Ok(Schedule { text: trimmed.to_string(), cron })
    }

    /// The schedule as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The first time strictly after `t` at which the schedule fires.
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.cron.find_next_occurrence(&t, false).ok()
    }

    /// The last time at or before `t` at which the schedule fired.
    pub fn previous_at_or_before(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.cron.find_previous_occurrence(&t, true).ok()
    }
}

impl fmt::Debug for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Schedule({:?})", self.text)
    }
}

impl PartialEq for Schedule {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Serialize for Schedule {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_fields_suggest_the_six_field_form() {
        let err = Schedule::parse("*/5 * * * *").unwrap_err();
        assert!(err.contains("6"), "{err}");
        assert!(err.contains("\"0 */5 * * * *\""), "{err}");
    }

    #[test]
    fn six_fields_parse_and_find_the_next_slot() {
        let s = Schedule::parse("0 */30 * * * *").unwrap();
        let t = DateTime::parse_from_rfc3339("2026-01-01T10:10:00Z").unwrap().with_timezone(&Utc);
        let next = s.next_after(t).unwrap();
        assert_eq!(next.to_rfc3339(), "2026-01-01T10:30:00+00:00");
    }

    #[test]
    fn garbage_is_rejected_with_the_expected_form() {
        let err = Schedule::parse("every day").unwrap_err();
        assert!(err.contains("sec min hour"), "{err}");
    }
}
