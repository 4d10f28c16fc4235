//! The PSA write path against the simulated ConnectWise: the writer reads a line, sets its
//! quantity and reads it back (and the next billing poll sees it); `describe` is exactly the
//! request that is sent; a deleted line is `Gone` and a line changed since the plan is left
//! alone; 429s, 5xx, hangs, lost answers, revoked keys and a role without Edit rights end in
//! the documented typed outcomes, and a retried write never applies twice. A CSV source has no
//! writer, and a capture's recording client never writes.

use std::sync::Arc;

use chrono::Utc;
use mpsync::billing::write::{
    GuardError, Guarded, LineWriter, Step, WriteError, write_if_unchanged,
};
use mpsync::billing::{BilledSource, ConnectwiseWriter, writer_from_config};
use mpsync::config::{BillingConfig, BillingSource, CsvConfig, Schedule};
use mpsync::exit::{Exit, ExitStatus};
use mpsync::model::LineRef;
use mpsync::upstream::{REDACTED, UpstreamError};
use mpsync_sim::connectwise::CwAddition;
use mpsync_sim::faults::{Fault, FaultKind};
use tokio_util::sync::CancellationToken;

use crate::support::cw::{CwServer, fast_retry};

const PATCH: &str = "PATCH /finance/agreements/{id}/additions/{id}";
const GET_ONE: &str = "GET /finance/agreements/{id}/additions/{id}";

/// An addition that counts (open agreement, billable, in effect, not cancelled) and its line.
fn counted_addition(server: &CwServer) -> (CwAddition, LineRef) {
    let data = server.data();
    let a = data
        .additions
        .iter()
        .find(|a| {
            let ag = data.agreements.iter().find(|g| g.id == a.agreement_id).unwrap();
            !ag.cancelled_flag
                && ag.agreement_status.as_deref().is_none_or(|s| s == "Active")
                && a.bill_customer == "Billable"
                && a.cancelled_date.is_none()
                && a.effective_date.as_deref().is_none_or(|d| d < "2030")
        })
        .unwrap()
        .clone();
    let line = LineRef::Connectwise { agreement: a.agreement_id, addition: a.id };
    (a, line)
}

fn writer(server: &CwServer) -> ConnectwiseWriter {
    ConnectwiseWriter::with_retry(&server.config(), fast_retry()).expect("writer")
}

fn quantity(server: &CwServer, id: u64) -> Option<f64> {
    server.cw.addition(id).map(|a| a.quantity)
}

#[tokio::test]
async fn the_writer_reads_writes_and_the_next_poll_sees_it() {
    let server = CwServer::start(7, 30).await;
    let (add, line) = counted_addition(&server);
    let w = writer(&server);

    let before = w.read_line(&line).await.expect("read");
    assert_eq!(before.line, line);
    assert_eq!(before.quantity, add.quantity);
    assert_eq!(before.unit_price, Some(add.unit_price));
    assert_eq!(before.product_id.as_deref(), add.product.identifier.as_deref());
    assert_eq!(before.inactive, None);

    let after = w.set_quantity(&line, add.quantity + 3.0).await.expect("write");
    assert_eq!(after.quantity, add.quantity + 3.0);
    assert_eq!(
        (after.unit_price, after.product_id.clone()),
        (before.unit_price, before.product_id)
    );
    assert_eq!(w.read_line(&line).await.unwrap().quantity, add.quantity + 3.0);
    assert_eq!(quantity(&server, add.id), Some(add.quantity + 3.0));
    // Decimals are kept as decimals.
    assert_eq!(w.set_quantity(&line, 7.5).await.unwrap().quantity, 7.5);

    let counts = server.control.requests();
    assert_eq!((counts.get(GET_ONE), counts.get(PATCH)), (2, 2));
    assert_eq!(w.stats().requests_to(PATCH), 2);
    assert_eq!(w.stats().total_requests(), 4);

    // The next billing poll reads the new quantity for that line.
    let billed = CwServer::source(&server.config())
        .fetch(Utc::now(), &CancellationToken::new())
        .await
        .outcome
        .unwrap();
    let polled = billed.lines.iter().find(|l| l.line.as_ref() == Some(&line)).unwrap();
    assert_eq!(polled.quantity, 7.5);

    // A line that no longer bills says why.
    let past = |d: &Option<String>| d.as_deref().is_some_and(|d| d < "2025");
    let cancelled = server.data().additions.into_iter().find(|a| past(&a.cancelled_date));
    let cancelled = cancelled.expect("the generator plants a cancelled addition");
    let l = LineRef::Connectwise { agreement: cancelled.agreement_id, addition: cancelled.id };
    let state = w.read_line(&l).await.unwrap();
    assert!(state.inactive.as_deref().is_some_and(|n| n.starts_with("cancelled on")), "{state:?}");
}

