//! Loopback stand-ins for notification receivers, started by the tests on 127.0.0.1:0: an
//! HTTP receiver (webhook, Teams and Slack URLs are paths on it) that records every request
//! and answers as the test scripts it — a status, or no answer at all (a hang) — and an SMTP
//! server speaking enough of the protocol for lettre without TLS (EHLO, AUTH PLAIN/LOGIN,
//! MAIL, RCPT, DATA, RSET, QUIT). Both run on threads and stop when dropped.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

/// How the HTTP receiver answers.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// This status with this body.
    Status(u16, String),
    /// Read the request, never answer (the connection stays open until the receiver drops).
    Hang,
    /// Answer with the request's path in the body (a receiver that echoes the URL's token).
    EchoPath(u16),
}

/// One request the HTTP receiver read.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    /// Header names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: Value,
    /// The status it was answered with (`None`: hung).
    pub answered: Option<u16>,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
struct State {
    received: Vec<Received>,
    /// Replies for the next requests, in order; then `default`.
    script: VecDeque<Reply>,
    default: Option<Reply>,
    held: Vec<TcpStream>,
}

/// The HTTP receiver.
pub struct HttpReceiver {
    pub addr: String,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
}

impl HttpReceiver {
    pub fn start() -> HttpReceiver {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the receiver");
        let addr = listener.local_addr().unwrap().to_string();
        let state = Arc::new(Mutex::new(State::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (st, halt) = (state.clone(), stop.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if halt.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let st = st.clone();
                std::thread::spawn(move || serve_http(conn, st));
            }
        });
        HttpReceiver { addr, state, stop }
    }

    /// `http://ADDR/PATH`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}/{}", self.addr, path.trim_start_matches('/'))
    }

    /// How every request is answered from now on (after the scripted ones).
    pub fn answer(&self, reply: Reply) {
        self.state.lock().unwrap().default = Some(reply);
    }

    /// The next requests' replies, in order.
    pub fn script(&self, replies: Vec<Reply>) {
        self.state.lock().unwrap().script.extend(replies);
    }

    /// Every request so far.
    pub fn received(&self) -> Vec<Received> {
        self.state.lock().unwrap().received.clone()
    }

    /// The requests to `path`.
    pub fn to(&self, path: &str) -> Vec<Received> {
        let p = format!("/{}", path.trim_start_matches('/'));
        self.received().into_iter().filter(|r| r.path == p).collect()
    }
}

impl Drop for HttpReceiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(&self.addr);
        for s in self.state.lock().unwrap().held.drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }
}

fn serve_http(conn: TcpStream, state: Arc<Mutex<State>>) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(30)));
    let mut reader = BufReader::new(conn.try_clone().expect("clone the stream"));
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let path = line.split_whitespace().nth(1).unwrap_or("").to_owned();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 {
            return;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
        }
    }
    let len: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let reply = {
        let mut st = state.lock().unwrap();
        let reply = st
            .script
            .pop_front()
            .or_else(|| st.default.clone())
            .unwrap_or(Reply::Status(200, "ok".into()));
        let answered = match &reply {
            Reply::Status(s, _) | Reply::EchoPath(s) => Some(*s),
            Reply::Hang => None,
        };
        st.received.push(Received { path: path.clone(), headers, body, answered });
        if reply == Reply::Hang {
            st.held.push(conn.try_clone().expect("clone the stream"));
        }
        reply
    };
    let (status, text) = match reply {
        Reply::Hang => return,
        Reply::Status(s, t) => (s, t),
        Reply::EchoPath(s) => (s, format!("no such hook: {path}")),
    };
    let mut conn = conn;
    let _ = write!(
        conn,
        "HTTP/1.1 {status} X\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: \
         close\r\n\r\n{text}",
        text.len()
    );
}

/// One message the SMTP server accepted (or refused at the end of DATA).
#[derive(Debug, Clone, Default)]
pub struct Mail {
    /// The decoded `AUTH PLAIN` (or LOGIN) user and password, when the client logged in.
    pub auth: Option<(String, String)>,
    pub from: String,
    pub to: Vec<String>,
    /// The message as sent (headers and body).
    pub data: String,
    /// The reply code it got at the end of DATA.
    pub code: u16,
}

/// The SMTP server: accepts everything unless told to answer DATA with a code.
pub struct SmtpServer {
    pub addr: String,
    pub port: u16,
    mails: Arc<Mutex<Vec<Mail>>>,
    /// Reply codes for the next messages' end of DATA (then 250).
    codes: Arc<Mutex<VecDeque<u16>>>,
    stop: Arc<AtomicBool>,
}

