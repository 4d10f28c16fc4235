//! Notifications from the real daemon: `mpsync sim --keys-dir` plants discrepancies, the first
//! reconciliation commits their events, and a `[[notify]]` webhook on a loopback receiver is
//! sent each one. Killed with SIGKILL while the first delivery is in flight (committed, not
//! acknowledged) and restarted, the daemon delivers every event, none acknowledged twice. A
//! receiver that keeps failing turns `notify:<name>` to warn in `/v1/health` and shows in
//! `/metrics` — without the URL's token anywhere — and once it recovers gets each event once.

use std::collections::BTreeMap;
use std::path::Path;

use mpsync::events::{Event, EventId};
use mpsync::store::Store;
use serde_json::Value;

use crate::support::common::{TestDir, wait_for};
use crate::support::daemon::{DEADLINE, Daemon};
use crate::support::e2e::{SimProcess, pin_for_test};
use crate::support::receivers::{HttpReceiver, Received, Reply};
use crate::support::sync::{metric, runs, start_daemon};
use crate::support::writeback::state_dir_of;

const TOKEN: &str = "hook-T0KEN-0d5e77a1";

/// Adds a webhook channel `hook` (plus `extra` keys) pointing at `http` to the config.
fn add_channel(td: &TestDir, config: &Path, http: &HttpReceiver, extra: &str) {
    let url = td.secret("hook-url", &http.url(&format!("hook/{TOKEN}")));
    let mut text = std::fs::read_to_string(config).unwrap();
    text += &format!(
        "\n[[notify]]\nname = \"hook\"\nkind = \"webhook\"\nurl_file = \"{}\"\n{extra}",
        url.display()
    );
    std::fs::write(config, text).unwrap();
}

/// Every event in the store (the daemon stopped).
fn stored_events(state_dir: &Path) -> Vec<Event> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let dir = state_dir.to_path_buf();
        let store = tokio::task::spawn_blocking(move || Store::open(&dir)).await.unwrap().unwrap();
        store.events_after(0, usize::MAX).await.unwrap()
    })
}

/// The event id of each request, and how many times each id was acknowledged (2xx).
fn acknowledged(received: &[Received]) -> BTreeMap<EventId, usize> {
    let mut acks = BTreeMap::new();
    for r in received.iter().filter(|r| r.answered.is_some_and(|s| s < 300)) {
        let id: EventId = r.header("x-mpsync-event-id").unwrap().parse().unwrap();
        assert_eq!(r.body["events"][0]["id"].as_u64(), Some(id), "header and payload agree");
        assert_eq!(r.header("idempotency-key"), Some(format!("event-{id}").as_str()));
        *acks.entry(id).or_insert(0) += 1;
    }
    acks
}

/// Waits until no run is going and `notify:hook` has nothing pending; returns its check.
fn settled(d: &Daemon) -> Value {
    wait_for(DEADLINE, "runs to finish and notifications to drain", || {
        let idle = runs(d).iter().all(|r| r["outcome"] != "running");
        let health = d.get("/v1/health").json();
        let check = health["checks"]["notify:hook"][0].clone();
        (idle && check["observedValue"] == 0 && check["status"] == "pass").then_some(check)
    })
}

/// Stops the daemon with SIGTERM and checks it exited cleanly.
fn stop(mut d: Daemon) -> String {
    d.signal("TERM");
    let status = d.wait_exit();
    assert!(status.success(), "{status}: {}", d.stderr());
    d.stderr()
}

