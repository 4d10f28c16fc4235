//! Logging set-up: a tracing subscriber with a reloadable filter (SIGHUP), text or JSON lines,
//! and journald-friendly text (no timestamps or colours) when `$JOURNAL_STREAM` is set. Every
//! line passes through a [`Scrubber`] holding each configured secret before it is written.
//!
//! The filter string was validated with the config, so a bad one never reaches here silently.

use std::io::IsTerminal;
use std::sync::{Arc, RwLock};

use tracing::Subscriber;
use tracing_subscriber::filter::{EnvFilter, LevelFilter};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::{Layer, Registry, reload};

use crate::config::LogFormat;
use crate::upstream::Scrubber;

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
    /// Secrets cut out of every line (see [`crate::app::secret_scrubber`]).
    pub redact: Scrubber,
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
        LogOptions {
            filter: filter.to_owned(),
            format,
            journald,
            ansi,
            redact: Scrubber::default(),
        }
    }

    /// The same options, cutting every form of the secrets in `secrets` out of each line.
    pub fn redacting(mut self, secrets: Scrubber) -> LogOptions {
        self.redact = secrets;
        self
    }
}

/// The secrets the log cuts out, shared by the writer and the [`LogHandle`] (a reload adds
/// the keys of the new config).
#[derive(Clone, Default)]
struct Redaction(Arc<RwLock<Scrubber>>);

impl Redaction {
    fn get(&self) -> std::sync::RwLockReadGuard<'_, Scrubber> {
        // A panic while adding keys leaves the old set, which is still worth using.
        self.0.read().unwrap_or_else(|e| e.into_inner())
    }
}

/// A [`MakeWriter`] whose writers cut the secrets out of what they are given. The fmt layer
/// writes each event with one `write_all` of the whole formatted line, so a secret is never
/// split between two writes.
struct ScrubbingMakeWriter<W> {
    inner: W,
    redaction: Redaction,
}

/// One writer of a [`ScrubbingMakeWriter`].
struct ScrubbingWriter<'a, W> {
    inner: W,
    redaction: &'a Redaction,
}

impl<'a, W: MakeWriter<'a>> MakeWriter<'a> for ScrubbingMakeWriter<W> {
    type Writer = ScrubbingWriter<'a, W::Writer>;

    fn make_writer(&'a self) -> Self::Writer {
        ScrubbingWriter { inner: self.inner.make_writer(), redaction: &self.redaction }
    }

    fn make_writer_for(&'a self, meta: &tracing::Metadata<'_>) -> Self::Writer {
        ScrubbingWriter { inner: self.inner.make_writer_for(meta), redaction: &self.redaction }
    }
}

impl<W: std::io::Write> std::io::Write for ScrubbingWriter<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let cut = self.redaction.get().scrub_bytes(buf).into_owned();
        self.inner.write_all(&cut)?;
        // All of `buf` was taken (written in its scrubbed form).
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Changes the log filter of the installed logger at run time.
#[derive(Clone)]
pub struct LogHandle {
    handle: reload::Handle<EnvFilter, Registry>,
    redaction: Redaction,
}

impl std::fmt::Debug for LogHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogHandle").field("redact", &*self.redaction.get()).finish()
    }
}

impl LogHandle {
    /// Replaces the filter (SIGHUP). The old one stays when `filter` does not parse.
    pub fn set_filter(&self, filter: &str) -> Result<(), TelemetryError> {
        let new = parse_filter(filter)?;
        self.handle.modify(|f| *f = new).map_err(|_| TelemetryError::Gone)
    }

    /// Cuts the secrets of `more` out of every line from now on, besides those already cut.
    pub fn add_secrets(&self, more: &Scrubber) {
        let mut current = self.redaction.0.write().unwrap_or_else(|e| e.into_inner());
        current.extend(more);
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
    let redaction = Redaction(Arc::new(RwLock::new(opts.redact.clone())));
    let writer = ScrubbingMakeWriter { inner: writer, redaction: redaction.clone() };
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
    Ok((Registry::default().with(filter).with(fmt), LogHandle { handle, redaction }))
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
        LogOptions {
            filter: filter.into(),
            format,
            journald,
            ansi: false,
            redact: Scrubber::default(),
        }
    }

    #[test]
    fn configured_secrets_never_reach_the_writer_and_a_reload_adds_keys() {
        use base64::Engine as _;
        let buf = Buf::default();
        let w = buf.clone();
        let opts = opts("info", LogFormat::Json, false)
            .redacting(Scrubber::new(["mp-key/\"one\"", "Bearer mp-key/\"one\""]));
        let (sub, h) = subscriber(&opts, move || w.clone()).unwrap();
        let b64 = base64::engine::general_purpose::STANDARD.encode("mp-key/\"one\"");
        tracing::subscriber::with_default(sub, || {
            tracing::warn!(body = "api key mp-key/\"one\" revoked", "upstream said {b64}");
            tracing::warn!("new key cw-private-two before the reload");
            h.add_secrets(&Scrubber::new(["cw-private-two"]));
            tracing::warn!(error = %"cw-private-two and mp-key/\"one\"", "after the reload");
        });
        let text = buf.text();
        for form in ["mp-key/", "mp-key\\/", b64.as_str()] {
            assert!(!text.contains(form), "{form} leaked: {text}");
        }
        let lines: Vec<serde_json::Value> =
            text.lines().map(|l| serde_json::from_str(l).expect("still JSON")).collect();
        assert_eq!(lines[0]["body"], "api key <redacted> revoked", "{text}");
        assert_eq!(lines[0]["message"], "upstream said <redacted>", "{text}");
        assert!(lines[1]["message"].as_str().unwrap().contains("cw-private-two"), "not yet known");
        assert_eq!(lines[2]["error"], "<redacted> and <redacted>", "{text}");
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
