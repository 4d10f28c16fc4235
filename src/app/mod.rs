//! Builds the daemon from a validated [`Config`] and runs it until SIGTERM/SIGINT: opens the
//! store, binds the listener, starts the HTTP server, the sync engine (the main loop, whose
//! heartbeat feeds `/livez` and the systemd watchdog) and the watchdog, then handles signals.
//!
//! The only module that knows all the others. One root [`CancellationToken`] and one
//! [`TaskTracker`](tokio_util::task::TaskTracker) (inside [`Tasks`]) own every task.

mod error;
mod event_observer;
mod health_observer;
mod notify_observer;
mod observe;
mod push_observer;
mod reconciler;
mod reload;
mod secrets;
mod start;
mod tasks;
mod writeback;
mod zone_cache;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{oneshot, watch};
use tokio_util::sync::CancellationToken;

use crate::config::{Config, LoadOptions};
use crate::health::Health;
use crate::mailprotector::MailprotectorClient;
use crate::metrics::Metrics;
use crate::model::RunKind;
use crate::server::{self, ServerState};
use crate::sync::{
    CronTicker, Engine, EngineOptions, JobSpec, PushJob, ReportHook, RunObserver, StopReason,
    VendorJob,
};
use crate::systemd::{self, Heartbeat, Notifier};
use crate::telemetry::LogHandle;

pub use error::{DaemonError, JobsError, ListenError};
pub use observe::{Fanout, RunMetrics};
pub use push_observer::PushObserver;
pub use secrets::secret_scrubber;
pub use tasks::{StillRunning, Tasks};

/// What [`run`] needs besides the config.
pub struct RunOptions {
    /// The validated config the daemon starts with.
    pub config: Config,
    /// How that config was loaded (path, environment, CLI overrides); SIGHUP loads again with
    /// the same options, so CLI flags keep winning after a reload.
    pub load_options: LoadOptions,
    /// Changes the log filter on reload (`None` when logging was set up elsewhere).
    pub log: Option<LogHandle>,
    /// Where READY/STOPPING/RELOADING/WATCHDOG go.
    pub notifier: Notifier,
    /// The systemd watchdog interval (`WATCHDOG_USEC`), if any.
    pub watchdog: Option<Duration>,
    /// Told the address the HTTP server bound once the daemon is ready: with port 0 in
    /// `daemon.listen` only then is the port known (`demo` prints its URLs from it).
    pub on_ready: Option<oneshot::Sender<SocketAddr>>,
}

/// Runs the HTTP server on its own thread and single-threaded runtime, so probes and health
/// answer (and `/livez` can report a wedged main loop) even when the main runtime is busy.
/// A server error cancels `token`, which shuts the daemon down.
fn spawn_server(
    tasks: &Tasks,
    listener: tokio::net::TcpListener,
    state: ServerState,
    token: CancellationToken,
) -> std::io::Result<()> {
    let listener = listener.into_std()?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    tasks.spawn_thread("http", move || {
        runtime.block_on(async move {
            let served = match tokio::net::TcpListener::from_std(listener) {
                Ok(l) => server::serve(l, state, token.clone().cancelled_owned()).await,
                Err(e) => Err(e),
            };
            if let Err(e) = served {
                tracing::error!("the HTTP server stopped: {e}; shutting down");
                token.cancel();
            }
        });
        // Connections still open after the drain are dropped with the runtime, at once.
        runtime.shutdown_background();
    })
}

/// Serves the control socket `<state_dir>/mpsync.sock` (`mpsync apply`, `plan` and `audit`
/// while the daemon holds the store) until `token` is cancelled. A socket that cannot be
/// bound is logged and the daemon goes on: reconciling does not need it.
fn serve_control(
    tasks: &Tasks,
    state_dir: &std::path::Path,
    handler: Arc<writeback::Writeback>,
    token: &CancellationToken,
) {
    let path = crate::control::socket_path(state_dir);
    match crate::control::ControlListener::bind(&path) {
        Ok(listener) => {
            tracing::info!(
                "control socket for `mpsync apply` and `mpsync audit` on {}",
                path.display()
            );
            tasks.spawn(
                "control socket",
                crate::control::serve(listener, handler, token.clone(), tasks.tracker().clone()),
            );
        }
        Err(e) => tracing::error!(
            "cannot serve the control socket {}: {e}; `mpsync apply` and `mpsync audit` will \
             not work while the daemon runs (stop it to run them)",
            path.display()
        ),
    }
}

