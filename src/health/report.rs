//! The `application/health+json` report (draft-inadarei-api-health-check-06) built from
//! [`HealthState`]: overall status, version, and checks keyed `"component:measurement"`.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use super::HealthState;
use crate::model::{CountingReport, RunId};

/// A check's (and the report's) status. Ordered from best to worst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckStatus {
    /// Healthy.
    Pass,
    /// Healthy, with a concern (no run yet, a failing upstream, aging inputs, discrepancies).
    Warn,
    /// The daemon cannot do its job (HTTP 503).
    Fail,
}

/// How the main loop is doing, from its heartbeat.
#[derive(Debug, Clone, Copy)]
pub struct LoopStatus {
    /// Time since the last beat.
    pub age: Duration,
    /// Whether that is within the staleness limit.
    pub fresh: bool,
}

/// One entry of a check (the draft's "check object"); extra fields are allowed by the draft.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Check {
    /// "datastore", "component" or "system".
    pub component_type: &'static str,
    /// Which implementation (e.g. "connectwise"), when it helps.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub component_id: Option<String>,
    /// The measured value (an age in seconds, a count, a boolean).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observed_value: Option<serde_json::Value>,
    /// The unit of `observed_value`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observed_unit: Option<&'static str>,
    /// This check's status.
    pub status: CheckStatus,
    /// When the observed thing happened (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
    /// Why the check is not `pass` (omitted on pass, as the draft asks).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    /// The run that produced the last success.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_id: Option<RunId>,
    /// Failed runs since the last success.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consecutive_failures: Option<u32>,
    /// The last failure's time and reason.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<LastError>,
    /// What the job waits for before its first run (an extra field, which the draft allows:
    /// waiting is not a concern, so it is not an `output`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waiting: Option<String>,
}

/// A source's last failure.
#[derive(Debug, Clone, Serialize)]
pub struct LastError {
    /// When it failed (RFC 3339).
    pub time: String,
    /// Why.
    pub reason: String,
}

/// The whole report: serialize it as the response body.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthReport {
    /// Worst status of all checks.
    pub status: CheckStatus,
    /// Public version (the crate version).
    pub version: &'static str,
    /// Build identifier.
    pub release_id: &'static str,
    /// Always "mpsync".
    pub service_id: &'static str,
    /// What the service is.
    pub description: &'static str,
    /// Why the status is not `pass`, one line per concern.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// Checks keyed "component:measurement".
    pub checks: BTreeMap<String, Vec<Check>>,
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn age_secs(now: DateTime<Utc>, then: DateTime<Utc>) -> i64 {
    (now - then).num_seconds().max(0)
}

fn check(component_type: &'static str, status: CheckStatus) -> Check {
    Check {
        component_type,
        component_id: None,
        observed_value: None,
        observed_unit: None,
        status,
        time: None,
        output: None,
        run_id: None,
        consecutive_failures: None,
        last_error: None,
        waiting: None,
    }
}

