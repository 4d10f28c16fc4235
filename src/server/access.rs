//! Who may read the HTTP endpoint. A middleware in front of every route refuses:
//! - a `Host` that is not this server's (421): a web page the operator visits could otherwise
//!   read customer names and billing through DNS rebinding;
//! - a state-changing request (anything but GET/HEAD/OPTIONS) from a foreign web page's
//!   `Origin` (403): a cross-site form could otherwise start runs;
//! - with an access token configured, a request that carries neither `Authorization: Bearer
//!   <token>` nor the session cookie of `/login` (401).
//!
//! `/livez` and `/readyz` pass all three: they say only "ok"/"ready" (or how long the main
//! loop has been stuck), and their callers cannot be configured for them — a kubelet sends
//! `Host: <pod IP>:<port>`, load balancers send their own address, and neither holds a token.

pub(super) mod login;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use ring::{digest, hmac};

use super::errors::json_error_hint;
use crate::config::hosts;
use crate::config::{DaemonConfig, Secret};

/// The cookie `/login` sets: a digest of the token, never the token itself.
pub const SESSION_COOKIE: &str = "mpsync_session";

/// Paths that answer whatever the Host, Origin or token: what probes call.
const PROBES: [&str; 2] = ["/livez", "/readyz"];

/// The host names served and the token required. Shared by every request.
#[derive(Default)]
pub struct Access {
    /// Names besides `localhost` and loopback literals (always allowed): the listen address
    /// (unless a wildcard) and `daemon.allowed_hosts`, normalised.
    hosts: BTreeSet<String>,
    token: Option<Token>,
}

impl std::fmt::Debug for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Access")
            .field("hosts", &self.hosts)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl Access {
    /// The rules of `daemon` for a server bound to `bound`.
    pub fn from_config(daemon: &DaemonConfig, bound: SocketAddr) -> Access {
        Access::new(bound, &daemon.allowed_hosts, daemon.access_token.as_ref())
    }

    /// Answers loopback names, `bound`'s address and `allowed_hosts`; with `token`, only
    /// to requests that carry it.
    pub fn new(bound: SocketAddr, allowed_hosts: &[String], token: Option<&Secret>) -> Access {
        let mut names: BTreeSet<String> =
            allowed_hosts.iter().filter_map(|h| hosts::normalize(h)).collect();
        if !bound.ip().is_unspecified() {
            names.extend(hosts::normalize(&bound.ip().to_string()));
        }
        Access { hosts: names, token: token.map(|t| Token::new(t.expose())) }
    }

    /// Whether a token is required.
    pub fn needs_token(&self) -> bool {
        self.token.is_some()
    }

    /// Whether `host` (a `Host` header's host part, any port) names this server.
    pub fn allows_host(&self, host: &str) -> bool {
        let Some(h) = hosts::normalize(host) else { return false };
        h == "localhost"
            || hosts::as_ip(&h).is_some_and(hosts::is_loopback)
            || self.hosts.contains(&h)
    }

    /// Whether `token` is the access token (constant time; `true` when none is configured).
    pub fn admits_token(&self, token: &str) -> bool {
        self.token.as_ref().is_none_or(|t| t.is_token(token))
    }

    /// The session cookie value for a browser that presented the right token.
    pub(super) fn cookie_value(&self) -> Option<&str> {
        self.token.as_ref().map(|t| t.session.as_str())
    }

    /// Whether the request carries the token (header) or the session cookie.
    fn admits(&self, headers: &HeaderMap) -> bool {
        let Some(t) = &self.token else { return true };
        let bearer = headers
            .get_all(header::AUTHORIZATION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .any(|(_, value)| t.is_token(value.trim()));
        bearer || cookies(headers, SESSION_COOKIE).any(|v| t.is_session(v))
    }
}

/// The token, kept as HMAC tags under a key drawn at start: comparing tags with
/// `hmac::verify` takes the same time whatever the guess, and reveals not even the length.
struct Token {
    key: hmac::Key,
    token_tag: hmac::Tag,
    /// What the session cookie holds: a SHA-256 of the token, so the cookie survives restarts
    /// and dies with the token, and the token never travels back in a response.
    session: String,
    session_tag: hmac::Tag,
}

impl Token {
    fn new(token: &str) -> Token {
        let key = hmac::Key::new(hmac::HMAC_SHA256, &rand::random::<[u8; 32]>());
        let session = session_value(token);
        Token {
            token_tag: hmac::sign(&key, token.as_bytes()),
            session_tag: hmac::sign(&key, session.as_bytes()),
            session,
            key,
        }
    }

    fn is_token(&self, guess: &str) -> bool {
        hmac::verify(&self.key, guess.as_bytes(), self.token_tag.as_ref()).is_ok()
    }

    fn is_session(&self, guess: &str) -> bool {
        hmac::verify(&self.key, guess.as_bytes(), self.session_tag.as_ref()).is_ok()
    }
}

/// What the session cookie holds for `token`: a SHA-256 of it, in hex. As good as the token
/// for reading mpsync, so the log scrubs it too.
pub fn session_value(token: &str) -> String {
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(b"mpsync session v1\0");
    ctx.update(token.as_bytes());
    ctx.finish().as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// The values of cookie `name` in the request's `Cookie` headers.
fn cookies<'h>(headers: &'h HeaderMap, name: &'h str) -> impl Iterator<Item = &'h str> + 'h {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(move |pair| {
            let (k, v) = pair.trim().split_once('=')?;
            (k == name).then_some(v)
        })
}

/// The host a request names.
enum RequestHost {
    /// The host part of a well-formed `Host` header or absolute-form authority.
    Host(String),
    /// A value that is no authority at all, as it was given (refused like a foreign host).
    Malformed(String),
}

