//! `mpsync check`: validate the config, open the store, then test each configured upstream.
//! The result is a list of named checks printed as a table (or JSON with `--json`).
//!
//! To add a check, write a function returning [`CheckResult`] and add one line to [`checks`].

mod mapping_check;
mod write_back_check;

use serde::Serialize;

use super::{CommandError, Globals, load_options};
use crate::cli::CheckArgs;
use crate::config::{Config, ConfigError};
use crate::exit::{Exit, ExitStatus};

/// The outcome of one named check.
#[derive(Debug, Clone, Serialize)]
pub struct CheckResult {
    /// Short name, e.g. "config", "store", "mailprotector".
    pub name: String,
    /// Whether the check passed.
    pub ok: bool,
    /// What was found, or what failed and what to do about it.
    pub detail: String,
    /// Things worth fixing that do not fail the check (it stays `ok`, exit 0).
    pub warnings: Vec<String>,
    /// What the check found, structured for scripts (e.g. each product's write-back policy).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<serde_json::Value>,
    /// The exit status this failure deserves (ignored when `ok`).
    #[serde(skip)]
    pub exit_on_failure: Exit,
}

impl CheckResult {
    /// A passed check.
    pub fn pass(name: &str, detail: impl Into<String>) -> CheckResult {
        CheckResult {
            name: name.into(),
            ok: true,
            detail: detail.into(),
            warnings: Vec::new(),
            data: None,
            exit_on_failure: Exit::Ok,
        }
    }

    /// The same result with `warnings` added.
    pub fn with_warnings(mut self, warnings: Vec<String>) -> CheckResult {
        self.warnings.extend(warnings);
        self
    }

    /// The same result with structured `data` for `--json`.
    pub fn with_data(mut self, data: serde_json::Value) -> CheckResult {
        self.data = Some(data);
        self
    }

    /// A failed check that makes `mpsync check` exit with `exit`.
    pub fn fail(name: &str, detail: impl Into<String>, exit: Exit) -> CheckResult {
        CheckResult {
            name: name.into(),
            ok: false,
            detail: detail.into(),
            warnings: Vec::new(),
            data: None,
            exit_on_failure: exit,
        }
    }

    /// The result of a check that returns what it found, or an error that knows its exit
    /// status (an upstream error maps to 69, a locked store to 75, ...).
    pub fn from_result<E>(name: &str, result: Result<String, E>) -> CheckResult
    where
        E: std::fmt::Display + ExitStatus,
    {
        match result {
            Ok(detail) => CheckResult::pass(name, detail),
            Err(e) => CheckResult::fail(name, e.to_string(), e.exit()),
        }
    }
}

/// Every check that runs once the config is valid, in order. Upstream checks are added here,
/// one line each, e.g.
/// `CheckResult::from_result("mailprotector", mailprotector::check_connection(cfg).await),`.
async fn checks(cfg: &Config) -> Vec<CheckResult> {
    let (store_result, opened) = store(cfg).await;
    let mut out = vec![config_summary(cfg)];
    out.extend(listen(cfg));
    out.push(store_result);
    if let Some(store) = opened {
        out.push(counting(cfg, &store).await);
    }
    // The mapping is a local file: its problems (78) come before upstream ones (69).
    out.extend(mapping_check::mapping_check(cfg).await);
    out.push(mailprotector(cfg).await);
    let write_back = mapping_check::write_back_wanted(cfg).await;
    out.extend(
        crate::billing::check(&cfg.billing, write_back)
            .await
            .map(|r| CheckResult::from_result("billing", r).with_warnings(budget_warning(cfg))),
    );
    out.extend(gradient(cfg).await);
    out.extend(cfg.notify.iter().map(notify_channel));
    out
}

/// A `[[notify]]` channel: its kind, filters and digest schedule (nothing is sent; `mpsync
/// notify test` does that).
fn notify_channel(c: &crate::config::NotifyConfig) -> CheckResult {
    let when = match &c.digest {
        Some(d) => format!("a digest on \"{}\"", d.as_str()),
        None => "each event as it happens".to_owned(),
    };
    let detail = format!(
        "{} channel, {when}; {} (send a sample with `mpsync notify test {}`)",
        c.kind.name().as_str(),
        crate::notify::filter::describe(&c.filter),
        c.name
    );
    let data = serde_json::json!({
        "kind": c.kind.name().as_str(),
        "digest": c.digest.as_ref().map(|d| d.as_str()),
        "events": c.filter.events,
        "statuses": c.filter.statuses,
        "min_monthly_impact": c.filter.min_monthly_impact,
        "accounts": c.filter.accounts,
    });
    CheckResult::pass(&format!("notify:{}", c.name), detail).with_data(data)
}

