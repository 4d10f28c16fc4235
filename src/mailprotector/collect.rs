//! One collection run: every customer of the reseller counted per product, or a failure with
//! the reason — never partial counts.
//!
//! Requests are spent frugally: reseller-wide listings (customers, domains), then the users:
//! the reseller-wide user listing, classified user by user (the count itself), or — only where
//! a run verified that `user_count` equals that count and the per-domain user-group listings
//! are cheaper — those listings ([`super::trust`]). Service lists are read only for groups
//! whose cached list is missing or older than `services_refresh`.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::{StreamExt, TryStreamExt, stream};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::count::{GroupFacts, count_usage};
use super::trust::{self, ListedGroup};
use super::users_walk::walk_users;
use super::walk::{UserCountCheck, Walk, WalkStats};
use super::{CollectError, MailprotectorClient};
use crate::config::MailprotectorConfig;
use crate::model::{CachedServices, CountingReport, CustomerUsage, OrphanDomain, Orphans};
use crate::upstream::StatsSnapshot;

/// What a run needs besides the client.
#[derive(Debug, Clone)]
pub struct CollectInput<'a> {
    /// Count definitions, counted user types and `services_refresh`.
    pub config: &'a MailprotectorConfig,
    /// Service lists per user group from earlier runs.
    pub cache: &'a HashMap<u64, CachedServices>,
    /// Sizes and the `user_count` comparison kept from earlier runs (`None` on the first).
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
    /// Sizes and the `user_count` comparison to keep for the next run.
    pub walk_stats: WalkStats,
    /// The walk whose numbers were counted.
    pub walk: Walk,
    /// Service lists read (not served from cache) in this run.
    pub services_fetched: u64,
    /// How the run counted, for its run record.
    pub counting: CountingReport,
}

/// Runs one collection with `client`'s shared budget. Requests are counted in `client`'s
/// accounting scope: pass `client.scoped()` for per-run numbers (`CollectOutput::requests`).
pub async fn collect_usage(
    client: &MailprotectorClient,
    input: CollectInput<'_>,
) -> Result<CollectOutput, CollectError> {
    let client = client.clone();
    let cancel = &input.cancel;
    let types = &input.config.count_user_types;
    let started = Instant::now();
    let (customers, domains) = tokio::try_join!(client.customers(cancel), client.domains(cancel))?;
    let customer_ids: HashSet<u64> = customers.iter().map(|c| c.id).collect();
    // Non-alias domains of listed customers (the user-group walk lists these), and every
    // domain of a listed customer (users are attributed through them).
    let mut counted_domains: HashMap<u64, u64> = HashMap::new();
    let mut owners: HashMap<u64, u64> = HashMap::new();
    let mut orphans = Orphans::default();
    for d in &domains {
        let Some(cid) = d.customer_id() else {
            let ep = "GET /resellers/{id}/domains";
            let reason = format!("domain {} names no owning customer (account)", d.id);
            return Err(client.upstream().bad_response(ep, reason, b"").into());
        };
        if !customer_ids.contains(&cid) {
            // An owner outside the listing (a listing that lags a change): counted nowhere.
            orphans.domain_count += 1;
            if orphans.domains.len() < Orphans::MAX_LISTED {
                orphans.domains.push(OrphanDomain { id: d.id, owner: cid });
            }
            continue;
        }
        owners.insert(d.id, cid);
        if !d.is_alias() {
            counted_domains.insert(d.id, cid);
        }
    }
    let mut stats = input.walk_stats.clone().unwrap_or_default();
    let n_domains = counted_domains.len() as u64;
    let mut walk = trust::choose_walk(&stats, types, n_domains, input.now);
    tracing::info!(customers = customers.len(), domains = domains.len(), counted_domains = n_domains,
        walk = walk.as_str(), count_user_types = %types, "mailprotector: listings read; counting users");
    let mut checked_now: Option<UserCountCheck> = None;
    let mut groups: Vec<(u64, u64, u64)> = Vec::new();
    let mut user_types = Vec::new();
    if walk == Walk::UserGroups {
        let listed = walk_user_groups(&client, &counted_domains, cancel).await?;
        note_group_walk(&mut stats, &client, n_domains);
        match listed.iter().find_map(|g| g.user_count.as_ref().err()) {
            None => {
                groups = listed
                    .iter()
                    .map(|g| (g.group, g.customer, *g.user_count.as_ref().unwrap_or(&0)))
                    .collect();
            }
            Some(reason) => {
                // Relied on, yet unreadable: stop relying and count user by user instead.
                tracing::warn!(%reason, "mailprotector: user_count unreadable; counting users one by one");
                let check = UserCountCheck {
                    types: types.ids(),
                    agrees: false,
                    checked_at: input.now,
                    groups_compared: listed.len() as u64,
                    groups_differing: listed.iter().filter(|g| g.user_count.is_err()).count()
                        as u64,
                    inconclusive: false,
                    example: Some(reason.to_string()),
                };
                stats.user_count = Some(check.clone());
                checked_now = Some(check);
                walk = Walk::Users;
            }
        }
    }
    if walk == Walk::Users {
        let w = walk_users(&client, &owners, types, cancel).await?;
        stats.users_listed = w.listed;
        w.add_orphans(&mut orphans);
        user_types = w.tallies(types);
        if checked_now.is_none() && trust::should_compare(&stats, types, n_domains, input.now) {
            let listed = walk_user_groups(&client, &counted_domains, cancel).await?;
            note_group_walk(&mut stats, &client, n_domains);
            let check = trust::compare(
                &listed,
                &w.counted_per_group(),
                &w.types_present(),
                types,
                input.now,
            );
            tracing::info!(
                agrees = check.agrees,
                groups = check.groups_compared,
                differing = check.groups_differing,
                example = check.example.as_deref().unwrap_or(""),
                "mailprotector: compared user_count with the per-user count"
            );
            stats.user_count = Some(check.clone());
            checked_now = Some(check);
        }
        groups = w.groups.into_iter().map(|(g, (c, n))| (g, c, n)).collect();
        groups.sort_unstable();
    }
    for t in user_types.iter().filter(|t| !t.known && !t.counted) {
        tracing::warn!(type_id = ?t.id, type_name = t.name.as_deref().unwrap_or(""), users = t.users,
            "mailprotector: users of an unknown user type are not counted; list the type in \
             [mailprotector] count_user_types to count them");
    }
    if !orphans.is_empty() {
        tracing::warn!("mailprotector: {}", orphans.summary());
    }
    // Groups without counted users add nothing; skipping them saves their service calls.
    let groups: Vec<_> = groups.into_iter().filter(|(_, _, users)| *users > 0).collect();
    let (cache, fetched) =
        services_for(&client, &input, groups.iter().map(|g| g.0).collect()).await?;
    let facts: Vec<GroupFacts> = groups
        .iter()
        .map(|&(group_id, customer_id, users)| GroupFacts {
            customer_id,
            group_id,
            users,
            products: cache.get(&group_id).map_or(&[][..], |c| c.products.as_slice()),
        })
        .collect();
    let usage =
        count_usage(&customers, &facts, input.config.count_each_product, &input.config.counts);
    let users_counted = facts.iter().map(|f| f.users).sum();
    drop(facts);
    stats.walk = Some(walk);
    stats.domains = n_domains;
    stats.users_counted = users_counted;
    let counting = CountingReport {
        walk,
        count_user_types: types.to_string(),
        user_types,
        user_count: trust::note(
            walk,
            trust::check_for(&stats, types),
            checked_now.is_some(),
            types,
        ),
        orphans,
    };
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
        counting,
    })
}

