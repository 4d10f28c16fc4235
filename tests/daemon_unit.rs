//! The shipped systemd unit agrees with the daemon: notify protocol, watchdog, a stop timeout
//! above the default shutdown grace, one credential per secret, and no trailing comments
//! (systemd would take them as part of the value).

use std::collections::HashMap;
use std::time::Duration;

use crate::support::common::TestDir;

fn unit() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/systemd/mpsync.service")).unwrap()
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
        ["/usr/local/bin/mpsync --config /etc/mpsync/mpsync.toml run"]
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

    let creds: Vec<&str> =
        values(&unit, "LoadCredential").iter().map(|v| v.split(':').next().unwrap()).collect();
    assert_eq!(
        creds,
        [
            "mailprotector-api-key",
            "connectwise-public-key",
            "connectwise-private-key",
            "gradient-vendor-key",
            "gradient-partner-key"
        ]
    );
}

#[test]
fn comments_are_only_on_their_own_lines() {
    for line in unit().lines().filter(|l| !l.trim_start().starts_with('#')) {
        assert!(!line.contains(" #") && !line.contains("\t#"), "trailing comment in {line:?}");
    }
}
