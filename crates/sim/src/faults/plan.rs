//! Deciding, per request, which installed faults fire: endpoint matching, `after`/`times`/`rate`
//! bookkeeping, token buckets for the rate limit, and seeded randomness so a seed gives the same
//! fault sequence. The Mailprotector request layer carries out the resulting [`Plan`].

use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use tokio::time::Instant;

use super::{Fault, FaultKind, Variant};

/// An installed fault and how often it has fired.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FaultStatus {
    /// Id for removal.
    pub id: u64,
    /// The fault.
    #[serde(flatten)]
    pub fault: Fault,
    /// Matching requests seen.
    pub seen: u64,
    /// Requests it affected.
    pub fired: u64,
}

struct Bucket {
    tokens: f64,
    last: Instant,
}

struct Entry {
    status: FaultStatus,
    bucket: Option<Bucket>,
}

/// The installed faults of one simulator.
pub(crate) struct FaultSet {
    entries: Vec<Entry>,
    next_id: u64,
    rng: ChaCha8Rng,
}

/// Short-circuits decided before the handler runs.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Pre {
    /// 429 with this Retry-After.
    TooMany(u64),
    /// An error status.
    Status(u16),
    /// Never answer.
    Hang,
}

/// Body damage applied after the handler ran.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Post {
    Truncate,
    Disconnect,
    Malformed,
    WrongTypes,
}

/// A HaloPSA write that also changes another line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SideEffect {
    ChangeOtherLine,
    DropOtherLine,
}

/// What to do to one request.
#[derive(Debug, Default)]
pub(crate) struct Plan {
    pub(crate) latency: Duration,
    pub(crate) pre: Option<Pre>,
    pub(crate) post: Vec<Post>,
    pub(crate) variants: Vec<Variant>,
    /// Revoke the caller's key (`None` inside) or a given key.
    pub(crate) revoke: Vec<Option<String>>,
    /// Handle the request, then never answer.
    pub(crate) hang_after: bool,
    /// What a HaloPSA write also does to another line.
    pub(crate) side_effects: Vec<SideEffect>,
}

/// Whether an endpoint spec matches a route pattern like `GET /domains/{id}/user_groups`.
pub(crate) fn endpoint_matches(spec: &str, pattern: &str) -> bool {
    let spec = spec.trim();
    let path = pattern.split_once(' ').map_or(pattern, |(_, p)| p);
    if spec == "*" {
        return true;
    }
    if spec.contains(' ') {
        return spec.eq_ignore_ascii_case(pattern) || spec == pattern;
    }
    if spec.starts_with('/') {
        return spec == path;
    }
    path.rsplit('/').find(|s| !s.starts_with('{') && !s.is_empty()) == Some(spec)
}

impl FaultSet {
    pub(crate) fn new(seed: u64) -> FaultSet {
        FaultSet { entries: Vec::new(), next_id: 1, rng: ChaCha8Rng::seed_from_u64(seed ^ 0xfa17) }
    }

