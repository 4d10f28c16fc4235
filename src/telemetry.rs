//! Logging set-up: a tracing subscriber with a reloadable filter (SIGHUP), text or JSON lines,
//! and journald-friendly text (no timestamps or colours) when `$JOURNAL_STREAM` is set.
//!
//! The filter string was validated with the config, so a bad one never reaches here silently.

use std::io::IsTerminal;

use tracing::Subscriber;
use tracing_subscriber::filter::{EnvFilter, LevelFilter};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::{Layer, Registry, reload};

use crate::config::LogFormat;

/// Why logging could not be set up or changed.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// The filter does not parse (config validation should have caught it).
    #[error(
        "invalid log filter {filter:?}: {source}; use tracing syntax such as \"info\" or \"mpsync=debug\""
    )]
    Filter {
        /// The rejected filter.
        filter: String,
        /// The parser's complaint.
        source: tracing_subscriber::filter::ParseError,
    },
    /// A global subscriber was already installed (only one per process).
    #[error("cannot install the logger: a global tracing subscriber is already set")]
    AlreadySet,
    /// The logger is gone, so its filter cannot be changed.
    #[error("cannot change the log filter: the logger was shut down")]
    Gone,
}

/// How to log.
#[derive(Debug, Clone)]
pub struct LogOptions {
    /// The filter directive (config `daemon.log`, after `--log` and `RUST_LOG`).
    pub filter: String,
    /// Text or JSON lines.
    pub format: LogFormat,
    /// stderr goes to the journal (`$JOURNAL_STREAM` set): no timestamps, no colours.
    pub journald: bool,
    /// Colour the text output (a terminal, and not the journal).
    pub ansi: bool,
}

impl LogOptions {
    /// Options for this process: `journald` from `$JOURNAL_STREAM` in `env`, colours only when
    /// stderr is a terminal and not the journal.
    pub fn new(
        filter: &str,
        format: LogFormat,
        env: &std::collections::HashMap<String, String>,
    ) -> LogOptions {
        let journald = env.get("JOURNAL_STREAM").is_some_and(|v| !v.is_empty());
        let ansi = !journald && std::io::stderr().is_terminal();
        LogOptions { filter: filter.to_owned(), format, journald, ansi }
    }
}

/// Changes the log filter of the installed logger at run time.
#[derive(Debug, Clone)]
pub struct LogHandle {
    handle: reload::Handle<EnvFilter, Registry>,
}

impl LogHandle {
    /// Replaces the filter (SIGHUP). The old one stays when `filter` does not parse.
    pub fn set_filter(&self, filter: &str) -> Result<(), TelemetryError> {
        let new = parse_filter(filter)?;
        self.handle.modify(|f| *f = new).map_err(|_| TelemetryError::Gone)
    }
}

/// Parses a filter the strict way: an invalid directive is an error, not a silent fallback
/// to ERROR as with `EnvFilter::from_default_env`.
pub fn parse_filter(filter: &str) -> Result<EnvFilter, TelemetryError> {
    EnvFilter::builder()
        .with_default_directive(LevelFilter::INFO.into())
        .parse(filter)
        .map_err(|source| TelemetryError::Filter { filter: filter.to_owned(), source })
}

/// Builds the subscriber writing to `writer`, and the handle that reloads its filter.
pub fn subscriber<W>(
    opts: &LogOptions,
    writer: W,
) -> Result<(impl Subscriber + Send + Sync + for<'a> LookupSpan<'a>, LogHandle), TelemetryError>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let (filter, handle) = reload::Layer::new(parse_filter(&opts.filter)?);
    type Base = tracing_subscriber::layer::Layered<reload::Layer<EnvFilter, Registry>, Registry>;
    let fmt: Box<dyn Layer<Base> + Send + Sync> = match (opts.format, opts.journald) {
        (LogFormat::Json, _) => Box::new(
            tracing_subscriber::fmt::layer()
                .json()
                .flatten_event(true)
                .with_current_span(true)
                .with_span_list(false)
                .with_writer(writer),
        ),
        // journald stamps every line itself and shows no colours.
        (LogFormat::Text, true) => Box::new(
            tracing_subscriber::fmt::layer().without_time().with_ansi(false).with_writer(writer),
        ),
        (LogFormat::Text, false) => {
            Box::new(tracing_subscriber::fmt::layer().with_ansi(opts.ansi).with_writer(writer))
        }
    };
    Ok((Registry::default().with(filter).with(fmt), LogHandle { handle }))
}

/// Installs the global logger (stderr) once per process.
pub fn init(opts: &LogOptions) -> Result<LogHandle, TelemetryError> {
    let (sub, handle) = subscriber(opts, std::io::stderr)?;
    tracing::subscriber::set_global_default(sub).map_err(|_| TelemetryError::AlreadySet)?;
    Ok(handle)
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);

    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Buf {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    fn opts(filter: &str, format: LogFormat, journald: bool) -> LogOptions {
        LogOptions { filter: filter.into(), format, journald, ansi: false }
    }

    #[test]
    fn json_lines_parse_and_carry_the_span() {
        let buf = Buf::default();
        let w = buf.clone();
        let (sub, _h) =
            subscriber(&opts("info", LogFormat::Json, false), move || w.clone()).unwrap();
        tracing::subscriber::with_default(sub, || {
            let span = tracing::info_span!("reload", generation = 3);
            let _g = span.enter();
            tracing::info!(listen = "127.0.0.1:9847", "mpsync ready");
        });
        let line = buf.text();
        let v: serde_json::Value = serde_json::from_str(line.trim()).unwrap();
        assert_eq!(v["message"], "mpsync ready");
        assert_eq!(v["listen"], "127.0.0.1:9847");
        assert_eq!(v["span"]["generation"], 3);
    }

    #[test]
    fn journald_text_has_no_timestamp_and_the_filter_reloads() {
        let buf = Buf::default();
        let w = buf.clone();
        let (sub, h) = subscriber(&opts("warn", LogFormat::Text, true), move || w.clone()).unwrap();
        tracing::subscriber::with_default(sub, || {
            tracing::info!("hidden at warn");
            h.set_filter("debug").unwrap();
            tracing::debug!("shown after reload");
            assert!(h.set_filter("mpsync=notalevel").is_err());
            tracing::debug!("still debug");
        });
        let text = buf.text();
        assert!(!text.contains("hidden"), "{text}");
        assert!(text.starts_with("DEBUG"), "journald lines start with the level: {text}");
        assert!(text.contains("still debug"), "a bad filter keeps the old one: {text}");
    }

    #[test]
    fn invalid_filters_are_errors() {
        assert!(parse_filter("info,mpsync=loud").is_err());
        assert!(parse_filter("info,mpsync::server=debug").is_ok());
    }
}
