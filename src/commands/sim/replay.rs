//! `mpsync sim --replay DIR [--listen ADDR] [--keys-dir DIR2]`: serves a capture bundle on
//! the simulator prefixes until Ctrl-C or SIGTERM. With `--keys-dir` it writes placeholder key
//! files (the replay accepts any key) and a ready `mpsync.toml` for what the bundle holds:
//! Mailprotector always, ConnectWise billing with an empty mapping, a dry-run Gradient push
//! (a replay can answer reads only).

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use super::{
    CW_PRIVATE_FILE, CW_PUBLIC_FILE, GRADIENT_PARTNER_KEY_FILE, GRADIENT_VENDOR_KEY_FILE, KEY_FILE,
    MAPPING_FILE, billing_toml, gradient_toml, quoted, wait_for_signal, write_secret,
};
use mpsync_sim::replay::bundle::{Manifest, Upstream};
use mpsync_sim::replay::{Bundle, ReplayServer};

use super::{CommandError, SimCommandError};

/// What the placeholder key files hold.
const PLACEHOLDER: &str = "replay-accepts-any-key";

/// The client budget the written config gives each upstream (requests per second, burst).
const REPLAY_RPS: f64 = 500.0;
const REPLAY_BURST: u32 = 50;

/// Loads the bundle in `dir` and serves it until a signal.
pub(super) async fn run(
    dir: &Path,
    listen: SocketAddr,
    keys_dir: Option<&Path>,
) -> Result<(), CommandError> {
    let bundle = Bundle::load(dir).map_err(SimCommandError::from)?;
    if keys_dir.is_some() && reseller_id(&bundle.manifest).is_none() {
        let manifest = dir.join(mpsync_sim::replay::bundle::MANIFEST);
        return Err(SimCommandError::NoResellerId { manifest }.into());
    }
    let handle = ReplayServer::start(&bundle, listen).await.map_err(SimCommandError::from)?;
    let mut addr = handle.addr();
    if addr.ip().is_unspecified() {
        addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), addr.port());
    }
    let base_url = format!("http://{addr}");
    let m = &bundle.manifest;
    let how = if m.pseudonymized { "pseudonymized" } else { "not pseudonymized" };
    println!(
        "mpsync sim: replaying the capture {} on {base_url} (captured {} by mpsync {}, {how})",
        dir.display(),
        m.captured_at.to_rfc3339(),
        m.mpsync_version
    );
    for u in &m.upstreams {
        println!(
            "  {:<14} {:>6} answers under {}  ({})",
            u.name.name(),
            u.requests,
            u.base_path,
            u.outcome
        );
    }
    println!(
        "  any key is accepted; a request the capture does not hold gets 404 saying so; \
         counts: GET {base_url}/_sim/requests"
    );
    if let Some(keys) = keys_dir {
        match write_replay_config(keys, m, &base_url) {
            Ok(config) => {
                println!("  wrote {} and placeholder key files", config.display());
                println!("  try: mpsync -c {} sync --once", config.display());
            }
            Err(source) => {
                handle.shutdown().await;
                return Err(SimCommandError::KeysDir { dir: keys.to_path_buf(), source }.into());
            }
        }
    }
    let _ = std::io::stdout().flush();
    wait_for_signal().await;
    eprintln!("mpsync sim: stopping");
    handle.shutdown().await;
    Ok(())
}

fn reseller_id(m: &Manifest) -> Option<u64> {
    m.upstreams.iter().find(|u| u.name == Upstream::Mailprotector).and_then(|u| u.reseller_id)
}

