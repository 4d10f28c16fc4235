//! The HaloPSA client against the simulator: it reads exactly the billed quantities the
//! generator planted (lines that do not count kept with their reason, a line Halo computes
//! counted and marked), whatever the list shape and whether the list carries lines; it
//! renews its token after expiry and after the secret's tokens end; and it turns a refused
//! scope, a wrong secret, a wrong tenant and the rolling rate limit into errors that say what
//! to fix.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::Utc;
use mpsync::billing::halopsa::{self, HaloClient};
use mpsync::billing::{Billed, BilledSource, BillingError};
use mpsync::model::LineRef;
use mpsync::upstream::{RetryPolicy, UpstreamError};
use mpsync_sim::halopsa::{HaloSettings, ListShape};
use tokio_util::sync::CancellationToken;

use crate::support::cw::fast_retry;
use crate::support::halo::{HaloServer, config};

async fn fetch(cfg: &mpsync::config::HalopsaConfig) -> Result<Billed, BillingError> {
    HaloServer::source(cfg).fetch(Utc::now(), &CancellationToken::new()).await.outcome
}

/// Counted quantity per (account, PSA product).
fn counted(b: &Billed) -> BTreeMap<(String, String), f64> {
    let mut out = BTreeMap::new();
    for l in b.lines.iter().filter(|l| l.counted) {
        *out.entry((l.account_id.clone(), l.product_id.clone())).or_insert(0.0) += l.quantity;
    }
    out
}

/// The billed line of Halo line `id`.
fn line_of(b: &Billed, id: i64) -> &mpsync::model::BilledLine {
    b.lines
        .iter()
        .find(|l| matches!(l.line, Some(LineRef::Halopsa { line, .. }) if i64::from(line) == id))
        .unwrap_or_else(|| panic!("no line {id}"))
}

#[tokio::test]
async fn the_client_reads_exactly_the_planted_billed_quantities() {
    let server = HaloServer::start(7, 60).await;
    let data = server.halo.read().clone();
    let billed = fetch(&server.config()).await.expect("a clean read");

    let mut expected: BTreeMap<(String, String), f64> = BTreeMap::new();
    for p in data.planted.iter().filter(|p| p.billed_qty > 0.0) {
        if let (Some(a), Some(s)) = (p.account_id.clone(), p.psa_product.clone()) {
            expected.insert((a, s), p.billed_qty);
        }
    }
    assert!(!expected.is_empty());
    let mp_items: Vec<String> = expected.keys().map(|(_, p)| p.clone()).collect();
    let mp_counted: BTreeMap<_, _> =
        counted(&billed).into_iter().filter(|((_, p), _)| mp_items.contains(p)).collect();
    assert_eq!(mp_counted, expected, "counted quantities equal the planted ground truth");

    // Accounts: the active clients only.
    let clients = &data.rows[&mpsync_sim::halopsa::Resource::Client];
    let active = clients.iter().filter(|c| c["inactive"] != true).count();
    assert_eq!(billed.accounts.len(), active);
    assert!(active < clients.len(), "the inactive client is no account");

    // Each Halo-specific plant shows as a user would look for it.
    let plant = |kind: &str| {
        data.plants.iter().find(|p| p.kind == kind).unwrap_or_else(|| panic!("no {kind} planted"))
    };
    let auto = line_of(&billed, plant("auto_calculated_line").line_id.unwrap());
    assert!(auto.counted, "a line Halo computes counts: {auto:?}");
    assert_eq!(auto.line.as_ref().map(LineRef::writable), Some(false), "never written");
    assert!(auto.note.as_deref().unwrap_or("").contains("Halo computes"), "{auto:?}");
    for (kind, why) in [
        ("inactive_line", "is inactive"),
        ("future_line", "starts on 2099-01-01"),
        ("ended_line", "ended on"),
        ("inactive_client", "is inactive"),
    ] {
        let l = line_of(&billed, plant(kind).line_id.unwrap());
        assert!(!l.counted, "{kind}: {l:?}");
        assert!(l.note.as_deref().unwrap_or("").contains(why), "{kind}: {l:?}");
    }
    let disabled = plant("disabled_invoice").invoice_id.unwrap();
    let out_of_date = plant("out_of_date_invoice").invoice_id.unwrap();
    for (invoice, why) in [(disabled, "is disabled"), (out_of_date, "ended on")] {
        let lines: Vec<_> = billed
            .lines
            .iter()
            .filter(|l| matches!(l.line, Some(LineRef::Halopsa { invoice: i, .. }) if i64::from(i) == invoice))
            .collect();
        assert!(!lines.is_empty(), "invoice {invoice} has lines");
        for l in lines {
            assert!(!l.counted && l.note.as_deref().unwrap_or("").contains(why), "{l:?}");
        }
    }
    let second = line_of(&billed, plant("second_invoice_line").line_id.unwrap());
    assert!(second.counted, "a second invoice's line of the same item is summed: {second:?}");
    assert!(
        billed
            .lines
            .iter()
            .any(|l| matches!(l.line, Some(LineRef::Halopsa { invoice, .. }) if invoice < 0)),
        "negative invoice ids are read"
    );
    // The items nobody maps still count as billed lines of their own item.
    let foreign: Vec<_> = data
        .plants
        .iter()
        .filter(|p| p.kind == "foreign_item_line")
        .map(|p| line_of(&billed, p.line_id.unwrap()))
        .collect();
    assert!(foreign.iter().any(|l| l.counted), "{foreign:?}");
    for l in foreign {
        assert!(!mp_items.contains(&l.product_id), "{l:?}");
        assert!(l.counted || l.note.is_some(), "a line that does not count says why: {l:?}");
    }
}

