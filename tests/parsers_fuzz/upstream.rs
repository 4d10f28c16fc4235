//! Upstream answers (Mailprotector, ConnectWise, Gradient) through the clients' decoding:
//! arbitrary bytes, generated listings with their paging headers, damaged bodies, and the
//! rule that no credential ever reaches an error.

use super::harness::{Decoded, FUZZ_SECRET, Target, check_upstream, decode};
use proptest::prelude::*;
use serde_json::json;

use super::mutate::{apply, damage};

/// The fuzz input for `target` with `status`, one header and a body (see `split_input`).
fn input(target: Target, status_index: u8, header: &str, body: &str) -> Vec<u8> {
    let a = Target::ALL.iter().position(|x| *x == target).unwrap() as u8;
    let mut out = vec![a, status_index];
    out.extend(header.bytes().filter(|b| *b != b'\n'));
    out.push(b'\n');
    out.extend(body.bytes());
    out
}

fn customers(ids: &[u64]) -> String {
    let items: Vec<_> =
        ids.iter().map(|id| json!({"id": id, "name": format!("Customer {id}")})).collect();
    serde_json::Value::Array(items).to_string()
}

fn companies(ids: &[u64]) -> String {
    let items: Vec<_> = ids
        .iter()
        .map(|id| json!({"id": id, "identifier": format!("C{id}"), "name": "Acme, Inc.", "deletedFlag": id % 5 == 0}))
        .collect();
    serde_json::Value::Array(items).to_string()
}

