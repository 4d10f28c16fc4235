//! A whole (tiny) account served by a stub: user types the public record does not name are
//! reported with their users and never counted unless configured; users whose domain has no
//! listed owner are counted nowhere and reported.

use std::collections::HashMap;

use axum::extract::Request;
use axum::response::IntoResponse;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::*;

use crate::mailprotector::user_types::CountedTypes;
use crate::model::Walk;

/// The stub account's key; users 10 and 11 have type names that echo it.
const KEY: &str = "mp-live/Stub+Key\"1\"";

fn user(id: u64, kind: Value, group: u64, domain: u64) -> Value {
    json!({"id": id, "user_type": kind, "user_group": {"id": group}, "domain": {"id": domain}})
}

/// Customer 1 owns domain 10 (group 100: CloudFilter); domain 20 names customer 2, which the
/// customer listing does not show; user 9 names domain 99, which no listing shows.
fn answer(path: &str) -> Option<Value> {
    Some(match path {
        "/api/v1/resellers/188/customers" => json!([{"id": 1, "name": "Acme"}]),
        "/api/v1/resellers/188/domains" => json!([
            {"id": 10, "name": "acme.test", "account": {"id": 1}},
            {"id": 20, "name": "late.test", "account": {"id": 2}},
        ]),
        "/api/v1/resellers/188/users" => json!([
            user(1, json!({"id": 1, "name": "User"}), 100, 10),
            user(2, json!({"id": 1, "name": "User"}), 100, 10),
            user(3, json!({"id": 7, "name": "Shared Mailbox"}), 100, 10),
            user(4, json!({"id": 7, "name": "Shared Mailbox"}), 100, 10),
            user(5, json!("Resource"), 100, 10),
            user(6, json!({"id": 3, "name": "Mailing List"}), 100, 10),
            user(7, json!({"id": 1, "name": "User"}), 200, 20),
            user(8, json!({"id": 7}), 200, 20),
            user(9, json!({"id": 1, "name": "User"}), 300, 99),
            user(10, json!({"id": 8, "name": format!("Echo {KEY} {}", b64(KEY))}), 100, 10),
            user(11, json!(format!("Tier {}", KEY.to_uppercase())), 100, 10),
        ]),
        "/api/v1/user_groups/100/services" => {
            json!([{"id": 1, "service_type": "CloudFilter Email Security"}])
        }
        _ => return None,
    })
}

