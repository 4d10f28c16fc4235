//! Start-up steps that can fail, each with an error that says what to do and knows its exit
//! status: opening the store and binding the listener.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use tokio::net::TcpListener;

use super::error::{DaemonError, ListenError};
use crate::health::Health;
use crate::model::RunKind;
use crate::store::Store;
use crate::systemd::Notifier;

/// While the store opens, systemd's start timeout is extended by this much, every
/// [`EXTEND_EVERY`]: after a crash redb may walk the whole file to repair it.
const EXTEND_BY: Duration = Duration::from_secs(30);
const EXTEND_EVERY: Duration = Duration::from_secs(10);

/// Opens the store off the async runtime (redb blocks) and marks runs a crash left behind as
/// aborted. Exit 75 when another process holds it.
pub(super) async fn open_store(
    state_dir: &Path,
    now: chrono::DateTime<chrono::Utc>,
    notifier: &Notifier,
) -> Result<Store, DaemonError> {
    let dir = state_dir.to_path_buf();
    let mut opening = tokio::task::spawn_blocking(move || Store::open(&dir));
    let mut extend = tokio::time::interval(EXTEND_EVERY);
    extend.tick().await;
    let opened = loop {
        tokio::select! {
            r = &mut opening => break r,
            _ = extend.tick() => {
                tracing::info!("still opening the store in {} (repairing after a crash?)", state_dir.display());
                notifier.extend_timeout(EXTEND_BY);
            }
        }
    };
    let store = opened
        .map_err(|source| DaemonError::StoreTask { dir: state_dir.to_path_buf(), source })??;
    match store.abort_leftover_runs(now).await {
        Ok(ids) if !ids.is_empty() => {
            tracing::warn!(
                ?ids,
                "marked runs left running by a previous process as aborted (each record says \
                 why: a crash or kill, or a store that could not be written)"
            )
        }
        Ok(_) => {}
        Err(e) => return Err(e.into()),
    }
    Ok(store)
}

/// Binds the HTTP listener on `daemon.listen` (see [`ListenError`]: exit 78).
pub(super) async fn bind(addr: SocketAddr) -> Result<TcpListener, ListenError> {
    TcpListener::bind(addr).await.map_err(|source| ListenError { addr, source })
}

/// Fills health with each job's last success from the store, so a restart does not report
/// "no run yet" for sources that have run.
pub(super) async fn seed_health(store: &Store, health: &Health) {
    for kind in [RunKind::Vendor, RunKind::Billing, RunKind::Push] {
        match store.last_success(kind).await {
            Ok(Some(rec)) => {
                let at = rec.finished_at.unwrap_or(rec.started_at);
                health.record_success(kind.into(), rec.id, at);
                if let Some(counting) = rec.counting {
                    health.set_counting(rec.id, at, counting);
                }
            }
            Ok(None) => {}
            // Health is only a report: a read error here must not stop the daemon.
            Err(e) => tracing::warn!("cannot read the last {kind} run for health: {e}"),
        }
    }
    // Pushes may be a day apart: the last one's pair counts come back with the daemon.
    match store.get_meta::<crate::gradient::PushReport>(crate::gradient::LAST_PUSH_KEY).await {
        Ok(Some(report)) => health.set_push((&report).into()),
        Ok(None) => {}
        Err(e) => tracing::warn!("cannot read the last Gradient push report for health: {e}"),
    }
}

/// How often the store is pruned (also once shortly after start-up).
const PRUNE_EVERY: std::time::Duration = std::time::Duration::from_secs(6 * 3600);

/// Prunes snapshots and history past their retention, shortly after start and then every six
/// hours, with the retention in force at that time (SIGHUP may change it).
pub(super) async fn prune_periodically(
    store: Store,
    config: tokio::sync::watch::Receiver<std::sync::Arc<crate::config::Config>>,
    token: tokio_util::sync::CancellationToken,
) {
    let mut wait = std::time::Duration::from_secs(60);
    loop {
        tokio::select! {
            _ = token.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
        wait = PRUNE_EVERY;
        let retention = config.borrow().store.clone();
        let now = chrono::Utc::now();
        match store.prune(now, retention.snapshot_retention, retention.history_retention).await {
            Ok(stats) => tracing::info!(?stats, "store pruned"),
            Err(e) => tracing::warn!("pruning the store failed (will retry in 6h): {e}"),
        }
    }
}
