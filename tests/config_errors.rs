//! Every kind of bad configuration, driven through the real binary: each must exit 78 and
//! name the key path (and, for the environment, the variable) on stderr. Nothing here needs
//! a network: configs fail before any upstream is contacted.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::Output;

use crate::support::common::{self, KillOnDrop, TestDir};

/// A valid config for `td`; cases edit it with `replace` or append to it.
fn base(td: &TestDir) -> String {
    let key = td.secret("mailprotector-api-key", "test-key-0123456789\n");
    format!(
        "[daemon]\nlisten = \"127.0.0.1:9\"\nstate_dir = \"{}\"\n\n[mailprotector]\n\
         base_url = \"http://127.0.0.1:9\"\napi_key_file = \"{}\"\nreseller_id = 188\n\
         schedule = \"0 0 0 1 1 *\"\n",
        td.state_dir().display(),
        key.display()
    )
}

/// A file with `mode` holding a key, for the permission cases.
fn key_with_mode(td: &TestDir, mode: u32) -> PathBuf {
    let p = td.path().join("loose-key");
    fs::write(&p, "test-key\n").unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
    p
}

struct Case {
    name: &'static str,
    /// Turns the valid base config into the bad one.
    edit: fn(&TestDir, String) -> String,
    env: &'static [(&'static str, &'static str)],
    args: &'static [&'static str],
    /// Every one of these must appear on stderr.
    expect: &'static [&'static str],
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "unknown key in the file",
            edit: |_, c| c.replace("[daemon]\n", "[daemon]\nlisten_addr = \"127.0.0.1:1\"\n"),
            env: &[],
            args: &[],
            expect: &["daemon.listen_addr: unknown key", "did you mean daemon.listen?"],
        },
        Case {
            name: "unknown section",
            edit: |_, c| c + "[deamon]\nlog = \"info\"\n",
            env: &[],
            args: &[],
            expect: &["deamon: unknown section", "did you mean daemon?"],
        },
        Case {
            name: "key outside any section",
            edit: |_, c| format!("log_format = \"json\"\n{c}"),
            env: &[],
            args: &[],
            expect: &["log_format: unknown key", "put it under [daemon]"],
        },
        Case {
            name: "bad duration",
            edit: |_, c| c + "timeout = \"soon\"\n",
            env: &[],
            args: &[],
            expect: &["mailprotector.timeout: \"soon\" is not a duration"],
        },
        Case {
            name: "duration without a unit",
            edit: |_, c| c + "timeout = \"30\"\n",
            env: &[],
            args: &[],
            expect: &["mailprotector.timeout: \"30\" is not a duration; use a unit, e.g. \"30s\""],
        },
        Case {
            name: "five-field cron",
            edit: |_, c| c.replace("0 0 0 1 1 *", "*/5 * * * *"),
            env: &[],
            args: &[],
            expect: &["mailprotector.schedule:", "has 5 fields", "\"0 */5 * * * *\""],
        },
        Case {
            name: "garbage cron",
            edit: |_, c| c.replace("0 0 0 1 1 *", "every day"),
            env: &[],
            args: &[],
            expect: &["mailprotector.schedule:", "sec min hour day-of-month month day-of-week"],
        },
        Case {
            name: "bad listen address",
            edit: |_, c| c.replace("127.0.0.1:9\"\nstate", "localhost\"\nstate"),
            env: &[],
            args: &[],
            expect: &["daemon.listen: \"localhost\" is not an ip:port address"],
        },
        Case {
            name: "missing secret file",
            edit: |td, c| {
                let key = td.path().join("mailprotector-api-key").display().to_string();
                c.replace(&key, &td.path().join("nope").display().to_string())
            },
            env: &[],
            args: &[],
            expect: &["mailprotector.api_key_file:", "nope does not exist"],
        },
        Case {
            name: "world-readable secret file",
            edit: |td, c| {
                let key = td.path().join("mailprotector-api-key").display().to_string();
                c.replace(&key, &key_with_mode(td, 0o644).display().to_string())
            },
            env: &[],
            args: &[],
            expect: &["mailprotector.api_key_file:", "(mode 0644)", "chmod 600 "],
        },
        Case {
            name: "group-readable secret file",
            edit: |td, c| {
                let key = td.path().join("mailprotector-api-key").display().to_string();
                c.replace(&key, &key_with_mode(td, 0o640).display().to_string())
            },
            env: &[],
            args: &[],
            expect: &["mailprotector.api_key_file:", "(mode 0640)", "chmod 600 "],
        },
        Case {
            name: "empty secret file",
            edit: |td, c| {
                let key = td.path().join("mailprotector-api-key").display().to_string();
                c.replace(&key, &td.secret("empty-key", " \n").display().to_string())
            },
            env: &[],
            args: &[],
            expect: &["mailprotector.api_key_file:", "is empty"],
        },
        Case {
            name: "bad env override (type)",
            edit: |_, c| c,
            env: &[("MPSYNC_MAILPROTECTOR__BURST", "lots")],
            args: &[],
            expect: &[
                "mailprotector.burst: \"lots\" is not a whole number",
                "MPSYNC_MAILPROTECTOR__BURST",
            ],
        },
        Case {
            name: "unknown env key",
            edit: |_, c| c,
            env: &[("MPSYNC_DAEMON__LISTNE", "127.0.0.1:1")],
            args: &[],
            expect: &["daemon.listne: unknown key", "MPSYNC_DAEMON__LISTNE"],
        },
        Case {
            name: "unknown nested env key",
            edit: |_, c| c,
            env: &[("MPSYNC_BILLING__CONNECTWISE__BASEURL", "https://x.example")],
            args: &[],
            expect: &[
                "billing.connectwise.baseurl: unknown key",
                "MPSYNC_BILLING__CONNECTWISE__BASEURL",
            ],
        },
        Case {
            name: "invalid log filter",
            edit: |_, c| c.replace("[daemon]\n", "[daemon]\nlog = \"mpsync=loud\"\n"),
            env: &[],
            args: &[],
            expect: &["daemon.log: \"mpsync=loud\" is not a valid log filter"],
        },
        Case {
            name: "invalid RUST_LOG",
            edit: |_, c| c,
            env: &[("RUST_LOG", "mpsync=loud")],
            args: &[],
            expect: &["RUST_LOG: \"mpsync=loud\" is not a valid log filter"],
        },
        Case {
            name: "invalid --log flag",
            edit: |_, c| c,
            env: &[],
            args: &["--log", "mpsync=loud"],
            expect: &["daemon.log: \"mpsync=loud\" is not a valid log filter", "command line"],
        },
        Case {
            name: "missing reseller_id",
            edit: |_, c| c.replace("reseller_id = 188\n", ""),
            env: &[],
            args: &[],
            expect: &["mailprotector.reseller_id: required", "resellers/<id>"],
        },
        Case {
            name: "wrong type",
            edit: |_, c| c + "max_in_flight = [4]\n",
            env: &[],
            args: &[],
            expect: &["mailprotector.max_in_flight: an array is not a whole number"],
        },
        Case {
            name: "rate limit of zero",
            edit: |_, c| c + "rate_limit = 0\n",
            env: &[],
            args: &[],
            expect: &["mailprotector.rate_limit: 0 is not a number greater than 0"],
        },
        Case {
            name: "base_url with a query",
            edit: |_, c| c.replace("http://127.0.0.1:9\"", "http://127.0.0.1:9/?x=1\""),
            env: &[],
            args: &[],
            expect: &["mailprotector.base_url:", "must not have a query"],
        },
        Case {
            name: "unknown billing source",
            edit: |_, c| c + "[billing]\nsource = \"quickbooks\"\n",
            env: &[],
            args: &[],
            expect: &["billing.source: \"quickbooks\" is not a billing source"],
        },
        Case {
            name: "connectwise without keys",
            edit: |_, c| {
                c + "[billing]\nsource = \"connectwise\"\n[billing.connectwise]\ncompany_id = \"acme\"\n\
                     client_id = \"c1\"\n"
            },
            env: &[],
            args: &[],
            expect: &[
                "billing.connectwise.public_key_file: not set",
                "billing.connectwise.private_key_file: not set",
                ".credentials/connectwise-public-key",
            ],
        },
        Case {
            name: "csv without a path",
            edit: |_, c| c + "[billing]\nsource = \"csv\"\n",
            env: &[],
            args: &[],
            expect: &["billing.csv.path: required when billing.source = \"csv\""],
        },
        Case {
            name: "gradient enabled without keys",
            edit: |_, c| c + "[gradient]\nenabled = true\n",
            env: &[],
            args: &[],
            expect: &["gradient.vendor_key_file: not set", "gradient.partner_key_file: not set"],
        },
        Case {
            name: "gradient service filed under a category Gradient refuses",
            edit: |_, c| {
                c + "[gradient.services.CloudFilter]\ncategory = \"Email\"\n\
                     subcategory = \"email security\"\n"
            },
            env: &[],
            args: &[],
            expect: &["gradient.services.CloudFilter.category: \"Email\" is not an allowed value"],
        },
        Case {
            name: "number in quotes in the file",
            edit: |_, c| c.replace("reseller_id = 188", "reseller_id = \"188\""),
            env: &[],
            args: &[],
            expect: &[
                "mailprotector.reseller_id: \"188\" is in quotes",
                "write it without quotes: reseller_id = 188",
            ],
        },
        Case {
            name: "rate, count and boolean in quotes in the file (one rule for every typed key)",
            edit: |_, c| {
                c + "rate_limit = \"2.5\"\nburst = \"3\"\ncount_each_product = \"false\"\n\
                     [reconcile]\ndebounce_runs = \"2\"\n"
            },
            env: &[],
            args: &[],
            expect: &[
                "mailprotector.rate_limit: \"2.5\" is in quotes",
                "without quotes: rate_limit = 2.5",
                "mailprotector.burst: \"3\" is in quotes",
                "without quotes: burst = 3",
                "mailprotector.count_each_product: \"false\" is in quotes",
                "without quotes: count_each_product = false",
                "reconcile.debounce_runs: \"2\" is in quotes",
                "without quotes: debounce_runs = 2",
                "4 problems",
            ],
        },
        Case {
            name: "TOML syntax error",
            edit: |_, c| c.replace("[daemon]\n", "[daemon]\nlog = info\n"),
            env: &[],
            args: &[],
            expect: &["mpsync.toml: line 2, column", "fix the TOML syntax"],
        },
    ]
}

