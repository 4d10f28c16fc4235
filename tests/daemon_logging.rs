//! Logging of the real daemon: journald-style lines, and `--log` winning over the file even
//! after a SIGHUP reload.

use crate::support::common::{TestDir, mpsync};
use crate::support::daemon::Daemon;

#[test]
fn under_journald_lines_have_no_timestamps_or_colours() {
    let dir = TestDir::new();
    let config = dir.valid_config("127.0.0.1:0", "http://127.0.0.1:9");
    let mut cmd = mpsync();
    cmd.arg("--config").arg(&config).arg("run").env("JOURNAL_STREAM", "8:12345");
    let mut d = Daemon::spawn(cmd);
    d.wait_ready();
    d.signal("TERM");
    assert_eq!(d.wait_exit().code(), Some(0));
    let log = d.stderr();
    let ready = log.lines().find(|l| l.contains("mpsync ready on")).unwrap();
    // journald stamps lines itself: the line starts with the level, not a date.
    assert!(ready.starts_with(" INFO") || ready.starts_with("INFO"), "{ready:?}");
    assert!(!log.contains('\u{1b}'), "no ANSI escapes under journald: {log:?}");
}

#[test]
fn the_log_flag_wins_over_the_file_and_survives_a_reload() {
    let dir = TestDir::new();
    let config = dir.valid_config("127.0.0.1:0", "http://127.0.0.1:9");
    let good = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, good.replace("[daemon]\n", "[daemon]\nlog = \"warn\"\n")).unwrap();
    let mut cmd = mpsync();
    cmd.arg("--config").arg(&config).arg("--log").arg("info").arg("run");
    let mut d = Daemon::spawn(cmd);
    // Visible only because --log info beats the file's warn.
    d.wait_ready();

    // The file now asks for "error"; --log info still wins, so the info lines keep coming.
    std::fs::write(&config, good.replace("[daemon]\n", "[daemon]\nlog = \"error\"\n")).unwrap();
    d.signal("HUP");
    d.wait_log("configuration reloaded");
    d.signal("TERM");
    assert_eq!(d.wait_exit().code(), Some(0));
    assert!(d.stderr().contains("mpsync stopped"), "{}", d.stderr());
}
