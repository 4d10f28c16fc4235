//! How the simulator keeps timestamps, and the format the API writes them in. Its own module
//! because every part of the tree (the entities, the compact user storage) has timestamps.

/// Milliseconds since the Unix epoch (UTC): how the simulator keeps timestamps.
pub type Millis = i64;

/// Formats a timestamp the way the API does: ISO-8601 UTC with milliseconds and `Z`.
pub fn format_ts(ms: Millis) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}