/// A warning when the HaloPSA budget admits more than the 300 requests per rolling 5 minutes
/// hosted Halo allows: a GCRA lets `burst` through at once, then `rate_limit` per second.
fn budget_warning(cfg: &Config) -> Vec<String> {
    let crate::config::BillingSource::Halopsa(h) = &cfg.billing.source else { return Vec::new() };
    let most = f64::from(h.limits.burst) + 300.0 * h.limits.rate_limit;
    if most <= 300.0 {
        return Vec::new();
    }
    vec![format!(
        "billing.halopsa.rate_limit {} with burst {} admits up to {most:.0} requests in 5 \
         minutes, more than the 300 per rolling 5 minutes hosted Halo allows (keep burst + 300 \
         × rate_limit under your tenant's limit, or expect 429 pauses)",
        h.limits.rate_limit, h.limits.burst
    )]
}

/// The "Check Connection" step for Gradient, when the push is enabled: the keys, the
/// integration status, and how many accounts and services Synthesize knows.
async fn gradient(cfg: &Config) -> Option<CheckResult> {
    if !cfg.gradient.enabled {
        return None;
    }
    let reached = crate::gradient::check_connection(&cfg.gradient).await;
    Some(CheckResult::from_result("gradient", reached))
}

/// The "Check Connection" step for Mailprotector: the key reaches the configured reseller.
async fn mailprotector(cfg: &Config) -> CheckResult {
    let reached = crate::mailprotector::check_connection(&cfg.mailprotector).await.map(|r| {
        let name = r.name.map(|n| format!(" ({n})")).unwrap_or_default();
        format!("the API key reaches reseller {}{name} at {}", r.id, cfg.mailprotector.base_url)
    });
    CheckResult::from_result("mailprotector", reached)
}

/// Validates the config and tests each configured upstream; prints the results. A failed
/// check is [`CommandError::Reported`] with the first failure's status (the table says why);
/// an invalid config is the config's error, its problems printed under the table.
pub async fn check(g: &Globals, args: CheckArgs) -> Result<(), CommandError> {
    let results = match crate::config::load(&load_options(g, Vec::new())) {
        Ok(cfg) => checks(&cfg).await,
        Err(e) => {
            if args.json {
                println!("{}", json_report(&[config_failed(&e)], Some(&e)));
            } else {
                print!("{}", table(&[config_failed(&e)]));
            }
            return Err(e.into());
        }
    };
    if args.json {
        println!("{}", json_report(&results, None));
    } else {
        print!("{}", table(&results));
    }
    match overall_exit(&results) {
        Exit::Ok => Ok(()),
        status => Err(CommandError::Reported(status)),
    }
}

/// The exit status of a list of results: 0 when all pass, else that of the first failure
/// (the list is ordered config, store, upstreams, so the most basic problem wins).
pub fn overall_exit(results: &[CheckResult]) -> Exit {
    results.iter().find(|r| !r.ok).map_or(Exit::Ok, |r| r.exit_on_failure)
}

fn config_failed(e: &ConfigError) -> CheckResult {
    let n = e.problems.len();
    let detail = format!(
        "{}: {n} problem{} (listed on stderr); fix each one and run mpsync check again",
        e.path.display(),
        if n == 1 { "" } else { "s" }
    );
    CheckResult::fail("config", detail, e.exit())
}

fn config_summary(cfg: &Config) -> CheckResult {
    let file = cfg.source_path.as_ref().map_or("defaults".into(), |p| p.display().to_string());
    let billing = cfg.billing.source.name();
    let gradient = if cfg.gradient.enabled { "on" } else { "off" };
    CheckResult::pass(
        "config",
        format!(
            "{file}: valid (reseller {}, billing source {billing}, Gradient push {gradient})",
            cfg.mailprotector.reseller_id
        ),
    )
}

/// A passing line with a warning when the HTTP endpoint is reachable from other hosts (the
/// config only allows that with `allow_remote` and a token); nothing for a loopback address.
fn listen(cfg: &Config) -> Option<CheckResult> {
    let d = &cfg.daemon;
    if !crate::config::hosts::is_remote(d.listen) {
        return None;
    }
    let token = d.access_token.as_ref().map_or("(not loaded)", |t| t.origin());
    let detail = format!(
        "{} (daemon.allow_remote = true): every request except /livez and /readyz must carry \
         the access token from {token}",
        d.listen
    );
    let warning = format!(
        "daemon.listen {} accepts connections from other hosts. Without TLS the token and the \
         billing data cross the network in clear text: prefer 127.0.0.1:{} reached through an \
         SSH tunnel or a reverse proxy with TLS",
        d.listen,
        d.listen.port()
    );
    Some(CheckResult::pass("listen", detail).with_warnings(vec![warning]))
}

