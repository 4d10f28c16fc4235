//! `mpsync run`: the daemon. Loads the config (exit 78 on any problem), sets up logging, and
//! hands over to [`crate::app::run`], whose error ([`crate::app::DaemonError`]) says why it
//! stopped.

use std::net::SocketAddr;

use tokio::sync::oneshot;

use super::{CommandError, Globals};
use crate::app::{self, RunOptions};
use crate::cli::RunArgs;
use crate::systemd::{self, Notifier};
use crate::telemetry::{self, LogOptions};

/// Runs the daemon until SIGTERM/SIGINT.
pub async fn run(g: &Globals, args: RunArgs) -> Result<(), CommandError> {
    let mut overrides = Vec::new();
    if let Some(listen) = args.listen {
        overrides.push(("daemon.listen".to_owned(), listen.to_string()));
    }
    if let Some(dir) = args.state_dir {
        overrides.push(("daemon.state_dir".to_owned(), dir.display().to_string()));
    }
    start(super::load_options(g, overrides), None).await
}

/// Loads the config from `load_options` (exit 78 on any problem), sets up logging and runs
/// the daemon until SIGTERM/SIGINT; `on_ready` is told the bound address once it serves.
/// Shared by `run` and `demo`.
pub(super) async fn start(
    load_options: crate::config::LoadOptions,
    on_ready: Option<oneshot::Sender<SocketAddr>>,
) -> Result<(), CommandError> {
    let config = crate::config::load(&load_options)?;

    let log_opts = LogOptions::new(&config.daemon.log, config.daemon.log_format, &load_options.env)
        .redacting(crate::app::secret_scrubber(&config));
    let log = Some(telemetry::init(&log_opts)?);
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        config = %config.source_path.as_ref().map_or("(defaults only)".to_owned(), |p| p.display().to_string()),
        "mpsync starting"
    );
    tracing::debug!(
        "effective configuration (secrets redacted):\n{}",
        crate::config::redacted_toml(&config)
    );

    let watchdog = systemd::watchdog_interval();
    let notifier = Notifier::systemd();
    app::run(RunOptions { config, load_options, log, notifier, watchdog, on_ready }).await?;
    Ok(())
}
