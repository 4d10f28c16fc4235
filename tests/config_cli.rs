//! `mpsync config` and `mpsync check` through the real binary: effective values and where they
//! came from, secrets never shown, the check table and JSON, exit codes, and the shipped
//! example config staying in step with the code.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Output;

use crate::support::common::{self, TestDir};

const CANARY: &str = "CANARY-SECRET-7f3a9c";

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn run(args: &[&str], config: &Path, env: &[(&str, &str)]) -> Output {
    let mut cmd = common::mpsync();
    cmd.arg("-c").arg(config).args(args).envs(env.iter().copied());
    cmd.output().expect("run mpsync")
}

#[test]
fn config_shows_effective_values_and_where_they_came_from() {
    let td = TestDir::new();
    let path = td.valid_config("127.0.0.1:1111", "http://127.0.0.1:9");
    let env = [("MPSYNC_DAEMON__LISTEN", "127.0.0.1:2222")];
    let out = run(&["--log", "mpsync=debug", "config"], &path, &env);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("listen = \"127.0.0.1:2222\"  # from MPSYNC_DAEMON__LISTEN"),
        "{stdout}"
    );
    assert!(stdout.contains("log = \"mpsync=debug\"  # from the command line"), "{stdout}");
    assert!(stdout.contains("reseller_id = 188  # from the file"), "{stdout}");
    assert!(stdout.contains("timeout = \"30s\"  # default"), "{stdout}");
    let key = td.path().join("mailprotector-api-key");
    assert!(stdout.contains(&format!("api_key = \"<redacted>\"  # read from {}", key.display())));
    // The output is TOML an operator (or a script) can read back.
    let parsed: toml::Table = toml::from_str(&stdout).expect("config prints valid TOML");
    assert_eq!(parsed["daemon"]["listen"].as_str(), Some("127.0.0.1:2222"));
    assert_eq!(parsed["mailprotector"]["schedule"].as_str(), Some("0 0 0 1 1 *"));
}

/// Without `listen` the daemon serves on 127.0.0.1:9847, and `mpsync config` says so. (No
/// test binds it: every daemon the tests start listens on 127.0.0.1:0.)
#[test]
fn a_config_without_listen_serves_on_127_0_0_1_9847() {
    let td = TestDir::new();
    let path = td.valid_config("127.0.0.1:0", "http://127.0.0.1:9");
    let toml = fs::read_to_string(&path).unwrap().replace("listen = \"127.0.0.1:0\"\n", "");
    assert!(!toml.contains("listen"), "{toml}");
    fs::write(&path, &toml).unwrap();
    let out = run(&["config"], &path, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("listen = \"127.0.0.1:9847\"  # default"), "{stdout}");
}

/// One typing rule, by where a value came from: the file writes types, so a quoted number
/// there is refused (78) with the fix; an environment variable is always text, so the same
/// digits there are a number, and override the file's bad value.
#[test]
fn a_quoted_number_is_refused_in_the_file_and_accepted_from_the_environment() {
    let td = TestDir::new();
    let valid = td.valid_config("127.0.0.1:1111", "http://127.0.0.1:9");
    let written = fs::read_to_string(&valid).unwrap();
    assert!(written.contains("reseller_id = 188\n"), "{written}");
    let path = td.config(&written.replace("reseller_id = 188\n", "reseller_id = \"188\"\n"));

    let out = run(&["config"], &path, &[]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(78), "{stderr}");
    assert!(
        stderr.contains(
            "mailprotector.reseller_id: \"188\" is in quotes, so the file gives it as text; \
             write it without quotes: reseller_id = 188"
        ),
        "{stderr}"
    );

    let env = [("MPSYNC_MAILPROTECTOR__RESELLER_ID", "188"), ("MPSYNC_GRADIENT__ENABLED", "false")];
    let out = run(&["config"], &path, &env);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("reseller_id = 188  # from MPSYNC_MAILPROTECTOR__RESELLER_ID"),
        "{stdout}"
    );
    assert!(stdout.contains("enabled = false  # from MPSYNC_GRADIENT__ENABLED"), "{stdout}");
}