/// Builds the report; pure, so it is tested without a server.
pub(super) fn build(st: &HealthState, now: DateTime<Utc>, main_loop: LoopStatus) -> HealthReport {
    let mut checks = BTreeMap::new();

    let mut c =
        check("system", if main_loop.fresh { CheckStatus::Pass } else { CheckStatus::Fail });
    c.observed_value = Some(main_loop.age.as_secs_f64().into());
    c.observed_unit = Some("s");
    if !main_loop.fresh {
        c.output = Some("the main loop has stopped making progress".into());
    }
    checks.insert("mainLoop:heartbeat".to_owned(), vec![c]);

    let c = match &st.store {
        Some(s) => {
            let mut c = check("datastore", CheckStatus::Pass);
            c.component_id = Some(s.path.display().to_string());
            c.observed_value = Some(true.into());
            c.time = Some(rfc3339(s.opened_at));
            if let Some((at, reason)) = &s.write_error {
                c.status = CheckStatus::Fail;
                c.output = Some(format!(
                    "runs cannot be recorded: {reason}. Free space on (or repair) the disk of {}, \
                     then restart mpsync; what was committed before is kept",
                    s.path.display()
                ));
                c.last_error = Some(LastError { time: rfc3339(*at), reason: reason.clone() });
            }
            c
        }
        None => {
            let mut c = check("datastore", CheckStatus::Fail);
            c.observed_value = Some(false.into());
            c.output = Some("the store is not open".into());
            c
        }
    };
    checks.insert("store:open".to_owned(), vec![c]);

    for (source, sh) in st.sources.iter().filter(|(_, sh)| sh.configured) {
        let mut c = check("component", CheckStatus::Pass);
        c.component_id = sh.component_id.clone();
        c.observed_unit = Some("s");
        if let Some((at, reason)) = &sh.last_failure {
            c.last_error = Some(LastError { time: rfc3339(*at), reason: reason.clone() });
            c.consecutive_failures = Some(sh.consecutive_failures);
        }
        match (sh.last_success, &sh.waiting) {
            // Skipped because it waits for another job (the push for the first vendor
            // snapshot): that is expected, not a failure and not a warning.
            (None, Some((at, why))) => {
                c.time = Some(rfc3339(*at));
                c.waiting = Some(why.clone());
            }
            (None, None) => {
                // An upstream outage or a first run still pending is a warning, never a
                // failure: the daemon itself is doing its job.
                c.status = CheckStatus::Warn;
                c.output = Some(match &sh.last_failure {
                    Some((_, reason)) => {
                        format!("no successful run yet; last run failed: {reason}")
                    }
                    None => "no run yet".to_owned(),
                });
            }
            (Some((run_id, at)), _) => {
                let age = age_secs(now, at);
                c.observed_value = Some(age.into());
                c.time = Some(rfc3339(at));
                c.run_id = Some(run_id);
                if sh.consecutive_failures > 0 {
                    c.status = CheckStatus::Warn;
                    let reason =
                        sh.last_failure.as_ref().map(|(_, r)| r.as_str()).unwrap_or("unknown");
                    c.output = Some(format!(
                        "{} run(s) failed since the last success: {reason}",
                        sh.consecutive_failures
                    ));
                } else if age > i64::try_from(st.max_age.as_secs()).unwrap_or(i64::MAX) {
                    c.status = CheckStatus::Warn;
                    c.output = Some(format!(
                        "last success is {age}s old, older than reconcile.max_age ({}s)",
                        st.max_age.as_secs()
                    ));
                }
            }
        }
        checks.insert(format!("{}:lastSuccess", source.as_str()), vec![c]);
    }

    if let Some((run_id, at, counting)) = &st.counting {
        checks.insert(
            "mailprotector:counting".to_owned(),
            vec![counting_check(*run_id, *at, counting)],
        );
    }

    let gradient_on = st.sources.get(&super::Source::Gradient).is_some_and(|g| g.configured);
    if let Some(p) = st.push.as_ref().filter(|_| gradient_on) {
        let mut c = check("component", CheckStatus::Pass);
        c.component_id = Some(if p.dry_run { "dry_run" } else { "push" }.to_owned());
        c.observed_value = Some(serde_json::json!({
            "accepted": p.accepted, "unmapped": p.unmapped, "refused": p.refused,
            "failed": p.failed, "planned": p.planned,
        }));
        c.observed_unit = Some("pairs");
        c.time = Some(rfc3339(p.at));
        c.run_id = Some(p.run_id);
        let sent = p.accepted + p.unmapped + p.refused + p.failed;
        let mut concerns = Vec::new();
        if p.failed > 0 {
            concerns.push(format!(
                "{} of {sent} counts were not accepted by Gradient in the last push",
                p.failed
            ));
        }
        // A refused count leaves the previous one standing in Synthesize (there is no
        // DELETE): worth a look even though the rest of the push went through.
        if p.refused > 0 {
            let first =
                p.first_refused.as_deref().map(|f| format!(" (first: {f})")).unwrap_or_default();
            concerns.push(format!(
                "{} of {sent} counts were refused by Gradient in the last push{first}; \
                 Synthesize keeps its previous value for those pairs",
                p.refused
            ));
        }
        if !concerns.is_empty() {
            c.status = CheckStatus::Warn;
            c.output = Some(concerns.join("; "));
        }
        checks.insert("gradient:pushPairs".to_owned(), vec![c]);
    }

    if let Some(r) = &st.reconciliation {
        let mut c = check("component", CheckStatus::Pass);
        c.observed_value = Some(r.discrepancies.into());
        c.time = Some(rfc3339(r.at));
        c.run_id = Some(r.run_id);
        if let Some(err) = &r.error {
            // Without a trustworthy reconciliation the daemon is not doing its job.
            c.status = CheckStatus::Fail;
            c.output = Some(err.clone());
        } else if r.discrepancies > 0 || r.stale > 0 {
            c.status = CheckStatus::Warn;
            let mut parts = Vec::new();
            if r.discrepancies > 0 {
                parts.push(format!(
                    "{} discrepancies (under-billed {:.2}/month, over-billed {:.2}/month)",
                    r.discrepancies, r.impact_under_billed, r.impact_over_billed
                ));
            }
            if r.stale > 0 {
                parts.push(format!("{} rows stale (an input is missing, old or failed)", r.stale));
            }
            c.output = Some(parts.join("; "));
        }
        checks.insert("reconciliation:discrepancies".to_owned(), vec![c]);
        let mut by_status = check("component", CheckStatus::Pass);
        by_status.observed_value = serde_json::to_value(&r.by_status).ok();
        by_status.observed_unit = Some("rows");
        by_status.time = Some(rfc3339(r.at));
        checks.insert("reconciliation:rowsByStatus".to_owned(), vec![by_status]);
        for (name, value) in [
            ("impactUnderBilled", r.impact_under_billed),
            ("impactOverBilled", r.impact_over_billed),
        ] {
            let mut m = check("component", CheckStatus::Pass);
            m.observed_value = serde_json::Number::from_f64((value * 100.0).round() / 100.0)
                .map(serde_json::Value::Number);
            m.observed_unit = Some("per month");
            checks.insert(format!("reconciliation:{name}"), vec![m]);
        }
    }

    for (name, n) in &st.notify {
        checks.insert(format!("notify:{name}"), vec![notify_check(n, now)]);
    }

    let status = checks.values().flatten().map(|c| c.status).max().unwrap_or(CheckStatus::Pass);
    let notes = checks
        .iter()
        .flat_map(|(k, cs)| {
            cs.iter().filter_map(move |c| c.output.as_ref().map(|o| format!("{k}: {o}")))
        })
        .collect();
    HealthReport {
        status,
        version: env!("CARGO_PKG_VERSION"),
        release_id: option_env!("MPSYNC_RELEASE_ID").unwrap_or(env!("CARGO_PKG_VERSION")),
        service_id: "mpsync",
        description: "Mailprotector usage and billing reconciliation daemon",
        notes,
        checks,
    }
}