    pub(crate) fn add(&mut self, fault: Fault) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        let bucket = match fault.kind {
            FaultKind::RateLimit { rps, burst } => {
                Some(Bucket { tokens: burst_of(rps, burst), last: Instant::now() })
            }
            _ => None,
        };
        self.entries.push(Entry { status: FaultStatus { id, fault, seen: 0, fired: 0 }, bucket });
        id
    }

    pub(crate) fn remove(&mut self, id: u64) -> bool {
        let before = self.entries.len();
        self.entries.retain(|e| e.status.id != id);
        self.entries.len() != before
    }

    pub(crate) fn clear(&mut self) {
        self.entries.clear();
    }

    pub(crate) fn list(&self) -> Vec<FaultStatus> {
        self.entries.iter().map(|e| e.status.clone()).collect()
    }

    /// Decides what happens to one request to `pattern`.
    pub(crate) fn plan(&mut self, pattern: &str) -> Plan {
        let mut plan = Plan::default();
        let now = Instant::now();
        for e in &mut self.entries {
            let st = &mut e.status;
            if !endpoint_matches(&st.fault.endpoint, pattern) {
                continue;
            }
            st.seen += 1;
            if let (FaultKind::RateLimit { rps, burst }, Some(b)) = (&st.fault.kind, &mut e.bucket)
            {
                let cap = burst_of(*rps, *burst);
                b.tokens = (b.tokens + now.duration_since(b.last).as_secs_f64() * rps).min(cap);
                b.last = now;
                if b.tokens >= 1.0 {
                    b.tokens -= 1.0;
                } else {
                    st.fired += 1;
                    let wait = ((1.0 - b.tokens) / rps).ceil().max(1.0) as u64;
                    plan.pre.get_or_insert(Pre::TooMany(wait));
                }
                continue;
            }
            if st.seen <= st.fault.after || st.fault.times.is_some_and(|t| st.fired >= t) {
                continue;
            }
            if st.fault.rate < 1.0 && self.rng.random::<f64>() >= st.fault.rate {
                continue;
            }
            st.fired += 1;
            match &st.fault.kind {
                FaultKind::Latency { ms, jitter_ms } => {
                    let jitter =
                        if *jitter_ms > 0 { self.rng.random_range(0..=*jitter_ms) } else { 0 };
                    plan.latency += Duration::from_millis(ms + jitter);
                }
                FaultKind::RateLimit { .. } => {}
                FaultKind::Storm { retry_after } => {
                    plan.pre.get_or_insert(Pre::TooMany(*retry_after));
                }
                FaultKind::Status { status } => {
                    plan.pre.get_or_insert(Pre::Status(*status));
                }
                FaultKind::Hang => {
                    plan.pre.get_or_insert(Pre::Hang);
                }
                FaultKind::HangAfter => plan.hang_after = true,
                FaultKind::Truncate => plan.post.push(Post::Truncate),
                FaultKind::Disconnect => plan.post.push(Post::Disconnect),
                FaultKind::Malformed => plan.post.push(Post::Malformed),
                FaultKind::WrongTypes => plan.post.push(Post::WrongTypes),
                FaultKind::Revoke { key } => plan.revoke.push(key.clone()),
                FaultKind::Variant { variant } => plan.variants.push(*variant),
                FaultKind::ChangeOtherLine => plan.side_effects.push(SideEffect::ChangeOtherLine),
                FaultKind::DropOtherLine => plan.side_effects.push(SideEffect::DropOtherLine),
            }
        }
        plan
    }
}

fn burst_of(rps: f64, burst: Option<u32>) -> f64 {
    burst.map_or(rps.ceil().max(1.0), |b| f64::from(b.max(1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_specs_match_patterns() {
        let p = "GET /domains/{id}/user_groups";
        for yes in
            ["*", "user_groups", "/domains/{id}/user_groups", "GET /domains/{id}/user_groups"]
        {
            assert!(endpoint_matches(yes, p), "{yes}");
        }
        for no in ["domains", "services", "/domains/{id}", "POST /domains/{id}/user_groups"] {
            assert!(!endpoint_matches(no, p), "{no}");
        }
        assert!(endpoint_matches("services", "GET /user_groups/{id}/services"));
    }

    #[tokio::test(start_paused = true)]
    async fn token_bucket_refills_at_rps() {
        let mut set = FaultSet::new(1);
        set.add(Fault::new(FaultKind::RateLimit { rps: 2.0, burst: Some(2) }));
        let p = "GET /resellers/{id}";
        assert_eq!(set.plan(p).pre, None);
        assert_eq!(set.plan(p).pre, None);
        assert_eq!(set.plan(p).pre, Some(Pre::TooMany(1)));
        tokio::time::advance(Duration::from_millis(500)).await;
        assert_eq!(set.plan(p).pre, None);
        assert_eq!(set.plan(p).pre, Some(Pre::TooMany(1)));
    }

    #[test]
    fn latency_is_fixed_plus_seeded_jitter() {
        let delays = |seed| {
            let mut set = FaultSet::new(seed);
            set.add(Fault::new(FaultKind::Latency { ms: 100, jitter_ms: 50 }));
            (0..20).map(|_| set.plan("GET /users/{id}").latency).collect::<Vec<_>>()
        };
        let a = delays(3);
        assert_eq!(a, delays(3));
        assert!(a.iter().all(|d| (100..=150).contains(&d.as_millis())));
        assert!(a.iter().any(|d| *d != a[0]), "jitter varies");
    }

    #[test]
    fn after_and_times_bound_a_fault() {
        let mut set = FaultSet::new(1);
        set.add(Fault::new(FaultKind::Status { status: 503 }).after(2).times(1));
        let got: Vec<_> = (0..5).map(|_| set.plan("GET /customers/{id}").pre).collect();
        assert_eq!(got, vec![None, None, Some(Pre::Status(503)), None, None]);
        assert_eq!(set.list()[0].fired, 1);
    }
}
