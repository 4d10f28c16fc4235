//! Why a run was cancelled: whoever stops the daemon (a signal, a fatal error) says so here
//! before it cancels the root token, and a run that ends cancelled is recorded and logged
//! with that reason instead of a bare "cancelled".

use std::sync::{Arc, OnceLock};

/// The reason the daemon (or a one-shot command) is stopping; cheap to clone, set once.
#[derive(Debug, Clone, Default)]
pub struct StopReason(Arc<OnceLock<String>>);

impl StopReason {
    /// Records why it is stopping, e.g. "SIGTERM received". Only the first call counts: the
    /// first cause is the one that cancelled the runs.
    pub fn set(&self, why: impl Into<String>) {
        let _ = self.0.set(why.into());
    }

    /// What a cancelled run's record and log line say: why it stopped and what was kept.
    pub fn cancelled_run(&self) -> String {
        let why = self.0.get().map_or("mpsync was shutting down", String::as_str);
        format!("stopped before it completed: {why}; nothing it collected was stored")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_reason_wins_and_there_is_always_one() {
        let stop = StopReason::default();
        assert_eq!(
            stop.cancelled_run(),
            "stopped before it completed: mpsync was shutting down; nothing it collected was stored"
        );
        let shared = stop.clone();
        shared.set("mpsync was shutting down (SIGTERM received)");
        stop.set("a later cause");
        assert!(
            stop.cancelled_run().contains("(SIGTERM received); nothing"),
            "{}",
            stop.cancelled_run()
        );
    }
}