/// Failed attempts in a row from which a channel's check warns.
const NOTIFY_WARN_AFTER: u32 = 3;

/// How long a refused delivery keeps its channel's check at `warn`.
const REFUSED_WARN_FOR: chrono::Duration = chrono::Duration::hours(24);

/// One notification channel: `pass` while it delivers; `warn` when it cannot be set up, has
/// failed [`NOTIFY_WARN_AFTER`] times in a row (it keeps being retried, at most hourly by
/// default), or a receiver refused a delivery in the last day (that one was skipped). Never
/// `fail`: a receiver's outage is not the daemon's, and restarting it would not help.
fn notify_check(n: &super::NotifyHealth, now: DateTime<Utc>) -> Check {
    let mut c = check("component", CheckStatus::Pass);
    c.component_id = Some(n.kind.clone());
    c.observed_value = Some(n.pending.into());
    c.observed_unit = Some("pending events");
    c.time = n.last_ok.map(rfc3339);
    if n.failures > 0 {
        c.consecutive_failures = Some(n.failures);
    }
    if let Some((at, reason)) = &n.last_error {
        c.last_error = Some(LastError { time: rfc3339(*at), reason: reason.clone() });
    }
    let mut concerns = Vec::new();
    if let Some(why) = &n.broken {
        concerns.push(format!("cannot deliver: {why}"));
    }
    if n.failures >= NOTIFY_WARN_AFTER {
        let since = n.failing_since.map(|t| format!(" since {}", rfc3339(t))).unwrap_or_default();
        let next = n.next_attempt.map(|t| format!("; next attempt at {}", rfc3339(t)));
        let last = n.last_error.as_ref().map(|(_, r)| format!(": {r}")).unwrap_or_default();
        concerns.push(format!(
            "{} deliveries failed in a row{since}{last}{}; {} events wait",
            n.failures,
            next.unwrap_or_default(),
            n.pending
        ));
    }
    if let Some((at, id, why)) = n.last_refused.as_ref().filter(|r| now - r.0 < REFUSED_WARN_FOR) {
        concerns.push(format!(
            "the receiver refused {id} at {} and it was skipped ({} refused in all): {why}",
            rfc3339(*at),
            n.refused
        ));
    }
    if !concerns.is_empty() {
        c.status = CheckStatus::Warn;
        c.output = Some(concerns.join("; "));
    }
    c
}

