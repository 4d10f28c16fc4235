//! `mpsync capture DIR [--no-pseudonymize]`: one read-only collection of the configured
//! upstreams written as a bundle (see [`crate::capture`]); prints what it wrote and where.
//! Exit status: 78 bad config, 64 when DIR is not empty, an upstream failure's own status
//! (69 unavailable, 65 malformed answers, ...) after writing what was captured up to it.

use std::path::Path;

use tokio_util::sync::CancellationToken;

use super::Globals;
use crate::capture::{CaptureOptions, capture};
use crate::cli::CaptureArgs;
use crate::exit::{Exit, ExitStatus};
use crate::sim::replay::bundle::{MANIFEST, write_files};
use crate::telemetry::{self, LogOptions};

/// Runs the capture and writes the bundle.
pub async fn run(g: &Globals, args: CaptureArgs) -> Exit {
    let opts = super::load_options(g, Vec::new());
    let config = match crate::config::load(&opts) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("mpsync: {e:#}");
            return Exit::Config;
        }
    };
    if let Err(why) = check_target(&args.dir) {
        eprintln!("mpsync capture: {why}");
        return Exit::Usage;
    }
    let log_opts = LogOptions::new(&config.daemon.log, config.daemon.log_format, &opts.env)
        .redacting(crate::app::secret_scrubber(&config));
    if let Err(e) = telemetry::init(&log_opts) {
        eprintln!("mpsync: {e}");
        return Exit::Software;
    }
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
    let captured = match result {
        Ok(c) => c,
        Err(e) => {
            eprintln!("mpsync capture: {e}");
            return e.exit();
        }
    };
    let dir = match write_files(&args.dir, &captured.files) {
        Ok(dir) => dir,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            eprintln!(
                "mpsync capture: {} is no longer empty; nothing was written",
                args.dir.display()
            );
            return Exit::Usage;
        }
        Err(e) => {
            eprintln!("mpsync capture: cannot write the bundle into {}: {e}", args.dir.display());
            return Exit::IoErr;
        }
    };
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
    let mut exit = Exit::Ok;
    for r in &captured.upstreams {
        if let Some((message, status)) = &r.failure {
            eprintln!("mpsync capture: {} failed: {message}", r.upstream.name());
            if exit == Exit::Ok {
                exit = *status;
            }
        }
    }
    if exit != Exit::Ok {
        eprintln!(
            "mpsync capture: the bundle holds the answers up to the failure; attach it to the \
             bug report as it is"
        );
    }
    exit
}

/// DIR must be missing (it is created) or an empty directory.
fn check_target(dir: &Path) -> Result<(), String> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => match entries.next() {
            None => Ok(()),
            Some(_) => Err(format!(
                "{} is not empty; a capture never overwrites or mixes files: give a new or empty \
                 directory",
                dir.display()
            )),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => {
            Err(format!("{} is a file; give a new or empty directory", dir.display()))
        }
        Err(e) => Err(format!("cannot use {} for the bundle: {e}", dir.display())),
    }
}
