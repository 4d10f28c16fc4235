//! From recorded answers to a checked bundle: scrub every secret out of paths, queries,
//! headers and bodies; order the exchanges naturally (`/domains/9` before `/domains/10`,
//! `page=2` before `page=10`) so two captures diff line by line; pseudonymize on request;
//! write the manifest; render, and refuse the result if any form of a secret survived.

use std::cmp::Ordering;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::pseudonym::Pseudonymizer;
use super::recorder::RawAnswer;
use super::{Capture, CaptureError, CaptureOptions, Run, UpstreamFailure, UpstreamReport};
use crate::exit::ExitStatus;
use crate::upstream::Scrubber;
use mpsync_sim::replay::bundle::{
    Answer, Body, Bundle, Exchange, ExchangeFile, FORMAT, FORMAT_VERSION, Manifest, Request,
    UpstreamEntry,
};

/// Builds, renders and checks the bundle of `runs`.
pub(super) fn assemble(
    runs: Vec<Run>,
    scrubber: &Scrubber,
    opts: CaptureOptions,
    captured_at: DateTime<Utc>,
) -> Result<Capture, CaptureError> {
    let mut files: Vec<ExchangeFile> = runs
        .iter()
        .map(|run| {
            let mut exchanges: Vec<Exchange> = run
                .recorder
                .take()
                .into_iter()
                .map(|(request, raw)| scrubbed(request, raw, scrubber))
                .collect();
            exchanges.sort_by(|a, b| natural(&a.request, &b.request));
            ExchangeFile { upstream: run.upstream, exchanges }
        })
        .collect();
    let mut outcomes: Vec<String> = runs
        .iter()
        .map(|r| match &r.outcome {
            Ok(summary) => format!("complete: {summary}"),
            Err(e) => format!("failed: {}", scrubber.scrub(&e.to_string())),
        })
        .collect();
    if opts.pseudonymize {
        let origins = runs
            .iter()
            .map(|r| {
                (r.upstream, r.origin.clone(), format!("https://{}.example", r.upstream.name()))
            })
            .collect();
        let mut p = Pseudonymizer::new(origins);
        p.bundle(&mut files);
        outcomes = runs.iter().zip(&outcomes).map(|(r, o)| p.text(r.upstream, o)).collect();
    }
    let upstreams: Vec<UpstreamEntry> = runs
        .iter()
        .zip(&files)
        .zip(&outcomes)
        .map(|((run, file), outcome)| UpstreamEntry {
            name: run.upstream,
            base_path: run.upstream.base_path().to_owned(),
            file: run.upstream.file_name().to_owned(),
            requests: file.exchanges.len(),
            outcome: outcome.clone(),
            reseller_id: run.reseller_id,
        })
        .collect();
    let manifest = Manifest {
        format: FORMAT.into(),
        format_version: FORMAT_VERSION,
        mpsync_version: env!("CARGO_PKG_VERSION").into(),
        captured_at,
        pseudonymized: opts.pseudonymize,
        upstreams,
        contains: contains(opts.pseudonymize),
        never_contains: never_contains(opts.pseudonymize),
    };
    let reports = runs
        .iter()
        .zip(&files)
        .zip(&outcomes)
        .map(|((run, file), outcome)| UpstreamReport {
            upstream: run.upstream,
            requests: file.exchanges.len(),
            sent: run.sent,
            failure: run.outcome.as_ref().err().map(|e| UpstreamFailure {
                message: outcome.trim_start_matches("failed: ").to_owned(),
                exit: e.exit(),
            }),
        })
        .collect();
    let bundle = Bundle { manifest, files };
    let rendered = bundle.render().map_err(CaptureError::Render)?;
    if let Some((name, _)) = rendered.iter().find(|(_, bytes)| scrubber.contains_secret(bytes)) {
        return Err(CaptureError::Leak { file: name.clone() });
    }
    Ok(Capture { bundle, files: rendered, upstreams: reports })
}

/// One exchange with every form of every secret replaced by `<redacted>`.
fn scrubbed(request: Request, raw: RawAnswer, scrubber: &Scrubber) -> Exchange {
    let s = |t: &str| scrubber.scrub(t).into_owned();
    let request = Request {
        method: request.method,
        path: s(&request.path),
        query: request.query.iter().map(|(k, v)| (s(k), s(v))).collect(),
    };
    let headers = raw.headers.iter().map(|(k, v)| (k.clone(), s(v))).collect();
    let body = match Body::from_bytes(&raw.body) {
        Body::Json(mut v) => {
            scrub_value(&mut v, scrubber);
            Body::Json(v)
        }
        Body::Text(t) => Body::Text(s(&t)),
        Body::Bytes(b) => Body::Bytes(scrubber.scrub_bytes(&b).into_owned()),
        Body::Empty => Body::Empty,
    };
    Exchange { request, response: Answer { status: raw.status, headers, body } }
}