/// How the last vendor run counted: who, by which walk, whether `user_count` stood in; a
/// warning when users were counted nowhere or carry a type mpsync does not know.
fn counting_check(run_id: RunId, at: DateTime<Utc>, c: &CountingReport) -> Check {
    let unknown: Vec<&crate::model::UserTypeTally> =
        c.user_types.iter().filter(|t| !t.known && !t.counted).collect();
    let mut check = check("component", CheckStatus::Pass);
    check.component_id = Some("mailprotector".to_owned());
    check.observed_value = Some(serde_json::json!({
        "walk": c.walk.as_str(),
        "countUserTypes": c.count_user_types,
        "userCount": c.user_count.state.as_str(),
        "userCountReliedOn": c.user_count.relied_on,
        "userCountDetail": c.user_count.detail,
        "orphanedDomains": c.orphans.domain_count,
        "orphanedUsers": c.orphans.users,
        "unknownTypeUsers": unknown.iter().map(|t| t.users).sum::<u64>(),
    }));
    check.time = Some(rfc3339(at));
    check.run_id = Some(run_id);
    let mut problems = Vec::new();
    for t in &unknown {
        let what = match (t.id, t.name.as_deref()) {
            (Some(id), Some(n)) => format!("type {id} ({n})"),
            (Some(id), None) => format!("type {id}"),
            (None, Some(n)) => format!("type {n:?}"),
            (None, None) => "an unnamed type".to_owned(),
        };
        problems.push(format!(
            "{} user(s) of {what}, which mpsync does not know, were not counted; add it to \
             [mailprotector] count_user_types to count them",
            t.users
        ));
    }
    if !c.orphans.is_empty() {
        problems.push(c.orphans.summary());
    }
    if !problems.is_empty() {
        check.status = CheckStatus::Warn;
        check.output = Some(format!("run {run_id}: {}", problems.join("; ")));
    }
    check
}

#[cfg(test)]
mod tests {
    use super::super::{Health, Source};
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    const FRESH: LoopStatus = LoopStatus { age: Duration::from_millis(10), fresh: true };

