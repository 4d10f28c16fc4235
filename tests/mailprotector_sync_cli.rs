//! `mpsync sync --once` end to end: the real binary against the simulator, twice (the second
//! run is warm), plus the exit codes of a bad key, malformed data and a held store.

use std::path::PathBuf;
use std::process::Output;

use mpsync_sim::{Fault, FaultKind, SimHandle, SimOptions, SimServer};
use serde_json::Value;

use crate::support::common::{TestDir, mpsync};

fn write_config(dir: &TestDir, sim: &SimHandle, key: &str) -> PathBuf {
    let key = dir.secret("mailprotector-api-key", key);
    let toml = format!(
        r#"[daemon]
state_dir = "{state}"
log = "warn"

[mailprotector]
base_url = "{base}"
api_key_file = "{key}"
reseller_id = {rid}
schedule = "0 0 0 1 1 *"
rate_limit = 500.0
burst = 50
max_in_flight = 8
timeout = "5s"
"#,
        state = dir.state_dir().display(),
        base = sim.base_url(),
        key = key.display(),
        rid = sim.control().reseller_id(),
    );
    dir.config(&toml)
}

/// Runs `mpsync -c CONFIG sync --once [--json]` off the async runtime (the sim keeps serving).
async fn sync_once(config: PathBuf, json: bool) -> Output {
    tokio::task::spawn_blocking(move || {
        let mut cmd = mpsync();
        cmd.arg("-c").arg(&config).args(["sync", "--once"]);
        if json {
            cmd.arg("--json");
        }
        cmd.output().expect("run mpsync")
    })
    .await
    .unwrap()
}

/// Users of type User in the customers' primary domains.
fn totals_of_users(sim: &SimHandle) -> u64 {
    let ds = sim.control().read();
    ds.main_customers()
        .iter()
        .flat_map(|c| ds.domains_of_customer(*c))
        .filter(|d| ds.domains()[d].parent.is_none())
        .flat_map(|d| ds.groups_of_domain(d))
        .map(|g| ds.groups()[&g].count_of(&[1]))
        .sum()
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_runs_count_everything_and_the_second_is_warm() {
    let sim = SimServer::start(SimOptions { seed: 41, customers: 60, ..SimOptions::default() })
        .await
        .unwrap();
    let dir = TestDir::new();
    let config = write_config(&dir, &sim, &sim.control().reseller_key());

    let first = sync_once(config.clone(), true).await;
    assert_eq!(first.status.code(), Some(0), "stderr: {}", String::from_utf8_lossy(&first.stderr));
    let a = json(&first);
    assert_eq!(a["outcome"], "ok");
    let run = &a["runs"][0];
    assert_eq!(
        run["customers_counted"].as_u64().unwrap() as usize,
        sim.control().expected_counts().len()
    );
    let totals: std::collections::BTreeMap<String, u64> =
        serde_json::from_value(run["totals"].clone()).unwrap();
    assert_eq!(totals, sim.control().read().expected_totals());
    let mp = &run["requests"]["mailprotector"];
    let services = mp["by_endpoint"]["GET /user_groups/{id}/services"].as_u64().unwrap_or(0);
    assert!(services > 0, "a cold run reads service lists: {a:#}");
    let first_total = mp["total"].as_u64().unwrap();
    // How it counted: the per-user walk, type User only, the other types reported.
    let counting = &run["counting"];
    assert_eq!(counting["walk"], "users", "{counting:#}");
    assert_eq!(counting["count_user_types"], "User (1)");
    let types = counting["user_types"].as_array().unwrap();
    let of = |id: u64| types.iter().find(|t| t["id"] == id).unwrap_or_else(|| panic!("{id}"));
    assert_eq!((of(1)["counted"].as_bool(), of(3)["counted"].as_bool()), (Some(true), Some(false)));
    assert_eq!(of(1)["users"].as_u64().unwrap(), totals_of_users(&sim));
    assert_eq!(counting["user_count"]["relied_on"], false);
    assert_eq!(
        first_total,
        sim.control().requests().total,
        "the summary counts what the server saw"
    );

    sim.control().reset_requests();
    let second = sync_once(config.clone(), true).await;
    assert_eq!(
        second.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&second.stderr)
    );
    let b = json(&second);
    let run2 = &b["runs"][0];
    assert!(run2["run_id"].as_u64() > run["run_id"].as_u64(), "run ids increase");
    assert_eq!(run2["totals"], run["totals"]);
    assert_eq!(
        sim.control().requests().get("GET /user_groups/{id}/services"),
        0,
        "warm: no service calls"
    );
    assert!(
        run2["requests"]["mailprotector"]["total"].as_u64().unwrap() < first_total,
        "warm: fewer requests"
    );

    // The text form names the same facts.
    let third = sync_once(config.clone(), false).await;
    assert_eq!(third.status.code(), Some(0));
    let text = String::from_utf8_lossy(&third.stdout);
    assert!(text.contains(": ok in ") && text.contains("customers counted:"), "{text}");
    assert!(text.contains("requests to mailprotector:"), "{text}");
    assert!(
        text.contains("  counted: users of type User (1), one by one (the user listing)"),
        "{text}"
    );
    assert!(text.contains("  user_count: user_count was not used"), "{text}");
    assert!(text.contains("user(s) of type Mailing List (3)"), "{text}");
    assert!(!text.contains("counted nowhere"), "{text}");

    // A customer missing from the customer listing: its users are counted nowhere, and said so.
    let hidden = sim.control().read().main_customers()[0];
    sim.control().hide_customer(hidden).unwrap();
    let fourth = sync_once(config, false).await;
    assert_eq!(fourth.status.code(), Some(0));
    let text = String::from_utf8_lossy(&fourth.stdout);
    let line =
        text.lines().find(|l| l.contains("counted nowhere:")).unwrap_or_else(|| panic!("{text}"));
    assert!(line.contains(&format!("(owner {hidden})")), "{line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_exit_with_their_code_and_say_why() {
    let sim = SimServer::start(SimOptions { seed: 42, customers: 20, ..SimOptions::default() })
        .await
        .unwrap();

    let dir = TestDir::new();
    let config = write_config(&dir, &sim, "not-the-key");
    let out = sync_once(config, true).await;
    assert_eq!(out.status.code(), Some(69), "bad key → unavailable");
    let v = json(&out);
    assert_eq!(v["outcome"], "failed");
    let reason = v["runs"][0]["error"].as_str().unwrap();
    assert!(reason.contains("401") && reason.contains("mailprotector-api-key"), "{reason}");
    assert!(!String::from_utf8_lossy(&out.stderr).contains("not-the-key"), "the key never shows");

    let dir = TestDir::new();
    let config = write_config(&dir, &sim, &sim.control().reseller_key());
    sim.control().add_fault(Fault::new(FaultKind::WrongTypes).on("users"));
    let out = sync_once(config.clone(), false).await;
    assert_eq!(out.status.code(), Some(65), "malformed data → 65");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("failed") && text.contains("GET /resellers/{id}/users"), "{text}");
    sim.control().clear_faults();

    // While another process holds the store: 75 and a message saying so.
    let state = dir.state_dir();
    let store = tokio::task::spawn_blocking(move || mpsync::store::Store::open(&state))
        .await
        .unwrap()
        .unwrap();
    let out = sync_once(config, false).await;
    assert_eq!(out.status.code(), Some(75));
    assert!(!String::from_utf8_lossy(&out.stderr).is_empty());
    drop(store);
}
