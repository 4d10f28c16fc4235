//! The stored reconciliation through the store and the HTTP API: round trip, JSON and CSV of
//! `/v1/reconciliation` with filters, and mapping state in `/v1/customers`.

use std::collections::BTreeMap;

use axum::http::StatusCode;
use chrono::Utc;
use mpsync::health::Health;
use mpsync::model::RunKind;
use mpsync::store::Store;
use serde_json::Value;

use crate::support::api::{self, Reply, app, open};
use crate::support::reconcile::{at, sample};

/// `GET uri` on a router over `store`.
async fn get(store: &Store, uri: &str) -> Reply {
    api::get(&app(store, &Health::new(Utc::now())), uri).await
}

fn json(r: &Reply) -> Value {
    serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", r.body))
}

#[tokio::test]
async fn a_saved_reconciliation_reads_back_whole_and_a_new_one_replaces_it() {
    let (_dir, store) = open();
    assert_eq!(store.latest_reconciliation().await.unwrap(), None, "none before the first save");
    let rec = sample();
    store.save_reconciliation(&rec).await.unwrap();
    let back = store.latest_reconciliation().await.unwrap().unwrap();
    assert_eq!(back, rec);
    assert_eq!((back.vendor_run, back.billing_run), (Some(7), Some(8)));

    let mut newer = rec.clone();
    newer.computed_at = at(11);
    store.save_reconciliation(&newer).await.unwrap();
    assert_eq!(store.latest_reconciliation().await.unwrap().unwrap().computed_at, at(11));
}

#[tokio::test]
async fn the_endpoint_says_when_there_is_no_reconciliation_yet() {
    let (_dir, store) = open();
    let r = get(&store, "/v1/reconciliation").await;
    assert_eq!(r.status, StatusCode::OK);
    let v = json(&r);
    assert_eq!(v["rows"], serde_json::json!([]));
    assert!(v["note"].as_str().unwrap().contains("no reconciliation yet"));
    let csv = get(&store, "/v1/reconciliation?format=csv").await;
    assert_eq!(csv.body.lines().count(), 1, "just the header: {}", csv.body);
}

