//! A minimal HaloPSA client for the simulator's tests: fetch a token (tenant as a query or a
//! form field), call `/halo/api/...` with it, read the answer as text and JSON.

use std::time::Duration;

use mpsync_sim::SimHandle;
use mpsync_sim::halopsa::{HaloCredentials, HaloSim};
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::Value;

use super::start;

/// One answer.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub text: String,
    pub json: Value,
}

/// Where the tenant goes when a token is fetched.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TenantIn {
    Query,
    Form,
    Nowhere,
}

pub struct Halo {
    pub sim: SimHandle,
    pub halo: HaloSim,
    pub http: reqwest::Client,
    /// `http://ADDR/halo`: what mpsync's `base_url` is.
    pub base: String,
    pub creds: HaloCredentials,
}

impl Halo {
    pub async fn start(seed: u64, customers: u32) -> Halo {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let sim = start(seed, customers).await;
        let halo = sim.control().halopsa();
        let creds = halo.credentials();
        let base = format!("{}/halo", sim.base_url());
        let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
        Halo { sim, halo, http, base, creds }
    }

    async fn reply(resp: reqwest::Response) -> Reply {
        let (status, headers) = (resp.status(), resp.headers().clone());
        let text = resp.text().await.unwrap();
        let json = serde_json::from_str(&text).unwrap_or(Value::String(text.clone()));
        Reply { status, headers, text, json }
    }

    /// `POST /auth/token` with these form fields and the tenant where `at` says.
    pub async fn token_request(&self, fields: &[(&str, &str)], at: TenantIn) -> Reply {
        let tenant = self.creds.tenant.clone().unwrap_or_default();
        let mut form = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in fields {
            form.append_pair(k, v);
        }
        if at == TenantIn::Form {
            form.append_pair("tenant", &tenant);
        }
        let mut url = format!("{}/auth/token", self.base);
        if at == TenantIn::Query {
            url.push_str(&format!("?tenant={tenant}"));
        }
        let resp = self
            .http
            .post(url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form.finish())
            .send()
            .await
            .expect("token request");
        Halo::reply(resp).await
    }

    /// A token for `scope` (none: every granted scope); panics unless 200.
    pub async fn token(&self, scope: Option<&str>) -> String {
        let mut fields = vec![
            ("grant_type", "client_credentials"),
            ("client_id", self.creds.client_id.as_str()),
            ("client_secret", self.creds.client_secret.as_str()),
        ];
        if let Some(s) = scope {
            fields.push(("scope", s));
        }
        let r = self.token_request(&fields, TenantIn::Query).await;
        assert_eq!(r.status, 200, "{}", r.text);
        r.json["access_token"].as_str().unwrap().to_owned()
    }

    /// A call to `/halo/api{path}` with `token`.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<&Value>,
    ) -> Reply {
        let mut req =
            self.http.request(method, format!("{}/api{path}", self.base)).bearer_auth(token);
        if let Some(b) = body {
            req = req.json(b);
        }
        Halo::reply(req.send().await.expect("request")).await
    }

    pub async fn get(&self, path: &str, token: &str) -> Reply {
        self.call(Method::GET, path, token, None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: &Value) -> Reply {
        self.call(Method::POST, path, token, Some(body)).await
    }

    /// A POST with a raw body.
    pub async fn post_raw(&self, path: &str, token: &str, body: &str) -> Reply {
        let req = self
            .http
            .post(format!("{}/api{path}", self.base))
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(body.to_owned());
        Halo::reply(req.send().await.expect("request")).await
    }
}
