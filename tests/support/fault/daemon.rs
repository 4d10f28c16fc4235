//! Starting and stopping the fixture's daemon, plain or under a wrapper that makes the state
//! dir's disk "full" (RLIMIT_FSIZE) or moves its wall clock (libfaketime).
//!
//! No wrapper ignores SIGXFSZ for the daemon: mpsync must survive a write past the limit by
//! itself (the write fails with EFBIG and is reported like a full disk).

use std::path::PathBuf;
use std::process::Command;

use super::Fixture;
use crate::support::common::{bin, clean_command};
use crate::support::daemon::Daemon;

/// How the daemon process is started.
#[derive(Debug, Clone, Copy)]
pub enum Wrap {
    /// As is ([`Fixture::limit_writes`] can lower its RLIMIT_FSIZE while it runs).
    Plain,
    /// The wall clock (CLOCK_REALTIME) is shifted by the offset in [`Fixture::clock`], re-read
    /// on every call, so the test can jump it while the daemon runs. Timers stay monotonic.
    FakeClock,
    /// Under `prlimit --fsize=N`: RLIMIT_FSIZE at this many bytes from the start.
    WritesLimited(u64),
}

/// Where Debian's `faketime` package puts the preload library.
const LIBFAKETIME: [&str; 2] = [
    "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
    "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1",
];

fn libfaketime() -> PathBuf {
    LIBFAKETIME.iter().map(PathBuf::from).find(|p| p.exists()).unwrap_or_else(|| {
        panic!(
            "the clock-jump case needs libfaketime: apt-get install faketime (.ci/run installs it)"
        )
    })
}

impl Fixture {
    /// Starts `mpsync run` (wrapped as `wrap`) on 127.0.0.1:0 and waits until it is ready
    /// (and has said where it listens).
    pub fn start(&mut self, wrap: Wrap) {
        assert!(self.daemon.is_none(), "a daemon is already running");
        let mut d = Daemon::spawn(self.command(wrap));
        d.wait_ready();
        self.daemon = Some(d);
    }

    /// The `mpsync run` command line (wrapped as `wrap`, listening on 127.0.0.1:0).
    pub fn command(&self, wrap: Wrap) -> Command {
        let mut cmd = match wrap {
            Wrap::Plain | Wrap::FakeClock => clean_command(bin()),
            Wrap::WritesLimited(bytes) => {
                let mut c = clean_command("prlimit");
                c.arg(format!("--fsize={bytes}")).arg("--").arg(bin());
                c
            }
        };
        if let Wrap::FakeClock = wrap {
            cmd.env("LD_PRELOAD", libfaketime())
                .env("FAKETIME_TIMESTAMP_FILE", &self.clock)
                .env("FAKETIME_NO_CACHE", "1")
                .env("FAKETIME_DONT_FAKE_MONOTONIC", "1");
        }
        cmd.envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        cmd.arg("--config").arg(&self.config).arg("run").arg("--listen").arg("127.0.0.1:0");
        cmd
    }

    /// SIGTERM, then waits for a clean exit (0) and returns the daemon's stderr.
    pub fn stop(&mut self) -> String {
        let mut d = self.daemon.take().expect("a daemon is running");
        d.signal("TERM");
        let status = d.wait_exit();
        let stderr = d.stderr();
        assert_eq!(status.code(), Some(0), "mpsync stopped with {status}:\n{stderr}");
        stderr
    }

    /// Sets the running daemon's RLIMIT_FSIZE (`None`: unlimited) with `prlimit --pid`: no
    /// write may reach past that offset of any file, as when the disk is full or failing.
    pub fn limit_writes(&self, bytes: Option<u64>) {
        let limit = bytes.map_or_else(|| "unlimited".to_owned(), |b| b.to_string());
        let pid = self.d().child.id().to_string();
        let out = Command::new("prlimit")
            .args(["--pid", &pid, &format!("--fsize={limit}:unlimited")])
            .output()
            .expect("run prlimit (util-linux)");
        assert!(out.status.success(), "prlimit: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// Sets the fake clock's offset (libfaketime syntax: "+3h", "-30m", "+0").
    pub fn set_clock(&self, offset: &str) {
        std::fs::write(&self.clock, format!("{offset}\n")).expect("write the clock offset");
    }
}
