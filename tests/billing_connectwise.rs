//! The ConnectWise client against the simulator: it reads exactly the billed quantities the
//! generator planted (counted and not counted additions told apart), pages through `Link`
//! headers (and without them), and turns every auth failure and fault into a typed error
//! that says what to fix.

use std::collections::BTreeMap;

use chrono::Utc;
use mpsync::billing::{Billed, BilledSource, BillingError, connectwise};
use mpsync::upstream::UpstreamError;
use mpsync_sim::Variant;
use mpsync_sim::connectwise::{CwCompany, CwRef};
use mpsync_sim::faults::{Fault, FaultKind};
use tokio_util::sync::CancellationToken;

use crate::support::cw::{self, CwServer, auth, raw_get};

async fn fetch(server: &CwServer) -> (Result<Billed, BillingError>, u64) {
    let source = CwServer::source(&server.config());
    let report = source.fetch(Utc::now(), &CancellationToken::new()).await;
    let requests = report.stats.iter().map(|s| s.total_requests()).sum();
    (report.outcome, requests)
}

/// Counted quantity per (account, PSA product).
fn counted(b: &Billed) -> BTreeMap<(String, String), f64> {
    let mut out = BTreeMap::new();
    for l in b.lines.iter().filter(|l| l.counted) {
        *out.entry((l.account_id.clone(), l.product_id.clone())).or_insert(0.0) += l.quantity;
    }
    out
}

#[tokio::test]
async fn the_client_reads_exactly_the_planted_billed_quantities() {
    let server = CwServer::start(7, 60).await;
    let data = server.data();
    let (billed, requests) = fetch(&server).await;
    let billed = billed.expect("a clean read");

    let expected: BTreeMap<(String, String), f64> = data
        .planted
        .iter()
        .filter(|p| p.billed_qty > 0.0)
        .filter_map(|p| Some(((p.account_id.clone()?, p.psa_product.clone()?), p.billed_qty)))
        .collect();
    assert!(!expected.is_empty());
    assert_eq!(counted(&billed), expected, "counted quantities equal the planted ground truth");

    // Accounts: every company but the deleted one, with its id and name.
    let live: Vec<&CwCompany> = data.companies.iter().filter(|c| !c.deleted_flag).collect();
    assert_eq!(billed.accounts.len(), live.len());
    let first = billed.accounts.iter().find(|a| a.id == live[0].id.to_string()).unwrap();
    assert_eq!(first.name, live[0].name);

    // Additions that do not count are kept with the reason; the cancelled agreement is
    // filtered out by the conditions and never read.
    let notes: Vec<&str> = billed.lines.iter().filter_map(|l| l.note.as_deref()).collect();
    for want in [
        "takes effect on 2099-01-01",
        "cancelled on 2021-06-30",
        "billCustomer is DoNotBill",
        "status Expired",
    ] {
        assert_eq!(notes.iter().filter(|n| n.contains(want)).count(), 1, "{want}: {notes:?}");
    }
    assert!(billed.lines.iter().all(|l| l.counted == l.note.is_none()));
    let not_counted: f64 = billed.lines.iter().filter(|l| !l.counted).map(|l| l.quantity).sum();
    assert_eq!(not_counted, 4.0 + 6.0 + 2.0 + 7.0);
    let cancelled: Vec<u64> =
        data.agreements.iter().filter(|a| a.cancelled_flag).map(|a| a.id).collect();
    assert_eq!(cancelled.len(), 1);
    assert!(
        !billed
            .lines
            .iter()
            .any(|l| l.source_ref.starts_with(&format!("agreement {} ", cancelled[0])))
    );
    let l = &billed.lines[0];
    assert!(
        l.source_ref.starts_with("agreement ") && l.source_ref.contains(" addition "),
        "{}",
        l.source_ref
    );
    assert!(l.unit_price.is_some());
    // Every line knows its agreement and addition (what a write-back addresses).
    for l in &billed.lines {
        let Some(mpsync::model::LineRef::Connectwise { agreement, addition }) = l.line else {
            panic!("{l:?}");
        };
        assert_eq!(l.source_ref, format!("agreement {agreement} addition {addition}"));
    }

    // One request per listing: companies, agreements, and each open agreement's additions.
    let open = data.agreements.iter().filter(|a| !a.cancelled_flag).count() as u64;
    let counts = server.control.requests();
    assert_eq!(counts.get("GET /company/companies"), 1);
    assert_eq!(counts.get("GET /finance/agreements"), 1);
    assert_eq!(counts.get("GET /finance/agreements/{id}/additions"), open);
    assert_eq!(requests, 2 + open);
}

