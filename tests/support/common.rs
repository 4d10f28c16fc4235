//! Shared helpers for integration tests: a temp dir with secret files and a config, the path
//! of the real binary, and waiting on a condition with a deadline (never a bare sleep).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The mpsync binary built for this test run.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_mpsync"))
}

/// A `Command` for the binary with a clean environment: no inherited MPSYNC_*, RUST_LOG,
/// NOTIFY_SOCKET, CREDENTIALS_DIRECTORY or STATE_DIRECTORY.
pub fn mpsync() -> Command {
    clean_command(bin())
}

/// A `Command` for `program` (e.g. a wrapper that execs mpsync) with the same clean
/// environment as [`mpsync`].
pub fn clean_command(program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut cmd = Command::new(program);
    for (k, _) in std::env::vars() {
        if k.starts_with("MPSYNC_")
            || matches!(
                k.as_str(),
                "RUST_LOG"
                    | "NOTIFY_SOCKET"
                    | "WATCHDOG_USEC"
                    | "WATCHDOG_PID"
                    | "CREDENTIALS_DIRECTORY"
                    | "STATE_DIRECTORY"
                    | "JOURNAL_STREAM"
            )
        {
            cmd.env_remove(k);
        }
    }
    cmd
}

/// A temporary directory holding a config, its secrets and a state dir.
pub struct TestDir {
    pub dir: tempfile::TempDir,
}

impl TestDir {
    pub fn new() -> TestDir {
        TestDir { dir: tempfile::tempdir().expect("create temp dir") }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The state dir inside the temp dir (created on first use by mpsync).
    pub fn state_dir(&self) -> PathBuf {
        self.path().join("state")
    }

    /// Writes a secret file with mode 0600 and returns its path.
    pub fn secret(&self, name: &str, value: &str) -> PathBuf {
        let p = self.path().join(name);
        fs::write(&p, value).expect("write secret");
        fs::set_permissions(&p, fs::Permissions::from_mode(0o600)).expect("chmod secret");
        p
    }

    /// Writes `mpsync.toml` with the given content and returns its path.
    pub fn config(&self, toml: &str) -> PathBuf {
        let p = self.path().join("mpsync.toml");
        fs::write(&p, toml).expect("write config");
        p
    }

    /// A minimal valid config: listen on `listen`, state in `state_dir()`, a Mailprotector
    /// key file, pointing at `base_url`.
    pub fn valid_config(&self, listen: &str, base_url: &str) -> PathBuf {
        let key = self.secret("mailprotector-api-key", "test-key-0123456789\n");
        let toml = format!(
            r#"[daemon]
listen = "{listen}"
state_dir = "{state}"
shutdown_grace = "5s"

[mailprotector]
base_url = "{base_url}"
api_key_file = "{key}"
reseller_id = 188
schedule = "0 0 0 1 1 *"
"#,
            state = self.state_dir().display(),
            key = key.display(),
        );
        self.config(&toml)
    }
}

/// Polls `cond` until it returns `Some`, or panics with `what` after `timeout`.
pub fn wait_for<T>(timeout: Duration, what: &str, mut cond: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = cond() {
            return v;
        }
        if Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Splits a raw HTTP/1.1 response (read to the end of a `Connection: close` exchange) into
/// its head and body, decoding a chunked body (large answers are streamed).
pub fn split_response(raw: &str) -> (String, String) {
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((raw, ""));
    let chunked = head
        .lines()
        .any(|l| l.to_ascii_lowercase().replace(' ', "") == "transfer-encoding:chunked");
    if !chunked {
        return (head.to_owned(), body.to_owned());
    }
    // Chunk sizes count bytes, and a chunk may end inside a multi-byte character.
    let (mut rest, mut out) = (body.as_bytes(), Vec::new());
    while let Some(eol) = rest.windows(2).position(|w| w == b"\r\n") {
        let line = String::from_utf8_lossy(&rest[..eol]).into_owned();
        let size = usize::from_str_radix(line.split(';').next().unwrap_or("").trim(), 16)
            .unwrap_or_else(|_| panic!("bad chunk size line {line:?}"));
        if size == 0 {
            break;
        }
        let data = &rest[eol + 2..];
        out.extend_from_slice(&data[..size]);
        rest = data[size..].strip_prefix(b"\r\n").unwrap_or(&data[size..]);
    }
    let out = String::from_utf8(out).expect("a UTF-8 body");
    (head.to_owned(), out)
}

/// A child process killed (and reaped) when the guard drops, so a failing test leaves nothing
/// running.
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits up to `timeout` for `child` to exit (polling, as a `Drop` cannot await); whether it
/// did.
pub fn exited_within(child: &mut std::process::Child, timeout: Duration) -> bool {
    let until = Instant::now() + timeout;
    while Instant::now() < until {
        if let Ok(Some(_)) = child.try_wait() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// The name of test function `test` in `module` (pass `module_path!()`) as this test binary
/// knows it (the module path without the crate's name), for running that one test in a child
/// process with `--exact`.
pub fn test_name(module: &str, test: &str) -> String {
    let module = module.split_once("::").map_or(module, |(_, m)| m);
    format!("{module}::{test}")
}