/// Keeps the size of a user-group walk just made (to scale its cost next time).
fn note_group_walk(stats: &mut WalkStats, client: &MailprotectorClient, domains: u64) {
    stats.user_group_requests = client.stats().requests_to("GET /domains/{id}/user_groups");
    stats.user_group_domains = domains;
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

/// One user-group listing per counted domain, concurrently; each group once, with its
/// owning customer and its `user_count` (or why that is unreadable).
async fn walk_user_groups(
    client: &MailprotectorClient,
    domains: &HashMap<u64, u64>,
    cancel: &CancellationToken,
) -> Result<Vec<ListedGroup>, CollectError> {
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
        for g in groups {
            if seen.insert(g.id) {
                out.push(ListedGroup { group: g.id, customer, user_count: g.user_count() });
            }
        }
    }
    out.sort_unstable_by_key(|g| g.group);
    Ok(out)
}

/// Which groups' service lists to read now: those missing from the cache, expired (at least
/// `services_refresh` old) or stamped in the future, plus a rolling share of the oldest
/// others, so that lists read together (the first run reads them all at once) do not all
/// expire together a day later. The share is the fraction of `services_refresh` that passed
/// since the newest cached list was read (the previous run, as every run reads some), so
/// each run reads about `groups × interval ÷ services_refresh` lists and every list is
/// re-read before it is `services_refresh` old.
pub(super) fn lists_to_read(
    groups: &[u64],
    cache: &HashMap<u64, CachedServices>,
    refresh: std::time::Duration,
    now: DateTime<Utc>,
) -> Vec<u64> {
    let refresh = chrono::Duration::from_std(refresh).unwrap_or(chrono::Duration::MAX);
    let mut read = Vec::new();
    let mut fresh: Vec<(DateTime<Utc>, u64)> = Vec::new();
    for &g in groups {
        match cache.get(&g) {
            Some(c) if now.signed_duration_since(c.fetched_at) < refresh && c.fetched_at <= now => {
                fresh.push((c.fetched_at, g));
            }
            _ => read.push(g),
        }
    }
    let Some(newest) = fresh.iter().map(|(at, _)| *at).max() else { return read };
    let since = now.signed_duration_since(newest).num_milliseconds().max(0) as u128;
    let refresh_ms = refresh.num_milliseconds().max(1) as u128;
    // Groups due over the elapsed share of the refresh period (rounded to the nearest, so a
    // run seconds after the last reads none), less those read anyway.
    let due = ((groups.len() as u128 * since * 2 + refresh_ms) / (refresh_ms * 2)) as usize;
    let extra = due.saturating_sub(read.len()).min(fresh.len());
    if extra > 0 {
        fresh.select_nth_unstable(extra - 1);
        read.extend(fresh[..extra].iter().map(|(_, g)| *g));
    }
    read
}

/// The service list of every group in `groups`: cache entries as they are, the rest (see
/// [`lists_to_read`]) read now (concurrently); and how many were read.
async fn services_for(
    client: &MailprotectorClient,
    input: &CollectInput<'_>,
    groups: Vec<u64>,
) -> Result<(HashMap<u64, CachedServices>, u64), CollectError> {
    let stale = lists_to_read(&groups, input.cache, input.config.services_refresh, input.now);
    let reading: HashSet<u64> = stale.iter().copied().collect();
    let mut cache = HashMap::with_capacity(groups.len());
    for g in groups.iter().filter(|g| !reading.contains(g)) {
        if let Some(c) = input.cache.get(g) {
            cache.insert(*g, c.clone());
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
    Ok((cache, fetched))
}

#[cfg(test)]
#[path = "collect_tests.rs"]
mod tests;
