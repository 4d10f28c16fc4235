//! `mpsync init` from flags (automation): the config and the secret files it writes (0600, in
//! the credentials directory beside the config), the `check` it runs against the simulator;
//! and its refusals: nothing is overwritten (73), a value missing without a terminal names
//! its flag (64), and only the unconfigured example the package ships may be replaced.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};

use crate::support::common::{TestDir, mpsync};
use crate::support::sync::Sim;

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// `mpsync -c CONFIG init ARGS` with `stdin` as its standard input (not a terminal).
fn init(config: &Path, args: &[&str], stdin: &str) -> Output {
    let mut child = mpsync()
        .arg("-c")
        .arg(config)
        .arg("init")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run mpsync init");
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

fn flags(sim: &Sim, state: &Path) -> Vec<String> {
    [
        "--reseller-id",
        &sim.control().reseller_id().to_string(),
        "--api-key-file",
        "-",
        "--billing",
        "none",
        "--mailprotector-url",
        &sim.base_url(),
        "--listen",
        "127.0.0.1:9848",
        "--state-dir",
        &state.display().to_string(),
    ]
    .map(str::to_owned)
    .to_vec()
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

#[test]
fn init_from_flags_writes_the_config_and_private_secrets_then_checks() {
    let sim = Sim::start(31, 5);
    let dir = TestDir::new();
    let config = dir.path().join("work.toml");
    let key = sim.control().reseller_key();
    let out = init(&config, &strs(&flags(&sim, &dir.state_dir())), &format!("{key}\n"));
    assert!(out.status.success(), "{}", text(&out));
    let said = text(&out);
    assert!(said.contains("running mpsync check"), "{said}");
    assert!(said.contains("the API key reaches reseller"), "{said}");
    assert!(!said.contains(&key), "the key is never shown: {said}");

    let creds: PathBuf = dir.path().join("work.credentials");
    let secret = creds.join("mailprotector-api-key");
    assert_eq!(std::fs::read_to_string(&secret).unwrap(), format!("{key}\n"));
    assert_eq!(mode(&secret), 0o600);
    assert_eq!(mode(&creds), 0o700);
    let written = std::fs::read_to_string(&config).unwrap();
    assert!(!written.contains(&key), "no secret in the config");
    assert!(written.contains("listen = \"127.0.0.1:9848\""), "{written}");
    // The config is what mpsync loads, with the secret found beside it.
    let opts = mpsync::config::LoadOptions {
        path: config.clone(),
        env: Default::default(),
        overrides: Vec::new(),
    };
    let cfg = mpsync::config::load(&opts).unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(cfg.mailprotector.reseller_id, sim.control().reseller_id());
    assert_eq!(cfg.mailprotector.api_key.expose(), key);

    // Again: refused, nothing touched.
    let again = init(&config, &strs(&flags(&sim, &dir.state_dir())), "another-key-000000\n");
    assert_eq!(again.status.code(), Some(73), "{}", text(&again));
    assert!(text(&again).contains(&config.display().to_string()), "{}", text(&again));
    assert!(text(&again).contains("never overwrites"), "{}", text(&again));
    assert_eq!(std::fs::read_to_string(&config).unwrap(), written);
    assert_eq!(std::fs::read_to_string(&secret).unwrap(), format!("{key}\n"));
}

#[test]
fn an_existing_secret_is_refused_before_anything_is_written() {
    let sim = Sim::start(32, 2);
    let dir = TestDir::new();
    let config = dir.path().join("mpsync.toml");
    let creds = dir.path().join("mpsync.credentials");
    std::fs::create_dir(&creds).unwrap();
    std::fs::write(creds.join("mailprotector-api-key"), "old-key-value-123\n").unwrap();
    let out = init(&config, &strs(&flags(&sim, &dir.state_dir())), "new-key-value-456\n");
    assert_eq!(out.status.code(), Some(73), "{}", text(&out));
    assert!(text(&out).contains("mailprotector-api-key"), "{}", text(&out));
    assert!(!config.exists(), "no config written");
    let kept = std::fs::read_to_string(creds.join("mailprotector-api-key")).unwrap();
    assert_eq!(kept, "old-key-value-123\n");
}

#[test]
fn without_a_terminal_a_missing_value_names_its_flag() {
    let dir = TestDir::new();
    let config = dir.path().join("mpsync.toml");
    let out = init(&config, &["--billing", "none"], "");
    assert_eq!(out.status.code(), Some(64), "{}", text(&out));
    assert!(text(&out).contains("--reseller-id is needed"), "{}", text(&out));
    assert!(!config.exists());
}

#[test]
fn the_shipped_example_is_the_one_config_init_replaces() {
    let sim = Sim::start(33, 2);
    let dir = TestDir::new();
    let config = dir.path().join("mpsync.toml");
    let example =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/packaging/mpsync.toml"))
            .unwrap();
    // Edited by hand: kept.
    std::fs::write(&config, format!("{example}# edited\n")).unwrap();
    let key = sim.control().reseller_key();
    let mut args = flags(&sim, &dir.state_dir());
    args.push("--no-check".into());
    let out = init(&config, &strs(&args), &format!("{key}\n"));
    assert_eq!(out.status.code(), Some(73), "{}", text(&out));
    // As shipped: replaced.
    std::fs::write(&config, &example).unwrap();
    let out = init(&config, &strs(&args), &format!("{key}\n"));
    assert!(out.status.success(), "{}", text(&out));
    let written = std::fs::read_to_string(&config).unwrap();
    assert!(written.contains(&format!("reseller_id = {}", sim.control().reseller_id())));
}

#[test]
fn autotask_secrets_come_as_lines_of_standard_input_in_flag_order() {
    let dir = TestDir::new();
    let config = dir.path().join("at.toml");
    let args = [
        "--reseller-id",
        "188",
        "--api-key-file",
        "-",
        "--billing",
        "autotask",
        "--at-username",
        "api@example.com",
        "--at-integration-code-file",
        "-",
        "--at-secret-file",
        "-",
        "--no-check",
    ];
    let out = init(&config, &args, "mp-key-0123456789\nINTEGRATION-CODE-42\nat-secret-value-7\n");
    assert!(out.status.success(), "{}", text(&out));
    let creds = dir.path().join("at.credentials");
    for (name, value) in [
        ("mailprotector-api-key", "mp-key-0123456789"),
        ("autotask-integration-code", "INTEGRATION-CODE-42"),
        ("autotask-secret", "at-secret-value-7"),
    ] {
        assert_eq!(std::fs::read_to_string(creds.join(name)).unwrap(), format!("{value}\n"));
        assert_eq!(mode(&creds.join(name)), 0o600);
    }
    let written = std::fs::read_to_string(&config).unwrap();
    assert!(written.contains("source = \"autotask\""), "{written}");
    assert!(written.contains("username = \"api@example.com\""), "{written}");
}

#[test]
fn halopsa_from_flags_writes_its_section_and_the_client_secret_and_the_config_loads() {
    let dir = TestDir::new();
    let config = dir.path().join("halo.toml");
    let args = [
        "--reseller-id",
        "188",
        "--api-key-file",
        "-",
        "--billing",
        "halopsa",
        "--halo-url",
        "https://acme.halopsa.com/api/",
        "--halo-tenant",
        "acme",
        "--halo-client-id",
        "app-0001",
        "--halo-client-secret-file",
        "-",
        "--no-check",
    ];
    let out = init(&config, &args, "mp-key-0123456789\nhalo-secret-value-9\n");
    assert!(out.status.success(), "{}", text(&out));
    let secret = dir.path().join("halo.credentials").join("halopsa-client-secret");
    assert_eq!(std::fs::read_to_string(&secret).unwrap(), "halo-secret-value-9\n");
    assert_eq!(mode(&secret), 0o600);
    let written = std::fs::read_to_string(&config).unwrap();
    for line in [
        "source = \"halopsa\"",
        "base_url = \"https://acme.halopsa.com\"",
        "client_id = \"app-0001\"",
        "tenant = \"acme\"",
    ] {
        assert!(written.contains(line), "{line} in {written}");
    }
    assert!(!written.contains("halo-secret-value-9"), "{written}");
    // The config it wrote loads, and the secret is found beside it.
    let shown = mpsync().arg("-c").arg(&config).arg("config").output().unwrap();
    assert!(shown.status.success(), "{}", text(&shown));
    let shown = text(&shown);
    assert!(
        shown.contains("[billing.halopsa]")
            && shown.contains("auth_url = \"https://acme.halopsa.com/auth\""),
        "{shown}"
    );
    assert!(!shown.contains("halo-secret-value-9"), "{shown}");

    // On premises: no tenant line.
    let config = dir.path().join("onprem.toml");
    let mut args = args.to_vec();
    args[9] = "-";
    let out = init(&config, &args, "mp-key-0123456789\nhalo-secret-value-9\n");
    assert!(out.status.success(), "{}", text(&out));
    assert!(!std::fs::read_to_string(&config).unwrap().contains("tenant"));
}