async fn run(types: CountedTypes) -> CollectOutput {
    let app = axum::Router::new().fallback(|req: Request| async move {
        // One page per listing: later pages are empty.
        let later_page = req
            .uri()
            .query()
            .unwrap_or("")
            .split('&')
            .any(|p| p.strip_prefix("page=").is_some_and(|n| n != "1"));
        match answer(req.uri().path()) {
            Some(_) if later_page => axum::Json(json!([])).into_response(),
            Some(v) => axum::Json(v).into_response(),
            None => (axum::http::StatusCode::NOT_FOUND, r#"{"error":"no route"}"#).into_response(),
        }
    });
    let served = super::super::stub::serve(app, KEY, 2, types).await;
    let cfg = served.config.clone();
    let client = MailprotectorClient::new(&cfg).unwrap();
    let cache = HashMap::new();
    let input = CollectInput {
        config: &cfg,
        cache: &cache,
        walk_stats: None,
        now: chrono::Utc::now(),
        cancel: CancellationToken::new(),
    };
    let out = collect_usage(&client, input).await.expect("the run completes");
    drop(served);
    out
}

#[tokio::test]
async fn unknown_user_types_are_reported_and_counted_only_when_configured() {
    let out = run(CountedTypes::default()).await;
    assert_eq!(out.walk, Walk::Users);
    assert_eq!(out.customers.len(), 1);
    assert_eq!(out.customers[0].counts.get("CloudFilter"), Some(&2), "two users of type User");
    let t = &out.counting.user_types;
    let find = |id: Option<u64>, name: &str| {
        t.iter()
            .find(|x| x.id == id && x.name.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("{id:?} {name}: {t:?}"))
    };
    let shared = find(Some(7), "Shared Mailbox");
    assert_eq!((shared.users, shared.counted, shared.known), (2, false, false));
    let resource = find(None, "Resource");
    assert_eq!((resource.users, resource.counted, resource.known), (1, false, false));
    let lists = find(Some(3), "Mailing List");
    assert_eq!((lists.users, lists.counted, lists.known), (1, false, true));
    assert_eq!(find(Some(1), "User").users, 2, "users outside listed customers are not tallied");

    // Listed in count_user_types, type 7 counts.
    let out = run(CountedTypes::new([1, 7]).unwrap()).await;
    assert_eq!(out.customers[0].counts.get("CloudFilter"), Some(&4));
    assert!(out.counting.user_types.iter().any(|x| x.id == Some(7) && x.counted));
}

#[tokio::test]
async fn what_has_no_listed_owner_is_counted_nowhere_and_reported() {
    let out = run(CountedTypes::default()).await;
    let o = &out.counting.orphans;
    assert_eq!(o.domain_count, 1);
    assert_eq!(o.domains, vec![crate::model::OrphanDomain { id: 20, owner: 2 }]);
    assert_eq!(o.users, 2, "user 7 (domain 20) and user 9 (domain 99), both of type User");
    assert_eq!(o.user_ids, vec![7, 9]);
    assert_eq!(o.group_ids, vec![200, 300]);
    let summary = o.summary();
    assert!(summary.starts_with("counted nowhere: 1 domain(s)"), "{summary}");
    assert!(summary.contains("20 (owner 2)") && summary.contains("users 7, 9"), "{summary}");
}

fn b64(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(s)
}

#[tokio::test]
async fn type_names_that_echo_the_key_are_reported_without_it() {
    let out = run(CountedTypes::default()).await;
    let t = &out.counting.user_types;
    let echo = t.iter().find(|x| x.id == Some(8)).unwrap_or_else(|| panic!("type 8: {t:?}"));
    assert_eq!(echo.name.as_deref(), Some("Echo <redacted> <redacted>"));
    assert_eq!((echo.users, echo.counted), (1, false));
    let named = t.iter().find(|x| x.id.is_none() && x.name.as_deref() != Some("Resource"));
    assert_eq!(named.and_then(|x| x.name.as_deref()), Some("Tier <redacted>"), "{t:?}");
    let shown = format!("{:?}", out.counting);
    for form in [KEY.to_owned(), KEY.to_uppercase(), b64(KEY)] {
        assert!(!shown.to_lowercase().contains(&form.to_lowercase()), "{form} in {shown}");
    }
}

mod rolling_refresh {
    use std::collections::HashMap;
    use std::time::Duration;

    use chrono::{DateTime, TimeZone, Utc};

    use super::super::lists_to_read;
    use crate::model::CachedServices;

    const DAY: Duration = Duration::from_secs(24 * 3600);

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
    }

    /// Runs `runs` hourly collections of `groups` groups (the first with an empty cache);
    /// the number of lists each run read, and the oldest list after each run.
    fn hourly(groups: u64, runs: i64) -> (Vec<usize>, Vec<chrono::Duration>) {
        let ids: Vec<u64> = (1..=groups).collect();
        let mut cache: HashMap<u64, CachedServices> = HashMap::new();
        let (mut reads, mut oldest) = (Vec::new(), Vec::new());
        for run in 0..runs {
            let now = t0() + chrono::Duration::hours(run);
            let read = lists_to_read(&ids, &cache, DAY, now);
            reads.push(read.len());
            for g in read {
                cache.insert(g, CachedServices { products: vec![], fetched_at: now });
            }
            oldest.push(cache.values().map(|c| now - c.fetched_at).max().unwrap());
        }
        (reads, oldest)
    }

    #[test]
    fn hourly_runs_read_a_flat_share_and_no_list_gets_older_than_the_refresh() {
        let (reads, oldest) = hourly(21_058, 72);
        assert_eq!(reads[0], 21_058, "the first run reads every list");
        let steady = &reads[1..];
        let mut sorted = steady.to_vec();
        sorted.sort_unstable();
        let median = sorted[sorted.len() / 2];
        assert!(median > 0 && median <= 21_058 / 24 + 1, "{median}");
        let max = *steady.iter().max().unwrap();
        assert!(max * 2 <= median * 3, "a steady run read {max} lists, the median {median}");
        assert!(oldest.iter().all(|age| *age < chrono::Duration::hours(24)), "{oldest:?}");
    }

    #[test]
    fn new_and_expired_groups_are_read_and_a_long_pause_reads_everything() {
        let ids: Vec<u64> = vec![1, 2, 3];
        let mut cache = HashMap::new();
        cache.insert(1, CachedServices { products: vec![], fetched_at: t0() });
        let now = t0() + chrono::Duration::minutes(1);
        let mut read = lists_to_read(&ids, &cache, DAY, now);
        read.sort_unstable();
        assert_eq!(read, vec![2, 3], "missing lists are read; a minute later 1 is not due");
        let later = t0() + chrono::Duration::hours(30);
        assert_eq!(lists_to_read(&ids, &cache, DAY, later).len(), 3);
    }
}
