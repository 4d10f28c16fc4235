//! The HTML dashboard (`GET /`) through the real router with a seeded store: totals equal
//! `/v1/reconciliation`'s summary, rows needing action come first, the filter form narrows
//! the rows, upstream names are escaped, nothing loads from elsewhere, and the headers are
//! strict.

use axum::http::StatusCode;
use chrono::Utc;
use mpsync::health::{Health, Source};
use mpsync::store::Store;
use serde_json::Value;

use crate::support::api::{app, get, open};
use crate::support::dashboard::{hostile, many, seed_history};
use crate::support::reconcile::sample;

/// The value of attribute `name` in an HTML fragment (the first occurrence).
fn attr<'a>(fragment: &'a str, name: &str) -> Option<&'a str> {
    let start = fragment.find(&format!(" {name}=\""))? + name.len() + 3;
    let len = fragment[start..].find('"')?;
    Some(&fragment[start..start + len])
}

/// The text inside the element with `id` (up to its first closing tag).
fn text_of<'a>(body: &'a str, id: &str) -> &'a str {
    let at = body.find(&format!("id=\"{id}\"")).unwrap_or_else(|| panic!("no #{id} in {body}"));
    let start = at + body[at..].find('>').unwrap() + 1;
    let len = body[start..].find('<').unwrap();
    &body[start..start + len]
}

/// (status, account) of each row of the rows table, in page order.
fn rows(body: &str) -> Vec<(String, Option<String>)> {
    let start = body.find("<table id=\"rows\">").expect("the rows table");
    let end = start + body[start..].find("</table>").unwrap();
    body[start..end]
        .split("<tr")
        .filter_map(|tr| {
            let head = &tr[..tr.find('>')?];
            let status = attr(head, "data-status")?.to_string();
            Some((status, attr(head, "data-account").map(str::to_string)))
        })
        .collect()
}

fn statuses(body: &str) -> Vec<String> {
    rows(body).into_iter().map(|(s, _)| s).collect()
}

async fn seeded() -> (tempfile::TempDir, Store, axum::Router) {
    let (dir, store) = open();
    seed_history(&store).await;
    store.save_reconciliation(&sample()).await.unwrap();
    let app = app(&store, &Health::new(Utc::now()));
    (dir, store, app)
}

#[tokio::test]
async fn totals_match_the_json_summary() {
    let (_dir, _store, app) = seeded().await;
    let page = get(&app, "/").await;
    assert_eq!(page.status, StatusCode::OK);
    let json: Value = serde_json::from_str(&get(&app, "/v1/reconciliation").await.body).unwrap();
    let summary = &json["summary"];
    for (status, n) in summary["by_status"].as_object().unwrap() {
        assert_eq!(
            text_of(&page.body, &format!("count-{status}")),
            n.as_u64().unwrap().to_string(),
            "{status}"
        );
    }
    assert_eq!(text_of(&page.body, "impact-under"), "7.00");
    assert_eq!(
        text_of(&page.body, "impact-under"),
        format!("{:.2}", summary["impact_under_billed"].as_f64().unwrap())
    );
    assert_eq!(
        text_of(&page.body, "impact-over"),
        format!("{:.2}", summary["impact_over_billed"].as_f64().unwrap())
    );
    assert_eq!(text_of(&page.body, "attention"), summary["attention"].to_string());
    assert_eq!(text_of(&page.body, "rows-total"), summary["rows"].to_string());
    assert_eq!(rows(&page.body).len(), json["count"].as_u64().unwrap() as usize);
}

#[tokio::test]
async fn rows_needing_action_come_before_ok_rows() {
    let (_dir, _store, app) = seeded().await;
    let order = statuses(&get(&app, "/").await.body);
    assert_eq!(
        order,
        vec!["under_billed", "unbilled", "unmapped_customer", "unmapped_product", "match"],
        "money leaking first, then missing mappings, what is fine last"
    );
}

