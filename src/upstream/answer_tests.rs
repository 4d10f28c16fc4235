//! The answer interpreter on its own: no server, no clock (a fixed "now" is passed in).

use std::time::{Duration, SystemTime};

use reqwest::header::{HeaderMap, HeaderValue, RETRY_AFTER};

use super::*;
use crate::config::{Secret, UpstreamLimits};
use crate::upstream::{UpstreamClient, UpstreamSpec};

const KEY: &str = "sk-answer-secret-9";

fn client() -> UpstreamClient {
    UpstreamClient::new(UpstreamSpec {
        name: "mailprotector".into(),
        base_url: "http://127.0.0.1:9/api/v1".parse().unwrap(),
        limits: UpstreamLimits {
            rate_limit: 10.0,
            burst: 1,
            max_in_flight: 1,
            timeout: Duration::from_secs(1),
            connect_timeout: Duration::from_secs(1),
        },
        auth_headers: vec![("Authorization".into(), Secret::new(format!("Bearer {KEY}"), "/k"))],
        credential: "mailprotector.api_key_file (/k)".into(),
        retry: RetryPolicy::default(),
        redact: vec![Secret::new(KEY, "/k")],
    })
    .unwrap()
}

fn ep() -> Endpoint {
    Endpoint::get("/resellers/188", "/resellers/{id}")
}

/// 1994-11-06 08:49:37 UTC, the RFC's example date.
fn now() -> SystemTime {
    httpdate::parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT").unwrap()
}

fn read(status: u16, headers: HeaderMap, body: &str) -> Answer {
    client().interpret(&ep(), status, headers, bytes::Bytes::from(body.to_owned()), now())
}

fn retry_after(value: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(RETRY_AFTER, HeaderValue::from_str(value).unwrap());
    h
}

#[test]
fn a_2xx_answer_is_handed_over_with_any_echoed_secret_cut() {
    let Answer::Success { response, secret_cut } = read(200, HeaderMap::new(), r#"{"id":188}"#)
    else {
        panic!("a 200 is a success");
    };
    assert!(!secret_cut);
    assert_eq!(&response.body[..], br#"{"id":188}"#);
    assert_eq!(response.endpoint, "GET /resellers/{id}");

    let echo = format!(r#"{{"id":188,"name":"{KEY}"}}"#);
    let Answer::Success { response, secret_cut } = read(204, HeaderMap::new(), &echo) else {
        panic!("a 204 is a success");
    };
    assert!(secret_cut, "the warning is asked for");
    let body = String::from_utf8(response.body.to_vec()).unwrap();
    assert_eq!(body, r#"{"id":188,"name":"<redacted>"}"#);
    assert_eq!(response.status, 204);
}

#[test]
fn a_429_reads_retry_after_as_seconds_or_a_date_clamped_to_the_policy() {
    let pause = |h: HeaderMap| match read(429, h, "slow down") {
        Answer::RateLimited { retry_after } => retry_after,
        other => panic!("{other:?}"),
    };
    assert_eq!(pause(retry_after("7")), Some(Duration::from_secs(7)));
    // A date is relative to the "now" passed in, not to the machine's clock.
    assert_eq!(pause(retry_after("Sun, 06 Nov 1994 08:49:47 GMT")), Some(Duration::from_secs(10)));
    assert_eq!(pause(retry_after("Sun, 06 Nov 1994 08:00:00 GMT")), Some(Duration::ZERO));
    let longest = RetryPolicy::default().max_rate_limit_pause;
    assert_eq!(pause(retry_after("99999999")), Some(longest));
    assert_eq!(pause(retry_after("soon")), None, "the client's own backoff applies");
    assert_eq!(pause(HeaderMap::new()), None);
}

#[test]
fn a_408_or_5xx_is_transient_with_the_servers_words_redacted() {
    for status in [408, 500, 503, 599] {
        let body = format!(r#"{{"error":"overloaded; key {KEY}"}}"#);
        match read(status, HeaderMap::new(), &body) {
            Answer::Transient { status: s, message } => {
                assert_eq!(s, status);
                assert_eq!(message, "overloaded; key <redacted>");
            }
            other => panic!("{status}: {other:?}"),
        }
    }
}

#[test]
fn other_statuses_are_fatal_errors_saying_what_to_check() {
    let fatal = |status: u16, body: &str| match read(status, HeaderMap::new(), body) {
        Answer::Fatal(e) => e,
        other => panic!("{status}: {other:?}"),
    };
    let e = fatal(401, &format!(r#"{{"error":"bad key Bearer {KEY}"}}"#));
    assert!(matches!(e, UpstreamError::Unauthorized { .. }), "{e:?}");
    let text = e.to_string();
    assert!(text.contains("mailprotector.api_key_file (/k)") && !text.contains(KEY), "{text}");
    assert!(matches!(fatal(403, "no"), UpstreamError::Forbidden { .. }));
    match fatal(404, r#"{"message":"no such reseller"}"#) {
        UpstreamError::NotFound { path, message, .. } => {
            assert_eq!((path.as_str(), message.as_str()), ("/resellers/188", "no such reseller"));
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(fatal(409, ""), UpstreamError::Rejected { status: 409, .. }));
    match fatal(302, "moved") {
        UpstreamError::BadResponse { reason, endpoint, .. } => {
            assert_eq!(reason, "unexpected HTTP status 302");
            assert_eq!(endpoint, "GET /resellers/{id}");
        }
        other => panic!("{other:?}"),
    }
    assert!(!fatal(401, "").is_retryable() && !fatal(302, "").is_retryable());
}
