//! `mpsync sim`: the simulated upstreams, standalone, until Ctrl-C or SIGTERM. Prints the URL,
//! the reseller id and API keys; with `--keys-dir DIR` writes the reseller key as a secret file
//! (mode 0600) and a ready `DIR/mpsync.toml` so `mpsync -c DIR/mpsync.toml sync --once` works
//! as is. With `--replay DIR` it serves a capture instead (see `replay.rs`).

mod replay;

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{CommandError, Globals, SimCommandError};
use crate::cli::{Psa, SimArgs};
use mpsync_sim::faults::Fault;
use mpsync_sim::{SimOptions, SimServer};

pub use replay::write_replay_config;

/// Runs the simulator until Ctrl-C or SIGTERM.
pub async fn run(_g: &Globals, args: SimArgs) -> Result<(), CommandError> {
    if let Some(dir) = &args.replay {
        return replay::run(dir, args.listen, args.keys_dir.as_deref()).await;
    }
    let faults = args.fault.iter().map(|spec| Fault::parse(spec)).collect::<Result<Vec<_>, _>>();
    let faults = faults.map_err(SimCommandError::from)?;
    if let Some(rps) = args.rate_limit
        && !(rps > 0.0 && rps.is_finite())
    {
        return Err(SimCommandError::RateLimit(rps).into());
    }
    let opts = SimOptions {
        listen: args.listen,
        customers: args.customers,
        seed: args.seed,
        latency: Duration::from_millis(args.latency_ms),
        jitter: Duration::from_millis(args.jitter_ms),
        rate_limit: args.rate_limit,
        faults,
        dataset: None,
    };
    let handle = SimServer::start(opts).await.map_err(SimCommandError::from)?;
    let mut addr = handle.addr();
    if addr.ip().is_unspecified() {
        addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), addr.port());
    }
    let base_url = format!("http://{addr}");
    let ctl = handle.control().clone();
    let (reseller_id, reseller_key, sample, users) = {
        let ds = ctl.read();
        let sample: Vec<(u64, String)> = ds
            .main_customers()
            .into_iter()
            .take(3)
            .filter_map(|c| ds.customer_key(c).map(|k| (c, k.to_owned())))
            .collect();
        (ds.reseller_id(), ds.reseller_key().to_owned(), sample, ds.user_totals())
    };
    println!(
        "mpsync sim: Mailprotector simulator on {base_url} (API under /api/v1, control under /_sim)"
    );
    println!(
        "  seed {}, {} customers, {} users, {} aliases, {} mailing lists, {} unlicensed users",
        args.seed,
        args.customers,
        users.users,
        users.aliases,
        users.mailing_lists,
        users.unlicensed_users
    );
    println!("  reseller id:  {reseller_id}");
    println!("  reseller key: {reseller_key}");
    for (c, k) in &sample {
        println!("  customer {c} key: {k}");
    }
    println!(
        "  every key: GET {base_url}/_sim/keys; expected counts: GET {base_url}/_sim/expected_counts"
    );
    if args.psa == Psa::Halopsa {
        print_halopsa(&ctl.halopsa().credentials(), &base_url);
    }
    if let Some(dir) = &args.keys_dir {
        if let Err(source) = write_sim_config_for(dir, &ctl, &base_url, args.rate_limit, args.psa) {
            handle.shutdown().await;
            return Err(SimCommandError::KeysDir { dir: dir.clone(), source }.into());
        }
        let config = dir.join("mpsync.toml");
        println!("  wrote {} (mode 0600) and {}", dir.join(KEY_FILE).display(), config.display());
        match args.psa {
            Psa::Connectwise => {
                let billing = ctl.connectwise();
                let billing = billing.read();
                println!(
                    "  wrote the ConnectWise keys ({CW_PUBLIC_FILE}, {CW_PRIVATE_FILE}), the \
                     [billing] section and {MAPPING_FILE} (left unmapped on purpose: {} \
                     customer, {} product)",
                    billing.planted_with("unmapped_customer").len(),
                    billing.planted_with("unmapped_product").len(),
                );
            }
            Psa::Autotask => {
                let billing = ctl.autotask();
                let billing = billing.read();
                println!(
                    "  wrote the Autotask credentials ({AT_CODE_FILE}, {AT_SECRET_FILE}), the \
                     [billing] section (zone looked up from the user name) and {MAPPING_FILE} \
                     (left unmapped on purpose: {} customer, {} product)",
                    billing.planted_with("unmapped_customer").len(),
                    billing.planted_with("unmapped_product").len(),
                );
            }
            Psa::Halopsa => {
                let billing = ctl.halopsa();
                let billing = billing.read();
                println!(
                    "  wrote the HaloPSA client secret ({HALO_SECRET_FILE}), the [billing] \
                     section and {MAPPING_FILE} (left unmapped on purpose: {} customer, {} \
                     product)",
                    billing.planted_with("unmapped_customer").len(),
                    billing.planted_with("unmapped_product").len(),
                );
            }
        }
        println!(
            "  wrote {} and {} (mode 0600) and an enabled [gradient] section",
            dir.join(GRADIENT_VENDOR_KEY_FILE).display(),
            dir.join(GRADIENT_PARTNER_KEY_FILE).display()
        );
        println!("  try: mpsync -c {} sync --once", config.display());
    }
    let _ = std::io::stdout().flush();
    wait_for_signal().await;
    eprintln!("mpsync sim: stopping");
    handle.shutdown().await;
    Ok(())
}

