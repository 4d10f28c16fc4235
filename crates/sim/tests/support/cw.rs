//! A client of the simulated ConnectWise API: the API member's Basic credentials and clientId
//! on every call, any method, any body and content type.

use std::time::Duration;

use base64::Engine as _;
use mpsync_sim::SimHandle;
use mpsync_sim::connectwise::{API_PREFIX, CwCredentials};
use reqwest::Method;
use serde_json::Value;

use super::Answer;

/// Calls the ConnectWise API of one simulator as one API member.
pub struct Cw {
    client: reqwest::Client,
    base: String,
    pub creds: CwCredentials,
    /// `(public, private)` to send instead of the member's own keys.
    pub keys: Option<(String, String)>,
}

impl Cw {
    /// The simulator's API member, with a 20 s timeout.
    pub fn new(sim: &SimHandle) -> Cw {
        Cw::with_timeout(sim, Duration::from_secs(20))
    }

    /// The simulator's API member, giving up on an answer after `timeout`.
    pub fn with_timeout(sim: &SimHandle, timeout: Duration) -> Cw {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder().timeout(timeout).build().expect("client");
        let creds = sim.control().connectwise().credentials();
        Cw { client, base: format!("{}{API_PREFIX}", sim.base_url()), creds, keys: None }
    }

    /// Sends `method` to `path` (below the API prefix) with `body` as `content_type`.
    /// `Err` when no answer came (a timeout or a dropped connection).
    pub async fn try_send(
        &self,
        method: Method,
        path: &str,
        body: Option<(&str, String)>,
    ) -> Result<Answer, reqwest::Error> {
        let (public, private) = self
            .keys
            .clone()
            .unwrap_or((self.creds.public_key.clone(), self.creds.private_key.clone()));
        let basic = base64::engine::general_purpose::STANDARD
            .encode(format!("{}+{public}:{private}", self.creds.company_id));
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.base))
            .header("Authorization", format!("Basic {basic}"))
            .header("clientId", &self.creds.client_id);
        if let Some((content_type, text)) = body {
            req = req.header("Content-Type", content_type).body(text);
        }
        let resp = req.send().await?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let text = resp.text().await?;
        let json = serde_json::from_str(&text).unwrap_or_else(|_| Value::String(text.clone()));
        Ok(Answer { status, headers, text, json })
    }

    /// [`Cw::try_send`] that expects an answer.
    pub async fn send(&self, method: Method, path: &str, body: Option<(&str, String)>) -> Answer {
        self.try_send(method, path, body).await.expect("an answer")
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.send(Method::GET, path, None).await
    }

    /// A JSON PATCH of `body` (sent as given, `Content-Type: application/json`).
    pub async fn patch(&self, path: &str, body: &str) -> Answer {
        self.send(Method::PATCH, path, Some(("application/json", body.to_owned()))).await
    }
}

/// `[{"op":"replace","path":"/quantity","value":<q>}]`.
pub fn set_quantity(q: f64) -> String {
    serde_json::json!([{"op": "replace", "path": "/quantity", "value": q}]).to_string()
}
