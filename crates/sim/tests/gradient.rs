//! The simulated Synthesize over HTTP, for the routes public clients call beyond what mpsync
//! uses — PSA clients (§5.8, §11 #14), vendor profile (§5.4) and service updates (§5.7,
//! §11 #13) — and its one error shape `{"statusCode", "message"}` for every refusal under
//! `/api/vendor-api`: unknown routes, wrong methods, bad tokens, malformed JSON bodies.

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::gradient::{raw, sim};

/// The body is exactly `{"statusCode": status, "message": <text>}`; returns the message.
fn error_shape(status: u16, body: &Value) -> String {
    let obj = body.as_object().unwrap_or_else(|| panic!("not an object: {body}"));
    assert_eq!(obj.len(), 2, "only statusCode and message: {body}");
    assert_eq!(body["statusCode"], status, "{body}");
    body["message"].as_str().unwrap_or_else(|| panic!("message is not text: {body}")).to_owned()
}

#[tokio::test]
async fn clients_are_listed_100_per_page_with_previous_id_and_search() {
    let sim = sim(260).await;
    let g = sim.control().gradient().clone();
    let all = g.clients();
    assert!(all.len() > 200, "{}", all.len());
    let (status, first) = raw(&sim, Method::GET, "/organization/clients", None, None).await;
    assert_eq!(status, 200);
    assert_eq!(first["meta"], json!({"total": all.len(), "hasMore": true}));
    let page = first["clients"].as_array().unwrap();
    assert_eq!(page.len(), 100);
    assert_eq!(page[0], json!({"id": all[0].0, "name": all[0].1}));
    let last = page[99]["id"].as_str().unwrap();
    let path = format!("/organization/clients?previousId={last}");
    let (_, second) = raw(&sim, Method::GET, &path, None, None).await;
    assert_eq!(second["clients"][0]["id"], all[100].0.as_str(), "the page after the cursor");

    let name = &all[7].1;
    let word = name.split_whitespace().next().unwrap().to_uppercase();
    let path = format!("/organization/clients?search={}", url_encode(&word));
    let (status, found) = raw(&sim, Method::GET, &path, None, None).await;
    assert_eq!(status, 200);
    let names: Vec<&str> =
        found["clients"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert!(names.contains(&name.as_str()), "{word} finds {name}: {names:?}");
    assert!(names.iter().all(|n| n.to_uppercase().contains(&word)), "{names:?}");
    assert_eq!(found["meta"]["total"], names.len());
}

fn url_encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test]
async fn the_vendor_profile_is_updated_with_patch() {
    let sim = sim(5).await;
    let body = r#"{"name": "Mailprotector MSP", "integrationPortalUrl": "https://portal.example"}"#;
    let (status, out) = raw(&sim, Method::PATCH, "", None, Some(body)).await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(
        (out["status"].clone(), out["message"].clone()),
        (json!(200), json!("Success - Updated Vendor"))
    );
    assert_eq!(out["data"]["name"], "Mailprotector MSP");
    assert_eq!(out["data"]["integrationPortalUrl"], "https://portal.example");
    let (_, vendor) = raw(&sim, Method::GET, "", None, None).await;
    assert_eq!(vendor["data"]["name"], "Mailprotector MSP", "kept");
    assert_eq!(sim.control().gradient().vendor_name(), "Mailprotector MSP");

    let (status, out) = raw(&sim, Method::PATCH, "", None, Some("{}")).await;
    assert_eq!(status, 400);
    assert_eq!(error_shape(400, &out), "Must provide at least one property value");
}

