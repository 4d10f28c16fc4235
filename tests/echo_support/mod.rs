//! An echoing upstream for the secret tests: a loopback proxy in front of the in-process
//! simulator. mpsync is configured with the test's own keys (full of `/`, `+`, `=` and quotes,
//! so every encoding of them differs); the proxy swaps them for the simulator's before
//! forwarding, and while echoing is on it answers chosen endpoints of each upstream itself,
//! repeating the credential it received in every form an upstream could. Also: every form of
//! every configured secret, to grep the sinks for.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use serde_json::json;

use crate::sync_support::Sim;

/// The keys mpsync is configured with (never the simulator's).
pub const MP_KEY: &str = "mp-live/Echo+Key=\"7\"";
pub const CW_PUBLIC: &str = "cwPub/Echo+1=";
pub const CW_PRIVATE: &str = "cwPriv\"Echo\"/2";
pub const G_VENDOR: &str = "gVend/Echo+3=";
pub const G_PARTNER: &str = "gPart\"Echo\"/4";

/// Every secret mpsync holds, as the upstreams receive them: the raw keys, the Bearer value,
/// the ConnectWise pair and its Basic value, Gradient's `vendor:partner` and its token.
pub fn secrets(company: &str) -> Vec<String> {
    let pair = format!("{company}+{CW_PUBLIC}:{CW_PRIVATE}");
    vec![
        MP_KEY.to_owned(),
        format!("Bearer {MP_KEY}"),
        CW_PUBLIC.to_owned(),
        CW_PRIVATE.to_owned(),
        format!("Basic {}", STANDARD.encode(&pair)),
        pair,
        G_VENDOR.to_owned(),
        G_PARTNER.to_owned(),
        format!("{G_VENDOR}:{G_PARTNER}"),
        mpsync::gradient::build_token(G_VENDOR, G_PARTNER),
    ]
}

/// Each form of `secret` a sink could show it in: raw, Base64 (standard and URL-safe, padded
/// or not), percent-encoded (`+` or `%20` for spaces), JSON-escaped (also with `\/`),
/// HTML-escaped.
pub fn forms(secret: &str) -> Vec<String> {
    let json = serde_json::to_string(secret).unwrap();
    let json = json.trim_matches('"').to_owned();
    let pct: String = url::form_urlencoded::byte_serialize(secret.as_bytes()).collect();
    let html = secret
        .replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('\'', "&#39;");
    vec![
        secret.to_owned(),
        STANDARD.encode(secret),
        STANDARD_NO_PAD.encode(secret),
        URL_SAFE.encode(secret),
        URL_SAFE_NO_PAD.encode(secret),
        pct.replace('+', "%20"),
        pct,
        json.replace('/', "\\/"),
        json,
        html,
    ]
}

/// Fails naming the sink and the form when `bytes` hold any form of any secret, in any case,
/// with any backslashes in between (an escape of any kind or depth).
pub fn assert_no_secret(sink: &str, bytes: &[u8], company: &str) {
    let unescaped = |b: &[u8]| -> Vec<u8> {
        b.iter().filter(|&&c| c != b'\\').map(u8::to_ascii_lowercase).collect()
    };
    let hay = unescaped(bytes);
    for secret in secrets(company) {
        for form in forms(&secret) {
            let needle = unescaped(form.as_bytes());
            if let Some(at) = hay.windows(needle.len()).position(|w| w == needle.as_slice()) {
                let from = at.saturating_sub(200);
                let context = String::from_utf8_lossy(&hay[from..(at + 200).min(hay.len())]);
                panic!("{sink} shows {form:?} (a form of {secret:?}):\n…{context}…");
            }
        }
    }
}

/// What an echo puts in a body: forms of each of `secrets` and of each of the header values
/// `headers` as received (the decoder and the scrubber must see through all of them).
fn planted(secrets: &[&str], headers: &[&str]) -> String {
    let mut out = Vec::new();
    for s in secrets.iter().chain(headers) {
        let pct: String = url::form_urlencoded::byte_serialize(s.as_bytes()).collect();
        out.extend([s.to_string(), s.to_ascii_uppercase(), pct, s.replace('/', "\\/")]);
    }
    for s in secrets {
        out.extend([STANDARD.encode(s), URL_SAFE_NO_PAD.encode(s)]);
    }
    out.join(" ")
}

/// The simulator's real credentials, which the proxy sends instead of mpsync's.
struct Upstream {
    base: String,
    bearer: String,
    basic: String,
    token: String,
}

struct Shared {
    up: Upstream,
    http: reqwest::Client,
    echo: AtomicBool,
    reseller: u64,
    company: String,
    hits: Mutex<BTreeMap<&'static str, u64>>,
}

/// The proxy; it runs on the simulator's runtime and stops with it.
pub struct EchoProxy {
    shared: Arc<Shared>,
    pub base_url: String,
}