fn extra_companies(server: &CwServer, n: u64) {
    server.cw.mutate(|d| {
        for k in 0..n {
            d.companies.push(CwCompany {
                id: 100_000 + k,
                identifier: format!("Extra{k}"),
                name: format!("Extra Company {k}"),
                status: CwRef { id: 1, identifier: None, name: Some("Active".into()) },
                deleted_flag: false,
            });
        }
    });
}

#[tokio::test]
async fn paging_follows_link_headers_and_falls_back_to_counting_pages() {
    let server = CwServer::start(3, 10).await;
    extra_companies(&server, 2300);
    let total = server.data().companies.iter().filter(|c| !c.deleted_flag).count();

    let (billed, _) = fetch(&server).await;
    assert_eq!(billed.unwrap().accounts.len(), total);
    assert_eq!(
        server.control.requests().get("GET /company/companies"),
        3,
        "1000 + 1000 + the rest"
    );

    // Without Link headers the client counts pages: it stops at the first short page.
    server.control.reset_requests();
    server.control.add_fault(
        Fault::new(FaultKind::Variant { variant: Variant::NoPagination }).on("companies"),
    );
    let (billed, _) = fetch(&server).await;
    assert_eq!(billed.unwrap().accounts.len(), total);
    assert_eq!(server.control.requests().get("GET /company/companies"), 3);

    // A listing that fills its pages exactly needs one empty page to end without Link.
    server.control.reset_requests();
    let missing = 3000 - server.data().companies.len() as u64;
    server.cw.mutate(|d| {
        for k in 0..missing {
            d.companies.push(CwCompany {
                id: 200_000 + k,
                identifier: format!("Fill{k}"),
                name: format!("Fill {k}"),
                status: CwRef { id: 1, identifier: None, name: None },
                deleted_flag: false,
            });
        }
    });
    let (billed, _) = fetch(&server).await;
    assert_eq!(billed.unwrap().accounts.len(), 3000 - 1, "every company but the deleted one");
    assert_eq!(server.control.requests().get("GET /company/companies"), 4);
}

#[tokio::test]
async fn the_simulator_pages_with_link_headers_and_clamps_page_size() {
    let server = CwServer::start(3, 10).await;
    extra_companies(&server, 60);
    let total = server.data().companies.len();
    let h = auth(&server.cw.credentials());
    let (status, headers, body) =
        raw_get(&server.base_url(), "/company/companies?page=2&pageSize=10", &h).await;
    assert_eq!(status, 200);
    assert_eq!(body.as_array().unwrap().len(), 10);
    let link = headers.get("link").unwrap().to_str().unwrap();
    let rels = connectwise::link::parse_link(link);
    let page = |rel: &str| connectwise::link::page_of(&rels[rel]).unwrap();
    assert_eq!((page("first"), page("prev"), page("next")), (1, 1, 3));
    assert_eq!(page("last") as usize, total.div_ceil(10));

    let (_, headers, body) = raw_get(&server.base_url(), "/company/companies", &h).await;
    assert_eq!(body.as_array().unwrap().len(), 25, "default page size");
    let rels = connectwise::link::parse_link(headers.get("link").unwrap().to_str().unwrap());
    assert!(!rels.contains_key("prev") && rels.contains_key("next"));

    let (_, headers, body) =
        raw_get(&server.base_url(), "/company/companies?pageSize=5000", &h).await;
    assert_eq!(body.as_array().unwrap().len(), total.min(1000), "clamped to 1000");
    let rels = connectwise::link::parse_link(headers.get("link").unwrap().to_str().unwrap());
    assert!(!rels.contains_key("next"), "one page: no next");
}

