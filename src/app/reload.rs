//! SIGHUP: re-read and validate the config off to the side; keep the old one when it is
//! invalid; otherwise publish it and apply the hot fields. Cold fields (listen address and its
//! access rules, state directory, log format) keep their running values until a restart, and
//! the log says so.

use std::sync::Arc;

use tokio::sync::watch;

use crate::config::{self, Config, DaemonConfig, LoadOptions};
use crate::health::Health;
use crate::metrics::Metrics;
use crate::systemd::Notifier;
use crate::telemetry::LogHandle;

/// Everything a reload touches.
pub(super) struct Reloader {
    pub(super) load_options: LoadOptions,
    pub(super) config: watch::Sender<Arc<Config>>,
    pub(super) log: Option<LogHandle>,
    pub(super) health: Health,
    pub(super) metrics: Metrics,
    pub(super) notifier: Notifier,
    /// The STATUS= line sent with READY=1 after the reload.
    pub(super) status: String,
}

impl Reloader {
    /// One reload, bracketed by RELOADING=1 and READY=1 for systemd.
    pub(super) async fn reload(&self) {
        let path = self.load_options.path.display().to_string();
        tracing::info!("SIGHUP received: reloading the configuration from {path}");
        self.notifier.reloading();
        let opts = self.load_options.clone();
        let applied = match tokio::task::spawn_blocking(move || config::load(&opts)).await {
            Ok(Ok(new)) => {
                self.apply(new);
                true
            }
            Ok(Err(e)) => {
                self.metrics.reload_failures.inc();
                let problems: Vec<String> =
                    e.problems.iter().map(|p| format!("{}: {}", p.key, p.message)).collect();
                tracing::error!(
                    "configuration reload from {path} failed, keeping the previous configuration: {}. \
                     Fix the file and send SIGHUP again (systemctl reload mpsync)",
                    problems.join("; ")
                );
                false
            }
            Err(e) => {
                self.metrics.reload_failures.inc();
                tracing::error!(
                    "configuration reload from {path} failed, keeping the previous configuration: {e}"
                );
                false
            }
        };
        if applied {
            self.notifier.ready(&self.status);
        } else {
            // `systemctl status` shows this until the next successful reload.
            let at = chrono::Utc::now().format("%Y-%m-%d %H:%M:%S UTC");
            let status = format!("{}; last reload failed at {at}, see the log", self.status);
            self.notifier.ready(&status);
        }
    }

    fn apply(&self, mut new: Config) {
        let old = self.config.borrow().clone();
        for change in cold_changes(&old.daemon, &new.daemon) {
            tracing::warn!(
                "{change}: restart required (systemctl restart mpsync); the old value stays in force until then"
            );
        }
        keep_cold(&old.daemon, &mut new.daemon);
        if let Some(log) = &self.log {
            // New keys are cut from the log from now on; the old ones stay cut too (a run
            // that started before the reload may still quote them).
            log.add_secrets(&super::secret_scrubber(&new));
        }
        if old.daemon.log != new.daemon.log {
            match self.log.as_ref().map(|h| h.set_filter(&new.daemon.log)) {
                Some(Err(e)) => tracing::error!("cannot apply the new log filter: {e}"),
                Some(Ok(())) => tracing::info!(filter = %new.daemon.log, "log filter changed"),
                None => {}
            }
        }
        self.health.configure(&new);
        self.config.send_replace(Arc::new(new));
        self.metrics.reloads.inc();
        tracing::info!("configuration reloaded");
    }
}

