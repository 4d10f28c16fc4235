//! What one delivery says, in each receiver's shape: the versioned JSON of the generic
//! webhook, a Teams Adaptive Card, a Slack incoming-webhook message, and an e-mail's subject
//! and plain-text body. A [`Delivery`] is one event, a digest of several, or a test; its
//! [`Delivery::id`] is stable (an event's id, a digest's channel and last event id), so a
//! delivery repeated after a failure or a restart carries the same id and the receiver can
//! drop the second copy.
//!
//! Pure: no I/O, no clock (the send time is passed in).

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

use crate::events::{Event, EventId, EventKind, money_words, span_words};
use crate::reconcile::money;

/// The webhook payload's version. A change that removes or renames a field bumps it.
pub const PAYLOAD_VERSION: u32 = 1;

/// The most events a Teams, Slack or e-mail digest lists one by one (the webhook gets all).
const LISTED: usize = 30;

/// What a delivery is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryKind {
    /// One event.
    Event,
    /// The matching events since the channel's last digest.
    Digest,
    /// A sample from `mpsync notify test`.
    Test,
}

impl DeliveryKind {
    fn as_str(self) -> &'static str {
        match self {
            DeliveryKind::Event => "event",
            DeliveryKind::Digest => "digest",
            DeliveryKind::Test => "test",
        }
    }
}

/// One message to one channel.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The channel's name.
    pub channel: String,
    /// What it is.
    pub kind: DeliveryKind,
    /// Its stable id: `event-<id>`, `digest-<channel>-<last id>` or `test-<ms>`.
    pub id: String,
    /// The events, in id order (one for an event or a test).
    pub events: Vec<Event>,
}

impl Delivery {
    /// One event.
    pub fn event(channel: &str, ev: Event) -> Delivery {
        Delivery {
            channel: channel.to_owned(),
            kind: DeliveryKind::Event,
            id: format!("event-{}", ev.id),
            events: vec![ev],
        }
    }

    /// A digest of `events` (not empty), up to event `upto`.
    pub fn digest(channel: &str, events: Vec<Event>, upto: EventId) -> Delivery {
        Delivery {
            channel: channel.to_owned(),
            kind: DeliveryKind::Digest,
            id: format!("digest-{channel}-{upto}"),
            events,
        }
    }

    /// The sample `mpsync notify test` sends at `now`: a made-up discrepancy, marked as a
    /// test in its text, its id (0) and the payload's `test` flag.
    pub fn test(channel: &str, now: DateTime<Utc>) -> Delivery {
        let mut ev = Event::new(
            EventKind::DiscrepancyOpened,
            now,
            "TEST from mpsync (`mpsync notify test`): this is a sample notification, no \
             discrepancy exists. Example Customer Ltd is billed 10 CloudFilter users and uses \
             12: 6.00 a month missed."
                .to_owned(),
        );
        ev.account = Some("0".to_owned());
        ev.account_name = Some("Example Customer Ltd (test)".to_owned());
        ev.products = vec!["CloudFilter".to_owned()];
        ev.status_from = Some(crate::reconcile::Status::Pending);
        ev.status_to = Some(crate::reconcile::Status::UnderBilled);
        ev.monthly_impact = Some(6.0);
        ev.accrued = Some(0.0);
        ev.since = Some(now);
        Delivery {
            channel: channel.to_owned(),
            kind: DeliveryKind::Test,
            id: format!("test-{}", now.timestamp_millis()),
            events: vec![ev],
        }
    }

    /// The single event's id (not for a digest).
    pub fn event_id(&self) -> Option<EventId> {
        match self.kind {
            DeliveryKind::Digest => None,
            _ => self.events.first().map(|e| e.id),
        }
    }

    /// The headline: the event's, or "N events" for a digest.
    pub fn title(&self) -> String {
        let prefix = if self.kind == DeliveryKind::Test { "[TEST] " } else { "" };
        match (self.kind, self.events.as_slice()) {
            (DeliveryKind::Digest, evs) => {
                let missed: f64 = evs
                    .iter()
                    .filter(|e| e.kind == EventKind::DiscrepancyOpened)
                    .filter_map(|e| e.monthly_impact)
                    .filter(|m| *m > 0.0)
                    .sum();
                let opened = evs.iter().filter(|e| e.kind == EventKind::DiscrepancyOpened).count();
                let mut t = format!("mpsync digest: {} event{}", evs.len(), plural(evs.len()));
                if opened > 0 {
                    t += &format!(
                        ", {opened} new discrepanc{}",
                        if opened == 1 { "y" } else { "ies" }
                    );
                    if missed > 0.0 {
                        t += &format!(" ({} a month missed)", money(missed));
                    }
                }
                t
            }
            (_, [ev, ..]) => format!("{prefix}{}", headline(ev)),
            (_, []) => format!("{prefix}mpsync"),
        }
    }