fn run(td: &TestDir, command: &str, case: &Case) -> Output {
    let path = td.config(&(case.edit)(td, base(td)));
    let mut cmd = common::mpsync();
    cmd.arg("-c").arg(&path).args(case.args).arg(command).envs(case.env.iter().copied());
    cmd.output().expect("run mpsync")
}

#[test]
fn every_bad_config_exits_78_naming_the_key() {
    let table = cases();
    assert!(table.len() >= 14);
    let mut failures = Vec::new();
    for case in &table {
        let td = TestDir::new();
        for command in ["check", "config"] {
            let out = run(&td, command, case);
            let stderr = String::from_utf8_lossy(&out.stderr);
            if out.status.code() != Some(78) {
                failures
                    .push(format!("{} ({command}): exit {:?}\n{stderr}", case.name, out.status));
                continue;
            }
            for want in case.expect {
                if !stderr.contains(want) {
                    failures.push(format!(
                        "{} ({command}): stderr lacks {want:?}:\n{stderr}",
                        case.name
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n---\n"));
}

#[test]
fn a_base_config_without_edits_is_valid() {
    // Guards the table: each case must fail because of its edit, not because the base is bad.
    let td = TestDir::new();
    let out = common::mpsync().arg("-c").arg(td.config(&base(&td))).arg("config").output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn three_problems_at_once_are_all_reported() {
    let td = TestDir::new();
    let bad = base(&td).replace("127.0.0.1:9\"\nstate", "nowhere\"\nstate")
        + "timeout = \"30\"\n[reconcile]\ndebounce_runs = 0\n";
    let out = common::mpsync()
        .arg("-c")
        .arg(td.config(&bad))
        .arg("check")
        .env("MPSYNC_DAEMON__LISTNE", "x")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("4 problems"), "{stderr}");
    for key in
        ["daemon.listen:", "daemon.listne:", "mailprotector.timeout:", "reconcile.debounce_runs:"]
    {
        assert!(stderr.contains(&format!("  - {key}")), "{key} missing:\n{stderr}");
    }
}

#[test]
fn an_inline_secret_is_refused_without_echoing_it() {
    let td = TestDir::new();
    let bad = base(&td) + "api_key = \"INLINE-CANARY-5512\"\n";
    let out = common::mpsync().arg("-c").arg(td.config(&bad)).arg("check").output().unwrap();
    assert_eq!(out.status.code(), Some(78));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stderr.contains("mailprotector.api_key: unknown key"), "{stderr}");
    assert!(stderr.contains("set mailprotector.api_key_file"), "{stderr}");
    assert!(!stderr.contains("INLINE-CANARY") && !stdout.contains("INLINE-CANARY"));

    // The key pasted where its file path belongs is not echoed either.
    let env = ("MPSYNC_MAILPROTECTOR__API_KEY_FILE", "INLINE-CANARY-5512");
    let out = common::mpsync()
        .arg("-c")
        .arg(td.config(&base(&td)))
        .arg("config")
        .env(env.0, env.1)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("mailprotector.api_key_file: must be the absolute path"), "{stderr}");
    assert!(stderr.contains("MPSYNC_MAILPROTECTOR__API_KEY_FILE"), "{stderr}");
    assert!(!stderr.contains("INLINE-CANARY") && !out.stdout.windows(6).any(|w| w == b"INLINE"));
}

#[test]
fn a_missing_config_file_given_with_c_is_named() {
    let td = TestDir::new();
    let missing = td.path().join("absent.toml");
    let out = common::mpsync().arg("-c").arg(&missing).arg("check").output().unwrap();
    assert_eq!(out.status.code(), Some(78));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "{}: the config file given with -c does not exist",
            missing.display()
        )),
        "{stderr}"
    );
}

/// Kills the child if a test fails before it exits, so nothing keeps running.
#[test]
fn run_refuses_the_same_bad_configs_with_78() {
    // `run` shares the loader with `check`; a sample of the table proves it reports the same.
    let sample = [
        "unknown key in the file",
        "five-field cron",
        "world-readable secret file",
        "unknown env key",
        "invalid RUST_LOG",
        "missing reseller_id",
    ];
    let table = cases();
    for name in sample {
        let case = table.iter().find(|c| c.name == name).expect("case in table");
        let td = TestDir::new();
        let path = td.config(&(case.edit)(&td, base(&td)));
        let mut cmd = common::mpsync();
        cmd.arg("-c").arg(&path).args(case.args).arg("run").envs(case.env.iter().copied());
        cmd.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::piped());
        let mut child = KillOnDrop(cmd.spawn().expect("spawn mpsync run"));
        let status =
            common::wait_for(std::time::Duration::from_secs(20), "mpsync run to exit", || {
                child.0.try_wait().expect("wait")
            });
        let mut stderr = String::new();
        std::io::Read::read_to_string(child.0.stderr.as_mut().unwrap(), &mut stderr).unwrap();
        assert_eq!(status.code(), Some(78), "{name}: {stderr}");
        for want in case.expect {
            assert!(stderr.contains(want), "{name}: stderr lacks {want:?}:\n{stderr}");
        }
    }
}
