//! `[[notify]]` validation: each channel's name is unique, its kind's keys are given (and no
//! other kind's), its secret (`url_file` or the credential `notify-<name>-url`; the SMTP
//! password by `password_file` or `notify-<name>-password`) is read, and e-mail without TLS
//! is only allowed towards this host.

use std::time::Duration;

use super::check::{Check, secret_named};
use super::hosts;
use super::raw::RawNotify;
use super::types::{EmailConfig, NotifyConfig, NotifyFilter, NotifyKind, NotifyKindName, SmtpTls};

/// The keys only one kind uses, and which.
const EMAIL_KEYS: [&str; 7] =
    ["smtp_host", "smtp_port", "tls", "username", "password_file", "from", "to"];

/// The channels of `raw`, in file order; problems go to `c`.
pub(crate) fn channels(raw: Vec<RawNotify>, c: &mut Check<'_>) -> Vec<NotifyConfig> {
    let mut out: Vec<NotifyConfig> = Vec::new();
    for (i, r) in raw.into_iter().enumerate() {
        let key = |k: &str| format!("notify[{i}].{k}");
        let name = c.required(
            &key("name"),
            r.name.clone(),
            "required: a name for the channel (letters, digits, '-' and '_'), e.g. \"ops-teams\"",
        );
        let kind = c.required(
            &key("kind"),
            r.kind,
            "required: \"webhook\", \"teams\", \"slack\" or \"email\"",
        );
        let name = name.unwrap_or_default();
        if !name.is_empty() && out.iter().any(|n| n.name == name) {
            c.problem(
                key("name"),
                format!("{name:?} is used by two channels; names must be unique"),
            );
        }
        let Some(kind_name) = kind else { continue };
        let kind = match kind_name {
            NotifyKindName::Email => email(&r, &name, i, c),
            _ => url_kind(&r, kind_name, &name, i, c),
        };
        if let Some(d) = r.retry_initial.zip(r.retry_max).filter(|(a, b)| a > b) {
            c.problem(
                key("retry_max"),
                format!(
                    "{} is shorter than retry_initial ({}); the wait only grows",
                    super::types::format_duration(d.1),
                    super::types::format_duration(d.0)
                ),
            );
        }
        let Some(kind) = kind else { continue };
        out.push(NotifyConfig {
            name,
            kind,
            filter: NotifyFilter {
                events: r.events.unwrap_or_default(),
                statuses: r.statuses.unwrap_or_default(),
                min_monthly_impact: r.min_monthly_impact,
                accounts: r.accounts.unwrap_or_default(),
            },
            digest: r.digest,
            timeout: r.timeout.unwrap_or(Duration::from_secs(10)),
            retry_initial: r.retry_initial.unwrap_or(Duration::from_secs(30)),
            retry_max: r.retry_max.unwrap_or(Duration::from_secs(3600)),
        });
    }
    out
}

/// The keys of `r` that are set, by name, among `names`.
fn set_keys(r: &RawNotify, names: &[&'static str]) -> Vec<&'static str> {
    let given = |k: &str| match k {
        "url_file" => r.url_file.is_some(),
        "smtp_host" => r.smtp_host.is_some(),
        "smtp_port" => r.smtp_port.is_some(),
        "tls" => r.tls.is_some(),
        "username" => r.username.is_some(),
        "password_file" => r.password_file.is_some(),
        "from" => r.from.is_some(),
        "to" => r.to.is_some(),
        _ => false,
    };
    names.iter().copied().filter(|k| given(k)).collect()
}

/// A webhook, Teams or Slack channel: its URL.
fn url_kind(
    r: &RawNotify,
    kind: NotifyKindName,
    name: &str,
    i: usize,
    c: &mut Check<'_>,
) -> Option<NotifyKind> {
    for k in set_keys(r, &EMAIL_KEYS) {
        c.problem(
            format!("notify[{i}].{k}"),
            format!("only for kind = \"email\"; this channel is kind = \"{}\"", kind.as_str()),
        );
    }
    let key = format!("notify[{i}].url_file");
    if name.is_empty() {
        return None;
    }
    let what = match kind {
        NotifyKindName::Teams => "the Teams incoming webhook (or Workflows) URL",
        NotifyKindName::Slack => "the Slack incoming webhook URL",
        _ => "the webhook URL",
    };
    let credential = format!("notify-{name}-url");
    let url = secret_named(c, &key, &credential, what, r.url_file.clone())?;
    match url::Url::parse(url.expose()) {
        Ok(u) if matches!(u.scheme(), "https" | "http") && u.host().is_some() => {}
        // The value is a secret: say where it came from, never what it is.
        _ => {
            c.problem(
                &key,
                format!(
                    "the file {} does not hold an http(s) URL; it should hold only the URL",
                    url.origin()
                ),
            );
            return None;
        }
    }
    Some(match kind {
        NotifyKindName::Teams => NotifyKind::Teams { url },
        NotifyKindName::Slack => NotifyKind::Slack { url },
        _ => NotifyKind::Webhook { url },
    })
}

/// An e-mail channel: the SMTP settings, the password when a user name is set.
fn email(r: &RawNotify, name: &str, i: usize, c: &mut Check<'_>) -> Option<NotifyKind> {
    let key = |k: &str| format!("notify[{i}].{k}");
    if r.url_file.is_some() {
        c.problem(key("url_file"), "not for kind = \"email\"; use smtp_host, from and to");
    }
    let host = c.required(&key("smtp_host"), r.smtp_host.clone(), "required: the SMTP server");
    let from = c.required(&key("from"), r.from.clone(), "required: the sender address");
    let to = c.required(
        &key("to"),
        r.to.clone(),
        "required: the recipients, e.g. [\"ops@example.com\"]",
    );
    let tls = r.tls.unwrap_or(SmtpTls::Starttls);
    if let Some(f) = &from {
        mailbox(c, &key("from"), f);
    }
    for t in to.iter().flatten() {
        mailbox(c, &key("to"), t);
    }
    if let (Some(h), SmtpTls::None) = (&host, tls) {
        let loopback =
            h.eq_ignore_ascii_case("localhost") || hosts::as_ip(h).is_some_and(hosts::is_loopback);
        if !loopback {
            c.problem(
                key("tls"),
                format!(
                    "\"none\" would send the SMTP password and the messages in clear text to \
                     {h}; it is only allowed for a relay on this host (smtp_host = \
                     \"127.0.0.1\" or \"localhost\"). Use \"starttls\" or \"tls\""
                ),
            );
        }
    }
    let password = match (&r.username, &r.password_file) {
        (Some(_), file) if !name.is_empty() => secret_named(
            c,
            &key("password_file"),
            &format!("notify-{name}-password"),
            "the SMTP password of username",
            file.clone(),
        ),
        (None, Some(_)) => {
            c.problem(key("password_file"), "a password needs a username; set username too");
            None
        }
        _ => None,
    };
    if r.username.is_some() && password.is_none() {
        return None;
    }
    Some(NotifyKind::Email(Box::new(EmailConfig {
        smtp_port: r.smtp_port.unwrap_or(tls.default_port()),
        smtp_host: host?,
        tls,
        username: r.username.clone(),
        password,
        from: from?,
        to: to?,
    })))
}

/// Checks that `text` is an e-mail address (`a@b.example` or `Name <a@b.example>`).
fn mailbox(c: &mut Check<'_>, key: &str, text: &str) {
    if text.parse::<lettre::message::Mailbox>().is_err() {
        c.problem(
            key,
            format!("{text:?} is not an e-mail address; e.g. \"ops@example.com\" or \"mpsync <mpsync@example.com>\""),
        );
    }
}