/// Why the signal loop ended.
enum Stop {
    Signal(&'static str),
    Fatal,
}

impl Stop {
    /// Why runs still going are cancelled, as their records and log lines say it.
    fn reason(&self) -> String {
        match self {
            Stop::Signal("SIGINT") => "mpsync was shutting down (SIGINT received: Ctrl-C)".into(),
            Stop::Signal(name) => {
                format!("mpsync was shutting down ({name} received: systemctl stop, or kill)")
            }
            Stop::Fatal => "mpsync was shutting down after a fatal error (logged above)".into(),
        }
    }
}

/// Runs the daemon until SIGTERM or SIGINT: `Ok` after a clean drain, else why not (its exit
/// status: 75 when the store is held by another process, 78 when the listener cannot be bound
/// (`daemon.listen`) or the mapping is invalid, 70 when the grace period ran out or a
/// component failed).
pub async fn run(opts: RunOptions) -> Result<(), DaemonError> {
    let RunOptions { config, load_options, log, notifier, watchdog, on_ready } = opts;
    let started_at = chrono::Utc::now();

    // Registered before READY=1, so a SIGTERM right after start-up drains instead of killing.
    let signals = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::hangup()),
    );
    let (mut sigterm, mut sigint, mut sighup) = match signals {
        (Ok(t), Ok(i), Ok(h)) => (t, i, h),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => return Err(DaemonError::Signals(e)),
    };

    notifier.status("starting: opening the store");
    let store = start::open_store(&config.daemon.state_dir, started_at, &notifier).await?;
    let listener = start::bind(config.daemon.listen).await?;
    let addr = listener.local_addr().unwrap_or(config.daemon.listen);

    let health = Health::new(started_at);
    health.configure(&config);
    health.set_store_open(store.path().to_path_buf(), chrono::Utc::now());
    start::seed_health(&store, &health).await;
    let metrics = Metrics::new();
    let heartbeat = Heartbeat::for_watchdog(watchdog);
    let (config_tx, _) = watch::channel(Arc::new(config));
    let token = CancellationToken::new();
    let tasks = Tasks::new();

    let run_metrics = RunMetrics::register(&metrics);
    for kind in [RunKind::Vendor, RunKind::Billing, RunKind::Push] {
        if let Ok(Some(rec)) = store.last_success(kind).await {
            run_metrics.seed_last_success(kind, &rec);
        }
    }
    // The mapping is part of the configuration: an invalid one stops the start like a bad key.
    let mapping = reconciler::load_mapping(&config_tx.borrow()).transpose()?;
    let (reconcile_trigger, reconcile_rx) = reconciler::Reconciler::channel();
    // Push reports go to health and metrics; the families exist only while the push does.
    let push_report = config_tx
        .borrow()
        .gradient
        .enabled
        .then(|| PushObserver::register(&metrics, health.clone()).hook());
    let jobs = build_jobs(&config_tx.borrow(), &store, push_report)?;

    // The engine's loop is the daemon's main loop: it beats the heartbeat on every turn, and
    // its first turn latches readiness.
    let beat = {
        let (heartbeat, health) = (heartbeat.clone(), health.clone());
        Arc::new(move || {
            heartbeat.beat();
            health.mark_ready();
        })
    };
    let (events, recorder) =
        event_observer::EventObserver::new(store.clone(), config_tx.subscribe(), token.clone());
    tasks.spawn("event log", recorder);
    // Channels get their cursors before anything can append an event, so none is skipped.
    let notifications = crate::notify::Notifier::new(
        store.clone(),
        config_tx.subscribe(),
        Arc::new(crate::notify::SystemClock),
        Arc::new(|c: &crate::config::NotifyConfig| crate::notify::transport(c)),
        Arc::new(notify_observer::NotifyPublisher::register(&metrics, health.clone())),
    );
    if let Err(e) = notifications.init().await {
        tracing::error!("notifications: cannot read or set the channels' cursors: {e}");
    }
    tasks.spawn("notifications", notifications.run(token.clone()));
    let observer: Arc<dyn RunObserver> = Arc::new(Fanout(vec![
        Arc::new(health.clone()),
        Arc::new(run_metrics),
        Arc::new(events.clone()),
        Arc::new(reconcile_trigger),
    ]));
    let stop_reason = StopReason::default();
    let engine_opts = EngineOptions {
        tick: heartbeat.tick(),
        beat,
        stop: stop_reason.clone(),
        ..EngineOptions::default()
    };
    let (engine, engine_handle) =
        Engine::new(jobs.clone(), Arc::new(store.clone()), observer, engine_opts);
    tasks.spawn("sync engine", engine.run(token.clone(), tasks.tracker().clone()));
    let cron = match CronTicker::start(&jobs, engine_handle.clone()).await {
        Ok(c) => c,
        Err(e) => {
            token.cancel();
            let _ = tasks.drain(Duration::from_secs(5)).await;
            return Err(e.into());
        }
    };
    let writeback = writeback::Writeback::new(
        store.clone(),
        config_tx.subscribe(),
        engine_handle.clone(),
        &metrics,
        token.clone(),
    );
    serve_control(&tasks, &config_tx.borrow().daemon.state_dir, writeback.clone(), &token);
    let reconciler = reconciler::Reconciler {
        store: store.clone(),
        health: health.clone(),
        config: config_tx.subscribe(),
        mapping,
        metrics: metrics.clone(),
        writeback,
        events,
    };
    tasks.spawn("reconciler", reconciler.run(reconcile_rx, token.clone()));
    tasks.spawn(
        "store pruning",
        start::prune_periodically(store.clone(), config_tx.subscribe(), token.clone()),
    );

    let state = ServerState {
        health: health.clone(),
        heartbeat: heartbeat.clone(),
        metrics: metrics.clone(),
        api: Some(crate::server::ApiState {
            store: store.clone(),
            engine: engine_handle,
            sync_kinds: jobs.iter().map(|j| j.kind).filter(|k| *k != RunKind::Push).collect(),
            renders: crate::server::RenderGate::for_this_host(),
        }),
        access: Arc::new(crate::server::Access::from_config(&config_tx.borrow().daemon, addr)),
    };
    if let Err(e) = spawn_server(&tasks, listener, state, token.clone()) {
        cron.shutdown().await;
        token.cancel();
        let _ = tasks.drain(Duration::from_secs(5)).await;
        return Err(DaemonError::ServerThread(e));
    }

    if let Some(interval) = watchdog {
        tasks.spawn(
            "watchdog",
            systemd::run_watchdog(notifier.clone(), heartbeat.clone(), interval, token.clone()),
        );
    }

    let status = format!("serving on http://{addr}");
    notifier.ready(&status);
    tracing::info!("mpsync ready on http://{addr}");
    if crate::config::hosts::is_remote(addr) {
        tracing::warn!(
            "{addr} accepts connections from other hosts (daemon.allow_remote); every request \
             but /livez and /readyz must carry the access token"
        );
    }
    if let Some(tx) = on_ready {
        // Nobody listening any more is fine: the daemon serves regardless.
        let _ = tx.send(addr);
    }

    let reloader = reload::Reloader {
        load_options,
        config: config_tx.clone(),
        log,
        health,
        metrics,
        notifier: notifier.clone(),
        status,
    };
    let stop = loop {
        tokio::select! {
            _ = sigterm.recv() => break Stop::Signal("SIGTERM"),
            _ = sigint.recv() => break Stop::Signal("SIGINT"),
            _ = sighup.recv() => reloader.reload().await,
            _ = token.cancelled() => break Stop::Fatal,
        }
    };

    let grace = config_tx.borrow().daemon.shutdown_grace;
    if let Stop::Signal(name) = stop {
        tracing::info!(
            "{name} received: shutting down; waiting up to {}s for running work",
            grace.as_secs_f64()
        );
    }
    notifier.stopping();
    cron.shutdown().await;
    stop_reason.set(stop.reason());
    token.cancel();
    let drained = tasks.drain(grace).await;
    // The store (last clone here) closes when this function returns, after every task ended.
    drop(store);
    match (drained, stop) {
        (Ok(()), Stop::Signal(_)) => {
            tracing::info!("mpsync stopped");
            Ok(())
        }
        (Ok(()), Stop::Fatal) => Err(DaemonError::Fatal),
        (Err(still_running), _) => Err(DaemonError::GraceExpired { grace, still_running }),
    }
}

