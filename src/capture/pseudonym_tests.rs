use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::*;
use crate::sim::replay::bundle::{Answer, Exchange, Request};

fn ex(path: &str, status: u16, body: Value) -> Exchange {
    Exchange {
        request: Request { method: "GET".into(), path: path.into(), query: BTreeMap::new() },
        response: Answer { status, headers: BTreeMap::new(), body: Body::Json(body) },
    }
}

fn file(upstream: Upstream, exchanges: Vec<Exchange>) -> ExchangeFile {
    ExchangeFile { upstream, exchanges }
}

fn body(f: &ExchangeFile, i: usize) -> &Value {
    match &f.exchanges[i].response.body {
        Body::Json(v) => v,
        other => panic!("not JSON: {other:?}"),
    }
}

fn sample() -> Vec<ExchangeFile> {
    let mp = file(
        Upstream::Mailprotector,
        vec![
            // Users come first in the file but are pseudonymized after their domain's records.
            ex(
                "/user_groups/109/users",
                200,
                json!([{"id": 883326, "name": "abigail.thompson", "first_name": "Abigail",
                    "last_name": "Thompson", "user_type": {"id": 1, "name": "User"},
                    "user_group": {"id": 109, "name": "CloudMail with Bracket"},
                    "domain": {"id": 102, "name": "mpdemo.net"},
                    "primary_address": "abigail.thompson@mpdemo.net",
                    "email_addresses": ["abigail.thompson@mpdemo.net", "Abigail.Thompson@MPDEMO.COM"],
                    "created_at": "2010-05-12T10:33:24.000Z"}]),
            ),
            ex(
                "/resellers/188/customers",
                200,
                json!([{"id": 329, "name": "Mailprotector group",
                    "provider": {"id": 65, "name": "United States"},
                    "reseller": {"id": 188, "name": "Mailprotector Direct (old)"}}]),
            ),
            ex(
                "/resellers/188/domains",
                200,
                json!([{"id": 102, "name": "mpdemo.net", "account": {"id": 329, "name": "Mailprotector group"},
                        "domain_status": {"id": 2, "name": "Active"}, "parent": null},
                       {"id": 103, "name": "mpdemo.com", "parent": {"id": 102, "name": "mpdemo.net"}}]),
            ),
            ex(
                "/user_groups/109/services",
                200,
                json!([{"id": 9529, "service_type": "CloudFilter Email Security",
                    "user_group": {"id": 109, "name": "CloudMail with Bracket"},
                    "domain": {"id": 102, "name": "mpdemo.net"}}]),
            ),
            ex(
                "/domains/555/user_groups",
                404,
                json!({"error": "domain mpdemo.net of Mailprotector group: ask abigail.thompson@mpdemo.net"}),
            ),
        ],
    );
    let cw = file(
        Upstream::Connectwise,
        vec![
            ex(
                "/company/companies",
                200,
                json!([{"id": 250, "identifier": "MPGroup", "name": "Mailprotector group",
                "status": {"id": 1, "name": "Active"}}]),
            ),
            ex(
                "/finance/agreements/7/additions",
                200,
                json!([{"id": 1, "product": {"id": 12, "identifier": "MP-CF",
                "description": "CloudFilter per user"}, "quantity": 56.0, "billCustomer": "Billable",
                "effectiveDate": "2024-01-01T00:00:00Z", "description": "Mailboxes of mpdemo.net"}]),
            ),
        ],
    );
    let g = file(
        Upstream::Gradient,
        vec![
            ex(
                "",
                200,
                json!({"status": 200, "data": {"name": "Mailprotector", "skus": [{"id": "s1", "name": "CloudFilter"}]},
                "message": "Success - Retrieved Vendor"}),
            ),
            ex(
                "/organization/accounts",
                200,
                json!([{"id": "329", "name": "Mailprotector group", "description": ""}]),
            ),
        ],
    );
    vec![mp, cw, g]
}

