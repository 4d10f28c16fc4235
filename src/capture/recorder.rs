//! [`BundleRecorder`]: keeps what one upstream answered during a capture — one entry per
//! distinct request (method, path, query), the last answer winning, so a retried request keeps
//! the answer the collection used — with only the response headers that matter.

use std::collections::BTreeMap;
use std::sync::Mutex;

use crate::sim::replay::bundle::Request;
use crate::upstream::{Exchange, Recorder};

/// Response headers worth keeping: what a client reads (paging, content type, rate limits,
/// redirects). Anything else (cookies, server details) is dropped.
const KEPT_HEADERS: &[&str] = &["content-type", "link", "location", "retry-after", "x-pagination"];

/// Header name prefixes worth keeping too (rate-limit families).
const KEPT_PREFIXES: &[&str] = &["x-ratelimit", "ratelimit"];

/// An answer as received, before scrubbing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RawAnswer {
    pub(crate) status: u16,
    pub(crate) headers: BTreeMap<String, String>,
    pub(crate) body: Vec<u8>,
}

/// Records one upstream's answers.
#[derive(Debug, Default)]
pub(crate) struct BundleRecorder {
    answers: Mutex<BTreeMap<Request, RawAnswer>>,
}

impl BundleRecorder {
    /// Everything recorded so far, by request.
    pub(crate) fn take(&self) -> BTreeMap<Request, RawAnswer> {
        std::mem::take(&mut *self.answers.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl Recorder for BundleRecorder {
    fn record(&self, e: &Exchange<'_>) {
        let request = Request {
            method: e.method.as_str().to_owned(),
            path: e.path.to_owned(),
            query: e.query.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect(),
        };
        let mut headers: BTreeMap<String, String> = BTreeMap::new();
        for (name, value) in e.headers {
            let name = name.as_str();
            let kept =
                KEPT_HEADERS.contains(&name) || KEPT_PREFIXES.iter().any(|p| name.starts_with(p));
            // A value that is not visible ASCII could not be served back: leave it out.
            let Ok(value) = value.to_str() else { continue };
            if kept {
                headers
                    .entry(name.to_owned())
                    .and_modify(|v| {
                        v.push_str(", ");
                        v.push_str(value);
                    })
                    .or_insert_with(|| value.to_owned());
            }
        }
        let answer = RawAnswer { status: e.status, headers, body: e.body.to_vec() };
        self.answers.lock().unwrap_or_else(|e| e.into_inner()).insert(request, answer);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::Method;
    use reqwest::header::{HeaderMap, HeaderValue};

    #[test]
    fn the_last_answer_wins_and_only_useful_headers_stay() {
        let rec = BundleRecorder::default();
        let mut headers = HeaderMap::new();
        headers.insert("set-cookie", HeaderValue::from_static("session=abc"));
        headers.insert("x-pagination", HeaderValue::from_static("{\"page\":1}"));
        headers.append("link", HeaderValue::from_static("<a>; rel=\"next\""));
        headers.append("link", HeaderValue::from_static("<b>; rel=\"last\""));
        headers.insert("x-ratelimit-remaining", HeaderValue::from_static("4"));
        let query = [("page", "1".to_owned())];
        for (status, body) in [(503, &b"busy"[..]), (200, &b"[]"[..])] {
            rec.record(&Exchange {
                upstream: "mailprotector",
                method: &Method::GET,
                path: "/resellers/188/customers",
                query: &query,
                status,
                headers: &headers,
                body,
            });
        }
        let all = rec.take();
        assert_eq!(all.len(), 1);
        let (req, answer) = all.into_iter().next().unwrap();
        assert_eq!(req.label(), "GET /resellers/188/customers?page=1");
        assert_eq!(answer.status, 200);
        assert_eq!(answer.body, b"[]");
        let names: Vec<&str> = answer.headers.keys().map(String::as_str).collect();
        assert_eq!(names, ["link", "x-pagination", "x-ratelimit-remaining"]);
        assert_eq!(answer.headers["link"], "<a>; rel=\"next\", <b>; rel=\"last\"");
    }
}
