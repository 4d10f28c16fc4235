//! `mpsync demo`: the simulated Mailprotector and ConnectWise (or Autotask, `--psa autotask`)
//! with a seeded demo reseller whose
//! billing has every kind of discrepancy planted, and a daemon against them in a temporary
//! state directory, until Ctrl-C. The first thing a new user runs.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use tokio::sync::oneshot;

use super::{CommandError, DemoError, Globals, report};
use crate::cli::{DemoArgs, Psa};
use mpsync_sim::{SimOptions, SimServer};

/// Runs the demo until Ctrl-C/SIGTERM, then stops everything and removes the temporary dir.
pub async fn run(g: &Globals, args: DemoArgs) -> Result<(), CommandError> {
    let dir =
        tempfile::Builder::new().prefix("mpsync-demo-").tempdir().map_err(DemoError::TempDir)?;
    let opts = SimOptions {
        customers: args.customers,
        seed: args.seed,
        // A little latency, so runs look like real ones in /v1/runs.
        latency: Duration::from_millis(5),
        jitter: Duration::from_millis(10),
        ..SimOptions::default()
    };
    let sim = SimServer::start(opts).await.map_err(DemoError::Simulator)?;
    let (reseller_id, key) = {
        let ds = sim.control().read();
        (ds.reseller_id(), ds.reseller_key().to_owned())
    };
    let config =
        match super::sim::write_keys_dir(dir.path(), &sim.base_url(), reseller_id, &key, None) {
            Ok(c) => c,
            Err(source) => {
                sim.shutdown().await;
                return Err(DemoError::Config { dir: dir.path().to_path_buf(), source }.into());
            }
        };
    let written = match args.psa {
        Psa::Connectwise => {
            let billing =
                mpsync_sim::connectwise::BillingData::generate(&sim.control().read(), args.seed);
            super::sim::write_billing_files(dir.path(), &sim.base_url(), &billing, None)
        }
        // The simulator serves this one's data: its units rows are laid out around today.
        Psa::Autotask => {
            let at = sim.control().autotask();
            super::sim::write_autotask_files(dir.path(), &sim.base_url(), &at.read(), None)
        }
        Psa::Halopsa => {
            let halo = sim.control().halopsa();
            super::sim::write_halopsa_files(dir.path(), &sim.base_url(), &halo.read())
        }
    };
    if let Err(source) = written {
        sim.shutdown().await;
        return Err(DemoError::Billing { dir: dir.path().to_path_buf(), source }.into());
    }
    if let Err(source) = opt_in_for_review(&dir.path().join(super::sim::MAPPING_FILE)) {
        sim.shutdown().await;
        return Err(DemoError::Billing { dir: dir.path().to_path_buf(), source }.into());
    }
    let overrides = vec![
        ("daemon.listen".to_owned(), args.listen.to_string()),
        ("daemon.state_dir".to_owned(), dir.path().join("state").display().to_string()),
        // Poll every minute, so changes show up while you watch.
        ("mailprotector.schedule".to_owned(), "0 * * * * *".to_owned()),
        ("billing.schedule".to_owned(), "30 * * * * *".to_owned()),
        // The simulator has no rate limit here; a real account keeps the cautious 5/s.
        ("mailprotector.rate_limit".to_owned(), "50".to_owned()),
        ("mailprotector.burst".to_owned(), "20".to_owned()),
    ];
    let globals = Globals { config_path: config.clone(), ..g.clone() };
    println!(
        "mpsync demo: a simulated Mailprotector reseller ({} customers, seed {}) on {}, billed \
         in a simulated {}",
        args.customers,
        args.seed,
        sim.base_url(),
        match args.psa {
            Psa::Connectwise => "ConnectWise Manage",
            Psa::Autotask => "Autotask",
            Psa::Halopsa => "HaloPSA",
        }
    );
    println!("  config and state in {} (removed on exit)", dir.path().display());
    let state = dir.path().join("state");
    // The URLs once the daemon serves: with `--listen 127.0.0.1:0` only then is the port known.
    let (ready_tx, ready_rx) = oneshot::channel();
    let daemon = super::run::start(super::load_options(&globals, overrides), Some(ready_tx));
    let announce = async {
        // An error means the daemon stopped before it was ready; it said why.
        if let Ok(addr) = ready_rx.await {
            print_urls(addr, &config, &state);
        }
    };
    let (stopped, ()) = tokio::join!(daemon, announce);
    sim.shutdown().await;
    let path = dir.path().to_path_buf();
    match dir.close() {
        Ok(()) => println!("mpsync demo: stopped; removed {}", path.display()),
        Err(source) => report(&DemoError::Cleanup { dir: path, source }.into()),
    }
    stopped
}

/// Opts every product of the demo mapping into `write_back = "review"`, so the demo shows a
/// plan to read and to try with `apply --dry-run` (a real mapping starts with write-back off).
fn opt_in_for_review(mapping: &Path) -> std::io::Result<()> {
    let text = std::fs::read_to_string(mapping)?;
    let mut out = String::with_capacity(text.len() + 512);
    for line in text.lines() {
        out.push_str(line);
        out.push('\n');
        if line.trim_start().starts_with("[products.") {
            out.push_str("write_back = \"review\"\n");
        }
    }
    std::fs::write(mapping, out)
}

/// What to look at, on the daemon at `addr` (config and state directory for the commands).
fn print_urls(addr: SocketAddr, config: &Path, state: &Path) {
    let url = format!("http://{addr}");
    println!("  dashboard:  {url}/        (open it in a browser; it refreshes itself)");
    println!("  health:     curl -s {url}/v1/health");
    println!(
        "  reconcile:  curl -s {url}/v1/reconciliation        (or ?format=csv, ?status=under_billed)"
    );
    println!("  customers:  curl -s {url}/v1/customers");
    println!("  runs:       curl -s {url}/v1/runs");
    println!("  poll now:   curl -s -X POST {url}/v1/sync");
    println!(
        "  plan:       curl -s {url}/v1/plan        (every demo product is opted in for review)"
    );
    println!(
        "  dry run:    mpsync -c {} apply <plan id> --dry-run --state-dir {}",
        config.display(),
        state.display()
    );
    println!("  metrics:    curl -s {url}/metrics");
    println!("  Ctrl-C stops the demo.");
}