#[test]
fn one_name_gets_one_pseudonym_across_records_addresses_and_upstreams() {
    let mut files = sample();
    Pseudonymizer::new(vec![]).bundle(&mut files);
    let (mp, cw, g) = (&files[0], &files[1], &files[2]);
    let customers = body(mp, 1);
    let domains = body(mp, 2);
    let users = body(mp, 0);
    let services = body(mp, 3);
    // Customers before domains before users, whatever the file order.
    assert_eq!(customers[0]["reseller"]["name"], "Reseller 1");
    assert_eq!(customers[0]["name"], "Customer 1");
    assert_eq!(domains[0]["name"], "domain-1.example");
    assert_eq!(domains[0]["account"]["name"], "Customer 1");
    assert_eq!(domains[1]["name"], "domain-2.example");
    assert_eq!(domains[1]["parent"]["name"], "domain-1.example");
    assert_eq!(services[0]["domain"]["name"], "domain-1.example");
    assert_eq!(services[0]["user_group"]["name"], users[0]["user_group"]["name"]);
    assert_eq!(users[0]["domain"]["name"], "domain-1.example");
    assert_eq!(users[0]["name"], "user-1");
    assert_eq!(users[0]["primary_address"], "user-1@domain-1.example");
    assert_eq!(
        users[0]["email_addresses"],
        json!(["user-1@domain-1.example", "user-1@domain-2.example"])
    );
    assert_ne!(users[0]["first_name"], "Abigail");
    assert_ne!(users[0]["last_name"], "Thompson");
    // The same customer in the PSA and in Gradient.
    assert_eq!(body(cw, 0)[0]["name"], "Customer 1");
    assert_eq!(body(g, 1)[0]["name"], "Customer 1");
    assert_eq!(body(cw, 0)[0]["identifier"], "customer-1");
    let text =
        serde_json::to_string(&files.iter().map(|f| &f.exchanges).collect::<Vec<_>>()).unwrap();
    for original in
        ["mpdemo", "Mailprotector group", "abigail", "Thompson", "MPGroup", "CloudMail with"]
    {
        assert!(
            !text.to_lowercase().contains(&original.to_lowercase()),
            "{original} left in {text}"
        );
    }
}

#[test]
fn ids_counts_dates_products_and_coded_values_are_kept() {
    let before = sample();
    let mut files = sample();
    Pseudonymizer::new(vec![]).bundle(&mut files);
    let (mp, cw, g) = (&files[0], &files[1], &files[2]);
    let users = body(mp, 0);
    assert_eq!(users[0]["id"], 883326);
    assert_eq!(users[0]["user_type"], json!({"id": 1, "name": "User"}));
    assert_eq!(users[0]["created_at"], "2010-05-12T10:33:24.000Z");
    assert_eq!(body(mp, 1)[0]["provider"], json!({"id": 65, "name": "United States"}));
    assert_eq!(body(mp, 2)[0]["domain_status"], json!({"id": 2, "name": "Active"}));
    assert_eq!(body(mp, 3)[0]["service_type"], "CloudFilter Email Security");
    let add = &body(cw, 1)[0];
    assert_eq!(add["product"], body(&before[1], 1)[0]["product"], "PSA product kept whole");
    assert_eq!(
        (add["quantity"].clone(), add["billCustomer"].clone()),
        (json!(56.0), json!("Billable"))
    );
    assert_eq!(add["effectiveDate"], "2024-01-01T00:00:00Z");
    assert_ne!(add["description"], "Mailboxes of mpdemo.net");
    assert_eq!(body(cw, 0)[0]["status"]["name"], "Active");
    assert_eq!(body(g, 0), body(&before[2], 0), "the vendor catalogue is kept");
    assert_eq!(body(g, 1)[0]["id"], "329");
    assert_eq!(body(g, 1)[0]["description"], "", "empty stays empty");
}

#[test]
fn messages_keep_their_words_without_names_addresses_or_hosts() {
    let mut files = sample();
    files[1].exchanges[0].response.headers.insert(
        "link".into(),
        "<https://cw.acme-msp.com/v4_6_release/apis/3.0/company/companies?page=2>; rel=\"next\""
            .into(),
    );
    let origins = vec![
        (
            Upstream::Mailprotector,
            "https://cw.acme-msp.com".to_owned(),
            "https://mailprotector.example".to_owned(),
        ),
        (
            Upstream::Connectwise,
            "https://cw.acme-msp.com".to_owned(),
            "https://connectwise.example".to_owned(),
        ),
    ];
    Pseudonymizer::new(origins).bundle(&mut files);
    let err = &body(&files[0], 4)["error"];
    assert_eq!(err, "domain domain-1.example of Customer 1: ask user-1@domain-1.example");
    assert_eq!(
        files[1].exchanges[0].response.headers["link"],
        "<https://connectwise.example/v4_6_release/apis/3.0/company/companies?page=2>; rel=\"next\""
    );
    let mut p = Pseudonymizer::new(vec![]);
    let text = p.text(Upstream::Gradient, "write to bob@example.org, or é@x");
    assert_eq!(text, "write to user-1@domain-1.example, or é@x");
}

#[test]
fn the_same_input_gives_the_same_bundle() {
    let (mut a, mut b) = (sample(), sample());
    Pseudonymizer::new(vec![]).bundle(&mut a);
    Pseudonymizer::new(vec![]).bundle(&mut b);
    assert_eq!(a, b);
}