/// Writes everything `--keys-dir` writes for the simulator behind `control`, served at
/// `base_url`: the Mailprotector, ConnectWise and Gradient keys (mode 0600), `mapping.toml`
/// and a complete `mpsync.toml` (returned). For in-process simulators (tests, tools).
pub fn write_sim_config(
    dir: &Path,
    control: &mpsync_sim::SimControl,
    base_url: &str,
    rate_limit: Option<f64>,
) -> std::io::Result<PathBuf> {
    write_sim_config_for(dir, control, base_url, rate_limit, Psa::Connectwise)
}

/// [`write_sim_config`] billing from the simulated `psa`.
pub fn write_sim_config_for(
    dir: &Path,
    control: &mpsync_sim::SimControl,
    base_url: &str,
    rate_limit: Option<f64>,
    psa: Psa,
) -> std::io::Result<PathBuf> {
    let (reseller_id, key) = {
        let ds = control.read();
        (ds.reseller_id(), ds.reseller_key().to_owned())
    };
    let config = write_keys_dir(dir, base_url, reseller_id, &key, rate_limit)?;
    match psa {
        Psa::Connectwise => {
            write_billing_files(dir, base_url, &control.connectwise().read(), rate_limit)?
        }
        Psa::Autotask => {
            write_autotask_files(dir, base_url, &control.autotask().read(), rate_limit)?
        }
        Psa::Halopsa => write_halopsa_files(dir, base_url, &control.halopsa().read())?,
    }
    let g = control.gradient();
    write_gradient_keys(dir, base_url, &g.vendor_key(), &g.partner_key())?;
    Ok(config)
}

pub(super) const KEY_FILE: &str = "mailprotector-api-key";
pub(super) const GRADIENT_VENDOR_KEY_FILE: &str = "gradient-vendor-key";
pub(super) const GRADIENT_PARTNER_KEY_FILE: &str = "gradient-partner-key";

/// Writes a secret file with mode 0600 (set again in case the file existed).
pub(super) fn write_secret(path: &Path, value: &str) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    writeln!(f, "{value}")
}

/// Writes the simulated Synthesize's vendor and partner keys (0600) into `dir` (already
/// holding the `mpsync.toml` of [`write_keys_dir`]) and appends an enabled `[gradient]`
/// section pointing at the simulator. Its PSA auto-maps most accounts and services on
/// creation, so a push works without editing anything.
pub(super) fn write_gradient_keys(
    dir: &Path,
    base_url: &str,
    vendor_key: &str,
    partner_key: &str,
) -> std::io::Result<()> {
    let dir = std::fs::canonicalize(dir)?;
    write_secret(&dir.join(GRADIENT_VENDOR_KEY_FILE), vendor_key)?;
    write_secret(&dir.join(GRADIENT_PARTNER_KEY_FILE), partner_key)?;
    let mut config = std::fs::OpenOptions::new().append(true).open(dir.join("mpsync.toml"))?;
    config.write_all(gradient_toml(&dir, base_url, false).as_bytes())
}

