//! `mpsync notify test [NAME]`: sends each `[[notify]]` channel (or the one named) a sample
//! notification marked as a test, and prints what each receiver answered. Reads only the
//! config and its secrets, so it works whether the daemon runs or not.

use serde::Serialize;

use super::{CommandError, Globals, load_options};
use crate::cli::{NotifyArgs, NotifyCommand, NotifyTestArgs};
use crate::exit::Exit;
use crate::notify::{Delivery, SendError};

/// One channel's result.
#[derive(Debug, Serialize)]
struct Tried {
    name: String,
    kind: &'static str,
    ok: bool,
    /// "HTTP 200", "SMTP 250", or why it failed.
    status: String,
    /// The start of the receiver's answer (secrets cut out).
    answer: String,
}

/// Runs `mpsync notify ...`.
pub async fn run(g: &Globals, args: NotifyArgs) -> Result<(), CommandError> {
    match args.command {
        NotifyCommand::Test(t) => test(g, t).await,
    }
}

async fn test(g: &Globals, args: NotifyTestArgs) -> Result<(), CommandError> {
    let config = crate::config::load(&load_options(g, Vec::new()))?;
    if config.notify.is_empty() {
        return Err(CommandError::NoChannels);
    }
    let channels: Vec<_> = match &args.name {
        None => config.notify.iter().collect(),
        Some(name) => {
            let found: Vec<_> = config.notify.iter().filter(|c| &c.name == name).collect();
            if found.is_empty() {
                let known = config.notify.iter().map(|c| c.name.as_str()).collect::<Vec<_>>();
                return Err(CommandError::NoSuchChannel {
                    name: name.clone(),
                    known: known.join(", "),
                });
            }
            found
        }
    };
    let mut results = Vec::new();
    for c in channels {
        let kind = c.kind.name().as_str();
        let now = chrono::Utc::now();
        let tried = match crate::notify::transport(c) {
            Err(e) => Tried {
                name: c.name.clone(),
                kind,
                ok: false,
                status: e.reason,
                answer: String::new(),
            },
            Ok(t) => match t.send(&Delivery::test(&c.name, now), now).await {
                Ok(a) => Tried {
                    name: c.name.clone(),
                    kind,
                    ok: true,
                    status: a.status,
                    answer: a.excerpt,
                },
                Err(SendError::Retry(why) | SendError::Refused(why)) => Tried {
                    name: c.name.clone(),
                    kind,
                    ok: false,
                    status: why,
                    answer: String::new(),
                },
            },
        };
        if !args.json {
            let verdict = if tried.ok { "ok" } else { "FAILED" };
            let answer =
                if tried.answer.is_empty() { String::new() } else { format!(": {}", tried.answer) };
            println!("{} ({}): {verdict} — {}{answer}", tried.name, tried.kind, tried.status);
        }
        results.push(tried);
    }
    let failed = results.iter().filter(|r| !r.ok).count();
    if args.json {
        let doc = serde_json::json!({ "channels": results });
        println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
    } else if failed > 0 {
        println!("{failed} of {} channel(s) failed", results.len());
    }
    if failed > 0 { Err(CommandError::Reported(Exit::Unavailable)) } else { Ok(()) }
}
