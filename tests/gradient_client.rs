//! The Gradient client against the simulated Synthesize: token, status (any case, unknown
//! values verbatim), catalogue, accounts (one array request, 409 re-read), counts (201, 404,
//! a refused 400), 401 and 403 (anomaly detection) messages, 429 handling.

use mpsync::gradient::{
    CountOutcome, GradientAccount, GradientError, IntegrationStatus, default_service,
};
use mpsync_sim::faults::{Fault, FaultKind, Variant};

use crate::support::gradient::{client, sim};

fn account(id: &str, name: &str) -> GradientAccount {
    GradientAccount {
        id: id.into(),
        name: name.into(),
        description: String::new(),
        is_mapped: None,
    }
}

#[tokio::test]
async fn a_full_cycle_creates_services_and_accounts_and_posts_counts() {
    let sim = sim(20).await;
    let g = sim.control().gradient().clone();
    let c = client(&sim, None);
    let integ = c.integration().await.unwrap();
    assert_eq!(integ.status, IntegrationStatus::Inactive);
    c.set_status(&IntegrationStatus::Pending).await.unwrap();
    assert_eq!(g.status(), "pending");

    assert!(c.skus().await.unwrap().is_empty());
    let skus = c.create_service(&default_service("CloudFilter")).await.unwrap();
    let cf = skus.iter().find(|s| s.name == "CloudFilter").unwrap().id.clone();
    // A second create of the same name is a 409 that the client answers by re-reading.
    let again = c.create_service(&default_service("CloudFilter")).await.unwrap();
    assert_eq!(again.len(), 1);
    let skus = c.create_service(&default_service("SecureStore")).await.unwrap();
    let ss = skus.iter().find(|s| s.name == "SecureStore").unwrap().id.clone();

    let names: Vec<(u64, String)> = {
        let ds = sim.control().read();
        ds.main_customers()
            .into_iter()
            .map(|id| (id, ds.customer_name(id).unwrap().to_owned()))
            .collect()
    };
    let wanted: Vec<_> = names.iter().map(|(id, n)| account(&id.to_string(), n)).collect();
    // One account exists already: only the others are posted, in one request.
    let first = c.ensure_accounts(vec![], &wanted[..1]).await.unwrap();
    assert_eq!(first.len(), 1);
    g.reset_requests();
    let all = c.ensure_accounts(first, &wanted).await.unwrap();
    assert_eq!(all.len(), wanted.len());
    assert_eq!(g.requests().get("POST /api/vendor-api/organization/accounts"), 1);
    assert!(all.iter().all(|a| a.is_mapped.is_some()), "the simulator says isMapped");

    let mapped = all.iter().find(|a| a.is_mapped == Some(true)).unwrap();
    let unmapped = all.iter().find(|a| a.is_mapped == Some(false)).unwrap();
    let CountOutcome::Unmapped(_) = c.post_count(&cf, &unmapped.id, 3).await.unwrap() else {
        panic!("an unmapped account is a 404");
    };
    assert_eq!(g.status(), "pending", "a 404 is not usage received");
    assert_eq!(c.post_count(&cf, &mapped.id, 7).await.unwrap(), CountOutcome::Accepted);
    assert_eq!(g.status(), "active", "Gradient turns the integration active on the first count");
    assert_eq!(c.integration().await.unwrap().status, IntegrationStatus::Active);
    assert_eq!(c.post_count(&cf, &mapped.id, 0).await.unwrap(), CountOutcome::Accepted);
    let CountOutcome::Unmapped(msg) = c.post_count(&cf, &unmapped.id, 3).await.unwrap() else {
        panic!("an unmapped account is a 404");
    };
    assert!(msg.contains("No account map found"), "{msg}");
    assert!(matches!(c.post_count(&ss, &mapped.id, 3).await.unwrap(), CountOutcome::Unmapped(_)));
    let view = g.view();
    assert_eq!(view.len(), 1);
    assert_eq!((view[0].account_id.as_str(), view[0].vendor_units), (mapped.id.as_str(), 0.0));

    c.rename_account(&mapped.id, "Renamed Ltd").await.unwrap();
    let after = c.accounts().await.unwrap();
    let renamed = after.iter().find(|a| a.id == mapped.id).unwrap();
    assert_eq!((renamed.name.as_str(), renamed.is_mapped), ("Renamed Ltd", Some(true)));
}