    #[test]
    fn fresh_start_warns_no_run_yet_and_fails_without_store() {
        let h = Health::new(t("2026-01-01T00:00:00Z"));
        let r = h.report(t("2026-01-01T00:01:00Z"), FRESH);
        assert_eq!(r.status, CheckStatus::Fail);
        h.set_store_open("/s/mpsync.redb".into(), t("2026-01-01T00:00:01Z"));
        let r = h.report(t("2026-01-01T00:01:00Z"), FRESH);
        assert_eq!(r.status, CheckStatus::Warn);
        assert_eq!(r.checks["store:open"][0].status, CheckStatus::Pass);
        let mp = &r.checks["mailprotector:lastSuccess"][0];
        assert_eq!((mp.status, mp.output.as_deref()), (CheckStatus::Warn, Some("no run yet")));
        assert!(!r.checks.contains_key("billing:lastSuccess"), "billing is not configured");
    }

    #[test]
    fn success_passes_then_failures_and_age_warn() {
        let h = Health::new(t("2026-01-01T00:00:00Z"));
        h.set_store_open("/s/mpsync.redb".into(), t("2026-01-01T00:00:00Z"));
        h.record_success(Source::Mailprotector, 7, t("2026-01-01T00:10:00Z"));
        let r = h.report(t("2026-01-01T00:11:00Z"), FRESH);
        assert_eq!(r.status, CheckStatus::Pass);
        assert!(r.notes.is_empty());
        let mp = &r.checks["mailprotector:lastSuccess"][0];
        assert_eq!((mp.run_id, mp.observed_value.clone()), (Some(7), Some(60.into())));

        h.record_failure(
            Source::Mailprotector,
            t("2026-01-01T00:40:00Z"),
            "HTTP 503 from emailservice.io",
        );
        h.record_failure(
            Source::Mailprotector,
            t("2026-01-01T01:10:00Z"),
            "HTTP 503 from emailservice.io",
        );
        let r = h.report(t("2026-01-01T01:11:00Z"), FRESH);
        let mp = &r.checks["mailprotector:lastSuccess"][0];
        assert_eq!((r.status, mp.consecutive_failures), (CheckStatus::Warn, Some(2)));
        assert!(mp.output.as_deref().unwrap().contains("HTTP 503"));

        h.record_success(Source::Mailprotector, 9, t("2026-01-01T01:20:00Z"));
        let r = h.report(t("2026-01-01T04:00:00Z"), FRESH);
        let mp = &r.checks["mailprotector:lastSuccess"][0];
        assert_eq!(mp.status, CheckStatus::Warn, "older than max_age (2h)");
        assert!(mp.output.as_deref().unwrap().contains("max_age"));
    }

    #[test]
    fn a_store_that_cannot_record_runs_fails_until_a_run_is_recorded() {
        let h = Health::new(t("2026-01-01T00:00:00Z"));
        h.set_store_open("/s/mpsync.redb".into(), t("2026-01-01T00:00:00Z"));
        h.record_success(Source::Mailprotector, 1, t("2026-01-01T00:00:00Z"));
        h.record_store_error(t("2026-01-01T00:05:00Z"), "File too large (os error 27)");
        let r = h.report(t("2026-01-01T00:06:00Z"), FRESH);
        let store = &r.checks["store:open"][0];
        assert_eq!((r.status, store.status), (CheckStatus::Fail, CheckStatus::Fail));
        let output = store.output.as_deref().unwrap();
        assert!(output.contains("File too large") && output.contains("restart mpsync"), "{output}");
        h.record_success(Source::Mailprotector, 2, t("2026-01-01T00:07:00Z"));
        let r = h.report(t("2026-01-01T00:08:00Z"), FRESH);
        assert_eq!(r.checks["store:open"][0].status, CheckStatus::Pass);
    }

