//! `[[notify]]` channels through the real binary, against receivers the tests start on
//! 127.0.0.1: `mpsync notify test` sends each kind its documented shape (the webhook's
//! versioned JSON with its id headers, a Teams Adaptive Card, Slack text and blocks, an
//! e-mail over SMTP) and reports each answer with the right exit status; the URL's token and
//! the SMTP password never show; bad channel settings are one clear error naming the key;
//! `mpsync check` lists the channels and `mpsync config` redacts their secrets.

use std::path::{Path, PathBuf};
use std::process::Output;

use crate::support::common::{self, TestDir};
use crate::support::receivers::{HttpReceiver, Reply, SmtpServer};

/// The token in every URL: it must never be shown.
const TOKEN: &str = "T0KEN-5ecret-fb81d2";
/// The SMTP password.
const PASSWORD: &str = "smtp-Pa55word-7c1e";

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn run(config: &Path, args: &[&str]) -> Output {
    common::mpsync().arg("-c").arg(config).args(args).output().expect("run mpsync")
}

/// A config with the four kinds of channel: three URLs on `http`, e-mail to `smtp`.
fn four_channels(td: &TestDir, http: &HttpReceiver, smtp: &SmtpServer) -> PathBuf {
    let base = td.valid_config("127.0.0.1:0", "http://127.0.0.1:9");
    let url = |name: &str| td.secret(&format!("{name}-url"), &http.url(&format!("{name}/{TOKEN}")));
    let password = td.secret("smtp-password", PASSWORD);
    let extra = format!(
        r#"
[[notify]]
name = "hook"
kind = "webhook"
url_file = "{}"

[[notify]]
name = "teams"
kind = "teams"
url_file = "{}"
events = ["discrepancy_opened"]

[[notify]]
name = "slack"
kind = "slack"
url_file = "{}"
min_monthly_impact = 25.0
digest = "0 0 8 * * *"

[[notify]]
name = "mail"
kind = "email"
smtp_host = "127.0.0.1"
smtp_port = {}
tls = "none"
username = "mpsync"
password_file = "{}"
from = "mpsync <mpsync@example.com>"
to = ["ops@example.com", "billing@example.com"]
"#,
        url("hook").display(),
        url("teams").display(),
        url("slack").display(),
        smtp.port,
        password.display(),
    );
    let text = std::fs::read_to_string(&base).unwrap() + &extra;
    td.config(&text)
}

