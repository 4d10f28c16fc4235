//! An upstream that repeats the credential back, in every form seen in the wild: no error the
//! client makes and no body it hands out carries it, whatever the status or encoding.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

use super::*;

/// The raw key of [`spec_with`]: `/`, `+`, `=` and quotes make every encoding differ.
const KEY: &str = "sk-Live/Echo+\"42\"=";

fn echo_spec(base: url::Url) -> UpstreamSpec {
    let mut s = spec(base);
    s.auth_headers = vec![("Authorization".into(), Secret::new(format!("Bearer {KEY}"), "/k"))];
    s.redact = vec![Secret::new(KEY, "/k")];
    s
}

/// Every form of the key (and of its header) an upstream could echo, as the test spells it.
fn forms() -> Vec<String> {
    let json = serde_json::to_string(KEY).unwrap();
    let json = json.trim_matches('"').to_owned();
    let pct: String = url::form_urlencoded::byte_serialize(KEY.as_bytes()).collect();
    vec![
        KEY.to_owned(),
        KEY.to_ascii_uppercase(),
        format!("Bearer {KEY}"),
        STANDARD.encode(KEY),
        URL_SAFE_NO_PAD.encode(KEY),
        pct,
        json.replace('/', "\\/"),
        // A JSON document nested in a JSON string.
        serde_json::to_string(&json).unwrap().trim_matches('"').to_owned(),
        json,
    ]
}

/// Fails naming the form when `text` holds any form of the key, in any case.
fn assert_clean(text: &str) {
    let lower = text.to_ascii_lowercase();
    for f in forms() {
        assert!(!lower.contains(&f.to_ascii_lowercase()), "{f:?} leaked into: {text}");
    }
}

/// A JSON error body quoting every form, in `field`.
fn echo_body(field: &str) -> String {
    serde_json::json!({ field: format!("api key {} is revoked", forms().join(" | ")) }).to_string()
}

fn answer(code: u16, body: String) -> Response {
    (StatusCode::from_u16(code).unwrap(), body).into_response()
}

#[tokio::test]
async fn error_answers_that_echo_the_key_never_carry_it() {
    let cases: Vec<(u16, String, &str)> = vec![
        (401, echo_body("error"), "unauthorized"),
        (403, echo_body("message"), "forbidden"),
        (404, format!("<html><p>No key {}</p></html>", forms().join(" ")), "not_found"),
        (422, format!(r#"{{"errors":{{"key":[{:?}]}}}}"#, KEY), "rejected"),
        (502, echo_body("error"), "unavailable"),
        (302, echo_body("error"), "bad_response"),
    ];
    for (code, body, kind) in cases {
        let s = stub(move |_| answer(code, body.clone())).await;
        let c = UpstreamClient::new(echo_spec(s.base.clone())).unwrap();
        let err = c.get(&ep(), &[]).await.unwrap_err();
        assert_eq!(err.kind(), kind, "{code}: {err:?}");
        let (shown, debug) = (err.to_string(), format!("{err:?}"));
        assert_clean(&shown);
        assert_clean(&debug);
        assert!(shown.contains("<redacted>"), "{code}: the echo is cut, not dropped: {shown}");
    }
}

#[tokio::test]
async fn data_bodies_and_parse_errors_never_carry_the_key() {
    // A wrong type: serde's error quotes the value, and the excerpt quotes the body.
    let wrong = serde_json::json!([{ "id": KEY, "name": forms().join(" ") }]).to_string();
    // A name that echoes the key, once with the key's first letter \u-escaped.
    let named = format!(r#"{{"id":1,"name":"Org {} \u0073k-Live/Echo+\"42\"="}}"#, forms()[3]);
    let bodies = [wrong, named];
    let s = stub(move |n| answer(200, bodies[n % 2].clone())).await;
    let c = UpstreamClient::new(echo_spec(s.base.clone())).unwrap();

    #[derive(Debug, serde::Deserialize)]
    struct Item {
        #[allow(dead_code)]
        id: u64,
    }
    let resp = c.get(&ep(), &[]).await.unwrap();
    assert_clean(&String::from_utf8_lossy(&resp.body));
    let err = c.parse_json::<Vec<Item>>(&resp).unwrap_err();
    assert_eq!(err.kind(), "bad_response");
    assert_clean(&err.to_string());
    assert!(err.to_string().contains(r#"string "<redacted>""#), "{err}");

    #[derive(Debug, serde::Deserialize)]
    struct Named {
        name: String,
    }
    let resp = c.get(&ep(), &[]).await.unwrap();
    let named: Named = c.parse_json(&resp).unwrap();
    // The body held only the escaped echo; decoding revealed it, the verbatim scrub cuts it.
    assert!(named.name.contains("sk-Live/Echo"), "decoded: {}", named.name);
    let shown = c.scrub(&named.name);
    assert_clean(&shown);
    assert_eq!(shown, "Org <redacted> <redacted>");
}