#[tokio::test]
async fn filters_by_status_and_account_narrow_the_rows_and_stay_in_the_form() {
    let (_dir, _store, app) = seeded().await;
    let page = get(&app, "/?status=under_billed&account=").await;
    assert_eq!(statuses(&page.body), vec!["under_billed"]);
    assert!(page.body.contains("<option value=\"under_billed\" selected>"), "kept selected");
    // The self-refresh reloads the same URL, so the filters survive it.
    assert!(page.body.contains("<meta http-equiv=\"refresh\" content=\"60\">"));

    let page = get(&app, "/?status=&account=A1").await;
    assert_eq!(rows(&page.body), vec![("match".to_string(), Some("A1".to_string()))]);
    assert_eq!(
        attr(&page.body[page.body.find("id=\"f-account\"").unwrap()..], "value"),
        Some("A1")
    );
    // By name, ignoring case, as /v1/reconciliation does.
    let page = get(&app, "/?account=leak+company").await;
    assert_eq!(rows(&page.body), vec![("under_billed".to_string(), Some("A2".to_string()))]);
    let page = get(&app, "/?status=under_billed,unbilled").await;
    assert_eq!(statuses(&page.body), vec!["under_billed", "unbilled"]);
    let page = get(&app, "/?status=match&account=A2").await;
    assert!(rows(&page.body).is_empty());
    assert!(page.body.contains("No rows match these filters."));

    // A status that does not exist is named, with the valid ones, and every row is shown.
    let page = get(&app, "/?status=underbilled").await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    let err = text_of(&page.body, "filter-error");
    assert!(err.contains("underbilled") && err.contains("under_billed"), "{err}");
    assert_eq!(statuses(&page.body).len(), 5);
}

#[tokio::test]
async fn a_row_shows_its_vendor_history_as_an_inline_chart() {
    let (_dir, _store, app) = seeded().await;
    let body = get(&app, "/?account=A2").await.body;
    let svg_at = body.find("<svg class=\"spark\"").expect("a sparkline on the A2 row");
    let svg = &body[svg_at..svg_at + body[svg_at..].find("</svg>").unwrap()];
    assert!(svg.contains("12 users now; 2 changes since 2026-11-27 06:00 UTC"), "{svg}");
    assert!(svg.contains("<path d=\"M"), "{svg}");
}

#[tokio::test]
async fn unmapped_customers_show_their_suggestion_and_the_line_to_paste() {
    let (_dir, _store, app) = seeded().await;
    let body = get(&app, "/").await.body;
    let section = &body[body.find("id=\"unmapped\"").unwrap()..];
    assert!(section.starts_with("id=\"unmapped\"><h2>Unmapped customers (1)</h2>"), "{section}");
    assert!(section.contains("<tr data-customer=\"329\">"));
    assert!(section.contains("<td>CloudFilter 5</td>"), "users per product: {section}");
    assert!(section.contains("250 ACME Inc"));
    assert_eq!(
        text_of(section, "toml"),
        "[customers]\n329 = &quot;250&quot;  # Acme, Inc. ↔ ACME Inc\n"
    );
}

#[tokio::test]
async fn sources_show_last_success_age_and_staleness_and_runs_are_listed() {
    let (_dir, store, _) = seeded().await;
    let health = Health::new(Utc::now());
    health.set_configured(Source::Billing, true, Some("csv"));
    health.record_success(Source::Mailprotector, 3, Utc::now() - chrono::Duration::seconds(90));
    health.record_success(Source::Billing, 4, Utc::now() - chrono::Duration::hours(3));
    health.record_failure(Source::Billing, Utc::now(), "HTTP 503 from the PSA");
    let body = get(&app(&store, &health), "/").await.body;
    let source = |name: &str| {
        let start = body.find(&format!("<tr data-source=\"{name}\">")).unwrap();
        body[start..start + body[start..].find("</tr>").unwrap()].to_string()
    };
    let vendor = source("vendor");
    assert!(vendor.contains(">fresh<") && vendor.contains("run #3 at "), "{vendor}");
    assert!(vendor.contains(">1m 30s<") || vendor.contains(">1m 31s<"), "{vendor}");
    let billing = source("billing");
    assert!(billing.contains(">failing<"), "{billing}");
    assert!(billing.contains("HTTP 503 from the PSA") && billing.contains(">3h 0m<"), "{billing}");
    assert!(source("push").contains(">not configured<"));
    let runs = &body[body.find("id=\"runs-table\"").expect("the runs table")..];
    assert_eq!(runs.matches("<tr><td class=\"n\">").count(), 3, "the three seeded vendor runs");
}