/// The cold `[daemon]` fields that differ, described for the log.
pub(super) fn cold_changes(old: &DaemonConfig, new: &DaemonConfig) -> Vec<String> {
    let mut out = Vec::new();
    if old.listen != new.listen {
        out.push(format!("daemon.listen changed from {} to {}", old.listen, new.listen));
    }
    if old.allow_remote != new.allow_remote {
        out.push(format!(
            "daemon.allow_remote changed from {} to {}",
            old.allow_remote, new.allow_remote
        ));
    }
    if old.allowed_hosts != new.allowed_hosts {
        out.push(format!(
            "daemon.allowed_hosts changed from {:?} to {:?}",
            old.allowed_hosts, new.allowed_hosts
        ));
    }
    let token = |d: &DaemonConfig| d.access_token.as_ref().map(|t| t.expose().to_owned());
    if token(old) != token(new) {
        // Never the values: only that the token changed.
        out.push("the access token (daemon.access_token_file) changed".to_owned());
    }
    if old.state_dir != new.state_dir {
        out.push(format!(
            "daemon.state_dir changed from {} to {}",
            old.state_dir.display(),
            new.state_dir.display()
        ));
    }
    if old.log_format != new.log_format {
        out.push(format!(
            "daemon.log_format changed from {:?} to {:?}",
            old.log_format, new.log_format
        ));
    }
    out
}

/// Puts the running values of the cold fields back, so the published config says what is in
/// force.
fn keep_cold(old: &DaemonConfig, new: &mut DaemonConfig) {
    new.listen = old.listen;
    // The access rules belong to the listener: they change with it, at a restart.
    new.allow_remote = old.allow_remote;
    new.allowed_hosts = old.allowed_hosts.clone();
    new.access_token = old.access_token.clone();
    new.state_dir = old.state_dir.clone();
    new.log_format = old.log_format;
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::LogFormat;

    fn daemon(listen: &str, log: &str) -> DaemonConfig {
        DaemonConfig {
            listen: listen.parse().unwrap(),
            allow_remote: false,
            allowed_hosts: Vec::new(),
            access_token: None,
            state_dir: "/var/lib/mpsync".into(),
            log: log.into(),
            log_format: LogFormat::Text,
            shutdown_grace: Duration::from_secs(20),
        }
    }

    #[test]
    fn only_cold_fields_need_a_restart_and_keep_their_running_values() {
        let old = daemon("127.0.0.1:9847", "info");
        let mut new = daemon("127.0.0.1:9900", "debug");
        new.log_format = LogFormat::Json;
        let changes = cold_changes(&old, &new);
        assert_eq!(changes.len(), 2, "{changes:?}");
        assert!(changes[0].contains("daemon.listen changed from 127.0.0.1:9847 to 127.0.0.1:9900"));
        keep_cold(&old, &mut new);
        assert_eq!(
            (new.listen, new.log_format, new.log.as_str()),
            (old.listen, LogFormat::Text, "debug")
        );
        assert!(
            cold_changes(&daemon("127.0.0.1:1", "info"), &daemon("127.0.0.1:1", "warn")).is_empty()
        );
    }

    #[test]
    fn access_rules_are_cold_and_a_new_token_is_never_shown() {
        let mut old = daemon("127.0.0.1:9847", "info");
        old.access_token = Some(crate::config::Secret::new("old-token-0123456789", "/t"));
        let mut new = daemon("127.0.0.1:9847", "info");
        new.allow_remote = true;
        new.allowed_hosts = vec!["mpsync.example.com".into()];
        new.access_token = Some(crate::config::Secret::new("new-token-0123456789", "/t"));
        let changes = cold_changes(&old, &new).join("\n");
        assert!(changes.contains("daemon.allow_remote changed from false to true"), "{changes}");
        assert!(changes.contains("daemon.allowed_hosts changed"), "{changes}");
        assert!(changes.contains("the access token (daemon.access_token_file) changed"));
        assert!(!changes.contains("token-0123456789"), "{changes}");
        keep_cold(&old, &mut new);
        assert!(!new.allow_remote && new.allowed_hosts.is_empty());
        assert_eq!(
            new.access_token.map(|t| t.expose().to_owned()).as_deref(),
            Some("old-token-0123456789")
        );
    }
}
