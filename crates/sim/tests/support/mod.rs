//! Helpers shared by the simulator's tests, compiled once: start a simulator on 127.0.0.1:0
//! and call its Mailprotector API ([`Api`]); call its Gradient API ([`gradient`]) and its
//! ConnectWise API ([`cw`]).

pub mod cw;
pub mod gradient;
pub mod halo;

use mpsync_sim::{SimHandle, SimOptions, SimServer};
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::Value;

/// Starts a simulator with `customers` customers from `seed`.
pub async fn start(seed: u64, customers: u32) -> SimHandle {
    SimServer::start(SimOptions { seed, customers, ..SimOptions::default() })
        .await
        .expect("start sim")
}

/// One answer: status, headers, body as JSON (or `Value::String` of the raw text).
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub text: String,
    pub json: Value,
}

impl Answer {
    /// The `X-Pagination` header parsed.
    pub fn pagination(&self) -> Value {
        let raw = self.headers.get("x-pagination").expect("X-Pagination header").to_str().unwrap();
        serde_json::from_str(raw).expect("X-Pagination is JSON")
    }

    /// Ids of a list body.
    pub fn ids(&self) -> Vec<u64> {
        self.json
            .as_array()
            .expect("array body")
            .iter()
            .map(|v| v["id"].as_u64().unwrap())
            .collect()
    }
}

/// A client bound to one simulator and key.
pub struct Api {
    client: reqwest::Client,
    base: String,
    pub key: Option<String>,
}

impl Api {
    pub fn new(sim: &SimHandle, key: Option<&str>) -> Api {
        Api::at(&sim.base_url(), key)
    }

    /// A client for the simulator at `base` (`http://127.0.0.1:PORT`), e.g. one that
    /// `mpsync sim` serves from another process.
    pub fn at(base: &str, key: Option<&str>) -> Api {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(20))
            .build()
            .expect("client");
        Api { client, base: base.to_owned(), key: key.map(str::to_owned) }
    }

    /// The same simulator with another key.
    pub fn with_key(&self, key: Option<&str>) -> Api {
        Api { client: self.client.clone(), base: self.base.clone(), key: key.map(str::to_owned) }
    }

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
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap_or_default();
        let json = serde_json::from_str(&text).unwrap_or_else(|_| Value::String(text.clone()));
        Answer { status, headers, text, json }
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.send(reqwest::Method::GET, path, None).await
    }

    /// Every item of a list, walking pages by `X-Pagination`.
    pub async fn all(&self, path: &str) -> Vec<Value> {
        let sep = if path.contains('?') { '&' } else { '?' };
        let mut out = Vec::new();
        let mut page = 1;
        loop {
            let a = self.get(&format!("{path}{sep}page={page}&per_page=100")).await;
            assert_eq!(a.status, StatusCode::OK, "{path}: {}", a.text);
            out.extend(a.json.as_array().unwrap().iter().cloned());
            if page >= a.pagination()["total_pages"].as_u64().unwrap() {
                return out;
            }
            page += 1;
        }
    }
}
