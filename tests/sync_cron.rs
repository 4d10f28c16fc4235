//! The real daemon on an every-second schedule with runs that last longer than a second:
//! ticks that find the previous run still going are counted as skips, and runs never overlap.

use chrono::{DateTime, Utc};

use crate::support::common::{self, wait_for};
use crate::support::daemon::{self, DEADLINE};
use crate::support::sync::{Sim, metric, runs, start_daemon, write_config};

fn time(v: &serde_json::Value) -> DateTime<Utc> {
    v.as_str().unwrap().parse().unwrap_or_else(|e| panic!("{v}: {e}"))
}

#[test]
fn every_second_schedule_skips_overlapping_ticks_and_never_runs_twice_at_once() {
    let sim = Sim::start(21, 40);
    // Every request waits; a run makes dozens of them four at a time, so it spans several ticks.
    sim.latency(80);
    let dir = common::TestDir::new();
    let config = write_config(&dir, "127.0.0.1:9", &sim, "* * * * * *");
    let d = start_daemon(&config);

    let finished_ok = |d: &daemon::Daemon| runs(d).iter().filter(|r| r["outcome"] == "ok").count();
    let skip = [("job", "vendor"), ("outcome", "skipped_overlap")];
    wait_for(DEADLINE, "three ok runs and a skipped tick", || {
        let skipped = metric(&d.get("/metrics").body, "mpsync_sync_runs_total", &skip);
        (finished_ok(&d) >= 3 && skipped > 0.0).then_some(())
    });

    let mut all = runs(&d);
    all.reverse();
    let finished: Vec<_> = all.iter().filter(|r| r["outcome"] != "running").collect();
    assert!(finished.iter().all(|r| r["outcome"] == "ok"), "{finished:?}");
    let long = finished.iter().filter(|r| r["duration_seconds"].as_f64().unwrap() > 1.0).count();
    assert!(long >= 1, "runs last longer than the period: {finished:?}");
    // Ordered by id, each run starts only after the one before it finished.
    for pair in all.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        assert!(
            time(&b["started_at"]) >= time(&a["finished_at"]),
            "run {} started before run {} finished:\n{a}\n{b}",
            b["id"],
            a["id"]
        );
    }
    assert!(all.iter().filter(|r| r["outcome"] == "running").count() <= 1);
    let log = d.stderr();
    assert!(log.contains("tick skipped: the previous run is still going"), "{log}");
}
