//! Shared helpers for the Mailprotector client tests: a config pointing at a simulator, a
//! fast retry policy, one collection run, and the request counts the dataset implies.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use chrono::Utc;
use mpsync::config::{CountDefinition, MailprotectorConfig, Schedule, Secret, UpstreamLimits};
use mpsync::mailprotector::{
    CollectError, CollectInput, CollectOutput, MailprotectorClient, WalkStats, collect_usage,
};
use mpsync::model::{CachedServices, CustomerUsage};
use mpsync::upstream::RetryPolicy;
use mpsync_sim::{Dataset, SimHandle, SimOptions, SimServer};
use tokio_util::sync::CancellationToken;

/// Starts a simulator with `customers` customers from `seed`.
pub async fn start(seed: u64, customers: u32) -> SimHandle {
    SimServer::start(SimOptions { seed, customers, ..SimOptions::default() })
        .await
        .expect("start sim")
}

/// A config for the simulator's main reseller and key: generous limits, one count per product.
pub fn config(sim: &SimHandle) -> MailprotectorConfig {
    MailprotectorConfig {
        base_url: sim.base_url().parse().unwrap(),
        api_key: Secret::new(sim.control().reseller_key(), "the test's reseller key"),
        reseller_id: sim.control().reseller_id(),
        schedule: Schedule::parse("0 0 0 1 1 *").unwrap(),
        limits: UpstreamLimits {
            rate_limit: 2000.0,
            burst: 100,
            max_in_flight: 8,
            timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(2),
        },
        services_refresh: Duration::from_secs(24 * 3600),
        count_each_product: true,
        count_user_types: Default::default(),
        counts: Vec::<CountDefinition>::new(),
    }
}

/// Retries with short waits so fault tests stay fast.
pub fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 5,
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(50),
        default_rate_limit_pause: Duration::from_millis(50),
        deadline: Duration::from_secs(60),
        ..RetryPolicy::default()
    }
}

/// A client for `cfg` with [`fast_retry`].
pub fn client(cfg: &MailprotectorConfig) -> MailprotectorClient {
    MailprotectorClient::with_retry(cfg, fast_retry()).expect("client")
}

/// One collection run with the given cache and walk sizes, its requests counted on their own.
pub async fn collect(
    client: &MailprotectorClient,
    cfg: &MailprotectorConfig,
    cache: &HashMap<u64, CachedServices>,
    walk_stats: Option<WalkStats>,
) -> Result<CollectOutput, CollectError> {
    let input = CollectInput {
        config: cfg,
        cache,
        walk_stats,
        now: Utc::now(),
        cancel: CancellationToken::new(),
    };
    collect_usage(&client.scoped(), input).await
}

/// Counts as customer → product → users (the shape of the simulator's ground truth).
pub fn as_map(usage: &[CustomerUsage]) -> BTreeMap<u64, BTreeMap<String, u64>> {
    usage.iter().map(|c| (c.id, c.counts.clone())).collect()
}

/// What a complete run must request from this dataset, derived from the data itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expected {
    /// Pages of the customer listing.
    pub customer_pages: u64,
    /// Pages of the reseller-wide domain listing (aliases included).
    pub domain_pages: u64,
    /// Non-alias domains: one user-group listing each.
    pub primary_domains: u64,
    /// User groups with counted users (type User) on those domains: one service list each
    /// when cold.
    pub groups_with_users: u64,
    /// Users (all four types) in the reseller-wide listing.
    pub users_listed: u64,
}

impl Expected {
    /// Pages of the reseller-wide user listing.
    pub fn user_pages(&self) -> u64 {
        self.users_listed.div_ceil(100).max(1)
    }
}

/// Derives [`Expected`] from the dataset (pages of 100, the sim's maximum per_page).
pub fn expected(ds: &Dataset) -> Expected {
    let customers = ds.main_customers();
    let domains: Vec<u64> = customers.iter().flat_map(|c| ds.domains_of_customer(*c)).collect();
    let primary: Vec<u64> =
        domains.iter().copied().filter(|d| ds.domains()[d].parent.is_none()).collect();
    let groups: Vec<u64> = primary.iter().flat_map(|d| ds.groups_of_domain(*d)).collect();
    let with_users = groups.iter().filter(|g| ds.groups()[g].count_of(&[1]) > 0).count() as u64;
    let users_listed = groups.iter().map(|g| ds.groups()[g].listed_count()).sum();
    let pages = |n: usize| (n as u64).div_ceil(100).max(1);
    Expected {
        customer_pages: pages(customers.len()),
        domain_pages: pages(domains.len()),
        primary_domains: primary.len() as u64,
        groups_with_users: with_users,
        users_listed,
    }
}