/// The scheduled jobs the config asks for: the vendor poll always, the billing poll when a
/// billing source is configured, the Gradient push when `[gradient] enabled`, calling
/// `push_report` (if any) with each push report. Building a client can only fail on a TLS
/// set-up problem or a key that is not a valid header value.
pub fn build_jobs(
    config: &Config,
    store: &crate::store::Store,
    push_report: Option<ReportHook>,
) -> Result<Vec<JobSpec>, JobsError> {
    let mp = Arc::new(config.mailprotector.clone());
    let client = MailprotectorClient::new(&mp).map_err(JobsError::Mailprotector)?;
    let vendor = VendorJob::new(client, mp.clone(), store.clone());
    let mut jobs = vec![JobSpec {
        kind: RunKind::Vendor,
        schedule: mp.schedule.clone(),
        job: Arc::new(vendor),
    }];
    let zones = Arc::new(zone_cache::StoreZones(store.clone()));
    let billing = crate::billing::source_with_zone_cache(&config.billing, zones)
        .map_err(JobsError::Billing)?;
    if let Some(source) = billing {
        jobs.push(JobSpec {
            kind: RunKind::Billing,
            schedule: config.billing.schedule.clone(),
            job: Arc::new(crate::sync::BillingJob::new(source)),
        });
    }
    if config.gradient.enabled {
        let mut push = PushJob::from_config(config, store).map_err(JobsError::Gradient)?;
        if let Some(hook) = push_report {
            push = push.with_report_hook(hook);
        }
        jobs.push(JobSpec {
            kind: RunKind::Push,
            schedule: config.gradient.schedule.clone(),
            job: Arc::new(push),
        });
    }
    Ok(jobs)
}
