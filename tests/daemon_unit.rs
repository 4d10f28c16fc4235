//! The shipped systemd units (the single `mpsync.service` and the template `mpsync@.service`)
//! agree with the daemon: notify protocol, watchdog, a stop timeout above the default
//! shutdown grace, one credentials directory beside the config that mpsync reads under its
//! prefix, config errors not restarted, and no trailing comments (systemd would take them as
//! part of the value).

use std::collections::HashMap;
use std::time::Duration;

use crate::support::common::TestDir;

fn unit() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/systemd/mpsync.service")).unwrap()
}

fn template() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/systemd/mpsync@.service"))
        .unwrap()
}

fn values<'a>(unit: &'a str, key: &str) -> Vec<&'a str> {
    unit.lines().filter_map(|l| l.strip_prefix(key)?.strip_prefix('=')).collect()
}

#[test]
fn the_unit_matches_the_daemon() {
    let unit = unit();
    assert_eq!(values(&unit, "Type"), ["notify"]);
    assert_eq!(
        values(&unit, "ExecStart"),
        ["/usr/bin/mpsync --config /etc/mpsync/mpsync.toml run"]
    );
    assert_eq!(values(&unit, "ExecReload"), ["/bin/kill -HUP $MAINPID"]);
    assert_eq!(values(&unit, "Restart"), ["on-failure"]);

    let stop =
        humantime::parse_duration(&format!("{}s", values(&unit, "TimeoutStopSec")[0])).unwrap();
    let dir = TestDir::new();
    let config = dir.valid_config("127.0.0.1:9847", "http://127.0.0.1:9");
    let text = std::fs::read_to_string(&config).unwrap().replace("shutdown_grace = \"5s\"\n", "");
    std::fs::write(&config, text).unwrap();
    let opts = mpsync::config::LoadOptions { path: config, env: HashMap::new(), overrides: vec![] };
    let grace = mpsync::config::load(&opts).unwrap().daemon.shutdown_grace;
    assert!(
        grace + Duration::from_secs(5) <= stop,
        "default grace {grace:?} must leave room below TimeoutStopSec {stop:?}"
    );

    // One credentials directory: the one mpsync reads itself beside the config (so `sudo
    // mpsync check` sees what the service sees), loaded under the prefix mpsync reads.
    assert_eq!(values(&unit, "LoadCredential"), ["mpsync:/etc/mpsync/mpsync.credentials"]);
    let beside =
        mpsync::config::credentials_dir_for(std::path::Path::new("/etc/mpsync/mpsync.toml"));
    assert_eq!(beside, std::path::Path::new("/etc/mpsync/mpsync.credentials"));
    assert_eq!(values(&unit, "RestartPreventExitStatus"), ["78"]);
    assert_eq!(values(&unit, "ConditionPathExists"), ["/etc/mpsync/mpsync.toml"]);
}

#[test]
fn the_template_is_the_unit_per_instance() {
    let (unit, template) = (unit(), template());
    assert_eq!(
        values(&template, "ExecStart"),
        ["/usr/bin/mpsync --config /etc/mpsync/%i.toml run"]
    );
    assert_eq!(values(&template, "StateDirectory"), ["mpsync/%i"]);
    assert_eq!(values(&template, "LoadCredential"), ["mpsync:/etc/mpsync/%i.credentials"]);
    assert_eq!(values(&template, "ConditionPathExists"), ["/etc/mpsync/%i.toml"]);
    assert_eq!(values(&template, "User"), ["mpsync-%i"]);
    // NAME.toml's credentials directory is NAME.credentials, as the template loads it.
    let beside = mpsync::config::credentials_dir_for(std::path::Path::new("/etc/mpsync/work.toml"));
    assert_eq!(beside, std::path::Path::new("/etc/mpsync/work.credentials"));
    // Every other setting (hardening, timeouts, notify) is the single unit's.
    let settings = |u: &str| -> Vec<String> {
        u.lines()
            .filter(|l| !l.starts_with('#') && l.contains('='))
            .filter(|l| {
                ![
                    "Description=",
                    "ExecStart=",
                    "StateDirectory=",
                    "LoadCredential=",
                    "ConditionPathExists=",
                    "User=",
                ]
                .iter()
                .any(|k| l.starts_with(k))
            })
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(settings(&template), settings(&unit));
    for line in template.lines().filter(|l| !l.trim_start().starts_with('#')) {
        assert!(!line.contains(" #") && !line.contains("\t#"), "trailing comment in {line:?}");
    }
}

#[test]
fn comments_are_only_on_their_own_lines() {
    for line in unit().lines().filter(|l| !l.trim_start().starts_with('#')) {
        assert!(!line.contains(" #") && !line.contains("\t#"), "trailing comment in {line:?}");
    }
}
