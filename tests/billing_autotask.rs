//! The Autotask client against the simulator: it reads exactly the billed quantities the
//! generator planted (the units row covering today, lines that do not count kept with their
//! reason), pages through 500-row pages by POSTing each `nextPageUrl` again, looks the zone up
//! once and again after the database moved, and turns `errors` bodies, unknown users, hidden
//! contracts and the hourly threshold into typed errors that say what to fix.

use std::collections::BTreeMap;

use chrono::Utc;
use mpsync::billing::autotask::{self, AutotaskClient, Entity};
use mpsync::billing::{Billed, BilledSource, BillingError};
use mpsync::model::LineRef;
use mpsync::upstream::{RetryPolicy, UpstreamError};
use mpsync_sim::autotask::ThresholdSettings;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::support::at::{AtServer, config};
use crate::support::cw::fast_retry;

async fn fetch_with(
    server: &AtServer,
    cfg: &mpsync::config::AutotaskConfig,
) -> Result<Billed, BillingError> {
    let _ = server;
    AtServer::source(cfg).fetch(Utc::now(), &CancellationToken::new()).await.outcome
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
    let server = AtServer::start(7, 60).await;
    let data = server.at.read().clone();
    let billed = fetch_with(&server, &server.config()).await.expect("a clean read");

    let expected: BTreeMap<(String, String), f64> = data
        .planted
        .iter()
        .filter(|p| p.billed_qty > 0.0)
        .filter_map(|p| Some(((p.account_id.clone()?, p.psa_product.clone()?), p.billed_qty)))
        .collect();
    assert!(!expected.is_empty());
    assert_eq!(counted(&billed), expected, "counted quantities equal the planted ground truth");

    // Accounts: the active Customer companies only.
    let companies = &data.rows["Companies"];
    let customers: Vec<&Value> =
        companies.iter().filter(|c| c["isActive"] == true && c["companyType"] == 1).collect();
    assert_eq!(billed.accounts.len(), customers.len());
    assert!(customers.len() < companies.len(), "the noise companies are not accounts");

    // Every line that does not count is kept, with its reason.
    let notes: Vec<&str> = billed.lines.iter().filter_map(|l| l.note.as_deref()).collect();
    for want in [
        "is inactive (status 0)",
        "ended on 2021-12-31",
        "no units row covers",
        "bundles are not supported",
        "is of type 3, not Customer (1)",
    ] {
        assert!(notes.iter().any(|n| n.contains(want)), "no line noted {want:?}: {notes:?}");
    }
    assert!(notes.iter().any(|n| n.starts_with("company") && n.contains("is inactive")));
    for l in billed.lines.iter().filter(|l| l.counted) {
        assert!(matches!(l.line, Some(LineRef::Autotask { .. })), "{l:?}");
        assert!(l.note.is_none());
    }

    // The price is the contract's adjustedPrice where it has one.
    let adjusted = data.rows["ContractServices"]
        .iter()
        .find(|s| s["adjustedPrice"].is_number())
        .expect("a line with a contract price");
    let line = billed
        .lines
        .iter()
        .find(|l| matches!(l.line, Some(LineRef::Autotask { contract_service, .. }) if adjusted["id"] == contract_service))
        .expect("its line");
    assert_eq!(line.unit_price, adjusted["adjustedPrice"].as_f64());
    assert_ne!(line.unit_price, adjusted["unitPrice"].as_f64());
}

#[tokio::test]
async fn queries_page_through_500_row_pages_by_posting_next_page_url_again() {
    let server = AtServer::start(3, 20).await;
    let before = fetch_with(&server, &server.config()).await.unwrap().accounts.len();
    server.at.mutate(|d| {
        let rows = d.rows.get_mut("Companies").unwrap();
        for i in 0..1200u64 {
            rows.push(json!({"id": 40_000_000 + i, "companyName": format!("Extra {i}"),
                "companyNumber": null, "companyType": 1, "isActive": true}));
        }
    });
    server.control.reset_requests();
    let billed = fetch_with(&server, &server.config()).await.expect("a clean read");
    assert_eq!(billed.accounts.len(), before + 1200);
    let r = server.control.requests();
    assert_eq!(r.get("POST /Companies/query"), 1);
    assert_eq!(r.get("POST /Companies/query/next"), 2, "{r:?}");
    assert_eq!(r.get("GET /Companies/query/next"), 0);
}

