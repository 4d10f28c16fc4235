//! Helpers for the daemon tests: a running `mpsync run` child (killed on drop) whose stderr is
//! collected and whose bound address is learned from its ready line (tests configure
//! `127.0.0.1:0`), a tiny blocking HTTP client, a test NOTIFY_SOCKET, and signals via `kill`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::support::common::wait_for;

/// How long anything in these tests may take before it counts as hung.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// A running daemon. Dropping it kills the process.
pub struct Daemon {
    pub child: Child,
    stderr: Arc<Mutex<String>>,
    reader: Option<std::thread::JoinHandle<()>>,
    /// The address it serves on, once known: [`Daemon::wait_ready`] reads it from the ready
    /// line (or a test sets it from the notify STATUS line).
    pub addr: String,
}

impl Daemon {
    /// Spawns `cmd` (already carrying `--config ... run`) with stderr collected.
    pub fn spawn(mut cmd: Command) -> Daemon {
        cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn mpsync");
        let pipe = child.stderr.take().unwrap();
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = stderr.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                let mut s = sink.lock().unwrap();
                s.push_str(&line);
                s.push('\n');
            }
        });
        Daemon { child, stderr, reader: Some(reader), addr: String::new() }
    }

    /// Runs `cmd` to completion within the deadline (killed otherwise): exit code and stderr.
    pub fn run_to_exit(cmd: Command) -> (Option<i32>, String) {
        let mut d = Daemon::spawn(cmd);
        let status = d.wait_exit();
        (status.code(), d.stderr())
    }

    /// Everything written to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits until stderr contains `needle`.
    pub fn wait_log(&self, needle: &str) {
        wait_for(DEADLINE, &format!("log line {needle:?}"), || {
            self.stderr().contains(needle).then_some(())
        });
    }

    /// Waits until `mpsync ready on http://ADDR` was logged and learns ADDR, the address the
    /// daemon bound.
    pub fn wait_ready(&mut self) {
        self.addr = wait_for(DEADLINE, "mpsync ready", || {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("mpsync exited with {status} before it was ready:\n{}", self.stderr());
            }
            ready_addr(&self.stderr())
        });
    }

    /// Sends a signal by name ("TERM", "INT", "HUP").
    pub fn signal(&self, name: &str) {
        // The shell's built-in kill: no dependency on procps or a signal crate.
        let script = format!("kill -{name} {}", self.child.id());
        let ok = Command::new("sh").arg("-c").arg(script).status().unwrap();
        assert!(ok.success(), "kill -{name} failed");
    }

    /// Waits (with the deadline) for the process to exit, then for the rest of its stderr.
    pub fn wait_exit(&mut self) -> ExitStatus {
        let status = wait_for(DEADLINE, "mpsync to exit", || self.child.try_wait().unwrap());
        // The reader ends at EOF, which follows the exit: then stderr() is complete.
        if let Some(r) = self.reader.take() {
            r.join().unwrap();
        }
        status
    }

    /// GET `path` on the daemon.
    pub fn get(&self, path: &str) -> Reply {
        assert!(!self.addr.is_empty(), "the daemon's address is not known yet: wait_ready() first");
        get(&self.addr, path)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The address in the `mpsync ready on http://ADDR` line of `log`, plain or JSON.
fn ready_addr(log: &str) -> Option<String> {
    let (_, rest) = log.split_once("mpsync ready on http://")?;
    let addr: String =
        rest.chars().take_while(|c| !c.is_whitespace() && !matches!(c, '"' | '\u{1b}')).collect();
    (!addr.is_empty()).then_some(addr)
}

/// An HTTP response.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub head: String,
    pub body: String,
}

impl Reply {
    /// A header's value (case-insensitive name).
    pub fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
        })
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// One `GET` with `Connection: close`.
pub fn get(addr: &str, path: &str) -> Reply {
    let mut s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    s.set_read_timeout(Some(DEADLINE)).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let (head, body) = crate::support::common::split_response(&raw);
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    Reply { status, head, body }
}

/// One request with `Connection: close` and the given extra headers (a `Host` among them
/// replaces the default, which names `addr`).
pub fn request(addr: &str, method: &str, path: &str, headers: &[(&str, &str)]) -> Reply {
    let mut s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    s.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut head =
        format!("{method} {path} HTTP/1.1\r\nConnection: close\r\nContent-Length: 0\r\n");
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        head.push_str(&format!("Host: {addr}\r\n"));
    }
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let (head, body) = crate::support::common::split_response(&raw);
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    Reply { status, head, body }
}

/// A unix datagram socket standing in for systemd's NOTIFY_SOCKET.
pub struct NotifySocket {
    pub path: PathBuf,
    sock: UnixDatagram,
    seen: Vec<String>,
}

impl NotifySocket {
    pub fn bind(dir: &Path) -> NotifySocket {
        let path = dir.join("notify.sock");
        let sock = UnixDatagram::bind(&path).unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
        NotifySocket { path, sock, seen: Vec::new() }
    }

    /// Waits until `count` messages (lines) equal to `line` have arrived in total.
    pub fn wait_for(&mut self, line: &str, count: usize) {
        let what = format!("{count} × {line:?} on NOTIFY_SOCKET");
        self.wait_until(&what, |seen| seen.iter().filter(|l| *l == line).count() >= count);
    }

    /// Waits until `done` holds for the lines received so far.
    pub fn wait_until(&mut self, what: &str, mut done: impl FnMut(&[String]) -> bool) {
        wait_for(DEADLINE, what, || {
            let mut buf = [0u8; 4096];
            if let Ok(n) = self.sock.recv(&mut buf) {
                let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
                self.seen.extend(msg.lines().map(str::to_owned));
            }
            done(&self.seen).then_some(())
        });
    }

    /// Every line received so far.
    pub fn seen(&self) -> &[String] {
        &self.seen
    }

    /// The address in the first `STATUS=serving on http://ADDR` line received (sent with
    /// READY=1): where the daemon serves.
    pub fn serving_addr(&self) -> String {
        self.seen
            .iter()
            .find_map(|l| l.strip_prefix("STATUS=serving on http://"))
            .unwrap_or_else(|| panic!("no STATUS=serving line yet: {:?}", self.seen))
            .to_owned()
    }
}
