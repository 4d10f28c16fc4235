//! Cron ticks from tokio-cron-scheduler. Each job's closure only sends a tick to the engine,
//! so the scheduler never runs work itself (no overlap, no swallowed panics, no blocking).

use tokio_cron_scheduler::{Job as CronJob, JobScheduler, JobSchedulerError};

use super::engine::{EngineHandle, JobSpec};

/// The running cron scheduler; stop it with [`CronTicker::shutdown`].
pub struct CronTicker {
    scheduler: JobScheduler,
}

impl CronTicker {
    /// Registers one UTC cron job per spec and starts ticking.
    pub async fn start(specs: &[JobSpec], engine: EngineHandle) -> Result<CronTicker, String> {
        let scheduler = JobScheduler::new().await.map_err(describe)?;
        for spec in specs {
            let kind = spec.kind;
            let handle = engine.clone();
            let job = CronJob::new_async(spec.schedule.as_str(), move |_id, _sched| {
                let handle = handle.clone();
                Box::pin(async move { handle.tick(kind) })
            })
            .map_err(|e| {
                format!(
                    "schedule \"{}\" of the {kind} job: {}",
                    spec.schedule.as_str(),
                    describe(e)
                )
            })?;
            scheduler.add(job).await.map_err(describe)?;
        }
        scheduler.start().await.map_err(describe)?;
        Ok(CronTicker { scheduler })
    }

    /// Stops the ticks (runs already started are drained by the engine's tracker).
    pub async fn shutdown(mut self) {
        if let Err(e) = self.scheduler.shutdown().await {
            tracing::warn!("stopping the cron scheduler: {}", describe(e));
        }
    }
}

fn describe(e: JobSchedulerError) -> String {
    format!("cron scheduler error: {e:?}")
}