#[tokio::test]
async fn conditions_filter_and_anything_unsupported_is_a_400_with_the_error_body() {
    let server = CwServer::start(5, 20).await;
    let data = server.data();
    let h = auth(&server.cw.credentials());
    let base = server.base_url();
    let q = |c: &str| format!("/finance/agreements?pageSize=1000&conditions={}", urlencode(c));

    let (_, _, all) = raw_get(&base, "/finance/agreements?pageSize=1000", &h).await;
    let (_, _, open) = raw_get(&base, &q("cancelledFlag=false"), &h).await;
    assert_eq!(all.as_array().unwrap().len(), data.agreements.len());
    assert_eq!(open.as_array().unwrap().len(), data.agreements.len() - 1);
    let company = data.agreements[0].company.id;
    let (_, _, one) =
        raw_get(&base, &q(&format!("company/id={company} and cancelledFlag=false")), &h).await;
    assert!(one.as_array().unwrap().iter().all(|a| a["company"]["id"] == company));
    let (_, _, expired) = raw_get(&base, &q("agreementStatus=\"expired\""), &h).await;
    assert_eq!(expired.as_array().unwrap().len(), 1, "strings compare case-insensitively");

    for bad in ["cancelledFlag=false or id=1", "id>5", "name like \"x\"", "nosuchfield=1"] {
        let (status, _, body) = raw_get(&base, &q(bad), &h).await;
        assert_eq!(status, 400, "{bad}");
        assert_eq!(body["code"], "InvalidObject", "{bad}: {body}");
        assert_eq!(body["errors"][0]["field"], "conditions", "{bad}: {body}");
        assert!(body["message"].as_str().unwrap().contains("conditions"), "{body}");
    }

    // A 400 reaching the client is a bad response naming the conditions it sent.
    server
        .control
        .add_fault(Fault::new(FaultKind::Status { status: 400 }).on("GET /finance/agreements"));
    let (err, _) = fetch(&server).await;
    let err = err.unwrap_err();
    match &err {
        BillingError::Upstream(UpstreamError::BadResponse { endpoint, reason, .. }) => {
            assert_eq!(endpoint, "GET /finance/agreements");
            assert!(reason.contains("cancelledFlag=false"), "{reason}");
        }
        other => panic!("expected a bad response, got {other:?}"),
    }
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test]
async fn auth_failures_are_fatal_and_say_what_to_fix() {
    let server = CwServer::start(5, 10).await;
    let creds = server.cw.credentials();
    let base = server.base_url();

    // Raw: no Authorization → 401; no clientId → 400; both with the §4 body.
    let (status, _, body) =
        raw_get(&base, "/system/info", &[("clientId", creds.client_id.clone())]).await;
    assert_eq!((status, body["code"].as_str()), (401, Some("Unauthorized")));
    let basic_only: Vec<_> = auth(&creds).into_iter().filter(|(k, _)| *k != "clientId").collect();
    let (status, _, body) = raw_get(&base, "/system/info", &basic_only).await;
    assert_eq!(status, 400);
    assert!(body["message"].as_str().unwrap().contains("clientId"), "{body}");

    let info = connectwise::check_connection(&server.config()).await.expect("good keys");
    assert!(info.describe().contains("version"), "{}", info.describe());

    let mut wrong = server.config();
    wrong.private_key =
        mpsync::config::Secret::new("not-the-key", "/etc/mpsync/connectwise-private-key");
    let err = connectwise::check_connection(&wrong).await.unwrap_err();
    assert!(matches!(err, UpstreamError::Unauthorized { .. }), "{err}");
    let (err, requests) = {
        let source = CwServer::source(&wrong);
        let r = source.fetch(Utc::now(), &CancellationToken::new()).await;
        (r.outcome.unwrap_err(), r.stats[0].total_requests())
    };
    assert_eq!(requests, 1, "a 401 is not retried");
    let msg = err.to_string();
    for part in ["GET /company/companies", "401", "company_id", "connectwise-private-key"] {
        assert!(msg.contains(part), "{part} in {msg}");
    }
    assert!(!msg.contains("not-the-key") && !msg.contains(&creds.public_key), "no secrets: {msg}");
    assert_eq!(mpsync::exit::ExitStatus::exit(&err), mpsync::exit::Exit::Unavailable);

    let mut wrong_company = server.config();
    wrong_company.company_id = "someoneelse".into();
    let (err, _) = {
        let r = CwServer::source(&wrong_company).fetch(Utc::now(), &CancellationToken::new()).await;
        (r.outcome.unwrap_err(), ())
    };
    assert!(err.to_string().contains("\"someoneelse\""), "{err}");

    // A member whose role cannot read agreements: 403 naming the rights to grant.
    let mut limited = server.config();
    limited.public_key = mpsync::config::Secret::new(creds.limited_keys.0.clone(), "/k/pub");
    limited.private_key = mpsync::config::Secret::new(creds.limited_keys.1.clone(), "/k/priv");
    let r = CwServer::source(&limited).fetch(Utc::now(), &CancellationToken::new()).await;
    let err = r.outcome.unwrap_err();
    assert!(matches!(err, BillingError::Upstream(UpstreamError::Forbidden { .. })), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("GET /finance/agreements") && msg.contains("Finance → Agreements"),
        "{msg}"
    );
}

