//! The delivery loop against a fake transport, in paused time: retries with backoff and no
//! duplicate, filters, digests on their schedule, refusals skipped, state across restarts.

use std::collections::VecDeque;
use std::os::unix::fs::PermissionsExt;
use std::sync::Mutex;

use super::*;
use crate::config::{LoadOptions, load_text};
use crate::events::EventKind;
use crate::notify::send::{Answer, Sending};
use crate::reconcile::Status;

/// What the fake receiver saw: (when, delivery id, event ids).
type Seen = Arc<Mutex<Vec<(DateTime<Utc>, String, Vec<EventId>)>>>;

struct Fake {
    clock: TokioClock,
    seen: Seen,
    script: Mutex<VecDeque<Result<(), SendError>>>,
}

impl Transport for Fake {
    fn send<'a>(&'a self, d: &'a Delivery, _now: DateTime<Utc>) -> Sending<'a> {
        let ids = d.events.iter().map(|e| e.id).collect();
        self.seen.lock().unwrap().push((self.clock.now(), d.id.clone(), ids));
        let next = self.script.lock().unwrap().pop_front().unwrap_or(Ok(()));
        Box::pin(async move {
            next.map(|()| Answer { status: "HTTP 200".into(), excerpt: String::new() })
        })
    }
}

#[derive(Default)]
struct Observed {
    outcomes: Mutex<Vec<(String, Outcome)>>,
    reports: Mutex<Vec<ChannelReport>>,
}

impl NotifyObserver for Observed {
    fn attempted(&self, channel: &str, outcome: Outcome) {
        self.outcomes.lock().unwrap().push((channel.to_owned(), outcome));
    }
    fn channels(&self, reports: &[ChannelReport]) {
        *self.reports.lock().unwrap() = reports.to_vec();
    }
}

struct Rig {
    _dir: tempfile::TempDir,
    store: Store,
    config: watch::Sender<Arc<Config>>,
    clock: TokioClock,
    seen: Seen,
    observed: Arc<Observed>,
    token: CancellationToken,
}