/// The `[gradient]` section for a simulator at `base_url`, keys in `dir`: pushes every 15
/// minutes (only plans them with `dry_run`).
pub(super) fn gradient_toml(dir: &Path, base_url: &str, dry_run: bool) -> String {
    format!(
        "\n[gradient]\nenabled = true\nbase_url = {url}\nvendor_key_file = {vendor}\n\
         partner_key_file = {partner}\nschedule = \"0 */15 * * * *\"\ndry_run = {dry_run}\n",
        url = quoted(base_url),
        vendor = quoted(&dir.join(GRADIENT_VENDOR_KEY_FILE).to_string_lossy()),
        partner = quoted(&dir.join(GRADIENT_PARTNER_KEY_FILE).to_string_lossy()),
    )
}

/// Writes `DIR/mailprotector-api-key` (0600) and `DIR/mpsync.toml`; returns the config path.
pub(super) fn write_keys_dir(
    dir: &Path,
    base_url: &str,
    reseller_id: u64,
    key: &str,
    rate_limit: Option<f64>,
) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let dir = std::fs::canonicalize(dir)?;
    let key_path = dir.join(KEY_FILE);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&key_path)?;
    std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o600))?;
    writeln!(f, "{key}")?;
    let config = dir.join("mpsync.toml");
    std::fs::write(&config, config_toml(&dir, base_url, reseller_id, rate_limit))?;
    Ok(config)
}

pub(super) const CW_PUBLIC_FILE: &str = "connectwise-public-key";
pub(super) const CW_PRIVATE_FILE: &str = "connectwise-private-key";
pub(super) const MAPPING_FILE: &str = "mapping.toml";

/// Writes the simulated ConnectWise member's key files (0600) and `DIR/mapping.toml`, and
/// appends `[billing]`, `[billing.connectwise]` and `[reconcile]` to `DIR/mpsync.toml` (call
/// after [`write_keys_dir`]), so a reconciliation against the simulator needs no editing.
pub fn write_billing_files(
    dir: &Path,
    base_url: &str,
    billing: &mpsync_sim::connectwise::BillingData,
    rate_limit: Option<f64>,
) -> std::io::Result<()> {
    let dir = std::fs::canonicalize(dir)?;
    let creds = &billing.credentials;
    for (file, value) in
        [(CW_PUBLIC_FILE, &creds.public_key), (CW_PRIVATE_FILE, &creds.private_key)]
    {
        let path = dir.join(file);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
        writeln!(f, "{value}")?;
    }
    std::fs::write(dir.join(MAPPING_FILE), &billing.mapping_toml)?;
    let mut config = std::fs::OpenOptions::new().append(true).open(dir.join("mpsync.toml"))?;
    let section = billing_toml(&dir, base_url, &creds.company_id, &creds.client_id, rate_limit);
    config.write_all(section.as_bytes())
}

/// The `[billing]` and `[reconcile]` sections pointing at a (simulated) ConnectWise at
/// `base_url`, with the member's key files and the mapping in `dir`.
pub(super) fn billing_toml(
    dir: &Path,
    base_url: &str,
    company_id: &str,
    client_id: &str,
    rate_limit: Option<f64>,
) -> String {
    let mut s = format!(
        "\n[billing]\nsource = \"connectwise\"\nschedule = \"30 */5 * * * *\"\n\n\
         [billing.connectwise]\nbase_url = {url}\ncompany_id = {company}\n\
         public_key_file = {public}\nprivate_key_file = {private}\nclient_id = {client}\n",
        url = quoted(base_url),
        company = quoted(company_id),
        public = quoted(&dir.join(CW_PUBLIC_FILE).to_string_lossy()),
        private = quoted(&dir.join(CW_PRIVATE_FILE).to_string_lossy()),
        client = quoted(client_id),
    );
    if let Some(rps) = rate_limit {
        let burst = rps.ceil().max(1.0) as u64;
        s.push_str(&format!("rate_limit = {rps:?}\nburst = {burst}\n"));
    }
    s.push_str(&format!(
        "\n[reconcile]\nmapping_file = {}\n",
        quoted(&dir.join(MAPPING_FILE).to_string_lossy())
    ));
    s
}

pub(super) const AT_CODE_FILE: &str = "autotask-integration-code";
pub(super) const AT_SECRET_FILE: &str = "autotask-secret";

