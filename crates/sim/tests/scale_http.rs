//! A 10,000-customer simulator answers the listing walks a large reseller needs: the last page
//! of customers and of the reseller-wide user listing are exact.

use reqwest::StatusCode;

use crate::support::{Api, start};

#[tokio::test]
async fn ten_thousand_customers_page_exactly() {
    let sim = start(2026, 10_000).await;
    let ctl = sim.control().clone();
    let api = Api::new(&sim, Some(&ctl.reseller_key()));
    let last = api.get("/resellers/188/customers?per_page=100&page=100").await;
    assert_eq!(last.status, StatusCode::OK);
    assert_eq!(last.ids().len(), 100);
    assert_eq!(last.pagination()["total_pages"], 100);
    assert_eq!(*last.ids().last().unwrap(), *ctl.read().main_customers().last().unwrap());

    let first = api.get("/resellers/188/users?per_page=100").await;
    let total = first.pagination()["total"].as_u64().unwrap();
    let pages = first.pagination()["total_pages"].as_u64().unwrap();
    let expected_total: u64 = {
        let ds = ctl.read();
        let all = ds.main_customers();
        all.iter()
            .flat_map(|c| ds.domains_of_customer(*c))
            .filter(|d| ds.domains()[d].parent.is_none())
            .flat_map(|d| ds.groups_of_domain(d))
            .map(|g| ds.groups()[&g].user_count() + ds.groups()[&g].alias_count())
            .sum()
    };
    assert_eq!(total, expected_total);
    assert!(total > 300_000);
    let tail = api.get(&format!("/resellers/188/users?per_page=100&page={pages}")).await;
    let expect_tail = total - (pages - 1) * 100;
    assert_eq!(tail.ids().len() as u64, expect_tail);
    let past = api.get(&format!("/resellers/188/users?per_page=100&page={}", pages + 1)).await;
    assert_eq!(past.ids().len(), 0);
}