#[tokio::test]
async fn describe_is_exactly_the_request_that_is_sent() {
    let server = CwServer::start(7, 10).await;
    let (add, line) = counted_addition(&server);
    let w = writer(&server);
    let new = add.quantity + 1.0;

    let planned = w.describe(&line, 0.0, new).unwrap();
    assert_eq!(server.control.requests().get(PATCH), 0, "describing sends nothing");
    w.set_quantity(&line, new).await.unwrap();
    let sent = server.cw.writes();
    assert_eq!(sent.len(), 1);
    let sent = &sent[0];

    assert_eq!(planned.method, "PATCH");
    assert_eq!(planned.url, format!("{}{}", server.base_url(), sent.path));
    assert!(
        planned.url.ends_with(&format!(
            "/v4_6_release/apis/3.0/finance/agreements/{}/additions/{}",
            add.agreement_id, add.id
        )),
        "{}",
        planned.url
    );
    let body = planned.body.clone().unwrap();
    assert_eq!(sent.body, body.to_string(), "the same bytes");
    // A whole quantity goes as an integer, like the reference's example.
    let value = new as u64;
    assert_eq!(body, serde_json::json!([{"op": "replace", "path": "/quantity", "value": value}]));
    let creds = server.cw.credentials();
    for (name, value) in &planned.headers {
        let received = sent.header(name);
        if value == REDACTED {
            assert!(received.is_some_and(|r| !r.is_empty()), "{name} is sent");
        } else {
            assert_eq!(received, Some(value.as_str()), "{name}");
        }
    }
    assert_eq!(planned.header("content-type"), Some("application/json"));
    assert_eq!(planned.header("clientId"), Some(REDACTED));
    let shown = planned.to_string();
    for secret in [&creds.public_key, &creds.private_key, &creds.client_id] {
        assert!(!shown.contains(secret.as_str()), "no secret in {shown}");
    }
    // Lines of another source, and impossible quantities, are refused before anything is sent.
    let csv = w.describe(&LineRef::Csv { line: 3 }, 0.0, 1.0).unwrap_err();
    assert!(matches!(csv, WriteError::WrongPsa { .. }), "{csv}");
    assert!(matches!(w.describe(&line, 0.0, -1.0), Err(WriteError::InvalidQuantity { .. })));
    let e = w.read_line(&LineRef::Csv { line: 3 }).await.unwrap_err();
    assert_eq!((e.kind(), e.exit()), ("wrong_psa", Exit::DataErr));
    assert_eq!(server.control.requests().total, 1);
}

#[tokio::test]
async fn deleted_lines_are_gone_and_changed_lines_are_left_alone() {
    let server = CwServer::start(7, 20).await;
    let (add, line) = counted_addition(&server);
    let w = writer(&server);
    let (q, new) = (add.quantity, add.quantity + 2.0);

    // Changed in the PSA since the plan: nothing is sent.
    server.cw.set_quantity(add.id, q + 10.0).unwrap();
    let g = write_if_unchanged(&w, &line, q, new).await.unwrap();
    assert!(matches!(&g, Guarded::Changed { found } if found.quantity == q + 10.0), "{g:?}");
    assert_eq!(server.control.requests().get(PATCH), 0);

    // Back to the planned quantity: written once; the same change again sends nothing.
    server.cw.set_quantity(add.id, q).unwrap();
    let g = write_if_unchanged(&w, &line, q, new).await.unwrap();
    assert!(
        matches!(&g, Guarded::Written { before, after } if before.quantity == q && after.quantity == new)
    );
    let g = write_if_unchanged(&w, &line, q, new).await.unwrap();
    assert!(matches!(g, Guarded::AlreadySet { .. }), "{g:?}");
    assert_eq!(server.control.requests().get(PATCH), 1);

    // Deleted in the PSA: gone, at the read and at the write.
    server.cw.delete_addition(add.id).unwrap();
    let e = w.read_line(&line).await.unwrap_err();
    assert_eq!((e.kind(), e.exit(), e.is_retryable()), ("gone", Exit::DataErr, false));
    let msg = e.to_string();
    assert!(
        msg.contains(&format!("agreement {} addition {}", add.agreement_id, add.id))
            && msg.contains("new plan"),
        "{msg}"
    );
    let e = w.set_quantity(&line, 1.0).await.unwrap_err();
    assert!(matches!(&e, WriteError::Gone { endpoint, .. } if endpoint == PATCH), "{e}");
    let GuardError { step, error } = write_if_unchanged(&w, &line, new, 1.0).await.unwrap_err();
    assert_eq!((step, error.kind()), (Step::Read, "gone"));
    assert_eq!(server.control.requests().get(PATCH), 2, "404s are not retried");
}

