//! The token half of [`HaloClient`]: the client-credentials request to `auth_url/token`
//! (tenant as `?tenant=`, F2–F4), the one token kept and renewed ([`Token`]), and what the
//! token endpoint's refusals mean for the operator (F10, §3 token endpoint): a wrong client id
//! or secret, an unknown tenant, a scope the application is not granted (each scope is then
//! asked for alone to name the one missing).

use std::sync::atomic::Ordering;

use reqwest::Method;

use super::super::models::TokenAnswer;
use super::super::token::Token;
use super::{HaloClient, WHERE_SCOPES};
use crate::config::Secret;
use crate::upstream::{Endpoint, UpstreamError};

impl HaloClient {
    /// The token to send: the one kept while fresh, else a new one.
    pub async fn token(&self) -> Result<Token, UpstreamError> {
        let mut slot = self.token.lock().await;
        let now = (self.clock)();
        if let Some(t) = slot.as_ref().filter(|t| t.fresh_at(now)) {
            return Ok(t.clone());
        }
        let t = self.fetch_token().await?;
        *slot = Some(t.clone());
        Ok(t)
    }

    /// After a 401 answered to the token of `generation`: a new token, unless another caller
    /// renewed it already.
    pub(super) async fn renew(&self, generation: u64) -> Result<Token, UpstreamError> {
        let mut slot = self.token.lock().await;
        if let Some(t) = slot.as_ref().filter(|t| t.generation != generation) {
            return Ok(t.clone());
        }
        *slot = None;
        let t = self.fetch_token().await?;
        *slot = Some(t.clone());
        Ok(t)
    }

    /// `POST auth_url/token` with the client-credentials grant.
    async fn fetch_token(&self) -> Result<Token, UpstreamError> {
        let answer = self.request_token(&self.scope).await.map_err(|e| self.token_error(e));
        let answer = match answer {
            Err(UpstreamError::Forbidden { upstream, endpoint, credential, message })
                if message.starts_with("invalid_scope") =>
            {
                let refused = self.refused_scopes().await;
                return Err(UpstreamError::Forbidden {
                    upstream,
                    endpoint,
                    credential,
                    message: scope_message(&message, &refused, &self.scope),
                });
            }
            other => other?,
        };
        let generation = self.generations.fetch_add(1, Ordering::Relaxed) + 1;
        let value = Secret::new(answer.access_token, "the HaloPSA access token");
        tracing::debug!(generation, "halopsa: access token fetched");
        Ok(Token::new(value, answer.expires_in, (self.clock)(), generation))
    }

    async fn request_token(&self, scope: &str) -> Result<TokenAnswer, UpstreamError> {
        let ep = Endpoint::new(Method::POST, "/token", "/token");
        let query: Vec<(&str, String)> =
            self.tenant.iter().map(|t| ("tenant", t.clone())).collect();
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", self.client_id.as_str()),
            ("client_secret", self.secret.expose()),
            ("scope", scope),
        ];
        // A token request changes nothing: retried like a read.
        let resp = self.auth.post_form(&ep, &query, &form, true).await?;
        let answer: TokenAnswer = self.auth.parse_json(&resp).map_err(|_| {
            self.http.bad_response(
                &resp.endpoint,
                "the token answer has no access_token (expected {\"access_token\": ..., \
                 \"expires_in\": ...})",
                b"",
            )
        })?;
        if answer.access_token.trim().is_empty() {
            return Err(self.http.bad_response(&resp.endpoint, "the access_token is empty", b""));
        }
        Ok(answer)
    }

    /// The scopes asked for that Halo refuses one by one (at most eight are tried).
    async fn refused_scopes(&self) -> Vec<String> {
        let mut refused = Vec::new();
        let scopes: Vec<&str> = self.scope.split_whitespace().collect();
        if scopes.len() < 2 || scopes.len() > 8 {
            return refused;
        }
        for s in scopes {
            if let Err(e) = self.request_token(s).await
                && self.token_error(e).kind() == "forbidden"
            {
                refused.push(s.to_owned());
            }
        }
        refused
    }

    /// What a token endpoint failure means for the operator (F10, F42, §3 token endpoint).
    fn token_error(&self, e: UpstreamError) -> UpstreamError {
        let tenant = self.tenant.as_deref().unwrap_or("(not set)");
        match e {
            UpstreamError::Unauthorized { upstream, endpoint, credential, message } => {
                UpstreamError::Unauthorized { upstream, endpoint, credential, message }
            }
            UpstreamError::Rejected { upstream, endpoint, message, .. }
                if message.starts_with("invalid_client") =>
            {
                let credential = self.http_credential();
                UpstreamError::Unauthorized { upstream, endpoint, credential, message }
            }
            UpstreamError::Rejected { upstream, message, .. }
                if message.to_ascii_lowercase().contains("tenant") =>
            {
                UpstreamError::Setup {
                    upstream,
                    reason: format!(
                        "the token endpoint does not know tenant {tenant} ({message}); check \
                         billing.halopsa.tenant: the tenant name shown under Configuration > \
                         Integrations > HaloPSA API (Halo-hosted instances need it; leave it out \
                         on premises)"
                    ),
                }
            }
            UpstreamError::Rejected { upstream, endpoint, message, .. }
                if message.starts_with("invalid_scope") =>
            {
                UpstreamError::Forbidden {
                    upstream,
                    endpoint,
                    credential: "billing.halopsa.client_id (the API application)".into(),
                    message,
                }
            }
            UpstreamError::NotFound { upstream, .. } => UpstreamError::Setup {
                upstream,
                reason: format!(
                    "there is no token endpoint at {}/token (404); check billing.halopsa.auth_url: \
                     the Authorisation Server shown under Configuration > Integrations > \
                     HaloPSA API",
                    self.auth.base()
                ),
            },
            other => other,
        }
    }

    pub(super) fn http_credential(&self) -> String {
        format!(
            "billing.halopsa.client_id ({}) and the secret file {}",
            self.client_id,
            self.secret.origin()
        )
    }
}

/// The `invalid_scope` message: which scopes were refused, and where to grant them.
fn scope_message(message: &str, refused: &[String], asked: &str) -> String {
    let which = if refused.is_empty() {
        format!("one of the scopes asked for ({asked})")
    } else {
        refused.join(", ")
    };
    format!(
        "{message}: the API application is not granted {which}; grant it to the application \
         under {WHERE_SCOPES}, or set billing.halopsa.scope to what it is granted"
    )
}