impl SmtpServer {
    pub fn start() -> SmtpServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the SMTP server");
        let local = listener.local_addr().unwrap();
        let mails = Arc::new(Mutex::new(Vec::new()));
        let codes = Arc::new(Mutex::new(VecDeque::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (m, c, halt) = (mails.clone(), codes.clone(), stop.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if halt.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (m, c) = (m.clone(), c.clone());
                std::thread::spawn(move || {
                    let _ = serve_smtp(conn, &m, &c);
                });
            }
        });
        SmtpServer { addr: local.to_string(), port: local.port(), mails, codes, stop }
    }

    /// Answer the next messages' DATA with these codes (e.g. 451, 550).
    pub fn answer_data(&self, codes: &[u16]) {
        self.codes.lock().unwrap().extend(codes);
    }

    pub fn mails(&self) -> Vec<Mail> {
        self.mails.lock().unwrap().clone()
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(&self.addr);
    }
}

fn b64(s: &str) -> String {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD.decode(s.trim()).unwrap_or_default();
    String::from_utf8_lossy(&bytes).into_owned()
}

fn serve_smtp(
    conn: TcpStream,
    mails: &Mutex<Vec<Mail>>,
    codes: &Mutex<VecDeque<u16>>,
) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut out = conn.try_clone()?;
    let mut reader = BufReader::new(conn);
    let mut mail = Mail::default();
    let mut auth = None;
    out.write_all(b"220 127.0.0.1 ESMTP test receiver\r\n")?;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let cmd = line.trim_end().to_owned();
        let upper = cmd.to_ascii_uppercase();
        if upper.starts_with("EHLO") || upper.starts_with("HELO") {
            out.write_all(b"250-127.0.0.1\r\n250-AUTH PLAIN LOGIN\r\n250 8BITMIME\r\n")?;
        } else if upper.starts_with("AUTH PLAIN") {
            let arg = cmd.split_whitespace().nth(2).map(str::to_owned);
            let arg = match arg {
                Some(a) => a,
                None => {
                    out.write_all(b"334 \r\n")?;
                    let mut l = String::new();
                    reader.read_line(&mut l)?;
                    l
                }
            };
            let decoded = b64(&arg);
            let mut parts = decoded.split('\0').skip(1);
            auth = Some((
                parts.next().unwrap_or("").to_owned(),
                parts.next().unwrap_or("").to_owned(),
            ));
            out.write_all(b"235 2.7.0 Authentication successful\r\n")?;
        } else if upper.starts_with("AUTH LOGIN") {
            out.write_all(b"334 VXNlcm5hbWU6\r\n")?;
            let mut u = String::new();
            reader.read_line(&mut u)?;
            out.write_all(b"334 UGFzc3dvcmQ6\r\n")?;
            let mut p = String::new();
            reader.read_line(&mut p)?;
            auth = Some((b64(&u), b64(&p)));
            out.write_all(b"235 2.7.0 Authentication successful\r\n")?;
        } else if upper.starts_with("MAIL FROM:") {
            mail =
                Mail { auth: auth.clone(), from: cmd[10..].trim().to_owned(), ..Mail::default() };
            out.write_all(b"250 2.1.0 Ok\r\n")?;
        } else if upper.starts_with("RCPT TO:") {
            mail.to.push(cmd[8..].trim().to_owned());
            out.write_all(b"250 2.1.5 Ok\r\n")?;
        } else if upper == "DATA" {
            out.write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")?;
            let mut data = String::new();
            loop {
                let mut l = String::new();
                if reader.read_line(&mut l)? == 0 {
                    return Ok(());
                }
                if l == ".\r\n" || l == ".\n" {
                    break;
                }
                data.push_str(l.strip_prefix('.').filter(|_| l.starts_with("..")).unwrap_or(&l));
            }
            let code = codes.lock().unwrap().pop_front().unwrap_or(250);
            mail.data = data;
            mail.code = code;
            mails.lock().unwrap().push(mail.clone());
            let reply = match code {
                250 => "250 2.0.0 Ok: queued as TEST1\r\n".to_owned(),
                c => format!("{c} {}.0.0 not now\r\n", c / 100),
            };
            out.write_all(reply.as_bytes())?;
        } else if upper == "RSET" || upper == "NOOP" {
            out.write_all(b"250 2.0.0 Ok\r\n")?;
        } else if upper == "QUIT" {
            out.write_all(b"221 2.0.0 Bye\r\n")?;
            return Ok(());
        } else {
            out.write_all(b"502 5.5.2 Error: command not recognized\r\n")?;
        }
    }
}
