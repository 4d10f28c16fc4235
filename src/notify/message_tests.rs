use chrono::{DateTime, Utc};
use serde_json::Value;

use super::*;
use crate::events::Cause;
use crate::reconcile::Status;

fn t(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn opened(id: EventId, impact: f64) -> Event {
    let mut ev = Event::new(
        EventKind::DiscrepancyOpened,
        t("2026-03-01T08:00:00Z"),
        format!("Acme <Ltd> & Co is billed 10 CloudFilter users and uses 12 (event {id})"),
    );
    ev.id = id;
    ev.account = Some("42".into());
    ev.account_name = Some("Acme <Ltd> & Co".into());
    ev.products = vec!["CloudFilter".into()];
    ev.status_from = Some(Status::Pending);
    ev.status_to = Some(Status::UnderBilled);
    ev.monthly_impact = Some(impact);
    ev.accrued = Some(1.5);
    ev.since = Some(t("2026-02-28T08:00:00Z"));
    ev
}

#[test]
fn the_webhook_payload_is_versioned_and_carries_each_event_with_its_id() {
    let d = Delivery::event("ops", opened(7, 24.0));
    let v = d.webhook_json(t("2026-03-01T08:00:05Z"));
    assert_eq!(v["version"], 1);
    assert_eq!(v["id"], "event-7");
    assert_eq!(v["type"], "event");
    assert_eq!(v["test"], false);
    assert_eq!(v["channel"], "ops");
    assert_eq!(v["sent_at"], "2026-03-01T08:00:05Z");
    let ev = &v["events"][0];
    assert_eq!(ev["id"], 7);
    assert_eq!(ev["kind"], "discrepancy_opened");
    assert_eq!(ev["status_to"], "under_billed");
    assert_eq!(ev["monthly_impact"], 24.0);
    assert_eq!(ev["row"], Value::Null, "absent fields are left out");
    assert_eq!(d.event_id(), Some(7));

    let digest = Delivery::digest("ops", vec![opened(7, 24.0), opened(9, 6.0)], 11);
    let v = digest.webhook_json(t("2026-03-01T08:00:05Z"));
    assert_eq!((v["id"].as_str(), v["type"].as_str()), (Some("digest-ops-11"), Some("digest")));
    let ids: Vec<u64> =
        v["events"].as_array().unwrap().iter().map(|e| e["id"].as_u64().unwrap()).collect();
    assert_eq!(ids, [7, 9]);
    assert_eq!(digest.event_id(), None, "a digest has no single event id");
    assert_eq!(v["title"], "mpsync digest: 2 events, 2 new discrepancies (30.00 a month missed)");
}

#[test]
fn teams_gets_an_adaptive_card_1_4_in_a_message_attachment() {
    let v = Delivery::event("teams", opened(7, 24.0)).teams_json();
    assert_eq!(v["type"], "message");
    let a = &v["attachments"][0];
    assert_eq!(a["contentType"], "application/vnd.microsoft.card.adaptive");
    assert_eq!(a["contentUrl"], Value::Null);
    let card = &a["content"];
    assert_eq!(card["type"], "AdaptiveCard");
    assert_eq!(card["version"], "1.4");
    assert_eq!(card["$schema"], "http://adaptivecards.io/schemas/adaptive-card.json");
    let body = card["body"].as_array().unwrap();
    assert!(body.iter().all(|b| b["type"] == "TextBlock" || b["type"] == "FactSet"), "{body:?}");
    assert!(body[0]["text"].as_str().unwrap().contains("24.00 a month missed"), "{}", body[0]);
    let facts = body.iter().find(|b| b["type"] == "FactSet").unwrap()["facts"].as_array().unwrap();
    let fact = |t: &str| facts.iter().find(|f| f["title"] == t).map(|f| f["value"].clone());
    assert_eq!(fact("Account"), Some("Acme <Ltd> & Co (42)".into()));
    assert_eq!(fact("Status"), Some("pending → under_billed".into()));
    assert_eq!(fact("Cost so far"), Some("1.50 missed".into()));
}

#[test]
fn slack_gets_text_and_escaped_blocks_within_its_limits() {
    let v = Delivery::event("slack", opened(7, -3.5)).slack_json();
    assert!(v["text"].as_str().unwrap().contains("3.50 a month overcharged"), "{v}");
    let blocks = v["blocks"].as_array().unwrap();
    assert_eq!(blocks[0]["type"], "header");
    assert_eq!(blocks[0]["text"]["type"], "plain_text");
    let section = blocks[1]["text"]["text"].as_str().unwrap();
    assert!(section.contains("Acme &lt;Ltd&gt; &amp; Co"), "Slack markup escaped: {section}");
    assert_eq!(blocks.last().unwrap()["type"], "context");

    let many: Vec<Event> = (1..=100).map(|i| opened(i, 1.0)).collect();
    let v = Delivery::digest("slack", many, 100).slack_json();
    let blocks = v["blocks"].as_array().unwrap();
    assert!(blocks.len() <= 50);
    for b in blocks {
        if let Some(text) = b["text"]["text"].as_str() {
            assert!(text.chars().count() <= 3000);
        }
    }
    let all: String = blocks.iter().filter_map(|b| b["text"]["text"].as_str()).collect();
    assert!(all.contains("…and 70 more events"), "{all}");
}

#[test]
fn the_email_has_a_subject_a_plain_body_and_the_id() {
    let mut ev = opened(12, 24.0);
    ev.kind = EventKind::DiscrepancyResolved;
    ev.status_to = Some(Status::Match);
    ev.status_from = Some(Status::UnderBilled);
    ev.cause = Some(Cause::BillingChanged);
    let (subject, body) = Delivery::event("mail", ev).email_text();
    assert_eq!(subject, "[mpsync] Discrepancy resolved: Acme <Ltd> & Co");
    assert!(body.contains("Resolved by: billing changed"), "{body}");
    assert!(body.contains("Status: under_billed → match"), "{body}");
    assert!(body.contains("event-12"), "{body}");
}

#[test]
fn a_test_delivery_says_so_everywhere() {
    let d = Delivery::test("ops", t("2026-03-01T08:00:00Z"));
    assert_eq!(d.kind, DeliveryKind::Test);
    assert!(d.title().starts_with("[TEST] "));
    let v = d.webhook_json(t("2026-03-01T08:00:00Z"));
    assert_eq!((v["test"].as_bool(), v["type"].as_str()), (Some(true), Some("test")));
    assert!(v["events"][0]["text"].as_str().unwrap().starts_with("TEST from mpsync"));
    assert!(d.email_text().0.contains("[TEST]"));
}