/// The host the request names: the `Host` header's host part, else the authority of an
/// absolute-form target. `None` when it names none (an HTTP/1.0 client): only browsers are
/// steered by DNS rebinding, and a browser always sends `Host`.
fn request_host(req: &Request) -> Option<RequestHost> {
    let raw = match req.headers().get(header::HOST) {
        Some(v) => String::from_utf8_lossy(v.as_bytes()).into_owned(),
        None => req.uri().authority()?.to_string(),
    };
    Some(match raw.parse::<axum::http::uri::Authority>() {
        Ok(a) => RequestHost::Host(a.host().to_owned()),
        Err(_) => RequestHost::Malformed(raw),
    })
}

/// At most 100 characters of `text` (an attacker-chosen value echoed in an error).
fn clip(text: &str) -> String {
    text.chars().take(100).collect()
}

/// The middleware: Host, then Origin, then the token. See the module doc.
pub async fn guard(State(access): State<Arc<Access>>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    if PROBES.contains(&path) {
        return next.run(req).await;
    }
    if let Some(host) = request_host(&req) {
        let host = match host {
            RequestHost::Host(h) if access.allows_host(&h) => None,
            RequestHost::Host(h) | RequestHost::Malformed(h) => Some(h),
        };
        if let Some(host) = host {
            tracing::debug!(host = %clip(&host), path, "refused a request for a foreign Host");
            return json_error_hint(
                StatusCode::MISDIRECTED_REQUEST,
                format!("mpsync does not answer for the host {:?}", clip(&host)),
                "mpsync answers for localhost, loopback addresses, its listen address and the \
                 names in daemon.allowed_hosts. If you reach it under this name (e.g. through a \
                 reverse proxy), add the name to daemon.allowed_hosts and restart mpsync",
            );
        }
    }
    if !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS)
        && let Some(origin) = req.headers().get(header::ORIGIN)
    {
        let shown = String::from_utf8_lossy(origin.as_bytes()).into_owned();
        let host = url::Url::parse(&shown).ok().and_then(|u| u.host_str().map(str::to_owned));
        if !host.is_some_and(|h| access.allows_host(&h)) {
            tracing::debug!(origin = %clip(&shown), path, "refused a request from a foreign Origin");
            return json_error_hint(
                StatusCode::FORBIDDEN,
                format!(
                    "refused {} {path} sent by the web page at {:?}",
                    req.method(),
                    clip(&shown)
                ),
                "requests that change something are accepted from mpsync's own pages and from \
                 clients that send no Origin header (curl, scripts); if that page is yours, add \
                 its host to daemon.allowed_hosts and restart mpsync",
            );
        }
    }
    if path != login::PATH && !access.admits(req.headers()) {
        return unauthorized(path == "/");
    }
    next.run(req).await
}

/// 401: the JSON error body, or for the dashboard the login form (a person opened it).
fn unauthorized(dashboard: bool) -> Response {
    if dashboard {
        return login::form(StatusCode::UNAUTHORIZED, None);
    }
    let mut resp = json_error_hint(
        StatusCode::UNAUTHORIZED,
        "this endpoint needs the access token",
        "send the header `Authorization: Bearer <token>` with the token from \
         daemon.access_token_file, or log in at /login in a browser",
    );
    resp.headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"mpsync\""));
    resp.into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn access(bound: &str, names: &[&str], token: Option<&str>) -> Access {
        let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        let secret = token.map(|t| Secret::new(t, "/test"));
        Access::new(bound.parse().unwrap(), &names, secret.as_ref())
    }

    #[test]
    fn loopback_names_the_listen_address_and_listed_names_are_served() {
        let a = access("10.0.0.5:9847", &["MPSync.example.com"], None);
        for ok in ["localhost", "LOCALHOST.", "127.0.0.1", "127.0.0.2", "[::1]", "10.0.0.5"] {
            assert!(a.allows_host(ok), "{ok}");
        }
        assert!(a.allows_host("mpsync.example.com"));
        for foreign in
            ["attacker.example", "10.0.0.6", "example.com", "mpsync.example.com.evil", ""]
        {
            assert!(!a.allows_host(foreign), "{foreign:?}");
        }
        // A wildcard bind has no address of its own to serve.
        let any = access("0.0.0.0:9847", &[], None);
        assert!(!any.allows_host("0.0.0.0") && any.allows_host("127.0.0.1"));
    }

    #[test]
    fn the_token_and_its_session_value_are_checked_and_never_shown() {
        let a = access("127.0.0.1:9847", &[], Some("s3cret-token-0123456789"));
        assert!(a.admits_token("s3cret-token-0123456789"));
        for wrong in ["", "s3cret-token-012345678", "s3cret-token-01234567890", "x"] {
            assert!(!a.admits_token(wrong), "{wrong:?}");
        }
        let session = a.cookie_value().unwrap().to_owned();
        assert_eq!(session.len(), 64);
        assert!(!session.contains("s3cret"));
        assert!(!format!("{a:?}").contains("s3cret") && !format!("{a:?}").contains(&session));
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, format!("a=b; {SESSION_COOKIE}={session}").parse().unwrap());
        assert!(a.admits(&headers));
        headers.insert(
            header::COOKIE,
            format!("{SESSION_COOKIE}=s3cret-token-0123456789").parse().unwrap(),
        );
        assert!(!a.admits(&headers), "the cookie holds the session value, not the token");
        // Another process with the same token accepts the same cookie (it survives restarts).
        let b = access("127.0.0.1:9847", &[], Some("s3cret-token-0123456789"));
        assert_eq!(b.cookie_value(), Some(session.as_str()));
        assert!(access("127.0.0.1:1", &[], None).admits_token("anything"));
    }
}
