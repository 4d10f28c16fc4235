//! Sending one [`Delivery`] to one channel, and what the answer means: accepted, worth
//! repeating (a timeout, a connection failure, HTTP 408, 429 or 5xx, an SMTP 4xx), or refused
//! for good (any other HTTP 4xx, a redirect, an SMTP 5xx). Webhook, Teams and Slack are one
//! JSON POST each ([`HttpTransport`]); e-mail goes over SMTP with lettre ([`EmailTransport`]).
//!
//! The URL and the SMTP password are secrets: every error and answer excerpt passes the
//! channel's [`Scrubber`] (the URL, its path, its path segments and query, the password), and
//! reqwest's errors are taken without their URL.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, HeaderValue};

use super::message::Delivery;
use crate::config::{EmailConfig, NotifyConfig, NotifyKind, Secret, SmtpTls};
use crate::upstream::{MIN_BODY_SECRET_LEN, Scrubber};

/// The most characters of a receiver's answer kept in messages.
const EXCERPT_CHARS: usize = 200;

/// What the receiver answered to an accepted delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// "HTTP 200", "SMTP 250".
    pub status: String,
    /// The start of its body or reply text, secrets cut out.
    pub excerpt: String,
}

/// Why a delivery did not go through.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Worth repeating later (timeouts, connection failures, 408, 429, 5xx, SMTP 4xx).
    #[error("{0}")]
    Retry(String),
    /// The receiver refused this delivery for good (another 4xx, a redirect, SMTP 5xx): it
    /// is skipped.
    #[error("{0}")]
    Refused(String),
}

/// The future one send returns.
pub type Sending<'a> = Pin<Box<dyn Future<Output = Result<Answer, SendError>> + Send + 'a>>;

/// Something that delivers to one channel. The daemon's are [`HttpTransport`] and
/// [`EmailTransport`]; tests use their own.
pub trait Transport: Send + Sync {
    /// Sends `d` at `now`.
    fn send<'a>(&'a self, d: &'a Delivery, now: DateTime<Utc>) -> Sending<'a>;
}

/// Why a channel's transport cannot be built.
#[derive(Debug, thiserror::Error)]
#[error("cannot set up notification channel {channel}: {reason}")]
pub struct SetupError {
    /// The channel.
    pub channel: String,
    /// Why (no secret).
    pub reason: String,
}

/// The transport `cfg` asks for.
pub fn transport(cfg: &NotifyConfig) -> Result<Arc<dyn Transport>, SetupError> {
    Ok(match &cfg.kind {
        NotifyKind::Email(e) => Arc::new(EmailTransport::new(&cfg.name, e, cfg.timeout)?),
        NotifyKind::Webhook { url } | NotifyKind::Teams { url } | NotifyKind::Slack { url } => {
            Arc::new(HttpTransport::new(cfg, url)?)
        }
    })
}

/// Every form of a channel's secrets that could show up in an error or an answer.
pub fn scrubber(cfg: &NotifyConfig) -> Scrubber {
    let mut forms: Vec<String> = Vec::new();
    for secret in cfg.kind.secrets() {
        let s = secret.expose();
        forms.push(s.to_owned());
        if let Ok(u) = url::Url::parse(s) {
            forms.push(u.path().to_owned());
            forms.extend(u.query().map(str::to_owned));
            forms.extend(u.path_segments().into_iter().flatten().map(str::to_owned));
        }
    }
    Scrubber::new(forms.iter().filter(|f| f.trim().len() >= MIN_BODY_SECRET_LEN))
}

/// `text` cut to [`EXCERPT_CHARS`] on one line, secrets cut out.
fn excerpt(scrubber: &Scrubber, text: &str) -> String {
    let clean = scrubber.scrub(text);
    let one_line: String = clean.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut out: String = one_line.chars().take(EXCERPT_CHARS).collect();
    if one_line.chars().count() > EXCERPT_CHARS {
        out.push('…');
    }
    out
}

/// An error and its causes on one line (reqwest's and lettre's say little at the top).
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let t = c.to_string();
        if !s.contains(&t) {
            s += &format!(": {t}");
        }
        cause = c.source();
    }
    s
}

/// A webhook, Teams or Slack channel: one JSON POST per delivery.
pub struct HttpTransport {
    kind: &'static str,
    url: Secret,
    http: reqwest::Client,
    scrubber: Scrubber,
    timeout: Duration,
}

