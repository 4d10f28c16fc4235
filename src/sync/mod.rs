//! The sync engine: jobs (vendor poll, billing poll, push) run on their cron schedules, one at
//! a time per job, with catch-up at start-up, failure backoff, a job that is not ready yet
//! waiting for another's success, and a heartbeat for the watchdog.
//!
//! The engine owns the run lifecycle — record the start, run the job, commit its output or
//! record its failure — so every job kind is recorded the same way.

mod backoff;
mod billing;
mod cron;
mod engine;
mod error;
mod job;
mod ledger;
mod push;
mod push_counts;
mod reconcile;
mod stop;
mod vendor;

pub use backoff::failure_backoff;
pub use billing::BillingJob;
pub use cron::{CronError, CronTicker};
pub use engine::{Engine, EngineHandle, EngineOptions, JobSpec, TriggerOutcome};
pub use error::{CountFailure, JobError, NotReady, PushError, WAITING_FOR_SNAPSHOT};
pub use job::{
    BoxFuture, Job, JobOutput, JobResult, NoopObserver, RunContext, RunLedger, RunObserver,
    SkipReason,
};
pub use push::{PushJob, ReportHook};
pub use reconcile::recompute;
pub use stop::StopReason;
pub use vendor::{VendorJob, WALK_STATS_KEY, prefixed};

#[cfg(test)]
mod tests;