#[tokio::test]
async fn transient_faults_are_retried_and_a_repeated_write_applies_once() {
    let server = CwServer::start(9, 10).await;
    let c = &server.control;
    let (add, line) = counted_addition(&server);
    let w = writer(&server);

    // Two 429s, then the write goes through.
    c.add_fault(Fault::new(FaultKind::Storm { retry_after: 1 }).on(PATCH).times(2));
    assert_eq!(w.set_quantity(&line, 11.0).await.unwrap().quantity, 11.0);
    assert_eq!((w.stats().rate_limited, w.stats().requests_to(PATCH)), (2, 3));
    // One 503, then through.
    c.add_fault(Fault::new(FaultKind::Status { status: 503 }).on(PATCH).times(1));
    assert_eq!(w.set_quantity(&line, 12.0).await.unwrap().quantity, 12.0);
    // Applied, but the answer was lost: the retry sends the same absolute quantity.
    server.cw.clear_writes();
    c.add_fault(Fault::new(FaultKind::Disconnect).on(PATCH).times(1));
    assert_eq!(w.set_quantity(&line, 13.0).await.unwrap().quantity, 13.0);
    let writes = server.cw.writes();
    assert_eq!(writes.len(), 2, "sent twice");
    assert_eq!(writes[0].body, writes[1].body);
    assert_eq!(quantity(&server, add.id), Some(13.0), "applied once: 13, not 13 + 13");
    assert_eq!(c.requests().get(PATCH), 3 + 2 + 2);
}

#[tokio::test]
async fn lasting_faults_end_in_typed_outcomes() {
    let server = CwServer::start(9, 10).await;
    let c = &server.control;
    let (add, line) = counted_addition(&server);
    let q = add.quantity;
    let retry = mpsync::upstream::RetryPolicy { max_rate_limited_attempts: 3, ..fast_retry() };
    let w = ConnectwiseWriter::with_retry(&server.config(), retry).unwrap();
    let guarded = |new| write_if_unchanged(&w, &line, q, new);

    let storm = c.add_fault(Fault::new(FaultKind::Storm { retry_after: 1 }).on(PATCH));
    let e = guarded(q + 1.0).await.unwrap_err();
    assert_eq!(
        (e.step, e.error.kind(), e.error.exit()),
        (Step::Write, "rate_limited", Exit::Unavailable)
    );
    assert!(e.error.is_retryable() && !e.may_have_applied(), "every answer was a refusal");
    c.remove_fault(storm);

    let outage = c.add_fault(Fault::new(FaultKind::Status { status: 502 }).on(PATCH));
    let e = guarded(q + 1.0).await.unwrap_err();
    assert_eq!((e.error.kind(), e.error.exit()), ("unavailable", Exit::Unavailable));
    assert!(e.may_have_applied(), "a 5xx may come after the change was made");
    c.remove_fault(outage);
    // The PSA is down for reads too: the re-read fails and nothing is sent.
    let down: Vec<u64> =
        mpsync_sim::connectwise::outage(503).into_iter().map(|f| c.add_fault(f)).collect();
    let sent = c.requests().get(PATCH);
    let e = guarded(q + 1.0).await.unwrap_err();
    assert_eq!((e.step, e.error.kind(), e.may_have_applied()), (Step::Read, "unavailable", false));
    assert_eq!(c.requests().get(PATCH), sent);
    down.into_iter().for_each(|id| assert!(c.remove_fault(id)));

    let mut impatient = server.config();
    impatient.limits.timeout = std::time::Duration::from_millis(200);
    let slow = ConnectwiseWriter::with_retry(&impatient, fast_retry()).unwrap();
    let hang = c.add_fault(Fault::new(FaultKind::Hang).on(PATCH));
    let e = slow.set_quantity(&line, q + 1.0).await.unwrap_err();
    assert!(matches!(e, WriteError::Upstream(UpstreamError::Timeout { attempts: 3, .. })), "{e}");
    c.remove_fault(hang);
    assert_eq!(quantity(&server, add.id), Some(q), "no fault above let a change through");

    // The role lacks Edit rights: reads work, the write is refused naming the rights.
    server.cw.set_edit_rights(false);
    let e = guarded(q + 1.0).await.unwrap_err();
    assert_eq!((e.step, e.error.kind(), e.may_have_applied()), (Step::Write, "forbidden", false));
    let msg = e.to_string();
    assert!(msg.contains("Edit rights on Finance → Agreements") && msg.contains(PATCH), "{msg}");
    server.cw.set_edit_rights(true);

    // A refused value (400) keeps the PSA's words; a 400 is not retried.
    let bad = c.add_fault(Fault::new(FaultKind::Status { status: 400 }).on(PATCH).times(1));
    let sent = c.requests().get(PATCH);
    let e = w.set_quantity(&line, q + 1.0).await.unwrap_err();
    assert!(
        matches!(&e, WriteError::Rejected { status: 400, quantity, .. } if *quantity == q + 1.0),
        "{e}"
    );
    assert_eq!((e.kind(), e.exit()), ("rejected", Exit::DataErr));
    assert_eq!(c.requests().get(PATCH), sent + 1);
    c.remove_fault(bad);

    // Keys revoked: 401 naming the key files, never the keys.
    c.add_fault(Fault::new(FaultKind::Revoke { key: None }).on(PATCH).times(1));
    let e = guarded(q + 1.0).await.unwrap_err();
    assert_eq!(
        (e.error.kind(), e.error.exit(), e.may_have_applied()),
        ("unauthorized", Exit::Unavailable, false)
    );
    let msg = e.to_string();
    let creds = server.cw.credentials();
    assert!(msg.contains("connectwise-private-key") && !msg.contains(&creds.private_key), "{msg}");
    assert_eq!(w.read_line(&line).await.unwrap_err().kind(), "unauthorized", "stays revoked");
    assert_eq!(quantity(&server, add.id), Some(q));
}