/// Writes the simulated Autotask user's integration code and secret (0600) and
/// `DIR/mapping.toml` (company and service ids), and appends `[billing]`,
/// `[billing.autotask]` (no `base_url`: the zone is looked up from the user name through the
/// simulator) and `[reconcile]` to `DIR/mpsync.toml` (call after [`write_keys_dir`]).
pub fn write_autotask_files(
    dir: &Path,
    base_url: &str,
    billing: &mpsync_sim::autotask::AtData,
    rate_limit: Option<f64>,
) -> std::io::Result<()> {
    let dir = std::fs::canonicalize(dir)?;
    let creds = &billing.credentials;
    write_secret(&dir.join(AT_CODE_FILE), &creds.integration_code)?;
    write_secret(&dir.join(AT_SECRET_FILE), &creds.secret)?;
    std::fs::write(dir.join(MAPPING_FILE), &billing.mapping_toml)?;
    let mut s = format!(
        "\n[billing]\nsource = \"autotask\"\nschedule = \"30 */5 * * * *\"\n\n\
         [billing.autotask]\nzone_lookup_url = {lookup}\nusername = {user}\n\
         integration_code_file = {code}\nsecret_file = {secret}\n",
        lookup = quoted(&format!("{base_url}{}/", mpsync_sim::autotask::API_PREFIX)),
        user = quoted(&creds.username),
        code = quoted(&dir.join(AT_CODE_FILE).to_string_lossy()),
        secret = quoted(&dir.join(AT_SECRET_FILE).to_string_lossy()),
    );
    // The simulated database has the real one's 10,000 requests an hour: a faster budget
    // than the cautious default is fine for a demo of a few hundred requests.
    let rps = rate_limit.unwrap_or(20.0);
    s.push_str(&format!("rate_limit = {rps:?}\nburst = {}\n", rps.ceil().max(1.0) as u64));
    s.push_str(&format!(
        "\n[reconcile]\nmapping_file = {}\n",
        quoted(&dir.join(MAPPING_FILE).to_string_lossy())
    ));
    let mut config = std::fs::OpenOptions::new().append(true).open(dir.join("mpsync.toml"))?;
    config.write_all(s.as_bytes())
}

/// Prints where the simulated HaloPSA is and the API application it accepts (the simulator's
/// own, generated credentials: printing them is the point).
fn print_halopsa(creds: &mpsync_sim::halopsa::HaloCredentials, base_url: &str) {
    println!(
        "  HaloPSA: base_url {base_url}{} (token {base_url}{}/auth/token, API {base_url}{}/api)",
        mpsync_sim::halopsa::PREFIX,
        mpsync_sim::halopsa::PREFIX,
        mpsync_sim::halopsa::PREFIX
    );
    println!("  HaloPSA tenant:        {}", creds.tenant.as_deref().unwrap_or("(none: on-prem)"));
    println!("  HaloPSA client_id:     {}", creds.client_id);
    println!("  HaloPSA client_secret: {}", creds.client_secret);
}

pub(super) const HALO_SECRET_FILE: &str = "halopsa-client-secret";

/// Writes the simulated HaloPSA application's client secret (0600) and `DIR/mapping.toml`
/// (client and item ids), and appends `[billing]`, `[billing.halopsa]` (`base_url` is the
/// simulator's `/halo`; `auth_url` and `scope` left to their defaults) and `[reconcile]` to
/// `DIR/mpsync.toml` (call after [`write_keys_dir`]).
pub fn write_halopsa_files(
    dir: &Path,
    base_url: &str,
    billing: &mpsync_sim::halopsa::HaloData,
) -> std::io::Result<()> {
    let dir = std::fs::canonicalize(dir)?;
    let creds = &billing.credentials;
    write_secret(&dir.join(HALO_SECRET_FILE), &creds.client_secret)?;
    std::fs::write(dir.join(MAPPING_FILE), &billing.mapping_toml)?;
    let mut s = format!(
        "\n[billing]\nsource = \"halopsa\"\nschedule = \"30 */5 * * * *\"\n\n\
         [billing.halopsa]\nbase_url = {url}\nclient_id = {id}\nclient_secret_file = {secret}\n",
        url = quoted(&format!("{base_url}{}", mpsync_sim::halopsa::PREFIX)),
        id = quoted(&creds.client_id),
        secret = quoted(&dir.join(HALO_SECRET_FILE).to_string_lossy()),
    );
    if let Some(t) = &creds.tenant {
        s.push_str(&format!("tenant = {}\n", quoted(t)));
    }
    s.push_str(&format!(
        "\n[reconcile]\nmapping_file = {}\n",
        quoted(&dir.join(MAPPING_FILE).to_string_lossy())
    ));
    let mut config = std::fs::OpenOptions::new().append(true).open(dir.join("mpsync.toml"))?;
    config.write_all(s.as_bytes())
}

