//! The baseline: the API walked the way vendor SDK scripts do it — one request at a time, no
//! cache, the customer listing, then each customer's domains, each primary domain's user
//! groups and every group's services, every time. Same client-side rate limit as the real
//! client; it skips alias domains so that its counts are right and comparable.

use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use governor::{Quota, RateLimiter};
use serde::de::DeserializeOwned;
use tokio::time::Instant;

use mpsync::mailprotector::models::{Customer, Domain, UserGroup, parse_services};

use crate::setup::{ChildReport, Counts, load_config, self_hwm_kb, write_counts};

/// Page size the scripts ask for (the API's maximum).
const PER_PAGE: usize = 100;

struct Naive {
    http: reqwest::Client,
    base: String,
    auth: String,
    limiter: governor::DefaultDirectRateLimiter,
    requests: BTreeMap<String, u64>,
    rate_limited: u64,
    retries: u64,
}

impl Naive {
    /// One GET, waiting on the rate limiter first; a 429 is slept off and retried.
    async fn get<T: DeserializeOwned>(
        &mut self,
        path: &str,
        pattern: &str,
        query: &[(&str, String)],
    ) -> Result<T> {
        let mut attempt = 0;
        loop {
            self.limiter.until_ready().await;
            *self.requests.entry(pattern.to_owned()).or_insert(0) += 1;
            if attempt > 0 {
                self.retries += 1;
            }
            let resp = self
                .http
                .get(format!("{}{path}", self.base))
                .header("Authorization", &self.auth)
                .query(query)
                .send()
                .await
                .with_context(|| format!("GET {path}"))?;
            let status = resp.status();
            if status.as_u16() == 429 && attempt < 10 {
                self.rate_limited += 1;
                attempt += 1;
                let wait = resp
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(1);
                tokio::time::sleep(Duration::from_secs(wait)).await;
                continue;
            }
            if !status.is_success() {
                bail!("GET {path}: {status}");
            }
            let bytes = resp.bytes().await?;
            return serde_json::from_slice(&bytes).with_context(|| format!("GET {path}: body"));
        }
    }

    /// Pages until a page is shorter than `per_page` (the usual script loop).
    async fn list<T: DeserializeOwned>(&mut self, path: &str, pattern: &str) -> Result<Vec<T>> {
        let mut all = Vec::new();
        for page in 1.. {
            let q = [("page", page.to_string()), ("per_page", PER_PAGE.to_string())];
            let items: Vec<T> = self.get(path, pattern, &q).await?;
            let n = items.len();
            all.extend(items);
            if n < PER_PAGE {
                break;
            }
        }
        Ok(all)
    }
}

/// Walks the whole reseller with the config at `config` and writes the counts.
pub async fn run(config: &Path, counts_out: &Path) -> Result<ChildReport> {
    let cfg = load_config(config)?;
    let mp = cfg.mailprotector;
    mpsync::upstream::install_crypto_provider();
    let burst = NonZeroU32::new(mp.limits.burst.max(1)).unwrap_or(NonZeroU32::MIN);
    let period = Duration::from_secs_f64(1.0 / mp.limits.rate_limit);
    let quota = Quota::with_period(period).context("rate")?.allow_burst(burst);
    let mut n = Naive {
        http: reqwest::Client::builder().timeout(mp.limits.timeout).build()?,
        base: format!("{}/api/v1", mp.base_url.as_str().trim_end_matches('/')),
        auth: format!("Bearer {}", mp.api_key.expose()),
        limiter: RateLimiter::direct(quota),
        requests: BTreeMap::new(),
        rate_limited: 0,
        retries: 0,
    };
    let started = Instant::now();
    let rid = mp.reseller_id;
    let customers: Vec<Customer> =
        n.list(&format!("/resellers/{rid}/customers"), "GET /resellers/{id}/customers").await?;
    let mut counts: Counts = BTreeMap::new();
    for c in &customers {
        let per = counts.entry(c.id).or_default();
        let domains: Vec<Domain> =
            n.list(&format!("/customers/{}/domains", c.id), "GET /customers/{id}/domains").await?;
        for d in domains.iter().filter(|d| !d.is_alias()) {
            let groups: Vec<UserGroup> = n
                .list(&format!("/domains/{}/user_groups", d.id), "GET /domains/{id}/user_groups")
                .await?;
            for g in groups {
                let users = g.user_count().map_err(anyhow::Error::msg)?;
                let v: serde_json::Value = n
                    .get(
                        &format!("/user_groups/{}/services", g.id),
                        "GET /user_groups/{id}/services",
                        &[],
                    )
                    .await?;
                let mut products = parse_services(&v).map_err(anyhow::Error::msg)?;
                products.sort();
                products.dedup();
                for p in products {
                    *per.entry(p).or_insert(0) += users;
                }
            }
        }
    }
    let wall_s = started.elapsed().as_secs_f64();
    write_counts(counts_out, &counts)?;
    Ok(ChildReport {
        wall_s,
        requests: n.requests,
        retries: n.retries,
        rate_limited: n.rate_limited,
        walk: None,
        services_fetched: 0,
        customers: customers.len(),
        vm_hwm_kb: self_hwm_kb(),
    })
}