    /// The generic webhook's JSON (see the README's payload reference).
    pub fn webhook_json(&self, sent_at: DateTime<Utc>) -> Value {
        json!({
            "version": PAYLOAD_VERSION,
            "id": self.id,
            "type": self.kind.as_str(),
            "test": self.kind == DeliveryKind::Test,
            "channel": self.channel,
            "sent_at": sent_at.to_rfc3339_opts(SecondsFormat::Secs, true),
            "title": self.title(),
            "events": self.events,
        })
    }

    /// The Teams message: one Adaptive Card 1.4 attachment, the shape both the incoming
    /// webhook and a Workflows "post to a channel when a webhook request is received" flow
    /// take.
    pub fn teams_json(&self) -> Value {
        let mut body = vec![json!({
            "type": "TextBlock", "size": "Medium", "weight": "Bolder",
            "text": self.title(), "wrap": true,
        })];
        match self.kind {
            DeliveryKind::Digest => {
                for ev in self.events.iter().take(LISTED) {
                    body.push(json!({"type": "TextBlock", "text": format!("- {}", ev.text), "wrap": true, "spacing": "Small"}));
                }
                if let Some(more) = self.more() {
                    body.push(
                        json!({"type": "TextBlock", "text": more, "wrap": true, "isSubtle": true}),
                    );
                }
            }
            _ => {
                let ev = &self.events[0];
                body.push(json!({"type": "TextBlock", "text": ev.text, "wrap": true}));
                let facts: Vec<Value> =
                    facts(ev).into_iter().map(|(t, v)| json!({"title": t, "value": v})).collect();
                body.push(json!({"type": "FactSet", "facts": facts}));
            }
        }
        body.push(json!({"type": "TextBlock", "text": format!("mpsync · {}", self.id), "isSubtle": true, "size": "Small", "wrap": true}));
        json!({
            "type": "message",
            "attachments": [{
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": null,
                "content": {
                    "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                    "type": "AdaptiveCard",
                    "version": "1.4",
                    "body": body,
                },
            }],
        })
    }

    /// The Slack incoming-webhook message: `text` (the notification's fallback) and
    /// `blocks` (header, sections, context), within Slack's limits (a header's 150
    /// characters, a section's 3000, 50 blocks).
    pub fn slack_json(&self) -> Value {
        let title = self.title();
        let mut blocks = vec![json!({
            "type": "header",
            "text": {"type": "plain_text", "text": cut(&title, 150)},
        })];
        match self.kind {
            DeliveryKind::Digest => {
                let mut section = String::new();
                for ev in self.events.iter().take(LISTED) {
                    let line = format!("• {}\n", slack_escape(&ev.text));
                    if section.len() + line.len() > 2900 {
                        blocks.push(mrkdwn_section(&section));
                        section.clear();
                    }
                    section += &line;
                }
                if let Some(more) = self.more() {
                    section += &format!("_{more}_");
                }
                if !section.is_empty() {
                    blocks.push(mrkdwn_section(&section));
                }
            }
            _ => {
                let ev = &self.events[0];
                blocks.push(mrkdwn_section(&slack_escape(&ev.text)));
                let fields: Vec<Value> = facts(ev)
                    .into_iter()
                    .take(10)
                    .map(|(t, v)| {
                        json!({"type": "mrkdwn", "text": cut(&format!("*{t}*\n{}", slack_escape(&v)), 2000)})
                    })
                    .collect();
                if !fields.is_empty() {
                    blocks.push(json!({"type": "section", "fields": fields}));
                }
            }
        }
        blocks.push(json!({
            "type": "context",
            "elements": [{"type": "mrkdwn", "text": format!("mpsync · {}", self.id)}],
        }));
        blocks.truncate(50);
        json!({"text": cut(&title, 3000), "blocks": blocks})
    }

