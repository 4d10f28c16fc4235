//! One collection run: every customer of the reseller counted per product, or a failure with
//! the reason — never partial counts.
//!
//! Requests are spent frugally: reseller-wide listings (customers, domains), then either one
//! user-group listing per non-alias domain or the reseller-wide user listing — whichever the
//! previous run's sizes say is cheaper — and service lists only for groups whose cached list
//! is missing or older than `services_refresh`.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::{StreamExt, TryStreamExt, stream};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::count::{GroupFacts, count_usage};
use super::walk::{Walk, WalkStats};
use super::{CollectError, MailprotectorClient};
use crate::config::MailprotectorConfig;
use crate::model::{CachedServices, CustomerUsage};
use crate::upstream::StatsSnapshot;

/// What a run needs besides the client.
#[derive(Debug, Clone)]
pub struct CollectInput<'a> {
    /// Count definitions and `services_refresh`.
    pub config: &'a MailprotectorConfig,
    /// Service lists per user group from earlier runs.
    pub cache: &'a HashMap<u64, CachedServices>,
    /// Sizes seen by the last run (`None` on the first).
    pub walk_stats: Option<WalkStats>,
    /// The run's time (cache ages are judged against it; fetched lists are stamped with it).
    pub now: DateTime<Utc>,
    /// Stops the run at the next page boundary.
    pub cancel: CancellationToken,
}

/// A completed run: every customer counted.
#[derive(Debug, Clone)]
pub struct CollectOutput {
    /// Every customer of the reseller, ordered by id, with its counts.
    pub customers: Vec<CustomerUsage>,
    /// Requests this run made.
    pub requests: StatsSnapshot,
    /// The service cache to keep: entries for the groups seen in this run.
    pub cache: HashMap<u64, CachedServices>,
    /// Sizes to keep for the next run's choice of walk.
    pub walk_stats: WalkStats,
    /// The walk this run took.
    pub walk: Walk,
    /// Service lists read (not served from cache) in this run.
    pub services_fetched: u64,
}

/// Runs one collection with `client`'s shared budget. Requests are counted in `client`'s
/// accounting scope: pass `client.scoped()` for per-run numbers (`CollectOutput::requests`).
pub async fn collect_usage(
    client: &MailprotectorClient,
    input: CollectInput<'_>,
) -> Result<CollectOutput, CollectError> {
    let client = client.clone();
    let cancel = &input.cancel;
    let started = Instant::now();
    let (customers, domains) = tokio::try_join!(client.customers(cancel), client.domains(cancel))?;
    let customer_ids: HashSet<u64> = customers.iter().map(|c| c.id).collect();
    let mut counted_domains: HashMap<u64, u64> = HashMap::new();
    for d in &domains {
        let Some(cid) = d.customer_id() else {
            let ep = "GET /resellers/{id}/domains";
            let reason = format!("domain {} names no owning customer (account)", d.id);
            return Err(client.upstream().bad_response(ep, reason, b"").into());
        };
        // Aliases are skipped (their users are the primary's); domains of customers outside
        // the listing (e.g. a sub-reseller's) are not ours to count.
        if !d.is_alias() && customer_ids.contains(&cid) {
            counted_domains.insert(d.id, cid);
        }
    }
    let walk = input.walk_stats.clone().unwrap_or_default().choose(counted_domains.len() as u64);
    tracing::info!(customers = customers.len(), domains = domains.len(), counted_domains = counted_domains.len(),
        walk = ?walk, "mailprotector: listings read; counting users");
    let mut stats = input.walk_stats.clone().unwrap_or_default();
    let groups: Vec<(u64, u64, u64)> = match walk {
        Walk::UserGroups => {
            let groups = walk_user_groups(&client, &counted_domains, cancel).await?;
            stats.user_group_requests = client.stats().requests_to("GET /domains/{id}/user_groups");
            stats.user_group_domains = counted_domains.len() as u64;
            groups
        }
        Walk::Users => {
            let (groups, listed) = walk_users(&client, &counted_domains, cancel).await?;
            stats.users_listed = listed;
            groups
        }
    };
    // Groups without users add nothing; skipping them saves their service calls.
    let groups: Vec<_> = groups.into_iter().filter(|(_, _, users)| *users > 0).collect();
    let (products, cache, fetched) =
        services_for(&client, &input, groups.iter().map(|g| g.0).collect()).await?;
    let facts: Vec<GroupFacts> = groups
        .iter()
        .map(|&(group_id, customer_id, users)| GroupFacts {
            customer_id,
            group_id,
            users,
            products: products.get(&group_id).cloned().unwrap_or_default(),
        })
        .collect();
    let usage =
        count_usage(&customers, &facts, input.config.count_each_product, &input.config.counts);
    stats.walk = Some(walk);
    stats.domains = counted_domains.len() as u64;
    stats.users_counted = facts.iter().map(|f| f.users).sum();
    let requests = client.stats();
    tracing::info!(
        customers = usage.len(),
        requests = requests.total_requests(),
        services_fetched = fetched,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "mailprotector: collection complete"
    );
    Ok(CollectOutput {
        customers: usage,
        requests,
        cache,
        walk_stats: stats,
        walk,
        services_fetched: fetched,
    })
}