impl HttpTransport {
    fn new(cfg: &NotifyConfig, url: &Secret) -> Result<HttpTransport, SetupError> {
        crate::upstream::install_crypto_provider();
        let http = reqwest::Client::builder()
            .connect_timeout(cfg.timeout.min(Duration::from_secs(5)))
            .timeout(cfg.timeout)
            // A receiver that moved is a configuration problem, not something to follow
            // (a redirected POST may become a GET).
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("mpsync/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| SetupError { channel: cfg.name.clone(), reason: e.to_string() })?;
        Ok(HttpTransport {
            kind: cfg.kind.name().as_str(),
            url: url.clone(),
            http,
            scrubber: scrubber(cfg),
            timeout: cfg.timeout,
        })
    }

    async fn post(&self, d: &Delivery, now: DateTime<Utc>) -> Result<Answer, SendError> {
        let body = match self.kind {
            "teams" => d.teams_json(),
            "slack" => d.slack_json(),
            _ => d.webhook_json(now),
        };
        let mut req = self
            .http
            .post(self.url.expose())
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .header("Idempotency-Key", &d.id)
            .header("X-Mpsync-Delivery-Id", &d.id)
            .header("X-Mpsync-Payload-Version", super::message::PAYLOAD_VERSION.to_string());
        if let Some(id) = d.event_id() {
            req = req.header("X-Mpsync-Event-Id", id.to_string());
        }
        let sent = req.body(body.to_string()).send().await.map_err(|e| {
            let what = if e.is_timeout() {
                format!("no answer within {}s", self.timeout.as_secs_f64())
            } else {
                chain(&e.without_url())
            };
            SendError::Retry(excerpt(&self.scrubber, &format!("{} receiver: {what}", self.kind)))
        })?;
        let status = sent.status();
        // Only the start of the answer matters; a body that cannot be read is an empty one.
        let text = sent.text().await.unwrap_or_default();
        let answer = Answer {
            status: format!("HTTP {}", status.as_u16()),
            excerpt: excerpt(&self.scrubber, &text),
        };
        let said = if answer.excerpt.is_empty() {
            answer.status.clone()
        } else {
            format!("{}: {}", answer.status, answer.excerpt)
        };
        match status {
            s if s.is_success() => Ok(answer),
            StatusCode::REQUEST_TIMEOUT | StatusCode::TOO_MANY_REQUESTS => {
                Err(SendError::Retry(format!("{} receiver answered {said}", self.kind)))
            }
            s if s.is_server_error() => {
                Err(SendError::Retry(format!("{} receiver answered {said}", self.kind)))
            }
            s if s.is_redirection() => Err(SendError::Refused(format!(
                "{} receiver answered {said} (a redirect: check the URL)",
                self.kind
            ))),
            _ => Err(SendError::Refused(format!("{} receiver refused it: {said}", self.kind))),
        }
    }
}

impl Transport for HttpTransport {
    fn send<'a>(&'a self, d: &'a Delivery, now: DateTime<Utc>) -> Sending<'a> {
        Box::pin(self.post(d, now))
    }
}

/// An e-mail channel: one message per delivery over SMTP (STARTTLS, implicit TLS, or plain
/// to a relay on this host).
pub struct EmailTransport {
    smtp: lettre::AsyncSmtpTransport<lettre::Tokio1Executor>,
    config: EmailConfig,
    scrubber: Scrubber,
    timeout: Duration,
}

impl EmailTransport {
    fn new(name: &str, e: &EmailConfig, timeout: Duration) -> Result<EmailTransport, SetupError> {
        use lettre::AsyncSmtpTransport as Smtp;
        use lettre::Tokio1Executor as Tokio;
        crate::upstream::install_crypto_provider();
        let setup = |reason: String| SetupError { channel: name.to_owned(), reason };
        let builder = match e.tls {
            SmtpTls::Starttls => Smtp::<Tokio>::starttls_relay(&e.smtp_host),
            SmtpTls::Tls => Smtp::<Tokio>::relay(&e.smtp_host),
            SmtpTls::None => Ok(Smtp::<Tokio>::builder_dangerous(&e.smtp_host)),
        }
        .map_err(|err| setup(format!("TLS set-up for {}: {err}", e.smtp_host)))?;
        let mut builder = builder.port(e.smtp_port).timeout(Some(timeout));
        if let (Some(user), Some(password)) = (&e.username, &e.password) {
            builder =
                builder.credentials(lettre::transport::smtp::authentication::Credentials::new(
                    user.clone(),
                    password.expose().to_owned(),
                ));
        }
        let scrubber = Scrubber::new(
            e.password.iter().map(Secret::expose).filter(|p| p.trim().len() >= MIN_BODY_SECRET_LEN),
        );
        Ok(EmailTransport { smtp: builder.build(), config: e.clone(), scrubber, timeout })
    }

    fn message(&self, d: &Delivery) -> Result<lettre::Message, SendError> {
        use lettre::message::header::ContentType;
        let refused = |what: String| SendError::Refused(what);
        let (subject, body) = d.email_text();
        let from = self.config.from.parse().map_err(|e| refused(format!("from: {e}")))?;
        let mut m = lettre::Message::builder()
            .from(from)
            .subject(subject)
            // A stable Message-ID: a repeated delivery is the same message to mail systems.
            .message_id(Some(format!("<mpsync.{}.{}@mpsync.invalid>", d.id, d.channel)));
        for to in &self.config.to {
            m = m.to(to.parse().map_err(|e| refused(format!("to {to:?}: {e}")))?);
        }
        m.header(ContentType::TEXT_PLAIN).body(body).map_err(|e| refused(format!("message: {e}")))
    }

    async fn deliver(&self, d: &Delivery) -> Result<Answer, SendError> {
        use lettre::AsyncTransport as _;
        let message = self.message(d)?;
        let sent = tokio::time::timeout(self.timeout, self.smtp.send(message)).await;
        let host = &self.config.smtp_host;
        match sent {
            Err(_) => Err(SendError::Retry(format!(
                "SMTP server {host}: no answer within {}s",
                self.timeout.as_secs_f64()
            ))),
            Ok(Ok(resp)) => Ok(Answer {
                status: format!("SMTP {}", resp.code()),
                excerpt: excerpt(&self.scrubber, &resp.message().collect::<Vec<_>>().join(" ")),
            }),
            Ok(Err(e)) => {
                let what = excerpt(&self.scrubber, &chain(&e));
                if e.is_permanent() {
                    Err(SendError::Refused(format!("SMTP server {host} refused it: {what}")))
                } else {
                    Err(SendError::Retry(format!("SMTP server {host}: {what}")))
                }
            }
        }
    }
}

impl Transport for EmailTransport {
    fn send<'a>(&'a self, d: &'a Delivery, _now: DateTime<Utc>) -> Sending<'a> {
        Box::pin(self.deliver(d))
    }
}
