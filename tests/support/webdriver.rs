//! A minimal W3C WebDriver client over reqwest, and chromedriver as a child process that is
//! killed (with the browser it started) when dropped. Just what tests/browser.rs needs:
//! sessions, navigation, finding elements, text, attributes, clicks and screenshots.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use base64::Engine as _;
use reqwest::Method;
use serde_json::{Value, json};

/// The key WebDriver uses for element references.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// Each WebDriver command's own deadline.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// chromedriver on a loopback port it picked itself (`--port=0`). Dropping it kills its whole
/// process group, so a browser left behind by a failed test goes too.
pub struct Chromedriver {
    child: Child,
    pub url: String,
}

impl Chromedriver {
    /// Starts `driver` on port 0, learns the port it bound from its start-up line, and waits
    /// (up to `deadline` in all) until it says it is ready.
    pub async fn start(driver: &Path, deadline: Duration) -> Result<Chromedriver> {
        let mut child = Command::new(driver)
            .arg("--port=0")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            // Its own process group, so Drop can end chromedriver and its browsers together.
            .process_group(0)
            .spawn()
            .with_context(|| format!("start {}", driver.display()))?;
        let until = Instant::now() + deadline;
        // "ChromeDriver was started successfully on port 39323." A thread reads stdout to its
        // end, so chromedriver never blocks on a full pipe.
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let port = line
                    .split_once("started successfully on port ")
                    .and_then(|(_, rest)| rest.trim_end_matches('.').trim().parse::<u16>().ok());
                if let Some(port) = port {
                    let _ = tx.send(port);
                }
            }
        });
        let mut cd = Chromedriver { child, url: String::new() };
        let port = loop {
            if let Ok(port) = rx.try_recv() {
                break port;
            }
            if let Ok(Some(status)) = cd.child.try_wait() {
                bail!("chromedriver exited with {status} before it named its port");
            }
            if Instant::now() > until {
                bail!("chromedriver did not name its port within {deadline:?}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        cd.url = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::builder().timeout(Duration::from_secs(2)).build()?;
        loop {
            let ready = async {
                let v: Value = http.get(format!("{}/status", cd.url)).send().await?.json().await?;
                anyhow::Ok(v["value"]["ready"].as_bool() == Some(true))
            };
            if matches!(ready.await, Ok(true)) {
                return Ok(cd);
            }
            if Instant::now() > until {
                bail!("chromedriver did not become ready on port {port} within {deadline:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Chromedriver {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
        crate::support::common::exited_within(&mut self.child, Duration::from_secs(5));
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One browser session. [`Session::close`] ends it; Drop ends it too when a test fails
/// half-way (needs a multi-thread runtime).
pub struct Session {
    http: reqwest::Client,
    base: String,
    closed: bool,
}

impl Session {
    /// A new headless Chromium session with `args` and its own `user_data_dir`.
    pub async fn new(driver: &Chromedriver, binary: &Path, args: &[String]) -> Result<Session> {
        let http = reqwest::Client::builder().timeout(COMMAND_TIMEOUT).build()?;
        let caps = json!({
            "capabilities": {
                "alwaysMatch": {
                    "browserName": "chrome",
                    "goog:chromeOptions": { "binary": binary, "args": args },
                }
            }
        });
        let resp = http.post(format!("{}/session", driver.url)).json(&caps).send().await?;
        let status = resp.status();
        let v: Value = resp.json().await.context("the new session answer is JSON")?;
        let id = v["value"]["sessionId"]
            .as_str()
            .ok_or_else(|| anyhow!("chromedriver refused the session ({status}): {v}"))?;
        let s = Session { http, base: format!("{}/session/{id}", driver.url), closed: false };
        s.cmd(Method::POST, "/timeouts", Some(json!({"pageLoad": 20_000, "script": 5_000})))
            .await?;
        Ok(s)
    }

    /// Sends one command; the answer's `value`, or the WebDriver error as an error.
    pub async fn cmd(&self, method: Method, path: &str, body: Option<Value>) -> Result<Value> {
        let mut req = self.http.request(method.clone(), format!("{}{path}", self.base));
        if let Some(b) = body {
            req = req.json(&b);
        } else if method == Method::POST {
            req = req.json(&json!({}));
        }
        let resp = req.send().await.with_context(|| format!("{method} {path}"))?;
        let status = resp.status();
        let v: Value = resp.json().await.with_context(|| format!("{method} {path}: JSON"))?;
        if !status.is_success() {
            bail!("{method} {path}: {status}: {}", v["value"]);
        }
        Ok(v["value"].clone())
    }

    /// Loads `url` (waits for the load to finish).
    pub async fn goto(&self, url: &str) -> Result<()> {
        self.cmd(Method::POST, "/url", Some(json!({ "url": url }))).await.map(drop)
    }

    /// The current page's URL.
    pub async fn url(&self) -> Result<String> {
        Ok(self.cmd(Method::GET, "/url", None).await?.as_str().unwrap_or_default().to_owned())
    }

    /// Every element matching the CSS selector (possibly none).
    pub async fn find_all(&self, css: &str) -> Result<Vec<String>> {
        let v = self
            .cmd(Method::POST, "/elements", Some(json!({"using": "css selector", "value": css})))
            .await?;
        let list = v.as_array().cloned().unwrap_or_default();
        Ok(list.iter().filter_map(|e| e[ELEMENT].as_str().map(str::to_owned)).collect())
    }

    /// The one element matching the CSS selector.
    pub async fn find(&self, css: &str) -> Result<String> {
        let mut all = self.find_all(css).await?;
        match all.len() {
            1 => Ok(all.remove(0)),
            n => bail!("expected one element for {css:?}, found {n}"),
        }
    }

    /// The element's rendered text.
    pub async fn text(&self, el: &str) -> Result<String> {
        let v = self.cmd(Method::GET, &format!("/element/{el}/text"), None).await?;
        Ok(v.as_str().unwrap_or_default().to_owned())
    }

    /// An attribute's value.
    pub async fn attr(&self, el: &str, name: &str) -> Result<Option<String>> {
        let v = self.cmd(Method::GET, &format!("/element/{el}/attribute/{name}"), None).await?;
        Ok(v.as_str().map(str::to_owned))
    }

    /// A CSS property's computed value.
    pub async fn css(&self, el: &str, property: &str) -> Result<String> {
        let v = self.cmd(Method::GET, &format!("/element/{el}/css/{property}"), None).await?;
        Ok(v.as_str().unwrap_or_default().to_owned())
    }

    /// Whether the element is shown to the user.
    pub async fn displayed(&self, el: &str) -> Result<bool> {
        let v = self.cmd(Method::GET, &format!("/element/{el}/displayed"), None).await?;
        Ok(v.as_bool() == Some(true))
    }

    /// Clicks the element as a user would.
    pub async fn click(&self, el: &str) -> Result<()> {
        self.cmd(Method::POST, &format!("/element/{el}/click"), None).await.map(drop)
    }

    /// A PNG of the viewport.
    pub async fn screenshot(&self) -> Result<Vec<u8>> {
        let v = self.cmd(Method::GET, "/screenshot", None).await?;
        let b64 = v.as_str().ok_or_else(|| anyhow!("the screenshot is not a string"))?;
        Ok(base64::engine::general_purpose::STANDARD.decode(b64)?)
    }

    /// Ends the session (closes the browser).
    pub async fn close(mut self) -> Result<()> {
        self.closed = true;
        self.http.delete(&self.base).send().await?;
        Ok(())
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if self.closed {
            return;
        }
        let (http, base) = (self.http.clone(), self.base.clone());
        // Best effort; chromedriver's Drop kills the browser anyway.
        tokio::task::block_in_place(|| {
            tokio::runtime::Handle::current().block_on(async {
                let _ =
                    tokio::time::timeout(Duration::from_secs(5), http.delete(&base).send()).await;
            })
        });
    }
}

/// `s` as a CSS string literal (for attribute selectors with values from upstream).
pub fn css_string(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Polls `f` until it gives `Some`, or panics naming `what` after `timeout`.
pub async fn wait_until<T, Fut>(timeout: Duration, what: &str, mut f: impl FnMut() -> Fut) -> T
where
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        if Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