fn shown(r: &Result<Decoded, super::harness::DecodeError>) -> String {
    match r {
        Ok(d) => format!("{d:?}"),
        Err(e) => format!("{e} / {e:?}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(192))]

    #[test]
    fn arbitrary_bytes_are_decoded_or_refused_naming_the_endpoint(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        check_upstream(&bytes);
    }

    #[test]
    fn json_like_bodies_of_every_answer_never_panic(
        a in 0u8..13,
        s in any::<u8>(),
        header in "[ -~]{0,60}",
        body in "[\\[\\]{}\":,0-9a-z_ .eE+-]{0,200}",
    ) {
        check_upstream(&input(Target::ALL[a as usize], s, &header, &body));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn a_mailprotector_page_keeps_every_item_and_follows_x_pagination(
        ids in proptest::collection::btree_set(any::<u64>(), 0..30),
        total_pages in proptest::option::of(0u64..50),
        damages in proptest::collection::vec(damage(), 1..3),
    ) {
        let ids: Vec<u64> = ids.into_iter().collect();
        let body = customers(&ids);
        let header = total_pages.map(|t| json!({"page": 1, "per_page": 30, "total_pages": t}).to_string()).unwrap_or_default();
        let got = decode(Target::MailprotectorCustomers, 200, header.as_bytes(), body.as_bytes());
        let more = !ids.is_empty() && total_pages.is_none_or(|t| t > 1);
        prop_assert_eq!(got.ok(), Some(Decoded::Page { items: ids.len(), next_page: more.then_some(2) }));
        check_upstream(&input(Target::MailprotectorCustomers, 0, &header, &apply(&body, &damages)));
    }

    #[test]
    fn a_connectwise_page_follows_its_link_header(
        ids in proptest::collection::btree_set(1u64..1_000_000, 0..30),
        next in proptest::option::of(0u64..20),
        damages in proptest::collection::vec(damage(), 1..3),
    ) {
        let ids: Vec<u64> = ids.into_iter().collect();
        let body = companies(&ids);
        let header = match next {
            Some(p) => format!("<https://cw.example/v4_6_release/apis/3.0/company/companies?pageSize=1000&page={p}>; rel=\"next\", <https://cw.example/x?page=20>; rel=\"last\""),
            None => String::new(),
        };
        let got = decode(Target::ConnectwiseCompanies, 200, header.as_bytes(), body.as_bytes());
        match next {
            Some(p) if p <= 1 => {
                let e = got.expect_err("a next link to an earlier page is refused").to_string();
                prop_assert!(e.contains("GET /company/companies") && e.contains("has no later page"), "{}", e);
            }
            Some(p) => prop_assert_eq!(got.ok(), Some(Decoded::Page { items: ids.len(), next_page: Some(p) })),
            None => {
                let next_page = (!ids.is_empty()).then_some(2);
                prop_assert_eq!(got.ok(), Some(Decoded::Page { items: ids.len(), next_page }));
            }
        }
        check_upstream(&input(Target::ConnectwiseCompanies, 0, &header, &apply(&body, &damages)));
    }

    #[test]
    fn damaged_additions_skus_and_services_are_decoded_or_refused_naming_the_endpoint(
        which in 0usize..3,
        damages in proptest::collection::vec(damage(), 1..4),
    ) {
        let (answer, body) = [
            (Target::ConnectwiseAdditions, r#"[{"id":9,"product":{"identifier":"MP-CF"},"quantity":56,"unitPrice":3.5,"billCustomer":"Billable","effectiveDate":"2024-01-01T00:00:00Z","cancelledDate":"2030-01-01"}]"#),
            (Target::GradientSkus, r#"{"status":"success","data":{"skus":[{"id":"a1","name":"CloudFilter"},{"_id":7,"name":"Bracket"}]}}"#),
            (Target::MailprotectorServices, r#"{"service_types":{"hosting":"CloudFilter","addons":["Bracket",{"name":"SafeSend"}]}}"#),
        ][which];
        prop_assert!(decode(answer, 200, b"", body.as_bytes()).is_ok());
        check_upstream(&input(answer, 0, "", &apply(body, &damages)));
    }
}

/// A server that echoes the credential back (in a field of the wrong type, an error body,
/// or an unreadable date) must not get it into an error message or a log line.
#[test]
fn an_echoed_credential_never_reaches_an_error() {
    let s = FUZZ_SECRET;
    let cases = [
        // Any status text is read (verbatim when unknown, with keys redacted by the client):
        // the echo here is in a body that lacks the status.
        (Target::GradientOrganization, 200, format!(r#"{{"name":"{s}"}}"#)),
        (Target::MailprotectorCustomers, 200, format!(r#"[{{"id":"{s}"}}]"#)),
        (Target::MailprotectorUsers, 200, format!(r#"[{{"id":1,"user_type":{{"id":"{s}"}}}}]"#)),
        (Target::MailprotectorUserGroups, 200, format!(r#"[{{"id":1,"user_count":"{s}"}}]"#)),
        (Target::MailprotectorServices, 200, format!(r#"{{"service_types":"{s}"}}"#)),
        (
            Target::ConnectwiseAdditions,
            200,
            format!(r#"[{{"id":1,"product":{{"id":1}},"quantity":1,"effectiveDate":"{s}"}}]"#),
        ),
        (Target::GradientAccounts, 200, format!(r#"[{{"id":{{"k":"{s}"}}}}]"#)),
        (Target::GradientSkus, 200, format!(r#"{{"skus":[{{"id":true,"name":"{s}"}}]}}"#)),
        (Target::MailprotectorReseller, 401, format!(r#"{{"error":"bad key {s}"}}"#)),
        (Target::ConnectwiseCompanies, 400, format!(r#"{{"errors":[{{"message":"{s}"}}]}}"#)),
        (Target::GradientAccounts, 500, format!("upstream said {s}")),
    ];
    for (answer, status, body) in cases {
        let got = decode(answer, status, b"", body.as_bytes());
        let text = shown(&got);
        assert!(!text.contains(s), "{answer:?} {status}: {text}");
        if status != 500 {
            assert!(got.is_err(), "{answer:?} {status}: {text}");
            assert!(text.contains(answer.endpoint().pattern), "{answer:?}: {text}");
        }
    }
}

#[test]
fn retry_after_is_read_as_seconds_or_a_date_and_clamped() {
    let pause = |h: &str| match decode(Target::MailprotectorUsers, 429, h.as_bytes(), b"") {
        Ok(Decoded::RateLimited { pause }) => pause.map(|d| d.as_secs()),
        other => panic!("{other:?}"),
    };
    assert_eq!(pause("7"), Some(7));
    assert_eq!(pause("99999999999"), Some(120));
    assert_eq!(pause("soon"), None);
    assert_eq!(pause("Thu, 01 Jan 2099 00:00:00 GMT"), Some(120));
}