/// Writes placeholder keys (0600), an empty `mapping.toml` when the bundle holds ConnectWise,
/// and `mpsync.toml` (last, in one rename, so a reader never sees half of it) pointing at the
/// replay on `base_url`. Returns the config's path.
pub fn write_replay_config(dir: &Path, m: &Manifest, base_url: &str) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let dir = std::fs::canonicalize(dir)?;
    let has = |u: Upstream| m.upstreams.iter().any(|e| e.name == u);
    let reseller = reseller_id(m).unwrap_or_default();
    write_secret(&dir.join(KEY_FILE), PLACEHOLDER)?;
    let mut toml = format!(
        "# Written by `mpsync sim --replay --keys-dir`: points mpsync at the replay on {base_url}.\n\
         # The replay accepts any key: the key files hold placeholders.\n\
         [daemon]\nlisten = \"127.0.0.1:9847\"\nstate_dir = {state}\n\n\
         [mailprotector]\nbase_url = {url}\napi_key_file = {key}\nreseller_id = {reseller}\n\
         schedule = \"0 */5 * * * *\"\n\
         # The replay is local and unlimited: the budget only decides how fast a sync runs.\n\
         rate_limit = {REPLAY_RPS:?}\nburst = {REPLAY_BURST}\n",
        state = quoted(&dir.join("state").to_string_lossy()),
        url = quoted(base_url),
        key = quoted(&dir.join(KEY_FILE).to_string_lossy()),
    );
    if has(Upstream::Connectwise) {
        write_secret(&dir.join(CW_PUBLIC_FILE), PLACEHOLDER)?;
        write_secret(&dir.join(CW_PRIVATE_FILE), PLACEHOLDER)?;
        std::fs::write(
            dir.join(MAPPING_FILE),
            "# Written by `mpsync sim --replay --keys-dir`: nothing is mapped, so every customer\n\
             # shows as unmapped. Add [customers] and [products.<name>] entries (see\n\
             # config/mapping.toml) to reproduce a reconciliation.\n",
        )?;
        toml.push_str(&billing_toml(&dir, base_url, "replay", "replay", Some(REPLAY_RPS)));
    }
    if has(Upstream::Gradient) {
        write_secret(&dir.join(GRADIENT_VENDOR_KEY_FILE), PLACEHOLDER)?;
        write_secret(&dir.join(GRADIENT_PARTNER_KEY_FILE), PLACEHOLDER)?;
        toml.push_str(&gradient_toml(&dir, base_url, true));
    }
    let config = dir.join("mpsync.toml");
    let partial = dir.join("mpsync.toml.partial");
    std::fs::write(&partial, toml)?;
    std::fs::rename(&partial, &config)?;
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exit::{Exit, ExitStatus};
    use mpsync_sim::replay::BundleError;

    /// A bundle that cannot be read, does not parse or is not a capture ends `mpsync sim
    /// --replay` with EX_DATAERR (65), the status scripts see for a bad input file.
    #[test]
    fn a_bad_bundle_is_a_data_error() {
        let load =
            |dir: &Path| CommandError::from(SimCommandError::from(Bundle::load(dir).unwrap_err()));
        let dir = tempfile::tempdir().unwrap();
        let missing = load(dir.path());
        let said = missing.message().unwrap();
        assert!(said.starts_with("mpsync sim: cannot read the capture bundle file"), "{said}");
        assert_eq!(missing.exit(), Exit::DataErr);

        std::fs::write(dir.path().join(mpsync_sim::replay::bundle::MANIFEST), "{}").unwrap();
        let unparsable = load(dir.path());
        assert!(unparsable.to_string().contains("does not parse"), "{unparsable}");
        assert_eq!(unparsable.exit(), Exit::DataErr);

        let foreign = r#"{"format": "other", "format_version": 1, "mpsync_version": "0.1.0",
            "captured_at": "2026-12-01T10:00:00Z", "pseudonymized": true, "upstreams": [],
            "contains": [], "never_contains": []}"#;
        std::fs::write(dir.path().join(mpsync_sim::replay::bundle::MANIFEST), foreign).unwrap();
        let invalid = Bundle::load(dir.path()).unwrap_err();
        assert!(matches!(invalid, BundleError::Invalid { .. }), "{invalid}");
        assert_eq!(CommandError::from(SimCommandError::from(invalid)).exit(), Exit::DataErr);
    }
}