#[test]
fn notify_test_sends_each_kind_its_shape_and_reports_the_answers() {
    let (td, http, smtp) = (TestDir::new(), HttpReceiver::start(), SmtpServer::start());
    let config = four_channels(&td, &http, &smtp);
    let out = run(&config, &["notify", "test"]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    for line in ["hook (webhook): ok — HTTP 200", "teams (teams): ok — HTTP 200"] {
        assert!(stdout.contains(line), "{stdout}");
    }
    assert!(stdout.contains("slack (slack): ok — HTTP 200"), "{stdout}");
    assert!(stdout.contains("mail (email): ok — SMTP 250"), "{stdout}");

    let hook = &http.to(&format!("hook/{TOKEN}"))[0];
    assert_eq!(hook.body["version"], 1);
    assert_eq!(hook.body["type"], "test");
    assert_eq!(hook.body["test"], true);
    assert_eq!(hook.body["channel"], "hook");
    let id = hook.body["id"].as_str().unwrap();
    assert!(id.starts_with("test-"), "{id}");
    assert_eq!(hook.header("idempotency-key"), Some(id));
    assert_eq!(hook.header("x-mpsync-payload-version"), Some("1"));
    assert_eq!(hook.header("content-type"), Some("application/json"));
    let ev = &hook.body["events"][0];
    assert_eq!(ev["kind"], "discrepancy_opened");
    assert!(ev["text"].as_str().unwrap().starts_with("TEST from mpsync"), "{ev}");

    let teams = &http.to(&format!("teams/{TOKEN}"))[0].body;
    assert_eq!(teams["type"], "message");
    let att = &teams["attachments"][0];
    assert_eq!(att["contentType"], "application/vnd.microsoft.card.adaptive");
    assert_eq!(att["content"]["type"], "AdaptiveCard");
    assert_eq!(att["content"]["version"], "1.4");
    assert!(att["content"]["body"][0]["text"].as_str().unwrap().starts_with("[TEST]"));

    let slack = &http.to(&format!("slack/{TOKEN}"))[0].body;
    assert!(slack["text"].as_str().unwrap().starts_with("[TEST]"), "{slack}");
    let blocks = slack["blocks"].as_array().unwrap();
    assert_eq!(blocks[0]["type"], "header");
    assert!(blocks.iter().any(|b| b["type"] == "section"), "{slack}");

    let mails = smtp.mails();
    assert_eq!(mails.len(), 1);
    let m = &mails[0];
    assert_eq!(m.auth, Some(("mpsync".to_owned(), PASSWORD.to_owned())), "logged in");
    assert_eq!(m.from, "<mpsync@example.com>");
    assert_eq!(m.to, ["<ops@example.com>", "<billing@example.com>"]);
    assert!(m.data.contains("Subject: [mpsync] [TEST]"), "{}", m.data);
    assert!(m.data.contains("Content-Type: text/plain"), "{}", m.data);
    assert!(m.data.contains("TEST from mpsync"), "{}", m.data);

    // Only the named channel.
    let out = run(&config, &["notify", "test", "teams"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(http.to(&format!("teams/{TOKEN}")).len(), 2);
    assert_eq!(http.to(&format!("hook/{TOKEN}")).len(), 1);
    assert_eq!(smtp.mails().len(), 1);
    assert!(!text(&out.stdout).contains("hook"), "{}", text(&out.stdout));
}

#[test]
fn notify_test_fails_with_69_naming_each_refusal_without_the_secrets() {
    let (td, http, smtp) = (TestDir::new(), HttpReceiver::start(), SmtpServer::start());
    let config = four_channels(&td, &http, &smtp);
    // A receiver that echoes the URL (and so its token), a server error, an SMTP refusal.
    http.script(vec![Reply::EchoPath(404), Reply::Status(503, "busy".into())]);
    smtp.answer_data(&[550]);
    let out = run(&config, &["notify", "test"]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(69), "{stdout}{stderr}");
    assert!(
        stdout.contains("hook (webhook): FAILED — webhook receiver refused it: HTTP 404"),
        "{stdout}"
    );
    assert!(
        stdout.contains("teams (teams): FAILED — teams receiver answered HTTP 503: busy"),
        "{stdout}"
    );
    assert!(stdout.contains("slack (slack): ok"), "{stdout}");
    assert!(stdout.contains("mail (email): FAILED — SMTP server 127.0.0.1 refused it"), "{stdout}");
    assert!(stdout.contains("3 of 4 channel(s) failed"), "{stdout}");
    for secret in [TOKEN, PASSWORD] {
        assert!(!stdout.contains(secret) && !stderr.contains(secret), "{secret}: {stdout}{stderr}");
    }
    assert!(stdout.contains("<redacted>"), "the echoed token is cut out: {stdout}");

    // A receiver that is not there at all: a connection failure, also 69.
    let gone = HttpReceiver::start();
    let addr = gone.addr.clone();
    drop(gone);
    std::fs::write(td.path().join("hook-url"), format!("http://{addr}/hook/{TOKEN}")).unwrap();
    let out = run(&config, &["notify", "test", "hook"]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(69), "{stdout}");
    assert!(stdout.contains("hook (webhook): FAILED — webhook receiver:"), "{stdout}");
    assert!(!stdout.contains(TOKEN), "{stdout}");

    // A name no channel has: a usage error listing the names.
    let out = run(&config, &["notify", "test", "nosuch"]);
    assert_eq!(out.status.code(), Some(64));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("no [[notify]] channel named \"nosuch\""), "{stderr}");
    assert!(stderr.contains("hook, teams, slack, mail"), "{stderr}");

    // No channel at all: a config error.
    let bare = TestDir::new();
    let config = bare.valid_config("127.0.0.1:0", "http://127.0.0.1:9");
    let out = run(&config, &["notify", "test"]);
    assert_eq!(out.status.code(), Some(78), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("no notification channel is configured"));
}

#[test]
fn check_lists_each_channel_and_its_filters_and_config_redacts_the_secrets() {
    let (td, http, smtp) = (TestDir::new(), HttpReceiver::start(), SmtpServer::start());
    let config = four_channels(&td, &http, &smtp);
    let out = run(&config, &["check", "--json"]);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}{}", text(&out.stdout), text(&out.stderr)));
    let checks = doc["checks"].as_array().unwrap_or_else(|| panic!("{doc}"));
    let find = |name: &str| checks.iter().find(|c| c["name"] == name).cloned();
    let teams = find("notify:teams").unwrap_or_else(|| panic!("{doc}"));
    assert_eq!(teams["ok"], true);
    let detail = teams["detail"].as_str().unwrap();
    assert!(detail.contains("teams channel, each event as it happens"), "{detail}");
    assert!(detail.contains("events: discrepancy_opened"), "{detail}");
    let slack = find("notify:slack").unwrap();
    let detail = slack["detail"].as_str().unwrap();
    assert!(detail.contains("a digest on \"0 0 8 * * *\""), "{detail}");
    assert!(detail.contains("min monthly impact: 25.00"), "{detail}");
    assert_eq!(slack["data"]["min_monthly_impact"], 25.0);
    assert!(find("notify:mail").is_some() && find("notify:hook").is_some());
    assert!(http.received().is_empty() && smtp.mails().is_empty(), "check sends nothing");

    let out = run(&config, &["config"]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(!stdout.contains(TOKEN) && !stdout.contains(PASSWORD), "{stdout}");
    let parsed: toml::Table = toml::from_str(&stdout).expect("valid TOML");
    let channels = parsed["notify"].as_array().unwrap();
    assert_eq!(channels.len(), 4);
    assert_eq!(channels[0]["url"].as_str(), Some("<redacted>"));
    assert_eq!(channels[3]["password"].as_str(), Some("<redacted>"));
    assert_eq!(channels[3]["tls"].as_str(), Some("none"));
    assert_eq!(channels[2]["retry_max"].as_str(), Some("1h"));
}

/// Each bad `[[notify]]` setting is refused (78) with its key path and what to do.
#[test]
fn bad_channel_settings_name_the_key() {
    let td = TestDir::new();
    let base =
        std::fs::read_to_string(td.valid_config("127.0.0.1:0", "http://127.0.0.1:9")).unwrap();
    let url = td.secret("url", "https://hooks.example/abc");
    let bad_url = td.secret("bad-url", "not a url at all");
    let url = url.display();
    let cases: Vec<(String, &str, &str)> = vec![
        (
            format!("name = \"a\"\nkind = \"webhook\"\nurl_file = \"{url}\"\nsmtp_hots = \"x\"\n"),
            "notify[0].smtp_hots",
            "unknown",
        ),
        (format!("name = \"a\"\nkind = \"pager\"\nurl_file = \"{url}\"\n"), "notify[0].kind", "\"webhook\", \"teams\", \"slack\" or \"email\""),
        (format!("name = \"a\"\nkind = \"slack\"\nurl_file = \"{url}\"\nsmtp_host = \"x\"\n"), "notify[0].smtp_host", "only for kind = \"email\""),
        (format!("name = \"a\"\nkind = \"slack\"\nurl_file = \"{url}\"\nevents = [\"opened\"]\n"), "notify[0].events", "discrepancy_opened"),
        (format!("name = \"a\"\nkind = \"slack\"\nurl_file = \"{url}\"\nstatuses = [\"underbilled\"]\n"), "notify[0].statuses", "under_billed"),
        (format!("name = \"a\"\nkind = \"slack\"\nurl_file = \"{url}\"\ndigest = \"0 8 * * *\"\n"), "notify[0].digest", "6"),
        (format!("name = \"a\"\nkind = \"slack\"\nurl_file = \"{url}\"\nmin_monthly_impact = -1\n"), "notify[0].min_monthly_impact", "≥ 0"),
        (format!("name = \"a b\"\nkind = \"slack\"\nurl_file = \"{url}\"\n"), "notify[0].name", "letters, digits"),
        ("name = \"a\"\nkind = \"slack\"\nurl_file = \"/nonexistent/url\"\n".to_owned(), "notify[0].url_file", "does not exist"),
        (format!("name = \"a\"\nkind = \"slack\"\nurl_file = \"{}\"\n", bad_url.display()), "notify[0].url_file", "does not hold an http(s) URL"),
        ("name = \"a\"\nkind = \"slack\"\n".to_owned(), "notify[0].url_file", "notify-a-url"),
        (
            "name = \"m\"\nkind = \"email\"\nsmtp_host = \"smtp.example.com\"\ntls = \"none\"\nfrom = \"a@example.com\"\nto = [\"b@example.com\"]\n".to_owned(),
            "notify[0].tls",
            "only allowed for a relay on this host",
        ),
        (
            "name = \"m\"\nkind = \"email\"\nsmtp_host = \"smtp.example.com\"\nfrom = \"nobody\"\nto = [\"b@example.com\"]\n".to_owned(),
            "notify[0].from",
            "not an e-mail address",
        ),
        ("name = \"m\"\nkind = \"email\"\nfrom = \"a@example.com\"\n".to_owned(), "notify[0].smtp_host", "required"),
        (
            "name = \"m\"\nkind = \"email\"\nsmtp_host = \"h.example\"\nusername = \"u\"\nfrom = \"a@example.com\"\nto = [\"b@example.com\"]\n".to_owned(),
            "notify[0].password_file",
            "notify-m-password",
        ),
    ];
    for (section, key, says) in cases {
        let config = td.config(&format!("{base}\n[[notify]]\n{section}"));
        let out = run(&config, &["config"]);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(78), "{section}: {stderr}");
        let line =
            stderr.lines().find(|l| l.contains(key)).unwrap_or_else(|| panic!("{key} in {stderr}"));
        assert!(line.contains(says), "{key}: {line}");
    }
    // Two channels with one name.
    let twice = format!(
        "{base}\n[[notify]]\nname = \"a\"\nkind = \"slack\"\nurl_file = \"{url}\"\n[[notify]]\nname = \"a\"\nkind = \"teams\"\nurl_file = \"{url}\"\n"
    );
    let out = run(&td.config(&twice), &["config"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(78));
    assert!(
        stderr.contains("notify[1].name") && stderr.contains("used by two channels"),
        "{stderr}"
    );
}
