//! Upstreams that echo every credential they receive — in bodies, in JSON keys, in a `Link`
//! header, in an error message — and a capture of them, with and without pseudonymization:
//! no byte of the bundle, and nothing printed, holds any form of any secret.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use crate::common::TestDir;
use crate::support::{capture, text};

const MP_KEY: &str = "mpkey-S3CRET-0001";
const COMPANY: &str = "acme";
const CW_PUBLIC: &str = "cwpub-S3CRET-0002";
const CW_PRIVATE: &str = "cwpriv-S3CRET-0003";
const CW_CLIENT: &str = "cwclient-S3CRET-0004";
const G_VENDOR: &str = "gvendor-S3CRET-0005";
const G_PARTNER: &str = "gpartner-S3CRET-0006";

/// Every form of every secret a bundle must never hold.
fn forms() -> Vec<String> {
    let pair = format!("{COMPANY}+{CW_PUBLIC}:{CW_PRIVATE}");
    let token_source = format!("{G_VENDOR}:{G_PARTNER}");
    let mut v: Vec<String> = [MP_KEY, CW_PUBLIC, CW_PRIVATE, CW_CLIENT, G_VENDOR, G_PARTNER]
        .iter()
        .flat_map(|s| [s.to_string(), STANDARD.encode(s)])
        .collect();
    v.extend([
        format!("Bearer {MP_KEY}"),
        pair.clone(),
        STANDARD.encode(&pair),
        format!("Basic {}", STANDARD.encode(&pair)),
        token_source.clone(),
        STANDARD.encode(&token_source),
        "S3CRET".to_owned(),
    ]);
    v
}

/// Everything the caller sent that could be a credential, decoded where it is encoded.
fn echo(headers: &HeaderMap) -> String {
    let mut parts = Vec::new();
    for name in ["authorization", "clientid", "gradient-token"] {
        let Some(v) = headers.get(name).and_then(|v| v.to_str().ok()) else { continue };
        parts.push(v.to_owned());
        let raw = v.trim_start_matches("Basic ").trim_start_matches("Bearer ");
        parts.push(raw.to_owned());
        if let Some(decoded) = STANDARD.decode(raw).ok().and_then(|b| String::from_utf8(b).ok()) {
            parts.extend(decoded.split([':', '+']).map(str::to_owned));
            parts.push(decoded);
        }
    }
    parts.join(" | ")
}

fn answer(status: StatusCode, body: Value, link: Option<String>) -> Response {
    let mut r = (status, axum::Json(body)).into_response();
    if let Some(l) = link {
        r.headers_mut().insert("link", l.parse().unwrap());
    }
    r
}

