//! `mpsync capture DIR [--no-pseudonymize]`: one read-only collection of the configured
//! upstreams written as a bundle (see [`crate::capture`]); prints what it wrote and where.
//! Exit status: 78 bad config, 64 when DIR is not empty, an upstream failure's own status
//! (69 unavailable, 65 malformed answers, ...) after writing what was captured up to it.

use std::path::Path;

use tokio_util::sync::CancellationToken;

use super::{CaptureCommandError, CommandError, Globals, TargetError, report};
use crate::capture::{CaptureOptions, capture};
use crate::cli::CaptureArgs;
use crate::exit::{Exit, ExitStatus};
use crate::telemetry::{self, LogOptions};
use mpsync_sim::replay::bundle::{MANIFEST, write_files};

/// Runs the capture and writes the bundle.
pub async fn run(g: &Globals, args: CaptureArgs) -> Result<(), CommandError> {
    let opts = super::load_options(g, Vec::new());
    let config = crate::config::load(&opts)?;
    check_target(&args.dir).map_err(CaptureCommandError::from)?;
    let log_opts = LogOptions::new(&config.daemon.log, config.daemon.log_format, &opts.env)
        .redacting(crate::app::secret_scrubber(&config));
    telemetry::init(&log_opts)?;
    let pseudonymize = !args.no_pseudonymize;
    let cancel = CancellationToken::new();
    let work = capture(&config, CaptureOptions { pseudonymize }, &cancel);
    tokio::pin!(work);
    let result = tokio::select! {
        r = &mut work => r,
        _ = tokio::signal::ctrl_c() => {
            eprintln!("mpsync capture: interrupted; stopping at the next page");
            cancel.cancel();
            work.await
        }
    };
    let captured = result.map_err(CaptureCommandError::from)?;
    let dir = write_files(&args.dir, &captured.files).map_err(|source| {
        let dir = args.dir.clone();
        match source.kind() {
            std::io::ErrorKind::AlreadyExists => CaptureCommandError::NoLongerEmpty { dir },
            _ => CaptureCommandError::Write { dir, source },
        }
    })?;
    let size =
        |name: &str| captured.files.iter().find(|(n, _)| n == name).map_or(0, |(_, b)| b.len());
    let how = if pseudonymize {
        "pseudonymized: names, e-mail addresses and domain names replaced"
    } else {
        "NOT pseudonymized: it holds your customers' names, addresses and domains"
    };
    println!("mpsync capture: wrote {} ({how})", dir.display());
    for r in &captured.upstreams {
        let file = r.upstream.file_name();
        let retries = if r.sent > r.requests as u64 {
            format!(" ({} sent, retries included)", r.sent)
        } else {
            String::new()
        };
        let state = if r.failure.is_some() { "FAILED" } else { "complete" };
        println!(
            "  {:<14} {:>6} requests{retries}  {:>10} bytes  {file}  {state}",
            r.upstream.name(),
            r.requests,
            size(file),
        );
    }
    if let crate::config::BillingSource::Csv(csv) = &config.billing.source {
        println!("  billing: the CSV file {} is not part of a capture", csv.path.display());
    }
    let total: usize = captured.files.iter().map(|(_, b)| b.len()).sum();
    println!("  {MANIFEST:<14} {:>26} bytes", size(MANIFEST));
    println!("  total {total} bytes; no secrets, no auth headers");
    println!("  look at it before sending: {}", dir.join(MANIFEST).display());
    println!(
        "  replay it: mpsync sim --replay {} --keys-dir DIR2, then mpsync -c DIR2/mpsync.toml sync --once",
        dir.display()
    );
    let mut first: Option<Exit> = None;
    for r in &captured.upstreams {
        if let Some(failure) = &r.failure {
            first.get_or_insert(failure.exit());
            let upstream = r.upstream.name();
            report(
                &CaptureCommandError::UpstreamFailed { upstream, failure: failure.clone() }.into(),
            );
        }
    }
    match first {
        None => Ok(()),
        Some(status) => Err(CaptureCommandError::Incomplete { status }.into()),
    }
}

/// DIR must be missing (it is created) or an empty directory.
fn check_target(dir: &Path) -> Result<(), TargetError> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => match entries.next() {
            None => Ok(()),
            Some(_) => Err(TargetError::NotEmpty(dir.to_path_buf())),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => {
            Err(TargetError::File(dir.to_path_buf()))
        }
        Err(source) => Err(TargetError::Unusable { dir: dir.to_path_buf(), source }),
    }
}