/// Scrubs every string of a JSON document, object keys included.
fn scrub_value(v: &mut Value, scrubber: &Scrubber) {
    match v {
        Value::String(s) => {
            if let std::borrow::Cow::Owned(clean) = scrubber.scrub(s) {
                *s = clean;
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|i| scrub_value(i, scrubber)),
        Value::Object(map) => {
            let old = std::mem::take(map);
            for (k, mut child) in old {
                scrub_value(&mut child, scrubber);
                map.insert(scrubber.scrub(&k).into_owned(), child);
            }
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

/// A path or value piece: numbers compare as numbers, and before words.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Piece<'a> {
    Num(u64),
    Word(&'a str),
}

fn pieces(s: &str) -> Vec<Piece<'_>> {
    s.split('/').map(|p| p.parse().map_or(Piece::Word(p), Piece::Num)).collect()
}

/// Path (naturally), then method, then query (values naturally).
fn natural(a: &Request, b: &Request) -> Ordering {
    pieces(&a.path)
        .cmp(&pieces(&b.path))
        .then_with(|| a.method.cmp(&b.method))
        .then_with(|| query_pieces(a).cmp(&query_pieces(b)))
}

fn query_pieces(r: &Request) -> Vec<(&str, Vec<Piece<'_>>)> {
    r.query.iter().map(|(k, v)| (k.as_str(), pieces(v))).collect()
}

fn contains(pseudonymized: bool) -> Vec<String> {
    let mut v = vec![
        "every request the capture made to each upstream (method, path below the base path, \
         query) with the last answer it got: status, the headers mpsync reads (Content-Type, \
         X-Pagination, Link, Retry-After, Location, rate-limit headers) and the body"
            .to_owned(),
        "ids, counts, quantities, prices, dates, product and service names and PSA product \
         identifiers, as the upstreams sent them"
            .to_owned(),
    ];
    v.push(if pseudonymized {
        "names, e-mail addresses and domain names replaced by consistent pseudonyms \
         (Customer 3, user-17@domain-2.example, domain-2.example), other free text replaced, \
         error messages kept without the names; upstream host names replaced"
            .to_owned()
    } else {
        "names, e-mail addresses and domain names as the upstreams sent them (captured with \
         --no-pseudonymize)"
            .to_owned()
    });
    v
}

fn never_contains(pseudonymized: bool) -> Vec<String> {
    let mut v = vec![
        "API keys, key pairs, tokens or any other configured secret, in any form: an answer \
         that echoed one has it replaced by <redacted>"
            .to_owned(),
        "request headers (Authorization, clientId, GRADIENT-TOKEN) or cookies".to_owned(),
        "anything written to an upstream: a capture only reads (GET)".to_owned(),
        "the mpsync config, the mapping file or the store".to_owned(),
    ];
    if pseudonymized {
        v.push("customer, company, user or group names, e-mail addresses, domain names".to_owned());
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(path: &str, page: &str) -> Request {
        Request {
            method: "GET".into(),
            path: path.into(),
            query: [("page".to_owned(), page.to_owned())].into(),
        }
    }

    #[test]
    fn exchanges_sort_naturally() {
        let mut v =
            [req("/domains/10/x", "1"), req("/domains/9/x", "10"), req("/domains/9/x", "2")];
        v.sort_by(natural);
        let labels: Vec<String> = v.iter().map(Request::label).collect();
        assert_eq!(
            labels,
            ["GET /domains/9/x?page=2", "GET /domains/9/x?page=10", "GET /domains/10/x?page=1"]
        );
    }

    #[test]
    fn secrets_are_scrubbed_from_every_part_of_an_exchange() {
        let sc = Scrubber::new(["s3cr3t-key"]);
        let raw = RawAnswer {
            status: 200,
            headers: [("link".to_owned(), "<https://h/?k=s3cr3t-key>".to_owned())].into(),
            body: br#"{"s3cr3t-key": ["Bearer s3cr3t-key", 7]}"#.to_vec(),
        };
        let x = scrubbed(req("/a/s3cr3t-key", "s3cr3t-key"), raw, &sc);
        let text = serde_json::to_string(&x).unwrap();
        assert!(!text.contains("s3cr3t"), "{text}");
        assert_eq!(x.request.path, "/a/<redacted>");
        assert_eq!(
            x.response.body,
            Body::Json(serde_json::json!({"<redacted>": ["Bearer <redacted>", 7]}))
        );
    }
}