async fn echoing(req: Request<Body>) -> Response {
    let e = echo(req.headers());
    let key_link = format!("<https://h.invalid/x?page=1&k={}>; rel=\"last\"", e.replace(' ', ""));
    let pagination = |r: &mut Response| {
        let v = "{\"page\":1,\"per_page\":100,\"total\":1,\"total_pages\":1}";
        r.headers_mut().insert("x-pagination", v.parse().unwrap());
    };
    match req.uri().path() {
        "/api/v1/resellers/188/customers" => {
            let mut customer = json!({"id": 1, "name": e, "notes": e});
            customer.as_object_mut().unwrap().insert(e.clone(), json!([e]));
            let mut r = answer(StatusCode::OK, json!([customer]), Some(key_link));
            pagination(&mut r);
            r
        }
        "/api/v1/resellers/188/domains" => {
            let mut r = answer(StatusCode::OK, json!([]), None);
            pagination(&mut r);
            r
        }
        "/v4_6_release/apis/3.0/company/companies" => answer(
            StatusCode::OK,
            json!([{"id": 250, "identifier": e, "name": e, "deletedFlag": false}]),
            Some(key_link),
        ),
        // A refusal that quotes the credentials: the billing read fails on it.
        "/v4_6_release/apis/3.0/finance/agreements" => answer(
            StatusCode::FORBIDDEN,
            json!({"code": "Forbidden", "message": format!("member {e} may not read agreements")}),
            None,
        ),
        "/api/vendor-api/organization" => {
            answer(StatusCode::OK, json!({"name": e, "status": "active", "vendorName": e}), None)
        }
        "/api/vendor-api" => answer(
            StatusCode::OK,
            json!({"status": 200, "message": e, "data": {"name": e, "skus": [{"id": "1", "name": e}]}}),
            None,
        ),
        "/api/vendor-api/organization/accounts" => {
            answer(StatusCode::OK, json!([{"id": "1", "name": e, "description": e}]), None)
        }
        other => {
            answer(StatusCode::NOT_FOUND, json!({"error": format!("no {other} for {e}")}), None)
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_form_of_any_secret_reaches_a_bundle_when_upstreams_echo_them() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, axum::Router::new().fallback(echoing)).await;
    });
    let _stop = AbortOnDrop(server);

    let dir = TestDir::new();
    std::fs::write(dir.path().join("mapping.toml"), "").unwrap();
    let mp_key = dir.secret("mp-key", MP_KEY);
    let public = dir.secret("cw-public", CW_PUBLIC);
    let private = dir.secret("cw-private", CW_PRIVATE);
    let vendor = dir.secret("g-vendor", G_VENDOR);
    let partner = dir.secret("g-partner", G_PARTNER);
    let config = dir.config(&format!(
        r#"[daemon]
state_dir = "{state}"
log = "warn"

[mailprotector]
base_url = "{base}"
api_key_file = "{mp}"
reseller_id = 188

[billing]
source = "connectwise"

[billing.connectwise]
base_url = "{base}"
company_id = "{COMPANY}"
public_key_file = "{public}"
private_key_file = "{private}"
client_id = "{CW_CLIENT}"

[reconcile]
mapping_file = "{mapping}"

[gradient]
enabled = true
base_url = "{base}"
vendor_key_file = "{vendor}"
partner_key_file = "{partner}"
"#,
        state = dir.state_dir().display(),
        mp = mp_key.display(),
        public = public.display(),
        private = private.display(),
        vendor = vendor.display(),
        partner = partner.display(),
        mapping = dir.path().join("mapping.toml").display(),
    ));

    for (name, extra) in [("plain", &["--no-pseudonymize"][..]), ("pseudonymized", &[][..])] {
        let bundle = dir.path().join(name);
        let out = capture(&config, &bundle, extra).await;
        assert_eq!(out.status.code(), Some(69), "the 403 on agreements: {}", text(&out));
        let printed = text(&out);
        assert!(printed.contains("connectwise failed") && printed.contains("403"), "{printed}");
        let mut files: Vec<_> =
            std::fs::read_dir(&bundle).unwrap().map(|e| e.unwrap().path()).collect();
        files.sort();
        let names: Vec<String> =
            files.iter().map(|f| f.file_name().unwrap().to_string_lossy().into_owned()).collect();
        assert_eq!(
            names,
            ["connectwise.json", "gradient.json", "mailprotector.json", "manifest.json"]
        );
        let mut redacted = 0;
        for file in &files {
            let bytes = std::fs::read(file).unwrap();
            let lower = String::from_utf8_lossy(&bytes).to_lowercase();
            for form in forms() {
                assert!(!lower.contains(&form.to_lowercase()), "{form:?} in {}", file.display());
            }
            redacted += lower.matches("<redacted>").count();
        }
        for form in forms() {
            assert!(!printed.to_lowercase().contains(&form.to_lowercase()), "{form:?} printed");
        }
        if name == "plain" {
            // The echoes were captured (and cut), not lost: the answers are all there.
            assert!(redacted > 20, "{redacted} redactions");
            let manifest: Value =
                serde_json::from_slice(&std::fs::read(bundle.join("manifest.json")).unwrap())
                    .unwrap();
            let outcome = manifest["upstreams"][1]["outcome"].as_str().unwrap();
            assert!(outcome.starts_with("failed: ") && outcome.contains("<redacted>"), "{outcome}");
            assert!(manifest["upstreams"][2]["outcome"].as_str().unwrap().starts_with("complete"));
        }
    }
}

/// Stops the echoing server when the test ends, however it ends.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
