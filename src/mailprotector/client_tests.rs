//! Paging against a tiny axum stub whose listing misbehaves in the ways the reference allows:
//! a lower page-size cap, data shifting between pages, a server that ignores `page`, and
//! concurrent page fetches when `X-Pagination` is usable.
// A stub of an upstream, not mpsync's server: its query errors need no JSON body.
#![allow(clippy::disallowed_types)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Query, Request};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::*;

/// (path, query) of every request received.
type Seen = Arc<Mutex<Vec<(String, HashMap<String, String>)>>>;

struct Stub {
    client: MailprotectorClient,
    seen: Seen,
    _served: super::super::stub::Served,
}

fn items(ids: impl IntoIterator<Item = u64>) -> Vec<Value> {
    ids.into_iter().map(|id| json!({"id": id, "name": format!("c{id}")})).collect()
}

/// Serves `/api/v1/resellers/188/customers` from `page(page, per_page)` → (items, header).
async fn stub(
    page: impl Fn(u64, u64) -> (Vec<Value>, Option<String>) + Send + Sync + 'static,
) -> Stub {
    let page = Arc::new(page);
    let seen: Seen = Arc::default();
    let s = seen.clone();
    let app = axum::Router::new().fallback(
        move |Query(q): Query<HashMap<String, String>>, req: Request| {
            let (page, seen) = (page.clone(), s.clone());
            async move {
                seen.lock().unwrap().push((req.uri().path().to_owned(), q.clone()));
                if req.uri().path() != "/api/v1/resellers/188/customers" {
                    return (axum::http::StatusCode::NOT_FOUND, r#"{"error":"no route"}"#)
                        .into_response();
                }
                let p = q.get("page").and_then(|v| v.parse().ok()).unwrap_or(1);
                let per = q.get("per_page").and_then(|v| v.parse().ok()).unwrap_or(25);
                let (body, header) = page(p, per);
                let mut resp: Response = axum::Json(body).into_response();
                if let Some(h) = header {
                    resp.headers_mut().insert("x-pagination", h.parse().unwrap());
                }
                resp
            }
        },
    );
    let served = super::super::stub::serve(app, "k", 3, Default::default()).await;
    Stub { client: MailprotectorClient::new(&served.config).unwrap(), seen, _served: served }
}

fn ids(customers: &[Customer]) -> Vec<u64> {
    customers.iter().map(|c| c.id).collect()
}

#[tokio::test]
async fn a_lower_server_cap_does_not_end_the_listing_early() {
    // 120 customers served 50 at a time whatever was asked; no header.
    let s = stub(|p, _| (items(((p - 1) * 50 + 1..=p * 50).filter(|i| *i <= 120)), None)).await;
    let got = s.client.customers(&CancellationToken::new()).await.unwrap();
    assert_eq!(ids(&got), (1..=120).collect::<Vec<_>>());
    let seen = s.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 3, "stops on the page shorter than the largest seen");
    for (path, q) in &seen {
        assert!(!path.ends_with('/'), "no trailing slash: {path}");
        assert_eq!(q.get("per_page").map(String::as_str), Some("100"), "explicit per_page");
    }
}

#[tokio::test]
async fn items_shifting_between_pages_are_counted_once() {
    let s = stub(|p, _| match p {
        1 => (items(1..=100), None),
        2 => (items(95..=194), None), // a deletion shifted six items back onto page 2
        3 => (items(190..=200), None),
        _ => (Vec::new(), None),
    })
    .await;
    let got = s.client.customers(&CancellationToken::new()).await.unwrap();
    assert_eq!(ids(&got), (1..=200).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_server_that_ignores_page_is_a_bad_response() {
    let s = stub(|_, _| (items(1..=100), None)).await;
    let err = s.client.customers(&CancellationToken::new()).await.unwrap_err();
    let CollectError::Upstream(UpstreamError::BadResponse { reason, endpoint, .. }) = err else {
        panic!("expected a bad response, got {err:?}");
    };
    assert!(reason.contains("ignore the page parameter"), "{reason}");
    assert_eq!(endpoint, "GET /resellers/{id}/customers");
}

#[tokio::test]
async fn with_a_header_the_remaining_pages_are_fetched_and_nothing_more() {
    let header =
        |p: u64| Some(format!(r#"{{"current_page":"{p}","per_page":"100","total_count":"350"}}"#));
    let s =
        stub(move |p, _| (items(((p - 1) * 100 + 1..=p * 100).filter(|i| *i <= 350)), header(p)))
            .await;
    let got = s.client.customers(&CancellationToken::new()).await.unwrap();
    assert_eq!(got.len(), 350);
    let mut pages: Vec<String> =
        s.seen.lock().unwrap().iter().map(|(_, q)| q["page"].clone()).collect();
    pages.sort();
    assert_eq!(pages, vec!["1", "2", "3", "4"], "exactly total_pages requests");
}

#[tokio::test]
async fn an_empty_listing_and_a_cancelled_one() {
    let s = stub(|_, _| {
        (Vec::new(), Some(r#"{"page":1,"per_page":100,"total":0,"total_pages":0}"#.into()))
    })
    .await;
    assert!(s.client.customers(&CancellationToken::new()).await.unwrap().is_empty());
    assert_eq!(s.seen.lock().unwrap().len(), 1);
    let cancel = CancellationToken::new();
    cancel.cancel();
    assert_eq!(s.client.customers(&cancel).await.unwrap_err(), CollectError::Cancelled);
    assert_eq!(s.seen.lock().unwrap().len(), 1, "nothing sent after cancellation");
}