#[tokio::test]
async fn before_the_first_reconciliation_the_page_says_so() {
    let (_dir, store) = open();
    let page = get(&app(&store, &Health::new(Utc::now())), "/").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(text_of(&page.body, "no-reconciliation").contains("no reconciliation yet"));
    assert!(page.body.contains("<tr data-source=\"vendor\">"));
}

#[tokio::test]
async fn names_from_upstream_are_escaped() {
    let (_dir, store) = open();
    store.save_reconciliation(&hostile()).await.unwrap();
    let app = app(&store, &Health::new(Utc::now()));
    for uri in ["/", "/?account=%22%3E%3Cimg+src%3Dx+onerror%3Dalert(1)%3E"] {
        let body = get(&app, uri).await.body;
        let lower = body.to_ascii_lowercase();
        assert!(!lower.contains("<script"), "no script element may appear: {body}");
        assert!(!lower.contains("<img"), "no injected element: {body}");
        assert!(!body.contains("<b>"), "the account id cannot open a tag: {body}");
        assert!(body.contains("&lt;script&gt;alert(&#39;pwned&#39;)&lt;/script&gt;"), "{body}");
    }
    let body = get(&app, "/").await.body;
    // The quote in the account id cannot end the attribute it is in.
    assert!(body.contains("data-account=\"X&quot;&gt;&lt;b&gt;\""), "{body}");
    assert!(body.contains("href=\"?account=X%22%3E%3Cb%3E\""), "{body}");
    // The suggestion for customer 666 (account 77) carries both names, escaped too.
    assert!(body.contains("<tr data-customer=\"666\">"), "{body}");
    assert!(body.contains("77 &lt;SCRIPT&gt;"), "{body}");
}

#[tokio::test]
async fn the_page_loads_nothing_from_elsewhere_and_sends_strict_headers() {
    let (_dir, _store, app) = seeded().await;
    let page = get(&app, "/").await;
    let h = |name: &str| page.headers.get(name).map(|v| v.to_str().unwrap().to_string());
    assert_eq!(h("content-type").as_deref(), Some("text/html; charset=utf-8"));
    assert_eq!(h("cache-control").as_deref(), Some("no-store"));
    assert_eq!(h("x-content-type-options").as_deref(), Some("nosniff"));
    let csp = h("content-security-policy").expect("a CSP");
    assert!(csp.starts_with("default-src 'none';"), "{csp}");
    assert!(csp.contains("form-action 'self'") && csp.contains("frame-ancestors 'none'"));
    assert!(!csp.contains("http") && !csp.contains('*') && !csp.contains("unsafe"), "{csp}");
    // The one inline stylesheet carries the nonce the policy allows; a new one per response.
    let nonce = csp.split("'nonce-").nth(1).unwrap().split('\'').next().unwrap();
    assert!(page.body.contains(&format!("<style nonce=\"{nonce}\">")), "style nonce");
    let again = get(&app, "/").await;
    assert_ne!(again.headers.get("content-security-policy").unwrap().to_str().unwrap(), csp);

    let body = page.body.to_ascii_lowercase();
    for bad in
        ["src=\"http", "href=\"http", "src='http", "href='http", "url(", "@import", "<script"]
    {
        assert!(!body.contains(bad), "the page must not contain {bad:?}");
    }
    assert_eq!(body.matches("<link ").count(), 1, "only the empty data: icon");
    assert!(body.contains("<link rel=\"icon\" href=\"data:,\">"));
    // Every link stays on this server: a path or a query on this page.
    for href in body.split(" href=\"").skip(1) {
        let target = &href[..href.find('"').unwrap()];
        assert!(
            target.starts_with('/') && !target.starts_with("//")
                || target.starts_with('?')
                || target == "data:,",
            "link to {target:?} leaves the server"
        );
    }
    // Other routes keep their own content types; only `/` is HTML.
    let json = get(&app, "/v1/reconciliation").await;
    assert!(json.headers["content-type"].to_str().unwrap().starts_with("application/json"));
}