#[tokio::test]
async fn a_service_is_updated_with_patch_and_keeps_its_id() {
    let sim = sim(5).await;
    let create = r#"{"name": "CloudFilter", "description": "x", "category": "security",
                     "subcategory": "email security"}"#;
    let (status, vendor) = raw(&sim, Method::POST, "/service", None, Some(create)).await;
    assert_eq!(status, 201);
    let id = vendor["skus"][0]["id"].as_str().unwrap().to_owned();
    let path = format!("/service/{id}");
    let patch = r#"{"description": "Inbound filtering", "supportContact": "help@example.com"}"#;
    let (status, out) = raw(&sim, Method::PATCH, &path, None, Some(patch)).await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(out["message"], "Success - Updated Service");
    assert_eq!(out["data"]["id"], id.as_str());
    assert_eq!(out["data"]["description"], "Inbound filtering");
    assert_eq!(out["data"]["supportContact"], "help@example.com");
    assert_eq!(out["data"]["name"], "CloudFilter", "untouched");
    let (_, got) = raw(&sim, Method::GET, &path, None, None).await;
    assert_eq!(got["data"]["description"], "Inbound filtering");
    // The SDK sends no body at all: nothing changes.
    let (status, _) = raw(&sim, Method::PATCH, &path, None, None).await;
    assert_eq!(status, 200);

    let bad = r#"{"category": "Security"}"#;
    let (status, out) = raw(&sim, Method::PATCH, &path, None, Some(bad)).await;
    assert_eq!(status, 400);
    assert!(error_shape(400, &out).contains("category"), "{out}");
    let (status, out) =
        raw(&sim, Method::PATCH, "/service/0123456789abcdef01234567", None, Some("{}")).await;
    assert_eq!(status, 404);
    error_shape(404, &out);
    let (status, out) = raw(&sim, Method::PATCH, "/service/nope", None, Some("{}")).await;
    assert_eq!(
        (status, error_shape(400, &out).as_str()),
        (400, "You have provided an invalid Id type")
    );
}

#[tokio::test]
async fn every_refusal_under_the_prefix_has_the_one_error_shape() {
    let sim = sim(5).await;
    let g = sim.control().gradient().clone();

    let (status, out) = raw(&sim, Method::GET, "/no/such/route", None, None).await;
    assert_eq!(status, 404);
    assert_eq!(error_shape(404, &out), "Cannot GET /api/vendor-api/no/such/route");
    let (status, out) = raw(&sim, Method::GET, "/organization/nope", Some("bad"), None).await;
    assert_eq!(status, 404, "an unknown route is 404 whatever the token");
    error_shape(404, &out);

    for (method, path) in [
        (Method::PUT, "/service"),
        (Method::DELETE, "/organization/accounts"),
        (Method::GET, "/service/0123456789abcdef01234567/count"),
        (Method::POST, ""),
        (Method::DELETE, "/organization/accounts/1"),
    ] {
        let (status, out) = raw(&sim, method.clone(), path, None, None).await;
        assert_eq!(status, 405, "{method} {path}: {out}");
        let msg = error_shape(405, &out);
        assert_eq!(msg, format!("Cannot {method} /api/vendor-api{path}"));
    }
    assert!(g.requests().status(405) >= 5, "wrong methods are counted");

    let (status, out) = raw(&sim, Method::GET, "/organization", Some("not-a-token"), None).await;
    assert_eq!((status, error_shape(401, &out).as_str()), (401, "Unauthorized"));
    g.revoke_partner_key();
    let (status, out) = raw(&sim, Method::GET, "/organization/accounts", None, None).await;
    assert_eq!((status, error_shape(401, &out).as_str()), (401, "Unauthorized"));
    g.restore_partner_key();

    for (method, path) in [
        (Method::POST, "/organization/accounts"),
        (Method::POST, "/service"),
        (Method::PATCH, ""),
        (Method::PATCH, "/organization/accounts/1"),
        (Method::POST, "/service/0123456789abcdef01234567/count"),
    ] {
        let (status, out) = raw(&sim, method.clone(), path, None, Some("{\"name\": ")).await;
        assert_eq!(status, 400, "{method} {path}: {out}");
        assert_eq!(error_shape(400, &out), "body must be valid JSON");
    }

    let (status, out) = raw(&sim, Method::GET, "/alerting/debug/1", None, None).await;
    assert_eq!((status, error_shape(404, &out).as_str()), (404, "Vendor Profile Not Found"));
}
