//! The paging rule on its own: answers handed to [`ConnectwiseClient::next_page`], no server.

use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue};

use super::*;
use crate::config::UpstreamLimits;

fn client() -> ConnectwiseClient {
    let limits = UpstreamLimits {
        rate_limit: 10.0,
        burst: 1,
        max_in_flight: 1,
        timeout: Duration::from_secs(1),
        connect_timeout: Duration::from_secs(1),
    };
    ConnectwiseClient::new(&ConnectwiseConfig {
        base_url: "http://127.0.0.1:9/".parse().unwrap(),
        company_id: "acme".into(),
        public_key: Secret::new("public-key-1", "/pub"),
        private_key: Secret::new("private-key-1", "/priv"),
        client_id: "client-id-1".into(),
        limits,
    })
    .unwrap()
}

/// A page of `/company/companies` with `link` as its `Link` header (none when empty).
fn answer(link: &str) -> UpstreamResponse {
    let mut headers = HeaderMap::new();
    if !link.is_empty() {
        headers.insert("link", HeaderValue::from_str(link).unwrap());
    }
    UpstreamResponse {
        status: 200,
        headers,
        body: bytes::Bytes::new(),
        endpoint: "GET /company/companies".into(),
    }
}

fn next(page: u64) -> String {
    format!(
        "<https://cw/v4_6_release/apis/3.0/company/companies?pageSize=1000&page={page}>; \
         rel=\"next\", <https://cw/x?page=40>; rel=\"last\""
    )
}

#[test]
fn a_usable_link_header_alone_decides() {
    let c = client();
    assert_eq!(c.next_page(&answer(&next(4)), 3, 10, 1000).unwrap(), Some(4));
    // Followed even after a short page: the server knows there is more.
    assert_eq!(c.next_page(&answer(&next(2)), 1, 7, 7).unwrap(), Some(2));
    let last = "<https://cw/x?page=1>; rel=\"first\", <https://cw/x?page=3>; rel=\"prev\"";
    assert_eq!(c.next_page(&answer(last), 4, 1000, 1000).unwrap(), None, "no next: the end");
}

#[test]
fn a_next_link_that_goes_nowhere_new_is_a_bad_response() {
    let c = client();
    for (target, page) in
        [(next(3), 3), (next(1), 3), ("<https://cw/x?page=zz>; rel=\"next\"".into(), 1)]
    {
        let e = c.next_page(&answer(&target), page, 10, 10).unwrap_err();
        assert_eq!(e.kind(), "bad_response", "{e}");
        let text = e.to_string();
        assert!(
            text.contains("GET /company/companies") && text.contains("has no later page"),
            "{text}"
        );
    }
}

#[test]
fn without_a_link_an_empty_or_shorter_page_ends_the_listing() {
    let c = client();
    assert_eq!(c.next_page(&answer(""), 1, 1000, 1000).unwrap(), Some(2));
    assert_eq!(c.next_page(&answer("garbage"), 2, 25, 25).unwrap(), Some(3), "a capped page size");
    assert_eq!(c.next_page(&answer(""), 3, 24, 25).unwrap(), None);
    assert_eq!(c.next_page(&answer(""), 1, 0, 0).unwrap(), None);
}

#[test]
fn a_runaway_listing_is_refused() {
    let e = client().next_page(&answer(""), MAX_PAGES, 5, 5).unwrap_err();
    assert!(e.to_string().contains("did not end after 100000 pages"), "{e}");
}