    #[test]
    fn a_stale_main_loop_fails_and_serializes_per_the_draft() {
        let h = Health::new(t("2026-01-01T00:00:00Z"));
        h.set_store_open("/s/mpsync.redb".into(), t("2026-01-01T00:00:00Z"));
        h.record_success(Source::Mailprotector, 1, t("2026-01-01T00:00:00Z"));
        let stale = LoopStatus { age: Duration::from_secs(90), fresh: false };
        let r = h.report(t("2026-01-01T00:00:30Z"), stale);
        assert_eq!(r.status, CheckStatus::Fail);
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["status"], "fail");
        assert_eq!(v["releaseId"], env!("CARGO_PKG_VERSION"));
        assert_eq!(v["checks"]["mainLoop:heartbeat"][0]["componentType"], "system");
        assert_eq!(v["checks"]["store:open"][0]["time"], "2026-01-01T00:00:00Z");
        assert!(
            v["checks"]["mailprotector:lastSuccess"][0].get("output").is_none(),
            "no output on pass"
        );
    }

    fn counting(
        orphans: crate::model::Orphans,
        types: Vec<crate::model::UserTypeTally>,
    ) -> CountingReport {
        CountingReport {
            walk: crate::model::Walk::Users,
            count_user_types: "User (1)".into(),
            user_types: types,
            user_count: crate::model::UserCountNote {
                relied_on: false,
                state: crate::model::UserCountState::Differs,
                checked_at: Some(t("2026-01-01T00:00:00Z")),
                checked_this_run: true,
                groups_compared: 10,
                groups_differing: 2,
                detail: "user_count is not relied on: this run found that it differs".into(),
            },
            orphans,
        }
    }

    #[test]
    fn counting_is_shown_and_warns_about_users_counted_nowhere() {
        let h = Health::new(t("2026-01-01T00:00:00Z"));
        h.set_store_open("/s/mpsync.redb".into(), t("2026-01-01T00:00:00Z"));
        h.record_success(Source::Mailprotector, 4, t("2026-01-01T00:10:00Z"));
        let user = crate::model::UserTypeTally {
            id: Some(1),
            name: Some("User".into()),
            users: 40,
            counted: true,
            known: true,
        };
        h.set_counting(
            4,
            t("2026-01-01T00:10:00Z"),
            counting(Default::default(), vec![user.clone()]),
        );
        let r = h.report(t("2026-01-01T00:11:00Z"), FRESH);
        assert_eq!(r.status, CheckStatus::Pass, "a user_count that differs is no problem");
        let c = &r.checks["mailprotector:counting"][0];
        let v = c.observed_value.clone().unwrap();
        assert_eq!(v["walk"], "users");
        assert_eq!(v["userCount"], "differs");
        assert_eq!(v["userCountReliedOn"], false);
        assert!(v["userCountDetail"].as_str().unwrap().contains("not relied on"));

        let orphans = crate::model::Orphans {
            domains: vec![crate::model::OrphanDomain { id: 55, owner: 901 }],
            domain_count: 1,
            users: 12,
            user_ids: vec![7001],
            group_ids: vec![300],
        };
        let shared = crate::model::UserTypeTally {
            id: Some(7),
            name: Some("Shared Mailbox".into()),
            users: 3,
            counted: false,
            known: false,
        };
        h.set_counting(5, t("2026-01-01T00:20:00Z"), counting(orphans, vec![user, shared]));
        let r = h.report(t("2026-01-01T00:21:00Z"), FRESH);
        assert_eq!(r.status, CheckStatus::Warn);
        let c = &r.checks["mailprotector:counting"][0];
        assert_eq!(c.run_id, Some(5));
        let out = c.output.as_deref().unwrap();
        assert!(out.contains("3 user(s) of type 7 (Shared Mailbox)"), "{out}");
        assert!(out.contains("55 (owner 901)") && out.contains("12 user(s)"), "{out}");
        assert!(
            r.notes.iter().any(|n| n.starts_with("mailprotector:counting: run 5:")),
            "{:?}",
            r.notes
        );
        assert_eq!(c.observed_value.clone().unwrap()["unknownTypeUsers"], 3);
    }

    #[test]
    fn a_push_waiting_for_the_first_snapshot_passes_and_says_so() {
        let h = Health::new(t("2026-01-01T00:00:00Z"));
        h.set_store_open("/s/mpsync.redb".into(), t("2026-01-01T00:00:00Z"));
        h.set_configured(Source::Gradient, true, Some("gradient"));
        let r = h.report(t("2026-01-01T00:00:10Z"), FRESH);
        assert_eq!(r.checks["gradient:lastSuccess"][0].status, CheckStatus::Warn, "no run yet");
        h.record_waiting(
            Source::Gradient,
            t("2026-01-01T00:00:20Z"),
            "waiting for the first vendor snapshot",
        );
        let r = h.report(t("2026-01-01T00:00:30Z"), FRESH);
        let g = &r.checks["gradient:lastSuccess"][0];
        assert_eq!(g.status, CheckStatus::Pass, "waiting is not a concern");
        assert_eq!(g.waiting.as_deref(), Some("waiting for the first vendor snapshot"));
        assert!(g.output.is_none() && !r.notes.iter().any(|n| n.starts_with("gradient")));
        let v = serde_json::to_value(g).unwrap();
        assert_eq!(v["waiting"], "waiting for the first vendor snapshot");
        // A failure after the wait is a failure again.
        h.record_failure(Source::Gradient, t("2026-01-01T00:01:00Z"), "snapshot too old");
        let g =
            h.report(t("2026-01-01T00:01:10Z"), FRESH).checks["gradient:lastSuccess"][0].clone();
        assert_eq!((g.status, g.waiting), (CheckStatus::Warn, None));
    }

    #[test]
    fn a_notification_channel_warns_after_three_failures_and_for_a_day_after_a_refusal() {
        let h = Health::new(t("2026-01-01T00:00:00Z"));
        let mut n = super::super::NotifyHealth {
            kind: "teams".into(),
            pending: 4,
            failures: 2,
            failing_since: Some(t("2026-01-01T00:00:00Z")),
            last_error: Some((
                t("2026-01-01T00:01:00Z"),
                "teams receiver answered HTTP 503".into(),
            )),
            next_attempt: Some(t("2026-01-01T00:02:00Z")),
            ..Default::default()
        };
        let check = |h: &Health, n: &super::super::NotifyHealth, now: &str| {
            h.set_notify([("ops".to_owned(), n.clone())].into());
            h.report(t(now), FRESH).checks["notify:ops"][0].clone()
        };
        let c = check(&h, &n, "2026-01-01T00:01:30Z");
        assert_eq!(c.status, CheckStatus::Pass, "two failures: still retrying quietly");
        assert_eq!(c.consecutive_failures, Some(2));
        assert_eq!(c.observed_value, Some(4.into()));
        n.failures = 3;
        let c = check(&h, &n, "2026-01-01T00:01:30Z");
        assert_eq!(c.status, CheckStatus::Warn);
        let out = c.output.unwrap();
        assert!(out.contains("3 deliveries failed in a row since 2026-01-01T00:00:00Z"), "{out}");
        assert!(out.contains("HTTP 503") && out.contains("next attempt at 2026-01-01T00:02:00Z"));

        let n = super::super::NotifyHealth {
            kind: "teams".into(),
            refused: 1,
            last_refused: Some((t("2026-01-01T00:00:00Z"), "event-9".into(), "HTTP 400".into())),
            ..Default::default()
        };
        let c = check(&h, &n, "2026-01-01T23:00:00Z");
        assert_eq!(c.status, CheckStatus::Warn);
        assert!(c.output.unwrap().contains("refused event-9"));
        assert_eq!(check(&h, &n, "2026-01-02T00:00:01Z").status, CheckStatus::Pass, "a day later");
    }
}
