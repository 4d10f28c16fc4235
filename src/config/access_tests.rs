//! `[daemon]` access keys through `load`: a listen address other hosts reach needs
//! `allow_remote` and a token; the token's file or credential; allowed host names.

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::*;

const TOKEN: &str = "a-token-of-24-characters";

/// A valid config in `dir` (Mailprotector key and reseller) plus `daemon` lines.
fn config(dir: &Path, daemon: &str) -> PathBuf {
    let key = secret(dir, "mp-key", "mp-secret-value");
    let text = format!(
        "[daemon]\n{daemon}\n[mailprotector]\napi_key_file = \"{}\"\nreseller_id = 188\n",
        key.display()
    );
    let p = dir.join("mpsync.toml");
    fs::write(&p, text).unwrap();
    p
}

fn secret(dir: &Path, name: &str, value: &str) -> PathBuf {
    let p = dir.join(name);
    fs::write(&p, value).unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(0o600)).unwrap();
    p
}

fn opts(path: &Path, env: &[(&str, &str)]) -> LoadOptions {
    let env: HashMap<String, String> =
        env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    LoadOptions { path: path.to_path_buf(), env, overrides: Vec::new() }
}

fn problems(path: &Path, env: &[(&str, &str)]) -> Vec<ConfigProblem> {
    load(&opts(path, env)).expect_err("config should be invalid").problems
}

#[test]
fn loopback_needs_nothing_and_reads_no_token() {
    let dir = tempfile::tempdir().unwrap();
    // The token file is named but does not exist: without allow_remote it is not read.
    let cfg =
        load(&opts(&config(dir.path(), "access_token_file = \"/nonexistent\""), &[])).unwrap();
    assert!(!cfg.daemon.allow_remote && cfg.daemon.access_token.is_none());
    assert!(cfg.daemon.allowed_hosts.is_empty());
}

#[test]
fn a_listen_address_other_hosts_reach_is_refused_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    for listen in ["0.0.0.0:9847", "[::]:9847", "192.168.1.20:9847"] {
        let p = problems(&config(dir.path(), &format!("listen = \"{listen}\"")), &[]);
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].key, "daemon.listen");
        let m = &p[0].message;
        assert!(m.starts_with(&format!("{listen} lets other hosts connect")), "{m}");
        assert!(m.contains("SSH tunnel") && m.contains("daemon.allow_remote = true"), "{m}");
    }
    // From the environment, the variable is named.
    let path = config(dir.path(), "");
    let p = problems(&path, &[("MPSYNC_DAEMON__LISTEN", "0.0.0.0:9847")]);
    assert!(p[0].message.contains("(set by environment variable MPSYNC_DAEMON__LISTEN)"), "{p:?}");
}

#[test]
fn allow_remote_needs_a_token_from_a_file_or_the_credential() {
    let dir = tempfile::tempdir().unwrap();
    let path = config(dir.path(), "listen = \"0.0.0.0:9847\"\nallow_remote = true");
    let p = problems(&path, &[]);
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(p[0].key, "daemon.access_token_file");
    assert!(p[0].message.contains(".credentials/mpsync-access-token"), "{}", p[0].message);

    // The systemd credential.
    let creds = dir.path().join("creds");
    fs::create_dir(&creds).unwrap();
    fs::write(creds.join("mpsync-access-token"), format!("{TOKEN}\n")).unwrap();
    let cfg = load(&opts(&path, &[("CREDENTIALS_DIRECTORY", creds.to_str().unwrap())])).unwrap();
    assert_eq!(cfg.daemon.access_token.as_ref().map(|t| t.expose()), Some(TOKEN));

    // The file, which wins over the credential.
    let file = secret(dir.path(), "access-token", "from-the-file-0123456789");
    let path = config(
        dir.path(),
        &format!(
            "listen = \"0.0.0.0:9847\"\nallow_remote = true\naccess_token_file = \"{}\"",
            file.display()
        ),
    );
    let cfg = load(&opts(&path, &[("CREDENTIALS_DIRECTORY", creds.to_str().unwrap())])).unwrap();
    assert_eq!(
        cfg.daemon.access_token.as_ref().map(|t| t.expose()),
        Some("from-the-file-0123456789")
    );
    assert!(!format!("{cfg:?}").contains("from-the-file"), "Debug shows no token");
    let shown = redacted_toml(&cfg);
    assert!(shown.contains("access_token = \"<redacted>\"") && !shown.contains("from-the-file"));
}

#[test]
fn a_short_or_spaced_token_is_refused_without_showing_it() {
    let dir = tempfile::tempdir().unwrap();
    for weak in ["short-token", "a token with spaces in it"] {
        let file = secret(dir.path(), "access-token", weak);
        let path = config(
            dir.path(),
            &format!("allow_remote = true\naccess_token_file = \"{}\"", file.display()),
        );
        let p = problems(&path, &[]);
        assert_eq!(p[0].key, "daemon.access_token_file", "{p:?}");
        assert!(p[0].message.contains("at least 16 printable characters"), "{p:?}");
        assert!(!p[0].message.contains(weak), "{p:?}");
    }
}

#[test]
fn allowed_hosts_from_the_file_or_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let path = config(dir.path(), "allowed_hosts = [\"MPSync.Example.com\", \"10.0.0.5\"]");
    let cfg = load(&opts(&path, &[])).unwrap();
    assert_eq!(cfg.daemon.allowed_hosts, ["mpsync.example.com", "10.0.0.5"]);
    let env = [("MPSYNC_DAEMON__ALLOWED_HOSTS", "a.example.com,b.example.com")];
    let cfg = load(&opts(&config(dir.path(), ""), &env)).unwrap();
    assert_eq!(cfg.daemon.allowed_hosts, ["a.example.com", "b.example.com"]);
    let p = problems(&config(dir.path(), "allowed_hosts = [\"https://mpsync.example.com\"]"), &[]);
    assert_eq!(p[0].key, "daemon.allowed_hosts");
    assert!(p[0].message.contains("without scheme, port or path"), "{p:?}");
}