#[tokio::test]
async fn json_carries_rows_summary_and_runs_and_filters_narrow_the_rows() {
    let (_dir, store) = open();
    store.save_reconciliation(&sample()).await.unwrap();

    let v = json(&get(&store, "/v1/reconciliation").await);
    assert_eq!((v["vendor_run"].as_u64(), v["billing_run"].as_u64()), (Some(7), Some(8)));
    assert_eq!(v["count"], 5);
    let statuses: BTreeMap<String, String> = v["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let id = r["account"].as_str().map(str::to_string).unwrap_or_else(|| {
                r["customer"]
                    .as_u64()
                    .map(|c| c.to_string())
                    .unwrap_or_else(|| r["product"].as_str().unwrap().to_string())
            });
            (id, r["status"].as_str().unwrap().to_string())
        })
        .collect();
    let expected: BTreeMap<String, String> = [
        ("A1", "match"),
        ("A2", "under_billed"),
        ("A3", "unbilled"),
        ("329", "unmapped_customer"),
        ("XtraMail", "unmapped_product"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(statuses, expected);
    assert_eq!(v["summary"]["by_status"]["under_billed"], 1);
    assert_eq!(v["summary"]["impact_under_billed"], 7.0);
    let leak = v["rows"].as_array().unwrap().iter().find(|r| r["account"] == "A2").unwrap();
    assert_eq!(leak["kind"], "service");
    assert_eq!(
        (leak["vendor_quantity"].as_u64(), leak["billed_quantity"].as_f64()),
        (Some(12), Some(10.0))
    );
    assert_eq!(leak["monthly_impact"], 7.0);
    assert_eq!(leak["account_name"], "Leak Company");
    assert!(leak.get("evidence").is_none(), "evidence only when asked for: {leak}");
    let v = json(&get(&store, "/v1/reconciliation?evidence=true").await);
    let leak = v["rows"].as_array().unwrap().iter().find(|r| r["account"] == "A2").unwrap();
    assert_eq!(leak["evidence"]["vendor_run"], 7);
    assert_eq!(leak["evidence"]["lines"][0]["source_ref"], "agreement 7 addition A2");
    assert_eq!(leak["evidence"]["customers"][0]["name"], "Leak, Co");

    let only = |uri: &str| {
        let store = store.clone();
        let uri = uri.to_string();
        async move {
            let v = json(&get(&store, &uri).await);
            v["rows"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["status"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        only("/v1/reconciliation?status=under_billed,unbilled").await,
        vec!["under_billed", "unbilled"]
    );
    assert_eq!(only("/v1/reconciliation?account=A2").await, vec!["under_billed"]);
    assert_eq!(only("/v1/reconciliation?account=leak%20company").await, vec!["under_billed"]);
    assert_eq!(only("/v1/reconciliation?product=XtraMail").await, vec!["unmapped_product"]);
    assert_eq!(only("/v1/reconciliation?product=MP-CF&status=match").await, vec!["match"]);
    // The summary always covers every row, whatever the filter.
    let v = json(&get(&store, "/v1/reconciliation?status=match").await);
    assert_eq!((v["count"].as_u64(), v["summary"]["rows"].as_u64()), (Some(1), Some(5)));
}

#[tokio::test]
async fn bad_filters_are_400_naming_the_valid_values() {
    let (_dir, store) = open();
    let r = get(&store, "/v1/reconciliation?status=underbilled").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let msg = json(&r)["error"].as_str().unwrap().to_string();
    assert!(msg.contains("\"underbilled\"") && msg.contains("under_billed"), "{msg}");
    let r = get(&store, "/v1/reconciliation?format=xml").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(json(&r)["error"].as_str().unwrap().contains("json or csv"));
}

#[tokio::test]
async fn csv_has_a_header_and_one_quoted_line_per_row() {
    let (_dir, store) = open();
    store.save_reconciliation(&sample()).await.unwrap();
    let r =
        get(&store, "/v1/reconciliation?format=csv&status=under_billed,unmapped_customer").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.content_type(), "text/csv; charset=utf-8");
    let lines: Vec<&str> = r.body.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(lines.len(), 3, "{}", r.body);
    assert_eq!(lines[0], mpsync::reconcile::CSV_COLUMNS.join(","));
    let col = |name: &str| mpsync::reconcile::CSV_COLUMNS.iter().position(|c| *c == name).unwrap();
    let leak: Vec<&str> = lines[1].split(',').collect();
    assert_eq!(leak[col("status")], "under_billed");
    assert_eq!(leak[col("account")], "A2");
    assert_eq!(leak[col("vendor_quantity")], "12");
    assert_eq!(leak[col("billed_quantity")], "10");
    assert_eq!(leak[col("delta")], "2");
    assert_eq!(leak[col("unit_price")], "3.50");
    assert_eq!(leak[col("monthly_impact")], "7.00");
    // A name with a comma is quoted, so the line still has every column.
    assert!(lines[2].contains("\"Acme, Inc.\""), "{}", lines[2]);
    assert!(lines[2].starts_with("unmapped_customer,unmapped_customer,"));
}

#[tokio::test]
async fn customers_show_mapping_state_and_suggestions() {
    let (_dir, store) = open();
    let rec = sample();
    let id = store.begin_run(RunKind::Vendor, at(9)).await.unwrap();
    let customers = vec![
        mpsync::model::CustomerUsage { id: 1, name: "Match Co".into(), counts: BTreeMap::new() },
        mpsync::model::CustomerUsage {
            id: 329,
            name: "Acme, Inc.".into(),
            counts: BTreeMap::new(),
        },
    ];
    store.commit_vendor_run(id, at(9), BTreeMap::new(), customers).await.unwrap();

    // Before any reconciliation the counts are served, without mapping state.
    let v = json(&get(&store, "/v1/customers").await);
    assert_eq!(v["customers"][0]["mapping"], Value::Null);

    store.save_reconciliation(&rec).await.unwrap();
    let v = json(&get(&store, "/v1/customers").await);
    let by_id = |id: u64| {
        v["customers"].as_array().unwrap().iter().find(|c| c["id"] == id).unwrap().clone()
    };
    let mapped = by_id(1);
    assert_eq!(mapped["mapping"]["state"], "mapped");
    assert_eq!(mapped["mapping"]["account"], "A1");
    assert_eq!(mapped["mapping"]["account_name"], "Match Company");
    let acme = by_id(329);
    assert_eq!(acme["mapping"]["state"], "unmapped");
    assert_eq!(acme["suggestions"][0]["account"], "250");
    assert_eq!(acme["suggestions"][0]["normalized"], "acme");
    assert_eq!(acme["suggestions"][0]["stanza"], "329 = \"250\"  # Acme, Inc. ↔ ACME Inc");
    assert_eq!(v["unmapped"], 1);
}

#[tokio::test]
async fn pages_follow_next_cursor_to_every_row_once_and_the_last_page_has_none() {
    let (_dir, store) = open();
    let rec = crate::support::reconcile::large(1234);
    store.save_reconciliation(&rec).await.unwrap();
    let mut seen = Vec::new();
    let mut uri = "/v1/reconciliation?limit=500".to_string();
    let mut pages = 0;
    loop {
        let v = json(&get(&store, &uri).await);
        pages += 1;
        assert_eq!(v["summary"]["rows"], 1234, "the summary covers every row on every page");
        let rows = v["rows"].as_array().unwrap();
        assert!(rows.iter().all(|r| r.get("evidence").is_none()), "no evidence unless asked");
        seen.extend(rows.iter().map(|r| r["account"].as_str().unwrap().to_string()));
        match v["next_cursor"].as_str() {
            Some(c) => uri = format!("/v1/reconciliation?limit=500&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(pages, 3, "500 + 500 + 234");
    let mut expected: Vec<String> = rec
        .rows
        .iter()
        .map(|r| match &r.key {
            mpsync::reconcile::RowKey::Service { account, .. } => account.clone(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(seen, expected, "key order, no row twice, none left out");
    expected.dedup();
    assert_eq!(expected.len(), 1234);
    // The default page is 500 rows; evidence comes when asked for.
    let v = json(&get(&store, "/v1/reconciliation?evidence=true&limit=2").await);
    assert_eq!(v["rows"].as_array().unwrap().len(), 2);
    assert_eq!(v["rows"][0]["evidence"]["customers"][0]["count"], 10);
    assert_eq!(json(&get(&store, "/v1/reconciliation").await)["count"], 500);
    // CSV is every matching row at once.
    let csv = get(&store, "/v1/reconciliation?format=csv").await;
    assert_eq!(csv.body.lines().count(), 1 + 1234);
    let column = mpsync::reconcile::CSV_COLUMNS.iter().position(|c| *c == "vendor_run").unwrap();
    let first = csv.body.lines().nth(1).unwrap();
    assert_eq!(first.split(',').nth(column), Some("7"), "vendor run column: {first}");
}

#[tokio::test]
async fn a_cursor_or_limit_the_server_never_gave_is_a_400_that_says_what_to_use() {
    let (_dir, store) = open();
    store.save_reconciliation(&sample()).await.unwrap();
    for (uri, says) in [
        ("/v1/reconciliation?cursor=zz", "next_cursor"),
        ("/v1/reconciliation?limit=0", "limit"),
        ("/v1/reconciliation?limit=lots", "limit"),
        ("/v1/reconciliation?evidence=maybe", "evidence"),
    ] {
        let r = get(&store, uri).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{uri}");
        assert!(r.body.contains(says), "{uri}: {}", r.body);
    }
    // Filters and pages combine: one status, one row per page.
    let v = json(&get(&store, "/v1/reconciliation?status=under_billed,match&limit=1").await);
    assert_eq!(v["count"], 1);
    let c = v["next_cursor"].as_str().expect("a second matching row");
    let v = json(
        &get(&store, &format!("/v1/reconciliation?status=under_billed,match&limit=1&cursor={c}"))
            .await,
    );
    assert_eq!(v["count"], 1);
    assert!(v.get("next_cursor").is_none(), "{v}");
}

#[tokio::test]
async fn a_recompute_keeps_since_of_unchanged_rows_and_removes_rows_that_are_gone() {
    let (_dir, store) = open();
    let first = sample();
    store.save_reconciliation(&first).await.unwrap();
    // A recompute through the store's row-by-row path: the previous rows come from the
    // table, one key at a time.
    let mut inputs_rows = first.rows.clone();
    inputs_rows.pop();
    let head = first.head();
    let customers = first.customers.clone();
    let n = inputs_rows.len();
    let priors = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = priors.clone();
    store
        .replace_reconciliation(head.vendor_run, head.computed_at, move |prior, sink| {
            for row in inputs_rows {
                seen.lock().unwrap().push(prior(&row.key).map(|p| p.since));
                sink(row);
            }
            (head, customers)
        })
        .await
        .unwrap();
    let priors = priors.lock().unwrap().clone();
    assert_eq!(priors.len(), n);
    for (p, row) in priors.iter().zip(&first.rows) {
        assert_eq!(p.as_ref(), Some(&row.since), "the previous row is read by key");
    }
    let back = store.latest_reconciliation().await.unwrap().unwrap();
    assert_eq!(back.rows, first.rows[..n], "the last row is gone, the others unchanged");
}

#[tokio::test]
async fn a_store_that_kept_the_reconciliation_as_one_value_is_converted_at_open() {
    let dir = crate::support::common::TestDir::new();
    std::fs::create_dir_all(dir.state_dir()).unwrap();
    let path = dir.state_dir().join(mpsync::store::FILE_NAME);
    let rec = sample();
    {
        // What mpsync wrote before the rows had their own table: format byte 1, then JSON.
        let db = redb::Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let old: redb::TableDefinition<&str, &[u8]> =
                redb::TableDefinition::new("reconciliation_v1");
            let mut t = txn.open_table(old).unwrap();
            let mut value = vec![1u8];
            value.extend(serde_json::to_vec(&rec).unwrap());
            t.insert("latest", value.as_slice()).unwrap();
            // Schema version 1, as every store of that layout says.
            let meta: redb::TableDefinition<&str, u64> = redb::TableDefinition::new("meta");
            txn.open_table(meta).unwrap().insert("schema_version", 1).unwrap();
        }
        txn.commit().unwrap();
    }
    let store = tokio::task::spawn_blocking({
        let dir = dir.state_dir();
        move || Store::open(&dir).unwrap()
    })
    .await
    .unwrap();
    assert_eq!(store.latest_reconciliation().await.unwrap(), Some(rec));
    let tables = store.row_counts().await.unwrap();
    assert!(!tables.contains_key("reconciliation_v1"), "{tables:?}");
    assert_eq!(tables["reconciliation_rows_v2"], 5);
}