#[test]
fn secrets_never_appear_in_config_or_check_output() {
    let td = TestDir::new();
    let path = td.valid_config("127.0.0.1:1111", "http://127.0.0.1:9");
    // Every secret the config can hold carries the canary.
    let mp = td.secret("mailprotector-api-key", &format!("{CANARY}-mp\n"));
    let cw_pub = td.secret("cw-public", &format!("{CANARY}-pub"));
    let cw_priv = td.secret("cw-private", &format!("{CANARY}-priv"));
    let g_vendor = td.secret("g-vendor", &format!("{CANARY}-vendor"));
    let g_partner = td.secret("g-partner", &format!("{CANARY}-partner"));
    let access = td.secret("access-token", &format!("{CANARY}-access"));
    let mut toml = fs::read_to_string(&path).unwrap().replacen(
        "[daemon]\n",
        &format!("[daemon]\nallow_remote = true\naccess_token_file = \"{}\"\n", access.display()),
        1,
    );
    toml.push_str(&format!(
        "\n[billing]\nsource = \"connectwise\"\n[billing.connectwise]\ncompany_id = \"acme\"\n\
         client_id = \"c1\"\npublic_key_file = \"{}\"\nprivate_key_file = \"{}\"\n\
         [gradient]\nenabled = true\nvendor_key_file = \"{}\"\npartner_key_file = \"{}\"\n",
        cw_pub.display(),
        cw_priv.display(),
        g_vendor.display(),
        g_partner.display()
    ));
    let path = td.config(&toml);
    assert!(fs::read_to_string(&mp).unwrap().contains(CANARY));

    let config = run(&["config"], &path, &[]);
    assert_eq!(config.status.code(), Some(0), "{}", text(&config.stderr));
    assert_eq!(
        text(&config.stdout).matches("\"<redacted>\"").count(),
        6,
        "{}",
        text(&config.stdout)
    );
    let check = run(&["check"], &path, &[]);
    let check_json = run(&["check", "--json"], &path, &[]);
    // A config that reads every secret and still has a problem elsewhere.
    let broken = run(&["check"], &path, &[("MPSYNC_DAEMON__LISTEN", "nowhere")]);
    assert_eq!(broken.status.code(), Some(78));
    for out in [&config, &check, &check_json, &broken] {
        for stream in [text(&out.stdout), text(&out.stderr)] {
            assert!(!stream.contains(CANARY), "a secret leaked:\n{stream}");
        }
    }
}

#[test]
fn check_passes_a_valid_config_as_a_table_and_as_json() {
    // The simulator stands in for Mailprotector, so the connection check has a real peer.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let sim = rt.block_on(mpsync_sim::SimServer::start(mpsync_sim::SimOptions::default())).unwrap();
    let (reseller, key) = {
        let ds = sim.control().read();
        (ds.reseller_id(), ds.reseller_key().to_owned())
    };
    let td = TestDir::new();
    let path = td.valid_config("127.0.0.1:1111", &sim.base_url());
    td.secret("mailprotector-api-key", &key);
    let out = run(&["check"], &path, &[]);
    assert_eq!(out.status.code(), Some(0), "{}{}", text(&out.stdout), text(&out.stderr));
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(lines[0].starts_with("CHECK") && lines[0].contains("RESULT"), "{stdout}");
    assert!(lines.iter().any(|l| l.starts_with("config") && l.contains(" ok ")), "{stdout}");
    assert!(lines.iter().any(|l| l.starts_with("store") && l.contains(" ok ")), "{stdout}");
    assert!(
        lines.iter().any(|l| l.starts_with("mailprotector")
            && l.contains(" ok ")
            && l.contains(&format!("reseller {reseller}"))),
        "{stdout}"
    );
    assert!(td.state_dir().join("mpsync.redb").exists(), "check opened the store");

    let out = run(&["check", "--json"], &path, &[]);
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v["ok"], true);
    assert_eq!(v["exit_code"], 0);
    let names: Vec<&str> =
        v["checks"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["config", "store", "counting", "mailprotector"]);
    let counting = v["checks"][2]["detail"].as_str().unwrap();
    assert!(counting.starts_with("counts users of type User (1) (count_user_types)"), "{counting}");
    assert!(counting.contains("no vendor run yet"), "{counting}");

    // A wrong key: the check fails with 69 and says which setting to fix.
    td.secret("mailprotector-api-key", "not-the-key");
    let out = run(&["check"], &path, &[]);
    assert_eq!(out.status.code(), Some(69), "{}", text(&out.stdout));
    let stdout = text(&out.stdout);
    let line = stdout.lines().find(|l| l.starts_with("mailprotector")).unwrap_or_default();
    assert!(line.contains("FAILED") && line.contains("api_key"), "{stdout}");
    rt.block_on(sim.shutdown());
}