/// Progress logging for long walks: at most every few seconds.
struct Progress {
    what: &'static str,
    total: usize,
    done: usize,
    last: Instant,
}

impl Progress {
    fn new(what: &'static str, total: usize) -> Progress {
        Progress { what, total, done: 0, last: Instant::now() }
    }

    fn step(&mut self) {
        self.done += 1;
        if self.last.elapsed() >= Duration::from_secs(5) {
            self.last = Instant::now();
            tracing::info!(
                done = self.done,
                total = self.total,
                "mailprotector: {} in progress",
                self.what
            );
        }
    }
}

/// `(group, customer, users)` from one user-group listing per counted domain, concurrently.
async fn walk_user_groups(
    client: &MailprotectorClient,
    domains: &HashMap<u64, u64>,
    cancel: &CancellationToken,
) -> Result<Vec<(u64, u64, u64)>, CollectError> {
    let mut ids: Vec<(u64, u64)> = domains.iter().map(|(d, c)| (*d, *c)).collect();
    ids.sort_unstable();
    let mut progress = Progress::new("user-group walk", ids.len());
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    let mut results = stream::iter(ids)
        .map(|(domain, customer)| async move {
            client.user_groups(domain, cancel).await.map(|g| (customer, g))
        })
        .buffer_unordered(client.concurrency());
    while let Some((customer, groups)) = results.try_next().await? {
        progress.step();
        for (g, users) in groups {
            if seen.insert(g.id) {
                out.push((g.id, customer, users));
            }
        }
    }
    Ok(out)
}

/// `(group, customer, users)` from the reseller-wide user listing, and the users listed.
async fn walk_users(
    client: &MailprotectorClient,
    domains: &HashMap<u64, u64>,
    cancel: &CancellationToken,
) -> Result<(Vec<(u64, u64, u64)>, u64), CollectError> {
    let mut per_group: HashMap<u64, (u64, u64)> = HashMap::new();
    let mut listed = 0u64;
    let mut last_log = Instant::now();
    client
        .for_each_user_page(cancel, |users| {
            for u in users {
                listed += 1;
                let counted = u.is_counted()?;
                let group = u
                    .user_group
                    .as_ref()
                    .ok_or_else(|| format!("user {} names no user_group", u.id))?
                    .id;
                let domain =
                    u.domain.as_ref().ok_or_else(|| format!("user {} names no domain", u.id))?.id;
                let Some(&customer) = domains.get(&domain) else { continue };
                let entry = per_group.entry(group).or_insert((customer, 0));
                if counted {
                    entry.1 += 1;
                }
            }
            if last_log.elapsed() >= Duration::from_secs(5) {
                last_log = Instant::now();
                tracing::info!(users = listed, "mailprotector: user listing in progress");
            }
            Ok(())
        })
        .await?;
    let mut out: Vec<_> = per_group.into_iter().map(|(g, (c, n))| (g, c, n)).collect();
    out.sort_unstable();
    Ok((out, listed))
}

/// Products per group: fresh cache entries as they are, the rest read now (concurrently).
async fn services_for(
    client: &MailprotectorClient,
    input: &CollectInput<'_>,
    groups: Vec<u64>,
) -> Result<(HashMap<u64, Vec<String>>, HashMap<u64, CachedServices>, u64), CollectError> {
    let refresh =
        chrono::Duration::from_std(input.config.services_refresh).unwrap_or(chrono::Duration::MAX);
    let mut cache = HashMap::with_capacity(groups.len());
    let mut stale = Vec::new();
    for g in groups {
        match input.cache.get(&g) {
            Some(c)
                if input.now.signed_duration_since(c.fetched_at) < refresh
                    && c.fetched_at <= input.now =>
            {
                cache.insert(g, c.clone());
            }
            _ => stale.push(g),
        }
    }
    let fetched = stale.len() as u64;
    let mut progress = Progress::new("service lists", stale.len());
    let cancel = &input.cancel;
    let mut results = stream::iter(stale)
        .map(|g| async move {
            if cancel.is_cancelled() {
                return Err(CollectError::Cancelled);
            }
            client.services(g).await.map(|p| (g, p)).map_err(CollectError::from)
        })
        .buffer_unordered(client.concurrency());
    while let Some((g, products)) = results.try_next().await? {
        progress.step();
        cache.insert(g, CachedServices { products, fetched_at: input.now });
    }
    let products = cache.iter().map(|(g, c)| (*g, c.products.clone())).collect();
    Ok((products, cache, fetched))
}