/// Opens the store in the state directory: proves it can be created and written, that the
/// schema is one this build reads, and that no daemon holds it (exit 75 if one does).
async fn store(cfg: &Config) -> (CheckResult, Option<crate::store::Store>) {
    let dir = cfg.daemon.state_dir.clone();
    let opened = tokio::task::spawn_blocking(move || crate::store::Store::open(&dir)).await;
    match opened {
        Ok(Ok(store)) => {
            let mut detail = format!("{} opens and is writable", store.path().display());
            if let Some(note) = store.tightened() {
                detail = format!("{detail}; {note}");
            }
            (CheckResult::pass("store", detail), Some(store))
        }
        Ok(Err(e)) => (CheckResult::fail("store", e.to_string(), e.exit()), None),
        Err(e) => (
            CheckResult::fail("store", format!("the store check crashed: {e}"), Exit::Software),
            None,
        ),
    }
}

/// Who is counted, and what the runs so far found about `user_count` on this account
/// (informational: it never fails).
async fn counting(cfg: &Config, store: &crate::store::Store) -> CheckResult {
    use crate::mailprotector::{WalkStats, trust};
    let types = &cfg.mailprotector.count_user_types;
    let stats = store.get_meta::<WalkStats>(crate::sync::WALK_STATS_KEY).await.ok().flatten();
    let user_count = match &stats {
        None => "no vendor run yet, so user_count has not been compared on this account".to_owned(),
        Some(stats) => {
            let walk = stats.walk.unwrap_or(crate::model::Walk::Users);
            trust::note(walk, trust::check_for(stats, types), false, types).detail
        }
    };
    CheckResult::pass(
        "counting",
        format!("counts users of type {types} (count_user_types); last vendor run: {user_count}"),
    )
}

/// The results as an aligned table: CHECK, RESULT, DETAIL; a passed check with warnings
/// shows `warn` and one `warning:` line each under its detail.
pub fn table(results: &[CheckResult]) -> String {
    let width = results.iter().map(|r| r.name.len()).max().unwrap_or(0).max("CHECK".len());
    let mut out = format!("{:<width$}  RESULT  DETAIL\n", "CHECK");
    for r in results {
        let result = match (r.ok, r.warnings.is_empty()) {
            (false, _) => "FAILED",
            (true, true) => "ok",
            (true, false) => "warn",
        };
        out.push_str(&format!("{:<width$}  {result:<6}  {}\n", r.name, r.detail));
        for w in &r.warnings {
            out.push_str(&format!("  warning: {w}\n"));
        }
    }
    out
}

/// The results as one JSON object: `ok`, `exit_code`, `checks`, and the config problems when
/// the config is invalid.
fn json_report(results: &[CheckResult], config_error: Option<&ConfigError>) -> String {
    let problems: Vec<serde_json::Value> = config_error
        .map(|e| {
            e.problems
                .iter()
                .map(|p| serde_json::json!({ "key": p.key, "message": p.message }))
                .collect()
        })
        .unwrap_or_default();
    let exit = config_error.map_or_else(|| overall_exit(results), |e| e.exit());
    let report = serde_json::json!({
        "ok": exit == Exit::Ok,
        "exit_code": exit.code(),
        "checks": results,
        "config_problems": problems,
    });
    serde_json::to_string_pretty(&report).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_failure_decides_the_exit_status() {
        let all_ok = [CheckResult::pass("config", "fine"), CheckResult::pass("store", "fine")];
        assert_eq!(overall_exit(&all_ok), Exit::Ok);
        let upstream = [
            CheckResult::pass("config", "fine"),
            CheckResult::fail("mp", "401", Exit::Unavailable),
        ];
        assert_eq!(overall_exit(&upstream), Exit::Unavailable);
        let both = [
            CheckResult::fail("store", "locked", Exit::TempFail),
            CheckResult::fail("mp", "x", Exit::Unavailable),
        ];
        assert_eq!(overall_exit(&both), Exit::TempFail);
    }

    #[test]
    fn the_table_aligns_names_and_marks_failures() {
        let t = table(&[
            CheckResult::pass("config", "valid"),
            CheckResult::fail("mailprotector", "401", Exit::Unavailable),
        ]);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[0], "CHECK          RESULT  DETAIL");
        assert_eq!(lines[1], "config         ok      valid");
        assert_eq!(lines[2], "mailprotector  FAILED  401");
    }

    #[test]
    fn warnings_show_as_warn_and_one_line_each_without_failing() {
        let results = [CheckResult::pass("mapping", "3 customers")
            .with_warnings(vec!["product \"CloudFiltr\" ...".into(), "customer 9 ...".into()])];
        let t = table(&results);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[1], "mapping  warn    3 customers");
        assert_eq!(lines[2], "  warning: product \"CloudFiltr\" ...");
        assert_eq!(lines[3], "  warning: customer 9 ...");
        assert_eq!(overall_exit(&results), Exit::Ok);
        let json = json_report(&results, None);
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!((v["ok"].as_bool(), v["exit_code"].as_u64()), (Some(true), Some(0)));
        assert_eq!(v["checks"][0]["warnings"][1], "customer 9 ...");
    }
}