#[tokio::test]
async fn the_same_quantities_whatever_the_list_shape_and_without_lines_on_the_list() {
    let server = HaloServer::start(5, 30).await;
    let reference = counted(&fetch(&server.config()).await.unwrap());
    let r = server.control.requests();
    assert_eq!(r.get("GET /RecurringInvoice/{id}"), 0, "the list carried the lines");
    for shape in [ListShape::Bare, ListShape::NoRecordCount, ListShape::BareWhenCounted] {
        server.halo.set_settings(HaloSettings { list_shape: shape, ..HaloSettings::default() });
        assert_eq!(counted(&fetch(&server.config()).await.unwrap()), reference, "{shape:?}");
    }
    server.halo.set_settings(HaloSettings { ignore_includelines: true, ..HaloSettings::default() });
    server.control.reset_requests();
    assert_eq!(counted(&fetch(&server.config()).await.unwrap()), reference, "read alone");
    let invoices = server.halo.read().rows[&mpsync_sim::halopsa::Resource::RecurringInvoice].len();
    let r = server.control.requests();
    assert_eq!(r.get("GET /RecurringInvoice/{id}"), invoices as u64, "{r:?}");
}

#[tokio::test]
async fn an_ended_token_is_renewed_once_and_a_revoked_secret_names_what_to_check() {
    let server = HaloServer::start(3, 10).await;
    let source = HaloServer::source(&server.config());
    let cancel = CancellationToken::new();
    let first = source.fetch(Utc::now(), &cancel).await.outcome.unwrap();
    server.halo.expire_tokens();
    server.control.reset_requests();
    let again = source.fetch(Utc::now(), &cancel).await.outcome.expect("read after expiry");
    assert_eq!(counted(&again), counted(&first));
    let r = server.control.requests();
    assert_eq!(r.get("POST /auth/token"), 1, "one new token: {r:?}");

    server.halo.revoke();
    let e = source.fetch(Utc::now(), &cancel).await.outcome.unwrap_err().to_string();
    assert!(e.contains("billing.halopsa.client_id") && e.contains("secret file"), "{e}");
    let secret = server.halo.credentials().client_secret;
    assert!(!e.contains(&secret), "{e}");
}

#[tokio::test]
async fn a_wrong_secret_or_tenant_and_a_scope_not_granted_say_what_to_fix() {
    let server = HaloServer::start(3, 10).await;
    let mut creds = server.halo.credentials();
    creds.client_secret = "not-the-secret-000".into();
    let e = fetch(&config(&server.base_url(), &creds)).await.unwrap_err().to_string();
    assert!(e.contains("invalid_client") && e.contains("check billing.halopsa.client_id"), "{e}");
    assert!(!e.contains("not-the-secret-000"), "{e}");

    let mut creds = server.halo.credentials();
    creds.tenant = Some("someone-else".into());
    let e = fetch(&config(&server.base_url(), &creds)).await.unwrap_err().to_string();
    assert!(e.contains("check billing.halopsa.tenant"), "{e}");

    // The application is not granted read:items: the token request names it.
    let granted = ["read:customers", "read:contracts", "read:invoices"];
    server.halo.set_settings(HaloSettings {
        granted_scopes: granted.iter().map(|s| (*s).to_owned()).collect(),
        ..HaloSettings::default()
    });
    let e = halopsa::check_connection(&server.config(), false).await.unwrap_err().to_string();
    assert!(e.contains("not granted read:items"), "{e}");
    assert!(e.contains("Configuration > Integrations > HaloPSA API"), "{e}");

    // Granted everything but write: the check with write-back on names edit:invoices.
    server.halo.set_settings(HaloSettings::default());
    let ok = halopsa::check_connection(&server.config(), false).await.expect("check passes");
    assert!(ok.describe().contains("GET /RecurringInvoice (read:invoices"), "{}", ok.describe());
    let read_only = ["read:customers", "read:contracts", "read:items", "read:invoices"];
    server.halo.set_settings(HaloSettings {
        granted_scopes: read_only.iter().map(|s| (*s).to_owned()).collect(),
        ..HaloSettings::default()
    });
    let e = halopsa::check_connection(&server.config(), true).await.unwrap_err().to_string();
    assert!(e.contains("not granted edit:invoices"), "{e}");
}

#[tokio::test]
async fn the_rolling_limit_is_waited_out_and_reported_when_it_does_not_end() {
    let server = HaloServer::start(3, 10).await;
    let read = |retry: RetryPolicy| {
        let cfg = server.config();
        async move {
            let client =
                HaloClient::build(&cfg, false, retry, halopsa::token::system_clock()).unwrap();
            let scoped = client.scoped();
            let out = halopsa::collect(&scoped, Utc::now(), &CancellationToken::new()).await;
            (out, scoped.stats())
        }
    };
    // Two requests per 5 minutes: the storm outlasts the attempts allowed.
    server.halo.set_settings(HaloSettings { rate_limit: 2, ..HaloSettings::default() });
    let (out, _) = read(RetryPolicy { max_rate_limited_attempts: 3, ..fast_retry() }).await;
    let BillingError::Upstream(e @ UpstreamError::RateLimited { .. }) = out.unwrap_err() else {
        panic!("not rate limited")
    };
    assert!(e.to_string().contains("halopsa kept answering 429"), "{e}");
    assert!(server.control.requests().status(429) >= 3);

    // A short window: every 429 (a text body, no Retry-After) is waited out.
    server.halo.set_settings(HaloSettings {
        rate_limit: 1,
        rate_window: Duration::from_millis(60),
        ..HaloSettings::default()
    });
    let (out, stats) = read(fast_retry()).await;
    out.expect("the read completes once the window has room");
    assert!(stats[0].rate_limited > 0, "{stats:?}");
}