#[tokio::test]
async fn a_refusal_names_the_fields_the_psa_objects_to() {
    // A ConnectWise that refuses every write with a §4 validation body.
    let app = axum::Router::new().fallback(|| async {
        let body = serde_json::json!({
            "code": "InvalidObject",
            "message": "agreementAddition object is invalid",
            "errors": [{"code": "InvalidField", "message": "The quantity is locked for this period",
                        "resource": "agreementAddition", "field": "quantity"}],
        });
        (axum::http::StatusCode::BAD_REQUEST, axum::Json(body))
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let creds = mpsync_sim::connectwise::CwCredentials {
        company_id: "acme".into(),
        public_key: "pub-key-123456".into(),
        private_key: "priv-key-123456".into(),
        client_id: "client-1".into(),
        limited_keys: (String::new(), String::new()),
    };
    let cfg = crate::support::cw::config(&format!("http://{addr}"), &creds);
    let w = ConnectwiseWriter::with_retry(&cfg, fast_retry()).unwrap();
    let line = LineRef::Connectwise { agreement: 5, addition: 6 };
    let e = w.set_quantity(&line, 4.0).await.unwrap_err();
    task.abort();
    match &e {
        WriteError::Rejected { fields, message, .. } => {
            assert_eq!(fields, &vec!["quantity".to_owned()]);
            assert!(message.contains("agreementAddition object is invalid"), "{message}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    let msg = e.to_string();
    assert!(msg.contains("fields: quantity") && msg.contains("agreement 5 addition 6"), "{msg}");
}

#[tokio::test]
async fn only_connectwise_has_a_writer_and_a_capture_never_writes() {
    let csv = BillingConfig {
        source: BillingSource::Csv(CsvConfig { path: "/var/lib/mpsync/billed.csv".into() }),
        schedule: Schedule::parse("0 5 * * * *").unwrap(),
    };
    let e = writer_from_config(&csv).err().expect("no writer for CSV");
    assert_eq!((e.kind(), e.exit()), ("not_writable", Exit::Config));
    assert!(e.to_string().contains("billing.source = \"csv\""), "{e}");
    let none = BillingConfig { source: BillingSource::None, ..csv.clone() };
    assert!(matches!(
        writer_from_config(&none),
        Err(WriteError::NotWritable { billing: "none", .. })
    ));

    let server = CwServer::start(7, 10).await;
    let cw = BillingConfig { source: BillingSource::Connectwise(Box::new(server.config())), ..csv };
    let w = writer_from_config(&cw).expect("a ConnectWise writer");
    assert_eq!(w.psa(), "connectwise");
    let (add, line) = counted_addition(&server);
    assert_eq!(w.read_line(&line).await.unwrap().quantity, add.quantity);

    // The recording client `mpsync capture` uses refuses the PATCH before it is sent.
    struct Nothing;
    impl mpsync::upstream::Recorder for Nothing {
        fn record(&self, _: &mpsync::upstream::Exchange<'_>) {}
    }
    let source = CwServer::source(&server.config());
    let recording = source.client().recording(Arc::new(Nothing));
    let e = ConnectwiseWriter::from_client(&recording).set_quantity(&line, 1.0).await.unwrap_err();
    assert!(
        matches!(&e, WriteError::Upstream(UpstreamError::Setup { reason, .. }) if reason.contains("only reads")),
        "{e}"
    );
    // The source's own writer shares its budget and writes.
    assert_eq!(source.writer().set_quantity(&line, 2.0).await.unwrap().quantity, 2.0);
    assert_eq!(server.control.requests().get(PATCH), 1);
}