#[test]
fn check_warns_about_a_listen_address_other_hosts_reach() {
    let td = TestDir::new();
    let token = td.secret("access-token", "check-token-0123456789");
    let base = fs::read_to_string(td.valid_config("0.0.0.0:9847", "http://127.0.0.1:9")).unwrap();
    // Refused without allow_remote: a config error naming the key and the fix.
    let out = run(&["check"], &td.config(&base), &[]);
    assert_eq!(out.status.code(), Some(78), "{}", text(&out.stdout));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("daemon.listen: 0.0.0.0:9847 lets other hosts connect"), "{stderr}");
    assert!(stderr.contains("daemon.allow_remote = true"), "{stderr}");

    let allowed = base.replacen(
        "[daemon]\n",
        &format!("[daemon]\nallow_remote = true\naccess_token_file = \"{}\"\n", token.display()),
        1,
    );
    // No Mailprotector behind http://127.0.0.1:9, so check fails there (69); the listen line
    // itself passes, with a warning.
    let out = run(&["check"], &td.config(&allowed), &[]);
    assert_eq!(out.status.code(), Some(69), "{}", text(&out.stdout));
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    let at =
        lines.iter().position(|l| l.starts_with("listen")).unwrap_or_else(|| panic!("{stdout}"));
    let (line, warning) = (lines[at], lines[at + 1]);
    assert!(line.contains(" warn ") && line.contains("0.0.0.0:9847"), "{line}");
    assert!(line.contains(&token.display().to_string()), "{line}");
    assert!(warning.starts_with("  warning: daemon.listen 0.0.0.0:9847 accepts connections"));
    assert!(warning.contains("SSH tunnel"), "{warning}");
    assert!(!stdout.contains("check-token-0123456789"), "{stdout}");
    // In JSON: a passing check with the warning.
    let out = run(&["check", "--json"], &td.config(&allowed), &[]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let listen = v["checks"].as_array().unwrap().iter().find(|c| c["name"] == "listen").unwrap();
    assert_eq!(listen["ok"], true);
    assert!(listen["warnings"][0].as_str().unwrap().contains("accepts connections"), "{listen}");
    // A loopback address needs no warning line.
    let out = run(&["check"], &td.valid_config("127.0.0.1:9847", "http://127.0.0.1:9"), &[]);
    assert!(!text(&out.stdout).lines().any(|l| l.starts_with("listen")), "{}", text(&out.stdout));
}

#[test]
fn check_json_lists_every_config_problem() {
    let td = TestDir::new();
    let path = td.valid_config("nowhere", "http://127.0.0.1:9");
    let out = run(&["check", "--json"], &path, &[("MPSYNC_DAEMON__LISTNE", "x")]);
    assert_eq!(out.status.code(), Some(78));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v["ok"], false);
    assert_eq!(v["exit_code"], 78);
    let keys: Vec<&str> = v["config_problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["daemon.listen", "daemon.listne"]);
    assert_eq!(v["checks"][0]["name"], "config");
    assert_eq!(v["checks"][0]["ok"], false);
}

#[test]
fn check_exits_75_while_another_process_holds_the_store() {
    let td = TestDir::new();
    let path = td.valid_config("127.0.0.1:1111", "http://127.0.0.1:9");
    let held = mpsync::store::Store::open(&td.state_dir()).expect("open store");
    let out = run(&["check"], &path, &[]);
    assert_eq!(out.status.code(), Some(75), "{}", text(&out.stdout));
    assert!(text(&out.stdout).contains("another mpsync process"), "{}", text(&out.stdout));
    drop(held);
}

#[test]
fn secrets_come_from_the_systemd_credentials_directory() {
    let td = TestDir::new();
    let creds = td.path().join("creds");
    fs::create_dir(&creds).unwrap();
    let key = creds.join("mailprotector-api-key");
    fs::write(&key, format!("{CANARY}\n")).unwrap();
    // systemd may show credentials as 0440 (ACL mask); the private directory protects them.
    fs::set_permissions(&key, fs::Permissions::from_mode(0o440)).unwrap();
    let path = td.config("[mailprotector]\nreseller_id = 188\n");
    let creds_env = [("CREDENTIALS_DIRECTORY", creds.to_str().unwrap())];
    let out = run(&["config"], &path, &creds_env);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains(&format!("# read from {}", key.display())));
    assert!(!text(&out.stdout).contains(CANARY));

    let out = run(&["config"], &path, &[]);
    assert_eq!(out.status.code(), Some(78));
    assert!(
        text(&out.stderr).contains("mailprotector.api_key_file: not set"),
        "{}",
        text(&out.stderr)
    );
}

fn example() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/config/mpsync.toml"))
}

#[test]
fn the_shipped_example_fails_only_because_its_secret_file_is_absent() {
    let out = run(&["config"], example(), &[]);
    assert_eq!(out.status.code(), Some(78));
    let stderr = text(&out.stderr);
    let problems: Vec<&str> = stderr.lines().filter(|l| l.starts_with("  - ")).collect();
    assert_eq!(problems.len(), 1, "{stderr}");
    assert!(problems[0].starts_with("  - mailprotector.api_key_file: the secret file"), "{stderr}");
    assert!(problems[0].contains("does not exist"), "{stderr}");

    // With a key file supplied, the example is a complete, valid config.
    let td = TestDir::new();
    let key = td.secret("k", "v");
    let env = [("MPSYNC_MAILPROTECTOR__API_KEY_FILE", key.to_str().unwrap())];
    let out = run(&["config"], example(), &env);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}
