//! A client for a simulator's Mailprotector API and its `/_sim` control surface over HTTP,
//! e.g. one that `mpsync sim` serves from another process.

use reqwest::StatusCode;
use serde_json::Value;

/// One answer: status, body as JSON (or `Value::String` of the raw text).
pub struct Answer {
    pub status: StatusCode,
    pub text: String,
    pub json: Value,
}

/// A client bound to one simulator and key.
pub struct Api {
    client: reqwest::Client,
    base: String,
    pub key: Option<String>,
}

impl Api {
    /// A client for the simulator at `base` (`http://127.0.0.1:PORT`).
    pub fn at(base: &str, key: Option<&str>) -> Api {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(20))
            .build()
            .expect("client");
        Api { client, base: base.to_owned(), key: key.map(str::to_owned) }
    }

    /// `method path` (under `/api/v1`, or `/_sim/...` as is) with the key and a JSON body.
    pub async fn send(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Answer {
        let url = if path.starts_with("/_sim") {
            format!("{}{path}", self.base)
        } else {
            format!("{}/api/v1{path}", self.base)
        };
        let mut req = self.client.request(method, url);
        if let Some(k) = &self.key {
            req = req.bearer_auth(k);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        let json = serde_json::from_str(&text).unwrap_or_else(|_| Value::String(text.clone()));
        Answer { status, text, json }
    }
}
