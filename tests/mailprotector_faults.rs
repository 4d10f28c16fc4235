//! Upstream faults end in the right outcome: retries that succeed give correct counts;
//! exhausted retries, bad keys and malformed data fail the whole run with a clear reason; a
//! server-side rate limit is respected and a 429 storm is survived.

use std::collections::HashMap;
use std::time::Duration;

use mpsync::exit::{Exit, ExitStatus};
use mpsync::mailprotector::{CollectError, MailprotectorClient, check_connection};
use mpsync::upstream::UpstreamError;
use mpsync_sim::{Fault, FaultKind};

use crate::support::mp::{as_map, client, collect, config, start};

fn upstream(e: CollectError) -> UpstreamError {
    match e {
        CollectError::Upstream(u) => u,
        CollectError::Cancelled => panic!("expected an upstream error, got Cancelled"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_faults_are_retried_and_counts_stay_correct() {
    let sim = start(31, 120).await;
    let cfg = config(&sim);
    // A handful of 5xx on the user listing, a hang on services: each hits a few requests
    // once, so every call succeeds within its attempts.
    sim.control()
        .add_fault(Fault::new(FaultKind::Status { status: 503 }).on("users").after(5).times(3));
    sim.control()
        .add_fault(Fault::new(FaultKind::Status { status: 500 }).on("services").after(2).times(2));
    sim.control().add_fault(Fault::new(FaultKind::Hang).on("services").after(10).times(1));
    let mut cfg_fast = cfg.clone();
    // Short enough to give up on the hung request quickly, long enough for a busy machine.
    cfg_fast.limits.timeout = Duration::from_secs(2);
    let out =
        collect(&client(&cfg_fast), &cfg_fast, &HashMap::new(), None).await.expect("run survives");
    assert_eq!(as_map(&out.customers), sim.control().expected_counts());
    assert_eq!(out.requests.retries, 6, "3 + 2 failed answers and 1 timeout were retried");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exhausted_retries_fail_the_run_naming_the_endpoint() {
    let sim = start(32, 30).await;
    let cfg = config(&sim);
    sim.control().add_fault(Fault::new(FaultKind::Status { status: 503 }).on("services"));
    let err = upstream(collect(&client(&cfg), &cfg, &HashMap::new(), None).await.unwrap_err());
    assert!(matches!(err, UpstreamError::Unavailable { attempts: 5, .. }), "{err:?}");
    assert_eq!(err.exit(), Exit::Unavailable);
    let text = err.to_string();
    assert!(text.contains("GET /user_groups/{id}/services") && text.contains("503"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_or_revoked_key_fails_the_run_and_the_check() {
    let sim = start(33, 40).await;
    let mut cfg = config(&sim);
    cfg.api_key = mpsync::config::Secret::new("wrong-key-123", "/etc/mpsync/mailprotector-api-key");
    let err = upstream(collect(&client(&cfg), &cfg, &HashMap::new(), None).await.unwrap_err());
    assert!(matches!(err, UpstreamError::Unauthorized { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("/etc/mpsync/mailprotector-api-key"), "names the key file: {text}");
    assert!(!text.contains("wrong-key-123"), "never shows the key: {text}");
    let check = check_connection(&cfg).await.unwrap_err();
    assert!(matches!(check, UpstreamError::Unauthorized { .. }), "{check:?}");

    // Revoked mid-run: the run fails whole, no partial counts.
    let cfg = config(&sim);
    sim.control().add_fault(Fault::new(FaultKind::Revoke { key: None }).after(20).times(1));
    let err = upstream(collect(&client(&cfg), &cfg, &HashMap::new(), None).await.unwrap_err());
    assert!(matches!(err, UpstreamError::Unauthorized { .. }), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_check_names_scope_and_reseller_problems() {
    let sim = start(34, 10).await;
    let cfg = config(&sim);
    let ok = check_connection(&cfg).await.expect("the reseller key passes");
    assert_eq!(ok.id, cfg.reseller_id);
    let mut customer_key = cfg.clone();
    let key = sim.control().customer_key(329).expect("a customer key");
    customer_key.api_key = mpsync::config::Secret::new(key, "customer key file");
    let err = check_connection(&customer_key).await.unwrap_err();
    assert!(matches!(err, UpstreamError::Forbidden { .. }), "{err:?}");
    assert!(err.to_string().contains("not a reseller-level key"), "{err}");
    let mut wrong_id = cfg.clone();
    wrong_id.reseller_id = 999_999;
    let err = check_connection(&wrong_id).await.unwrap_err();
    assert!(
        matches!(err, UpstreamError::NotFound { .. } | UpstreamError::Forbidden { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("999999"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_data_fails_the_run_with_a_clear_reason() {
    let sim = start(35, 30).await;
    let cfg = config(&sim);
    for (kind, endpoint) in [
        (FaultKind::WrongTypes, "users"),
        (FaultKind::Malformed, "customers"),
        (FaultKind::Truncate, "domains"),
        (FaultKind::WrongTypes, "services"),
    ] {
        sim.control().clear_faults();
        sim.control().add_fault(Fault::new(kind.clone()).on(endpoint));
        let err = upstream(collect(&client(&cfg), &cfg, &HashMap::new(), None).await.unwrap_err());
        assert!(matches!(err, UpstreamError::BadResponse { .. }), "{kind:?}: {err:?}");
        assert_eq!(err.exit(), Exit::DataErr);
        assert!(err.to_string().contains(endpoint), "{kind:?}: {err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_rate_limit_is_respected_without_429() {
    const N: f64 = 40.0;
    let sim = start(36, 40).await;
    sim.control().add_fault(Fault::new(FaultKind::RateLimit { rps: N, burst: Some(5) }));
    let mut cfg = config(&sim);
    // Slightly under N, and a burst below the server's bucket: on a busy machine requests
    // that left evenly spaced can arrive bunched, and that headroom absorbs it.
    cfg.limits.rate_limit = N * 0.9;
    cfg.limits.burst = 2;
    cfg.limits.max_in_flight = 4;
    let out = collect(&client(&cfg), &cfg, &HashMap::new(), None).await.expect("run completes");
    let seen = sim.control().requests();
    assert!(seen.total > 2 * N as u64, "enough requests to exercise the limit ({})", seen.total);
    assert_eq!(seen.status(429), 0, "no request exceeded the server's bucket");
    assert_eq!(out.requests.rate_limited, 0);
    assert_eq!(as_map(&out.customers), sim.control().expected_counts());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_storm_pauses_every_caller_and_is_survived() {
    let sim = start(37, 40).await;
    let cfg = config(&sim);
    // Three 429s with Retry-After: 1 in the middle of the walk.
    sim.control()
        .add_fault(Fault::new(FaultKind::Storm { retry_after: 1 }).on("users").after(5).times(3));
    let c: MailprotectorClient = client(&cfg);
    let out = collect(&c, &cfg, &HashMap::new(), None).await.expect("storm survived");
    assert_eq!(as_map(&out.customers), sim.control().expected_counts());
    assert_eq!(out.requests.rate_limited, 3);
    assert!(out.requests.waited >= Duration::from_millis(900), "callers waited out Retry-After");
}