impl EchoProxy {
    /// Starts the proxy in front of `sim` (echoing off).
    pub fn start(sim: &Sim) -> EchoProxy {
        mpsync::upstream::install_crypto_provider();
        let ctl = sim.control();
        let cw = ctl.connectwise().credentials();
        let g = ctl.gradient();
        let pair = format!("{}+{}:{}", cw.company_id, cw.public_key, cw.private_key);
        let shared = Arc::new(Shared {
            up: Upstream {
                base: sim.base_url(),
                bearer: format!("Bearer {}", ctl.reseller_key()),
                basic: format!("Basic {}", STANDARD.encode(pair)),
                token: mpsync::gradient::build_token(&g.vendor_key(), &g.partner_key()),
            },
            http: reqwest::Client::new(),
            echo: AtomicBool::new(false),
            reseller: ctl.reseller_id(),
            company: cw.company_id.clone(),
            hits: Mutex::new(BTreeMap::new()),
        });
        let app = axum::Router::new().fallback(handle).with_state(shared.clone());
        let listener =
            sim.rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).expect("bind the proxy");
        let addr = listener.local_addr().unwrap();
        sim.rt.spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        EchoProxy { shared, base_url: format!("http://{addr}") }
    }

    /// Starts or stops answering the echo endpoints.
    pub fn echo(&self, on: bool) {
        self.shared.echo.store(on, Ordering::SeqCst);
    }

    /// How many echo answers each endpoint gave.
    pub fn hits(&self) -> BTreeMap<&'static str, u64> {
        self.shared.hits.lock().unwrap().clone()
    }

    /// The simulator's ConnectWise company id (part of the pair).
    pub fn company(&self) -> String {
        self.shared.company.clone()
    }
}

/// The echo answer for `method path`, if it is one of the echoing endpoints.
fn echo_answer(sh: &Shared, method: &Method, path: &str) -> Option<(&'static str, u16, String)> {
    let mp = planted(&[MP_KEY], &[&format!("Bearer {MP_KEY}")]);
    let pair = format!("{}+{CW_PUBLIC}:{CW_PRIVATE}", sh.company);
    let cw =
        planted(&[CW_PUBLIC, CW_PRIVATE, &pair], &[&format!("Basic {}", STANDARD.encode(&pair))]);
    let token = mpsync::gradient::build_token(G_VENDOR, G_PARTNER);
    let g = planted(&[G_VENDOR, G_PARTNER, &format!("{G_VENDOR}:{G_PARTNER}")], &[&token]);
    let reseller = format!("/api/v1/resellers/{}", sh.reseller);
    let cw_api = "/v4_6_release/apis/3.0";
    Some(match (method.as_str(), path) {
        // The credential check: a revoked key, the message quoting it.
        ("GET", p) if p == reseller => {
            ("mp 401", 401, json!({"error": format!("api key {mp} is revoked")}).to_string())
        }
        // Wrong types: serde's error quotes the value, the excerpt quotes the body.
        ("GET", p) if p == format!("{reseller}/customers") => {
            ("mp customers", 200, json!([{"id": MP_KEY, "name": mp}]).to_string())
        }
        // Verbatim text in a good answer (`mpsync check` shows the version and region).
        ("GET", p) if p == format!("{cw_api}/system/info") => (
            "cw info",
            200,
            json!({"version": format!("v2026.1 {cw}"), "isCloud": true, "cloudRegion": pair})
                .to_string(),
        ),
        ("GET", p) if p == format!("{cw_api}/company/companies") => (
            "cw 403",
            403,
            json!({"code": "Forbidden", "message": format!("member {cw} lacks rights")})
                .to_string(),
        ),
        // An unknown integration status (kept verbatim) and a name, both the token.
        ("GET", "/api/vendor-api/organization") => (
            "g organization",
            200,
            json!({"name": format!("Org {g}"), "status": token}).to_string(),
        ),
        // A refused count: the per-pair message of the push report. Plain text, not JSON.
        ("POST", p) if p.starts_with("/api/vendor-api/service/") && p.ends_with("/count") => {
            ("g count 400", 400, format!("count refused for {g}"))
        }
        _ => return None,
    })
}

async fn handle(State(sh): State<Arc<Shared>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_owned();
    if sh.echo.load(Ordering::SeqCst)
        && let Some((name, status, text)) = echo_answer(&sh, &parts.method, &path)
    {
        *sh.hits.lock().unwrap().entry(name).or_insert(0) += 1;
        let ctype = if text.starts_with(['{', '[']) { "application/json" } else { "text/plain" };
        let mut resp = (StatusCode::from_u16(status).unwrap(), text).into_response();
        resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
        return resp;
    }
    let body = axum::body::to_bytes(body, 64 << 20).await.unwrap_or_default();
    let target = parts.uri.path_and_query().map_or(path.as_str(), |pq| pq.as_str());
    let mut req = sh.http.request(parts.method.clone(), format!("{}{target}", sh.up.base));
    for (name, value) in &parts.headers {
        let swapped = match name.as_str() {
            "host" | "content-length" => continue,
            "authorization" if value.as_bytes().starts_with(b"Bearer ") => sh.up.bearer.clone(),
            "authorization" if value.as_bytes().starts_with(b"Basic ") => sh.up.basic.clone(),
            "gradient-token" => sh.up.token.clone(),
            _ => {
                req = req.header(name, value);
                continue;
            }
        };
        req = req.header(name, swapped);
    }
    let answer = match req.body(body).send().await {
        Ok(a) => a,
        Err(e) => return (StatusCode::BAD_GATEWAY, format!("proxy: {e}")).into_response(),
    };
    let mut out = Response::builder().status(answer.status());
    for (name, value) in answer.headers() {
        if !matches!(name.as_str(), "content-length" | "transfer-encoding" | "connection") {
            out = out.header(name, value);
        }
    }
    let bytes = answer.bytes().await.unwrap_or_default();
    out.body(Body::from(bytes)).unwrap()
}