#[tokio::test]
async fn faults_become_typed_errors_and_transient_ones_are_retried() {
    let server = CwServer::start(9, 10).await;
    let c = &server.control;
    let kind_of = |r: Result<Billed, BillingError>| match r {
        Ok(_) => "ok".to_owned(),
        Err(BillingError::Upstream(e)) => e.kind().to_owned(),
        Err(e) => format!("{e:?}"),
    };

    // A brief outage is ridden out by retries; a lasting one fails the run.
    let brief = c.add_fault(Fault::new(FaultKind::Status { status: 503 }).on("additions").times(2));
    assert_eq!(kind_of(fetch(&server).await.0), "ok");
    c.remove_fault(brief);
    let ids: Vec<u64> =
        mpsync_sim::connectwise::outage(503).into_iter().map(|f| c.add_fault(f)).collect();
    assert_eq!(kind_of(fetch(&server).await.0), "unavailable");
    ids.into_iter().for_each(|id| assert!(c.remove_fault(id)));

    let cases = [
        (Fault::new(FaultKind::Malformed).on("companies"), "bad_response"),
        (Fault::new(FaultKind::Truncate).on("GET /finance/agreements"), "bad_response"),
        (Fault::new(FaultKind::WrongTypes).on("additions"), "bad_response"),
        (Fault::new(FaultKind::Disconnect).on("companies"), "unavailable"),
        (Fault::new(FaultKind::Storm { retry_after: 1 }).on("companies").times(1), "ok"),
        (Fault::new(FaultKind::Status { status: 404 }).on("additions"), "not_found"),
    ];
    for (fault, want) in cases {
        let id = c.add_fault(fault.clone());
        assert_eq!(kind_of(fetch(&server).await.0), want, "{fault:?}");
        c.remove_fault(id);
    }

    // Keys revoked mid-run: the next call is a 401 and the run fails.
    c.add_fault(Fault::new(FaultKind::Revoke { key: None }).on("additions").after(2));
    assert_eq!(kind_of(fetch(&server).await.0), "unauthorized");
    assert_eq!(kind_of(fetch(&server).await.0), "unauthorized", "stays revoked");
}

#[tokio::test]
async fn a_hung_server_times_out_and_cancellation_stops_the_read() {
    let server = CwServer::start(9, 5).await;
    let mut cfg = server.config();
    cfg.limits.timeout = std::time::Duration::from_millis(200);
    server.control.add_fault(Fault::new(FaultKind::Hang).on("companies"));
    let r = CwServer::source(&cfg).fetch(Utc::now(), &CancellationToken::new()).await;
    assert!(
        matches!(r.outcome, Err(BillingError::Upstream(UpstreamError::Timeout { .. }))),
        "{:?}",
        r.outcome
    );

    let cancel = CancellationToken::new();
    cancel.cancel();
    let r = CwServer::source(&cfg).fetch(Utc::now(), &cancel).await;
    let e = r.outcome.unwrap_err();
    assert!(matches!(e, BillingError::Cancelled), "{e:?}");
}

#[tokio::test]
async fn the_standard_simulator_serves_connectwise_beside_mailprotector() {
    let sim = mpsync_sim::SimServer::start(mpsync_sim::SimOptions {
        seed: 4,
        customers: 30,
        ..mpsync_sim::SimOptions::default()
    })
    .await
    .unwrap();
    let cw = sim.control().connectwise();
    let expected = mpsync_sim::connectwise::BillingData::generate(&sim.control().read(), 4);
    assert_eq!(*cw.read(), expected, "what is served is what generate() gives at start");

    // Billing changes made through the handle are what the client reads next.
    let target = cw.read().additions[0].clone();
    cw.mutate(|d| d.additions[0].quantity = 999.0);
    let cfg = cw::config(&sim.base_url(), &cw.credentials());
    let r = CwServer::source(&cfg).fetch(Utc::now(), &CancellationToken::new()).await;
    let billed = r.outcome.unwrap();
    let line = billed
        .lines
        .iter()
        .find(|l| l.source_ref.ends_with(&format!("addition {}", target.id)))
        .unwrap();
    assert_eq!(line.quantity, 999.0);
    assert_eq!(sim.control().requests().get("GET /company/companies"), 1);
    sim.shutdown().await;
}