/// A TOML string literal.
pub(super) fn quoted(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

/// The generated config: keys exactly as in `config/mpsync.toml`.
fn config_toml(dir: &Path, base_url: &str, reseller_id: u64, rate_limit: Option<f64>) -> String {
    let mut s = format!(
        "# Written by `mpsync sim --keys-dir`: points mpsync at the simulator on {base_url}.\n\
         [daemon]\nlisten = \"127.0.0.1:9847\"\nstate_dir = {state}\n\n\
         [mailprotector]\nbase_url = {url}\napi_key_file = {key}\nreseller_id = {reseller_id}\n\
         schedule = \"0 */5 * * * *\"\n",
        state = quoted(&dir.join("state").to_string_lossy()),
        url = quoted(base_url),
        key = quoted(&dir.join(KEY_FILE).to_string_lossy()),
    );
    if let Some(rps) = rate_limit {
        // Match the simulator's bucket (depth ceil(rps)) so a well-behaved client sees no 429.
        let burst = rps.ceil().max(1.0) as u64;
        s.push_str(&format!("rate_limit = {rps:?}\nburst = {burst}\n"));
    }
    s
}

pub(super) async fn wait_for_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_names_the_sim_and_matches_its_rate_limit() {
        let t = config_toml(Path::new("/tmp/k"), "http://127.0.0.1:9850", 188, Some(2.5));
        assert!(t.contains("base_url = \"http://127.0.0.1:9850\""));
        assert!(t.contains("api_key_file = \"/tmp/k/mailprotector-api-key\""));
        assert!(t.contains("state_dir = \"/tmp/k/state\""));
        assert!(t.contains("rate_limit = 2.5\nburst = 3\n"));
        assert!(t.parse::<toml::Table>().is_ok());
        assert!(mpsync_sim::faults::spec_forms().contains("kind=hang"));
    }

    #[test]
    fn the_keys_dir_configures_connectwise_billing_and_the_mapping() {
        let tmp = tempfile::tempdir().unwrap();
        let ds = mpsync_sim::Dataset::generate(3, 40);
        let billing = mpsync_sim::connectwise::BillingData::generate(&ds, 3);
        let url = "http://127.0.0.1:9850";
        let config = write_keys_dir(tmp.path(), url, 188, ds.reseller_key(), Some(4.0)).unwrap();
        write_billing_files(tmp.path(), url, &billing, Some(4.0)).unwrap();
        for f in [CW_PUBLIC_FILE, CW_PRIVATE_FILE] {
            let mode = std::fs::metadata(tmp.path().join(f)).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{f}");
        }
        let opts = crate::config::LoadOptions {
            path: config,
            env: std::collections::HashMap::new(),
            overrides: Vec::new(),
        };
        let cfg = crate::config::load(&opts).expect("the written config is valid");
        let crate::config::BillingSource::Connectwise(cw) = &cfg.billing.source else {
            panic!("billing source is {:?}", cfg.billing.source);
        };
        assert_eq!(cw.company_id, billing.credentials.company_id);
        assert_eq!(cw.public_key.expose(), billing.credentials.public_key);
        assert_eq!(cw.private_key.expose(), billing.credentials.private_key);
        assert_eq!(cw.base_url.as_str().trim_end_matches('/'), url);
        let mapping = crate::config::Mapping::load(&cfg.reconcile.mapping_file).expect("mapping");
        let unmapped = billing.planted_with("unmapped_customer")[0].customer_ids[0];
        assert_eq!(mapping.account_of(unmapped), None);
        assert!(!mapping.customers.is_empty());
    }
}