#[tokio::test]
async fn the_zone_is_looked_up_once_and_again_after_the_database_moved() {
    let server = AtServer::start(3, 10).await;
    let source = AtServer::source(&server.config());
    let cancel = CancellationToken::new();
    let first = source.fetch(Utc::now(), &cancel).await.outcome.expect("first read");
    source.fetch(Utc::now(), &cancel).await.outcome.expect("second read");
    assert_eq!(server.control.requests().get("GET /zoneInformation"), 1, "kept between reads");

    assert_eq!(server.at.move_zone(), 2);
    let moved = source.fetch(Utc::now(), &cancel).await.outcome.expect("read after the move");
    assert_eq!(counted(&moved), counted(&first));
    let r = server.control.requests();
    assert_eq!(r.get("GET /zoneInformation"), 2, "looked up again after the 401");
    assert!(r.status(401) >= 1);

    // A configured base_url is never looked up again: the 401 stands, naming the keys.
    let fixed = config(&server.root(), Some(&server.root()), &server.at.credentials());
    let e = fetch_with(&server, &fixed).await.unwrap_err();
    let BillingError::Upstream(e @ UpstreamError::Unauthorized { .. }) = e else { panic!("{e}") };
    assert!(e.to_string().contains("billing.autotask.username"), "{e}");
}

#[tokio::test]
async fn errors_bodies_fail_at_once_with_what_to_fix() {
    let server = AtServer::start(3, 10).await;
    let mut creds = server.at.credentials();
    creds.integration_code = "WRONGCODEWRONGCODEWRONGCODE".into();
    server.control.reset_requests();
    let e = fetch_with(&server, &config(&server.root(), None, &creds)).await.unwrap_err();
    let text = e.to_string();
    assert!(text.contains("autotask rejected the credentials"), "{text}");
    assert!(text.contains("/query"), "names the endpoint: {text}");
    assert!(!text.contains("WRONGCODE"), "no secret in errors: {text}");
    let r = server.control.requests();
    assert!(r.status(500) <= 2, "not retried: {r:?}");

    let mut creds = server.at.credentials();
    creds.username = "nobody@example.com".into();
    let e = fetch_with(&server, &config(&server.root(), None, &creds)).await.unwrap_err();
    assert!(e.to_string().contains("knows no API user by that name"), "{e}");

    // A security level without contract access gets empty answers: the check says so.
    let mut creds = server.at.credentials();
    (creds.username, creds.secret) = creds.no_contracts.clone();
    let e = autotask::check_connection(&config(&server.root(), None, &creds)).await.unwrap_err();
    assert!(matches!(e, BillingError::NothingVisible { .. }), "{e}");
    assert!(e.to_string().contains("sees no contracts"), "{e}");
}

#[tokio::test]
async fn the_hourly_threshold_is_waited_out_then_reported_and_check_shows_its_use() {
    let server = AtServer::start(3, 10).await;
    let report = autotask::check_connection(&server.config()).await.expect("check passes");
    assert!(report.describe().contains("of 10000 requests this hour"), "{}", report.describe());

    server.at.set_threshold(ThresholdSettings {
        limit: 3,
        tiers: (std::time::Duration::ZERO, std::time::Duration::ZERO),
        ..ThresholdSettings::default()
    });
    let retry = RetryPolicy { max_rate_limited_attempts: 3, ..fast_retry() };
    let source = mpsync::billing::AutotaskSource::with_retry(&server.config(), retry).unwrap();
    let e = source.fetch(Utc::now(), &CancellationToken::new()).await.outcome.unwrap_err();
    let BillingError::Upstream(e @ UpstreamError::RateLimited { .. }) = e else { panic!("{e}") };
    assert!(e.to_string().contains("autotask kept answering 429"), "{e}");
    assert!(server.control.requests().status(429) >= 3);

    // The window drains (here: a fresh threshold): the next read succeeds.
    server.at.set_threshold(ThresholdSettings::default());
    source.fetch(Utc::now(), &CancellationToken::new()).await.outcome.expect("read after");
}

#[tokio::test]
async fn a_missing_id_is_none_and_a_present_one_is_read() {
    let server = AtServer::start(3, 10).await;
    let client = AutotaskClient::with_retry(&server.config(), fast_retry()).unwrap();
    let id = server.at.read().rows["Companies"][0]["id"].as_u64().unwrap();
    let found: Option<Value> = client.get_one(Entity::Companies, id).await.unwrap();
    assert_eq!(found.unwrap()["id"], id);
    let missing: Option<Value> = client.get_one(Entity::Companies, 1).await.unwrap();
    assert_eq!(missing, None);
}