#[tokio::test]
async fn a_large_reconciliation_shows_the_rows_needing_action_and_says_what_it_left_out() {
    let (_dir, store) = open();
    store.save_reconciliation(&many(600, 350, 600)).await.unwrap();
    let app = app(&store, &Health::new(Utc::now()));
    let page = get(&app, "/").await;
    assert_eq!(text_of(&page.body, "count-under_billed"), "350");
    assert_eq!(text_of(&page.body, "rows-total"), "600");
    assert_eq!(text_of(&page.body, "impact-under"), "700.00");
    let shown = statuses(&page.body);
    assert_eq!(shown.len(), 300, "the page is capped");
    assert!(shown.iter().all(|s| s == "under_billed"), "only rows needing action fit");
    assert!(
        text_of(&page.body, "rows-count")
            .starts_with("300 of 600 matching rows shown on this page"),
        "{}",
        text_of(&page.body, "rows-count")
    );
    // The next page carries on where this one stopped: the other 50 under-billed rows, then
    // the rest by rank.
    let link = &page.body[page.body.find("id=\"next-page\" href=\"").unwrap() + 21..];
    let link = link[..link.find('"').unwrap()].replace("&amp;", "&");
    let second = get(&app, &format!("/{link}")).await;
    let shown2 = statuses(&second.body);
    assert_eq!(shown2.len(), 300, "{link}");
    assert_eq!(shown2.iter().filter(|s| *s == "under_billed").count(), 50);
    let third = &second.body[second.body.find("id=\"next-page\" href=\"").unwrap() + 21..];
    let third = third[..third.find('"').unwrap()].replace("&amp;", "&");
    assert_eq!(statuses(&get(&app, &format!("/{third}")).await.body).len(), 0, "600 rows in all");
    // The account choices are those of the page's rows (the page never reads every row).
    let datalist = &page.body[page.body.find("<datalist id=\"accounts\">").unwrap()..];
    let datalist = &datalist[..datalist.find("</datalist>").unwrap()];
    assert_eq!(datalist.matches("<option ").count(), 300);
    // A filter brings the rest into view.
    let page = get(&app, "/?status=match").await;
    assert_eq!(statuses(&page.body).len(), 250);
    assert!(text_of(&page.body, "rows-count").starts_with("250 of 250 matching rows shown,"));
}

#[tokio::test]
async fn many_unmapped_customers_are_listed_up_to_a_limit_and_the_rest_is_pointed_to() {
    let (_dir, store) = open();
    store.save_reconciliation(&many(300, 0, 50)).await.unwrap();
    let body = get(&app(&store, &Health::new(Utc::now())), "/").await.body;
    assert_eq!(text_of(&body, "count-unmapped_customer"), "250");
    let section = &body[body.find("id=\"unmapped\"").unwrap()..];
    assert!(section.contains("<h2>Unmapped customers (250)</h2>"));
    assert_eq!(section.matches("<tr data-customer=").count(), 200);
    assert!(text_of(section, "unmapped-more").starts_with("50 more unmapped customers"));
    // Each has one account whose name matches ("Customer 7" / "Account 7" do not), so none
    // is offered for pasting.
    assert!(!section.contains("id=\"toml\""));
}