    /// An e-mail's subject and plain-text body.
    pub fn email_text(&self) -> (String, String) {
        let subject = format!("[mpsync] {}", self.title());
        let mut body = String::new();
        match self.kind {
            DeliveryKind::Digest => {
                for ev in self.events.iter().take(LISTED) {
                    body += &format!("- {}\n", ev.text);
                }
                if let Some(more) = self.more() {
                    body += &format!("\n{more}\n");
                }
            }
            _ => {
                let ev = &self.events[0];
                body += &format!("{}\n\n", ev.text);
                for (t, v) in facts(ev) {
                    body += &format!("{t}: {v}\n");
                }
            }
        }
        body += &format!("\n-- \nmpsync, {} (de-duplicate on this id)\n", self.id);
        (subject, body)
    }

    /// "…and N more events", when a digest lists fewer than it holds.
    fn more(&self) -> Option<String> {
        let more = self.events.len().saturating_sub(LISTED);
        (more > 0).then(|| format!("…and {more} more event{}", plural(more)))
    }
}

/// "s" unless one.
fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// An event's headline: what happened, to whom.
fn headline(ev: &Event) -> String {
    let who = ev
        .account_name
        .clone()
        .or_else(|| ev.account.as_ref().map(|a| format!("account {a}")))
        .or_else(|| ev.source.clone());
    let what = match ev.kind {
        EventKind::DiscrepancyOpened => match ev.status_to {
            Some(s) => format!("New discrepancy ({})", s.as_str()),
            None => "New discrepancy".to_owned(),
        },
        EventKind::DiscrepancyChanged => "Discrepancy changed".to_owned(),
        EventKind::DiscrepancyResolved => "Discrepancy resolved".to_owned(),
        EventKind::UnmappedAppeared => "Unmapped usage".to_owned(),
        EventKind::SourceFailing => "Source failing".to_owned(),
        EventKind::SourceRecovered => "Source recovered".to_owned(),
        EventKind::PushFailed => "Gradient push failed".to_owned(),
        EventKind::WritebackFailed => "Write-back failed".to_owned(),
    };
    let mut t = match who {
        Some(w) => format!("{what}: {w}"),
        None => what,
    };
    if let (Some(m), EventKind::DiscrepancyOpened | EventKind::DiscrepancyChanged) =
        (ev.monthly_impact, ev.kind)
    {
        t += &format!(" ({})", money_words(m, true));
    }
    t
}

/// The facts of one event, as (title, value), in the order people read them.
pub fn facts(ev: &Event) -> Vec<(&'static str, String)> {
    let mut f = Vec::new();
    if let Some(a) = &ev.account {
        let shown = match &ev.account_name {
            Some(n) => format!("{n} ({a})"),
            None => a.clone(),
        };
        f.push(("Account", shown));
    }
    if !ev.products.is_empty() {
        f.push(("Products", ev.products.join(", ")));
    }
    match (ev.status_from, ev.status_to) {
        (Some(a), Some(b)) => f.push(("Status", format!("{} → {}", a.as_str(), b.as_str()))),
        (None, Some(b)) => f.push(("Status", b.as_str().to_owned())),
        (Some(a), None) => f.push(("Status", format!("{} → (gone)", a.as_str()))),
        (None, None) => {}
    }
    if let Some(m) = ev.monthly_impact {
        f.push(("Monthly impact", money_words(m, true)));
    }
    if let Some(a) = ev.accrued {
        let mut v = money_words(a, false);
        if let Some(s) = ev.excluded_seconds.filter(|s| *s > 0) {
            v += &format!(" ({} not counted: an input was stale)", span_words(s));
        }
        f.push(("Cost so far", v));
    }
    if let Some(s) = ev.since {
        f.push(("Since", s.to_rfc3339_opts(SecondsFormat::Secs, true)));
    }
    if let Some(c) = ev.cause {
        f.push(("Resolved by", c.words().to_owned()));
    }
    if let Some(s) = &ev.source {
        f.push(("Source", s.clone()));
    }
    if let Some(r) = ev.run_id {
        f.push(("Run", r.to_string()));
    }
    if let Some(d) = &ev.detail {
        f.push(("Detail", d.clone()));
    }
    f.push(("Event", format!("{} at {}", ev.id, ev.at.to_rfc3339_opts(SecondsFormat::Secs, true))));
    f
}

fn mrkdwn_section(text: &str) -> Value {
    json!({"type": "section", "text": {"type": "mrkdwn", "text": cut(text, 3000)}})
}

/// Slack reads `&`, `<` and `>` as markup (`<!channel>` would ping everyone).
fn slack_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// `s` cut to at most `max` characters, with "…" when cut.
fn cut(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

#[cfg(test)]
#[path = "message_tests.rs"]
mod tests;
