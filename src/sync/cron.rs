//! Cron ticks from tokio-cron-scheduler. Each job's closure only sends a tick to the engine,
//! so the scheduler never runs work itself (no overlap, no swallowed panics, no blocking).

use tokio_cron_scheduler::{Job as CronJob, JobScheduler, JobSchedulerError};

use super::engine::{EngineHandle, JobSpec};
use crate::model::RunKind;

/// The running cron scheduler; stop it with [`CronTicker::shutdown`].
pub struct CronTicker {
    scheduler: JobScheduler,
}

/// Why the cron scheduler could not start. The scheduler's own errors are shown with their
/// `Debug` form: its `Display` leaves out which failure it was.
#[derive(Debug, thiserror::Error)]
pub enum CronError {
    /// The scheduler itself failed (creating, adding a job, starting).
    #[error("cron scheduler error: {0:?}")]
    Scheduler(#[from] JobSchedulerError),
    /// A job's schedule was refused.
    #[error("schedule \"{schedule}\" of the {kind} job: cron scheduler error: {source:?}")]
    Schedule {
        /// The cron expression.
        schedule: String,
        /// The job it schedules.
        kind: RunKind,
        /// The scheduler's complaint.
        #[source]
        source: JobSchedulerError,
    },
}

impl CronTicker {
    /// Registers one UTC cron job per spec and starts ticking.
    pub async fn start(specs: &[JobSpec], engine: EngineHandle) -> Result<CronTicker, CronError> {
        let scheduler = JobScheduler::new().await?;
        for spec in specs {
            let kind = spec.kind;
            let handle = engine.clone();
            let job = CronJob::new_async(spec.schedule.as_str(), move |_id, _sched| {
                let handle = handle.clone();
                Box::pin(async move { handle.tick(kind) })
            })
            .map_err(|source| CronError::Schedule {
                schedule: spec.schedule.as_str().to_owned(),
                kind,
                source,
            })?;
            scheduler.add(job).await?;
        }
        scheduler.start().await?;
        Ok(CronTicker { scheduler })
    }

    /// Stops the ticks (runs already started are drained by the engine's tracker).
    pub async fn shutdown(mut self) {
        if let Err(e) = self.scheduler.shutdown().await {
            tracing::warn!("stopping the cron scheduler: {}", CronError::Scheduler(e));
        }
    }
}