fn t(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

/// A config with `channels` (TOML `[[notify]]` sections; `URL` stands for a URL file).
fn config(dir: &std::path::Path, channels: &str) -> Config {
    let secret = |name: &str, value: &str| {
        let p = dir.join(name);
        std::fs::write(&p, value).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        p.display().to_string()
    };
    let key = secret("mp-key", "k");
    let url = secret("url", "https://hooks.example/abc");
    let text = format!(
        "[mailprotector]\napi_key_file = \"{key}\"\nreseller_id = 1\n{}",
        channels.replace("URL", &format!("url_file = \"{url}\""))
    );
    let opts = LoadOptions {
        path: dir.join("mpsync.toml"),
        env: Default::default(),
        overrides: Vec::new(),
    };
    load_text(&text, &opts).unwrap_or_else(|e| panic!("{e:#}")).0
}

impl Rig {
    async fn new(channels: &str, script: Vec<Result<(), SendError>>) -> Rig {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_path_buf();
        let store = tokio::task::spawn_blocking(move || Store::open(&path)).await.unwrap().unwrap();
        let cfg = config(dir.path(), channels);
        let (config, _) = watch::channel(Arc::new(cfg));
        let clock = TokioClock::starting_at(t("2026-03-01T07:00:00Z"));
        let rig = Rig {
            _dir: dir,
            store,
            config,
            clock,
            seen: Seen::default(),
            observed: Arc::new(Observed::default()),
            token: CancellationToken::new(),
        };
        rig.start(script).await;
        rig
    }

    /// Starts a notifier (as a daemon start does: init, then the loop).
    async fn start(&self, script: Vec<Result<(), SendError>>) {
        let fake = Arc::new(Fake {
            clock: self.clock,
            seen: self.seen.clone(),
            script: Mutex::new(script.into()),
        });
        let factory: TransportFactory =
            Arc::new(move |_: &NotifyConfig| Ok(fake.clone() as Arc<dyn Transport>));
        let n = Notifier::new(
            self.store.clone(),
            self.config.subscribe(),
            Arc::new(self.clock),
            factory,
            self.observed.clone(),
        );
        n.init().await.unwrap();
        tokio::spawn(n.run(self.token.clone()));
    }

    async fn append(&self, events: Vec<Event>) {
        self.store.append_events(events).await.unwrap();
    }

    /// Waits (in paused time, up to three days) until the receiver saw `n` deliveries.
    async fn wait_seen(&self, n: usize) -> Vec<(DateTime<Utc>, String, Vec<EventId>)> {
        for _ in 0..3 * 8640 {
            let seen = self.seen.lock().unwrap().clone();
            if seen.len() >= n {
                return seen;
            }
            tokio::time::sleep(Duration::from_secs(10)).await;
        }
        panic!("only {:?}", self.seen.lock().unwrap());
    }

    async fn state(&self, name: &str) -> ChannelState {
        let all: BTreeMap<String, ChannelState> =
            self.store.get_meta(STATE_KEY).await.unwrap().unwrap();
        all[name].clone()
    }
}

fn ev(
    kind: EventKind,
    account: Option<&str>,
    status: Option<Status>,
    impact: Option<f64>,
) -> Event {
    let mut e = Event::new(kind, t("2026-03-01T07:00:00Z"), format!("{kind}"));
    e.account = account.map(str::to_owned);
    e.status_to = status;
    e.monthly_impact = impact;
    e
}

fn opened(account: &str, impact: f64) -> Event {
    ev(EventKind::DiscrepancyOpened, Some(account), Some(Status::UnderBilled), Some(impact))
}

fn retry() -> Result<(), SendError> {
    Err(SendError::Retry("HTTP 503".into()))
}

#[tokio::test(start_paused = true)]
async fn a_failing_receiver_is_retried_with_backoff_then_gets_each_event_once_in_order() {
    let rig = Rig::new(
        "[[notify]]\nname = \"hook\"\nkind = \"webhook\"\nURL\n",
        vec![retry(), retry(), retry()],
    )
    .await;
    rig.append(vec![opened("1", 5.0), opened("2", 6.0), opened("3", 7.0)]).await;
    let seen = rig.wait_seen(6).await;
    let ids: Vec<&str> = seen.iter().map(|s| s.1.as_str()).collect();
    assert_eq!(ids, ["event-1", "event-1", "event-1", "event-1", "event-2", "event-3"]);
    // 30 s doubling, each wait between 3/4 and all of it.
    for (i, full) in [30, 60, 120].iter().enumerate() {
        let gap = (seen[i + 1].0 - seen[i].0).num_milliseconds();
        assert!(gap >= full * 750 && gap <= full * 1000 + 1000, "gap {i}: {gap} ms");
    }
    let st = rig.state("hook").await;
    assert_eq!((st.cursor, st.attempts, st.next_attempt), (3, 0, None));
    let outcomes = rig.observed.outcomes.lock().unwrap().clone();
    let retries = outcomes.iter().filter(|o| o.1 == Outcome::Retry).count();
    assert_eq!((retries, outcomes.len()), (3, 6));
    assert_eq!(rig.store.event_low_water().await.unwrap(), Some(3), "all delivered");
    // Nothing more arrives: nothing more is sent.
    tokio::time::sleep(Duration::from_secs(7200)).await;
    assert_eq!(rig.seen.lock().unwrap().len(), 6);
    rig.token.cancel();
}

#[tokio::test(start_paused = true)]
async fn filters_pick_events_by_kind_status_money_and_account() {
    let rig = Rig::new(
        "[[notify]]\nname = \"big\"\nkind = \"slack\"\nURL\nevents = [\"discrepancy_opened\", \
         \"source_failing\"]\nstatuses = [\"under_billed\"]\nmin_monthly_impact = 50.0\n\
         accounts = [\"7\", \"8\"]\n",
        vec![],
    )
    .await;
    rig.append(vec![
        opened("7", 60.0), // 1 yes
        opened("9", 60.0), // 2 account
        opened("8", 10.0), // 3 money
        ev(EventKind::DiscrepancyOpened, Some("7"), Some(Status::OverBilled), Some(-80.0)), // 4
        ev(EventKind::SourceFailing, None, None, None), // 5 yes
        ev(EventKind::SourceRecovered, None, None, None), // 6 kind
        opened("8", 50.0), // 7 yes
    ])
    .await;
    let seen = rig.wait_seen(3).await;
    let ids: Vec<&str> = seen.iter().map(|s| s.1.as_str()).collect();
    assert_eq!(ids, ["event-1", "event-5", "event-7"]);
    for _ in 0..100 {
        if rig.state("big").await.cursor == 7 {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    assert_eq!(rig.state("big").await.cursor, 7, "skipped events are handled too");
    rig.token.cancel();
}

#[tokio::test(start_paused = true)]
async fn a_digest_waits_for_its_slot_and_sends_one_message_with_a_stable_id() {
    let rig = Rig::new(
        "[[notify]]\nname = \"daily\"\nkind = \"teams\"\nURL\ndigest = \"0 0 8 * * *\"\n\
         events = [\"discrepancy_opened\"]\n",
        vec![retry()],
    )
    .await;
    rig.append(vec![opened("1", 5.0), ev(EventKind::SourceFailing, None, None, None)]).await;
    rig.append(vec![opened("2", 6.0)]).await;
    // 07:00 → 08:00: nothing before the slot.
    tokio::time::sleep(Duration::from_secs(3599)).await;
    assert!(rig.seen.lock().unwrap().is_empty(), "nothing before 08:00");
    let seen = rig.wait_seen(1).await;
    assert_eq!(seen[0].0, t("2026-03-01T08:00:00Z"));
    assert_eq!(seen[0].1, "digest-daily-3");
    assert_eq!(seen[0].2, [1, 3], "the matching events, in order");
    // An event after the slot does not join the retried digest: same id, same events.
    rig.append(vec![opened("3", 7.0)]).await;
    let seen = rig.wait_seen(2).await;
    assert_eq!((seen[1].1.as_str(), seen[1].2.as_slice()), ("digest-daily-3", &[1, 3][..]));
    // The next day's digest has the rest.
    let seen = rig.wait_seen(3).await;
    let slot = (seen[2].0 - t("2026-03-02T08:00:00Z")).num_milliseconds();
    assert!((0..2000).contains(&slot), "the next day's slot: {}", seen[2].0);
    assert_eq!((seen[2].1.as_str(), seen[2].2.as_slice()), ("digest-daily-4", &[4][..]));
    // A day without events sends nothing.
    tokio::time::sleep(Duration::from_secs(86_400)).await;
    assert_eq!(rig.seen.lock().unwrap().len(), 3);
    rig.token.cancel();
}

#[tokio::test(start_paused = true)]
async fn a_refused_delivery_is_skipped_and_recorded_and_the_next_goes_on() {
    let rig = Rig::new(
        "[[notify]]\nname = \"hook\"\nkind = \"webhook\"\nURL\n",
        vec![Err(SendError::Refused("HTTP 400: bad payload".into()))],
    )
    .await;
    rig.append(vec![opened("1", 5.0), opened("2", 6.0)]).await;
    let seen = rig.wait_seen(2).await;
    assert_eq!(seen.iter().map(|s| s.1.as_str()).collect::<Vec<_>>(), ["event-1", "event-2"]);
    let st = rig.state("hook").await;
    assert_eq!((st.cursor, st.rejected), (2, 1));
    let (_, id, why) = st.last_rejected.unwrap();
    assert_eq!((id.as_str(), why.as_str()), ("event-1", "HTTP 400: bad payload"));
    rig.token.cancel();
}

#[tokio::test(start_paused = true)]
async fn the_backoff_survives_a_restart_and_a_new_channel_starts_after_the_last_event() {
    let rig = Rig::new(
        "[[notify]]\nname = \"hook\"\nkind = \"webhook\"\nURL\nretry_initial = \"10m\"\n",
        vec![retry()],
    )
    .await;
    rig.append(vec![opened("1", 5.0)]).await;
    rig.wait_seen(1).await;
    let failed_at = rig.seen.lock().unwrap()[0].0;
    while rig.state("hook").await.attempts == 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Stop (as a kill would) and start again: the wait kept in the store holds.
    rig.token.cancel();
    let rig = Rig { token: CancellationToken::new(), ..rig };
    rig.start(vec![]).await;
    let seen = rig.wait_seen(2).await;
    let gap = (seen[1].0 - failed_at).num_seconds();
    assert!((450..=601).contains(&gap), "retried after the kept wait, not at once: {gap} s");
    assert_eq!(seen[1].1, "event-1");

    // A channel added by a reload starts after the last event: no flood of history.
    let cfg = config(
        rig._dir.path(),
        "[[notify]]\nname = \"hook\"\nkind = \"webhook\"\nURL\n\
         [[notify]]\nname = \"late\"\nkind = \"webhook\"\nURL\n",
    );
    rig.config.send(Arc::new(cfg)).unwrap();
    for _ in 0..100 {
        let all: Option<BTreeMap<String, ChannelState>> =
            rig.store.get_meta(STATE_KEY).await.unwrap();
        if all.is_some_and(|a| a.contains_key("late")) {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    assert_eq!(rig.state("late").await.cursor, 1);
    rig.append(vec![opened("2", 5.0)]).await;
    let seen = rig.wait_seen(4).await;
    let mut last: Vec<&str> = seen[2..].iter().map(|s| s.1.as_str()).collect();
    last.sort();
    assert_eq!(last, ["event-2", "event-2"], "both channels get the new event once");
    rig.token.cancel();
}