#[test]
fn kill_9_between_commit_and_delivery_then_restart_delivers_every_event_once() {
    let td = TestDir::new();
    let sim = SimProcess::start(td.path(), 11, 30);
    pin_for_test(&sim.config, 1);
    let http = HttpReceiver::start();
    // The first delivery reaches the receiver, which never answers.
    http.script(vec![Reply::Hang]);
    add_channel(&td, &sim.config, &http, "timeout = \"60s\"\n");
    let state = state_dir_of(&sim.config);

    let mut d = start_daemon(&sim.config);
    let first = wait_for(DEADLINE, "the first delivery", || http.received().first().cloned());
    d.child.kill().expect("SIGKILL");
    d.child.wait().unwrap();
    let committed = stored_events(&state);
    assert!(committed.len() >= 2, "the first reconciliation raised events: {committed:?}");
    let first_id: EventId = first.header("x-mpsync-event-id").unwrap().parse().unwrap();
    assert_eq!(first_id, committed[0].id, "delivered in id order from the first event");
    assert_eq!(http.received().len(), 1, "nothing else was sent while the first hung");

    // Restarted, the receiver answering: every committed event arrives.
    let d = start_daemon(&sim.config);
    wait_for(DEADLINE, "every committed event to be acknowledged", || {
        let acks = acknowledged(&http.received());
        committed.iter().all(|e| acks.contains_key(&e.id)).then_some(())
    });
    settled(&d);
    stop(d);

    let all = stored_events(&state);
    let acks = acknowledged(&http.received());
    let stored: Vec<EventId> = all.iter().map(|e| e.id).collect();
    assert_eq!(acks.keys().copied().collect::<Vec<_>>(), stored, "every event delivered");
    assert!(acks.values().all(|n| *n == 1), "none acknowledged twice: {acks:?}");
    let tries: Vec<Option<u16>> = http
        .received()
        .iter()
        .filter(|r| r.header("x-mpsync-event-id") == Some(first_id.to_string().as_str()))
        .map(|r| r.answered)
        .collect();
    assert_eq!(tries, [None, Some(200)], "the hung delivery was sent again, with the same id");
    // Delivered in id order.
    let order: Vec<EventId> = http.received()[1..]
        .iter()
        .map(|r| r.header("x-mpsync-event-id").unwrap().parse().unwrap())
        .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{order:?}");
}

#[test]
fn a_failing_receiver_shows_in_health_and_metrics_then_recovers_without_duplicates() {
    let td = TestDir::new();
    let sim = SimProcess::start(td.path(), 12, 30);
    pin_for_test(&sim.config, 1);
    let http = HttpReceiver::start();
    // A receiver in trouble that echoes the URL it was called on (and so its token).
    http.answer(Reply::EchoPath(503));
    add_channel(&td, &sim.config, &http, "retry_initial = \"1s\"\nretry_max = \"2s\"\n");
    let state = state_dir_of(&sim.config);

    let d = start_daemon(&sim.config);
    let check = wait_for(DEADLINE, "notify:hook to warn after failures in a row", || {
        let health = d.get("/v1/health").json();
        let c = health["checks"]["notify:hook"][0].clone();
        (c["status"] == "warn" && c["consecutiveFailures"].as_u64() >= Some(3)).then_some(c)
    });
    let output = check["output"].as_str().unwrap();
    assert!(output.contains("deliveries failed in a row"), "{output}");
    assert!(
        output.contains("webhook receiver answered HTTP 503: no such hook: <redacted>"),
        "{output}"
    );
    assert!(check["observedValue"].as_u64() > Some(0), "events wait: {check}");
    assert_eq!(check["componentId"], "webhook");
    let metrics = d.get("/metrics").body;
    let retries = metric(
        &metrics,
        "mpsync_notify_deliveries_total",
        &[("channel", "hook"), ("result", "retry")],
    );
    assert!(retries >= 3.0, "{metrics}");
    assert!(metric(&metrics, "mpsync_notify_pending", &[("channel", "hook")]) > 0.0, "{metrics}");
    let health = d.get("/v1/health").body;
    for (sink, text) in [("health", &health), ("metrics", &metrics), ("log", &d.stderr())] {
        assert!(!text.contains(TOKEN), "the URL's token is in the {sink}: {text}");
    }

    // The receiver recovers: everything arrives, each event acknowledged once.
    http.answer(Reply::Status(200, "ok".into()));
    let check = settled(&d);
    assert!(check.get("output").is_none(), "{check}");
    let metrics = d.get("/metrics").body;
    let ok = metric(
        &metrics,
        "mpsync_notify_deliveries_total",
        &[("channel", "hook"), ("result", "ok")],
    );
    let log = stop(d);
    assert!(!log.contains(TOKEN), "{log}");
    let all = stored_events(&state);
    let acks = acknowledged(&http.received());
    let stored: Vec<EventId> = all.iter().map(|e| e.id).collect();
    assert_eq!(acks.keys().copied().collect::<Vec<_>>(), stored);
    assert!(acks.values().all(|n| *n == 1), "{acks:?}");
    assert_eq!(ok as usize, stored.len(), "one accepted delivery per event");
}