#[tokio::test]
async fn a_wrong_partner_key_says_to_re_enter_it_and_never_shows_the_key() {
    let sim = sim(5).await;
    let c = client(&sim, Some("not-the-partner-key"));
    let e = c.integration().await.unwrap_err();
    assert!(matches!(e, GradientError::Unauthorized { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(msg.contains("re-enter it"), "{msg}");
    assert!(msg.contains("/keys/gradient-partner-key"), "{msg}");
    assert!(!msg.contains("not-the-partner-key"), "{msg}");
    assert!(!format!("{c:?}").contains("not-the-partner-key"));
}

#[tokio::test]
async fn a_403_is_reported_as_gradients_anomaly_detection_with_the_status_when_known() {
    let sim = sim(5).await;
    let g = sim.control().gradient().clone();
    let c = client(&sim, None);
    let skus = c.create_service(&default_service("CloudFilter")).await.unwrap();
    g.reset_requests();
    // The simulator's convention (§11 #6): counts while inactive answer 403.
    let e = c.post_count(&skus[0].id, "1", 1).await.unwrap_err();
    assert!(matches!(e, GradientError::Forbidden { .. }), "{e:?}");
    assert!(e.is_fatal());
    assert_eq!(g.requests().status(403), 1, "a 403 is not retried");
    let msg = e.to_string();
    for needle in [
        "403: Integration is not active",
        "anomaly detection",
        "lower gradient.rate_limit, now 80/s",
        "contact Gradient support",
    ] {
        assert!(msg.contains(needle), "{needle:?} missing from {msg}");
    }
    assert!(!msg.contains("status read at the start"), "unknown here: {msg}");
    let with = e.with_status(&IntegrationStatus::Inactive).to_string();
    assert!(
        with.contains("status read at the start of this push was inactive (not set up yet"),
        "{with}"
    );

    // Any 403 reads the same, on any route.
    g.add_fault(Fault::new(FaultKind::Status { status: 403 }).on("accounts").times(1));
    let e = c.accounts().await.unwrap_err();
    assert!(matches!(e, GradientError::Forbidden { .. }), "{e:?}");
    assert!(e.to_string().contains("anomaly detection"), "{e}");
}

#[tokio::test]
async fn statuses_are_read_in_any_case_and_unknown_ones_verbatim() {
    let sim = sim(5).await;
    let g = sim.control().gradient().clone();
    let c = client(&sim, None);
    g.set_status_verbatim("Active");
    assert_eq!(c.integration().await.unwrap().status, IntegrationStatus::Active);
    g.set_status_verbatim("Suspended");
    let status = c.integration().await.unwrap().status;
    assert_eq!(status, IntegrationStatus::Other("Suspended".into()));
    assert_eq!(status.to_string(), "Suspended");
    // A server that echoes a key back as the status does not get it shown.
    g.set_status_verbatim(&format!("bad key {}", g.partner_key()));
    let status = c.integration().await.unwrap().status;
    assert_eq!(status.as_str(), "bad key <redacted>");
}

#[tokio::test]
async fn a_count_gradient_refuses_is_a_refused_outcome_not_an_error() {
    let sim = sim(5).await;
    let g = sim.control().gradient().clone();
    let c = client(&sim, None);
    g.set_status("active");
    g.add_fault(Fault::new(FaultKind::Variant { variant: Variant::RefuseZeroCounts }).on("count"));
    let skus = c.create_service(&default_service("CloudFilter")).await.unwrap();
    let out = c.post_count(&skus[0].id, "1", 0).await.unwrap();
    assert_eq!(
        out,
        CountOutcome::Refused { status: 400, message: "unitCount must be greater than 0".into() }
    );
    assert_eq!(g.requests().status(400), 1, "a refused count is not retried");
}

#[tokio::test]
async fn rate_limits_and_5xx_on_counts_are_retried() {
    let sim = sim(5).await;
    let g = sim.control().gradient().clone();
    let c = client(&sim, None);
    g.set_status("active");
    let skus = c.create_service(&default_service("CloudFilter")).await.unwrap();
    let name = sim
        .control()
        .read()
        .customer_name(sim.control().read().main_customers()[0])
        .unwrap()
        .to_owned();
    c.ensure_accounts(vec![], &[account("1", &name)]).await.unwrap();
    g.reset_requests();
    g.add_fault(Fault::new(FaultKind::Storm { retry_after: 1 }).on("count").times(2));
    g.add_fault(Fault::new(FaultKind::Status { status: 503 }).on("count").after(2).times(1));
    assert_eq!(c.post_count(&skus[0].id, "1", 4).await.unwrap(), CountOutcome::Accepted);
    let r = g.requests();
    assert_eq!(r.get("POST /api/vendor-api/service/{serviceId}/count"), 4);
    assert_eq!((r.status(429), r.status(503), r.status(201)), (2, 1, 1));
    assert_eq!(c.stats().rate_limited, 2);
}
