//! The command line (clap). The binary parses it and hands it to [`crate::commands::dispatch`].

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::config::DEFAULT_CONFIG_PATH;

/// mpsync keeps Mailprotector usage and your PSA billing in agreement.
///
/// It polls Mailprotector for per-customer, per-product user counts, reads what your PSA bills,
/// reconciles the two, and serves the differences and its own health on a local HTTP endpoint.
/// Exit codes: 0 ok, 64 usage, 65 bad input data, 69 upstream unavailable, 75 store held by
/// another process, 78 bad config.
#[derive(Debug, Parser)]
#[command(name = "mpsync", version, propagate_version = true)]
pub struct Cli {
    /// The TOML config file. Settings can also come from MPSYNC_<SECTION>__<KEY> environment
    /// variables, which win over the file.
    #[arg(short, long, global = true, value_name = "PATH", default_value = DEFAULT_CONFIG_PATH)]
    pub config: PathBuf,

    /// Log line format: text for people and journald, json for log shippers.
    #[arg(long, global = true, value_enum, value_name = "FORMAT")]
    pub log_format: Option<LogFormatArg>,

    /// Log filter (tracing syntax, e.g. "info" or "mpsync=debug"); overrides daemon.log.
    #[arg(long, global = true, value_name = "FILTER")]
    pub log: Option<String>,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Log line format on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormatArg {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon (what systemd starts): poll on schedule, serve HTTP, until SIGTERM.
    Run(RunArgs),
    /// Validate the config and test each configured upstream ("Check Connection").
    /// Exits non-zero if anything fails, saying what to fix.
    Check(CheckArgs),
    /// Print the effective config (file + environment + flags), secrets shown as <redacted>.
    Config,
    /// Poll now without the daemon and print a summary. Needs the store: stop the daemon
    /// first, or use `curl -X POST http://127.0.0.1:9847/v1/sync` instead.
    Sync(SyncArgs),
    /// Try mpsync on demo data: the simulated Mailprotector with a seeded reseller and a daemon
    /// against it in a temporary directory. Prints the URLs to look at; Ctrl-C stops it and
    /// removes the directory.
    Demo(DemoArgs),
    /// Run the simulated upstreams (Mailprotector under /api/v1) on one listener, for trying
    /// mpsync without a real account and for tests; with --replay DIR, serve a capture instead.
    Sim(SimArgs),
    /// Record one read-only collection of the configured upstreams into DIR, without secrets
    /// and (by default) with names, e-mail addresses and domain names pseudonymized: a bundle
    /// to attach to a bug report, which `mpsync sim --replay DIR` serves back.
    Capture(CaptureArgs),
    /// Print the latest reconciliation from the store: every (account, PSA product) with its
    /// vendor and billed quantity and status. Needs the store: while the daemon runs, use
    /// `curl http://127.0.0.1:9847/v1/reconciliation` instead.
    Reconcile(ReconcileArgs),
    /// Print the write-back plan built from the latest reconciliation: the PSA quantity
    /// changes the mapping's write_back policy allows, what is not planned and why, and the
    /// lines to add by hand. While the daemon runs it asks the daemon through its control
    /// socket (run it as root or as the daemon's user), or use
    /// `curl http://127.0.0.1:9847/v1/plan`.
    Plan(PlanArgs),
    /// Apply a write-back plan (its id from `mpsync plan`) to the PSA, each change exactly
    /// once: every line is re-read first and written only if it still holds the quantity the
    /// plan read. Works while the daemon runs, through its control socket in the state
    /// directory (run it as root, e.g. `sudo mpsync apply 3`, or as the daemon's user). There
    /// is no write over HTTP.
    Apply(ApplyArgs),
    /// Every write-back attempt and its result (applied, skipped and why, failed and the PSA's
    /// error), with who and when, newest first.
    Audit(AuditArgs),
    /// What discrepancies appeared in a period, were fixed (and how) and are still open, with
    /// their money, per account: the month-end report. Works while the daemon runs (through
    /// its control socket: run it as root or the daemon's user), or use
    /// `curl 'http://127.0.0.1:9847/v1/report?since=2026-11-01'`.
    Report(ReportArgs),
    /// Write a consistent copy of the store to PATH (a new file, mode 0600), while the daemon
    /// runs (through its control socket: run it as root or the daemon's user) or not.
    /// Restore: stop mpsync, copy the file over <state_dir>/mpsync.redb, start mpsync.
    Backup(BackupArgs),
    /// Write a starter config (-c PATH, default /etc/mpsync/mpsync.toml) and its secrets
    /// (mode 0600, in NAME.credentials/ beside it, where the systemd unit loads them), then
    /// run `check`. Asks for what the flags leave out when run on a terminal (secrets without
    /// echo); otherwise the flags must say it all. Never overwrites a file (exit 73).
    Init(Box<InitArgs>),
    /// Notifications (the `[[notify]]` channels): `mpsync notify test [NAME]` sends each a
    /// sample.
    Notify(NotifyArgs),
}

/// `mpsync notify`.
#[derive(Debug, Args)]
pub struct NotifyArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: NotifyCommand,
}

/// The `mpsync notify` subcommands.
#[derive(Debug, Subcommand)]
pub enum NotifyCommand {
    /// Send a sample notification, clearly marked as a test, to every `[[notify]]` channel
    /// (or only to NAME) and print each receiver's answer. Exits 69 if any delivery failed.
    /// Needs only the config and the secrets, not the daemon.
    Test(NotifyTestArgs),
}

/// `mpsync notify test`.
#[derive(Debug, Args)]
pub struct NotifyTestArgs {
    /// Only this channel (its `name`).
    #[arg(value_name = "NAME")]
    pub name: Option<String>,
    /// Print the results as JSON: `{"channels": [{"name", "kind", "ok", "status", "answer"}]}`.
    #[arg(long)]
    pub json: bool,
}

/// `mpsync backup`.
#[derive(Debug, Args)]
pub struct BackupArgs {
    /// Where to write the copy: a new file (an existing one is never replaced).
    #[arg(value_name = "PATH")]
    pub path: PathBuf,
    /// State directory holding the store; overrides daemon.state_dir (and then the config
    /// is not read at all).
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
}

/// Where billed quantities come from, for `mpsync init`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum InitBilling {
    /// ConnectWise Manage agreements.
    Connectwise,
    /// Datto Autotask contracts.
    Autotask,
    /// HaloPSA recurring invoices.
    Halopsa,
    /// A CSV export of billed lines.
    Csv,
    /// No billing: counts only.
    None,
}

/// `mpsync init`.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// Your Mailprotector reseller id (the number in the console URL of your reseller
    /// overview).
    #[arg(long, value_name = "N")]
    pub reseller_id: Option<u64>,
    /// A file holding the Mailprotector API key, or `-` to read it as a line from standard
    /// input.
    #[arg(long, value_name = "PATH")]
    pub api_key_file: Option<PathBuf>,
    /// Where billed quantities come from.
    #[arg(long, value_enum, value_name = "SOURCE")]
    pub billing: Option<InitBilling>,
    /// ConnectWise company (login) id (with --billing connectwise).
    #[arg(long, value_name = "ID")]
    pub cw_company_id: Option<String>,
    /// ConnectWise integration clientId (with --billing connectwise).
    #[arg(long, value_name = "GUID")]
    pub cw_client_id: Option<String>,
    /// A file holding the ConnectWise API member's public key, or `-` (a line of stdin).
    #[arg(long, value_name = "PATH")]
    pub cw_public_key_file: Option<PathBuf>,
    /// A file holding the ConnectWise API member's private key, or `-` (a line of stdin).
    #[arg(long, value_name = "PATH")]
    pub cw_private_key_file: Option<PathBuf>,
    /// ConnectWise API host (default https://api-na.myconnectwise.net).
    #[arg(long, value_name = "URL")]
    pub cw_url: Option<String>,
    /// The Autotask API-only user's user name (with --billing autotask).
    #[arg(long, value_name = "NAME")]
    pub at_username: Option<String>,
    /// A file holding the Autotask integration code, or `-` (a line of stdin).
    #[arg(long, value_name = "PATH")]
    pub at_integration_code_file: Option<PathBuf>,
    /// A file holding the Autotask API user's secret, or `-` (a line of stdin).
    #[arg(long, value_name = "PATH")]
    pub at_secret_file: Option<PathBuf>,
    /// The HaloPSA instance root, e.g. https://acme.halopsa.com (with --billing halopsa).
    #[arg(long, value_name = "URL")]
    pub halo_url: Option<String>,
    /// The HaloPSA tenant name of a Halo-hosted instance; `-` for none (on premises).
    #[arg(long, value_name = "NAME")]
    pub halo_tenant: Option<String>,
    /// The HaloPSA API application's Client ID (with --billing halopsa).
    #[arg(long, value_name = "ID")]
    pub halo_client_id: Option<String>,
    /// A file holding the HaloPSA API application's client secret, or `-` (a line of stdin).
    #[arg(long, value_name = "PATH")]
    pub halo_client_secret_file: Option<PathBuf>,
    /// The CSV export of billed lines (with --billing csv).
    #[arg(long, value_name = "PATH")]
    pub csv_path: Option<PathBuf>,
    /// Mailprotector API host (default https://emailservice.io).
    #[arg(long, value_name = "URL")]
    pub mailprotector_url: Option<String>,
    /// The HTTP endpoint's address (default 127.0.0.1:9847; give each instance of the
    /// template unit its own port).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Where the store lives (default: the unit's StateDirectory=, else /var/lib/mpsync).
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Write the files only; do not run `check` (which connects to the upstreams).
    #[arg(long)]
    pub no_check: bool,
}

/// `mpsync run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Listen address for the HTTP endpoint; overrides daemon.listen. Port 0 takes a free
    /// port; the "mpsync ready on" log line names the address bound.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// State directory holding the store; overrides daemon.state_dir.
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
}

/// `mpsync check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `mpsync sync`.
#[derive(Debug, Args)]
pub struct SyncArgs {
    /// Run once and exit (required: the scheduled form is `mpsync run`).
    #[arg(long, required = true)]
    pub once: bool,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
    /// State directory holding the store; overrides daemon.state_dir.
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
}

/// `mpsync sim`.
#[derive(Debug, Args)]
pub struct SimArgs {
    /// Listen address. Port 0 takes a free port; the first line printed names it.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9850")]
    pub listen: SocketAddr,
    /// How many customers to generate.
    #[arg(long, value_name = "N", default_value_t = 50)]
    pub customers: u32,
    /// Seed of the generator: the same seed gives the same data.
    #[arg(long, value_name = "S", default_value_t = 1)]
    pub seed: u64,
    /// Latency added to every response, in milliseconds.
    #[arg(long, value_name = "L", default_value_t = 0)]
    pub latency_ms: u64,
    /// Extra random latency of up to this many milliseconds on every response (seeded).
    #[arg(long, value_name = "J", default_value_t = 0)]
    pub jitter_ms: u64,
    /// Server-side rate limit in requests per second (429 with Retry-After above it).
    #[arg(long, value_name = "RPS")]
    pub rate_limit: Option<f64>,
    /// A fault to inject, e.g. "status=503,rate=0.1,endpoint=user_groups"; repeatable.
    /// `--help` lists every form and variant; a bad spec prints them and exits 64.
    #[arg(long, value_name = "SPEC", long_help = fault_long_help())]
    pub fault: Vec<String>,
    /// Write the API keys as secret files (mode 0600) and a ready mpsync.toml into DIR.
    #[arg(long, value_name = "DIR")]
    pub keys_dir: Option<PathBuf>,
    /// The PSA the written configuration and mapping bill from (both are simulated).
    #[arg(long, value_enum, value_name = "PSA", default_value = "connectwise")]
    pub psa: Psa,
    /// Serve the capture bundle in DIR (written by `mpsync capture`) instead of generated
    /// data: exactly the captured answers, any key accepted, 404 for anything not captured.
    #[arg(
        long,
        value_name = "DIR",
        conflicts_with_all = ["customers", "seed", "latency_ms", "jitter_ms", "rate_limit", "fault"]
    )]
    pub replay: Option<PathBuf>,
}

/// `mpsync capture`.
#[derive(Debug, Args)]
pub struct CaptureArgs {
    /// Where to write the bundle: a new or empty directory (nothing is ever overwritten).
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    /// Replace names, e-mail addresses and domain names by consistent pseudonyms (the default).
    #[arg(long, overrides_with = "no_pseudonymize")]
    pub pseudonymize: bool,
    /// Keep names, e-mail addresses and domain names as the upstreams sent them.
    #[arg(long, overrides_with = "pseudonymize")]
    pub no_pseudonymize: bool,
}

/// The long help of `mpsync sim --fault`: generated from the simulator's own list of forms
/// and variants, so the help never drifts from what the parser accepts.
fn fault_long_help() -> String {
    format!(
        "A fault to inject, e.g. \"status=503,rate=0.1,endpoint=user_groups\"; repeatable. A bad \
         spec prints every form and exits 64.\n\n{}",
        mpsync_sim::faults::spec_forms()
    )
}

/// `mpsync demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Listen address of the daemon's HTTP endpoint. Port 0 takes a free port; the URLs
    /// printed once it serves name it.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9847")]
    pub listen: SocketAddr,
    /// How many customers the demo reseller has.
    #[arg(long, value_name = "N", default_value_t = 50)]
    pub customers: u32,
    /// Seed of the demo data.
    #[arg(long, value_name = "S", default_value_t = 1)]
    pub seed: u64,
    /// The simulated PSA the demo bills from.
    #[arg(long, value_enum, value_name = "PSA", default_value = "connectwise")]
    pub psa: Psa,
}

/// A simulated PSA (`mpsync sim --psa`, `mpsync demo --psa`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Psa {
    /// ConnectWise Manage agreement additions.
    Connectwise,
    /// Datto Autotask recurring-service contracts.
    Autotask,
    /// HaloPSA recurring-invoice lines.
    Halopsa,
}

/// `mpsync reconcile`.
#[derive(Debug, Args)]
pub struct ReconcileArgs {
    /// Output format.
    #[arg(long, value_enum, value_name = "FORMAT", default_value = "table")]
    pub format: ReconcileFormat,
    /// Only rows with this status; several as a comma-separated list
    /// (e.g. under_billed,over_billed,unbilled).
    #[arg(long, value_name = "S")]
    pub status: Option<String>,
    /// State directory holding the store; overrides daemon.state_dir.
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
}

/// `mpsync plan`.
#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Print the plan as JSON (the same as /v1/plan).
    #[arg(long, conflicts_with = "csv")]
    pub json: bool,
    /// Print the changes as CSV, one line per change: what to enter in the PSA by hand.
    #[arg(long)]
    pub csv: bool,
    /// Only items with this reconciliation status; several as a comma-separated list
    /// (e.g. under_billed,over_billed; manual steps are unbilled).
    #[arg(long, value_name = "S")]
    pub status: Option<String>,
    /// Only items of this PSA account (id, or name ignoring case).
    #[arg(long, value_name = "A")]
    pub account: Option<String>,
    /// Show plan N instead of the latest (a superseded plan says so).
    #[arg(long, value_name = "N")]
    pub id: Option<u64>,
    /// State directory holding the store; overrides daemon.state_dir.
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
}

/// How `mpsync reconcile` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReconcileFormat {
    /// An aligned table with a summary, for people.
    Table,
    /// The rows and summary as JSON (the same as /v1/reconciliation).
    Json,
    /// CSV with a header row (the same as /v1/reconciliation?format=csv).
    Csv,
}

/// `mpsync report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The period's start: YYYY-MM-DD (midnight UTC) or an RFC 3339 time.
    #[arg(long, value_name = "DATE")]
    pub since: String,
    /// The period's end, exclusive (default: now): YYYY-MM-DD or an RFC 3339 time.
    #[arg(long, value_name = "DATE")]
    pub until: Option<String>,
    /// Output format.
    #[arg(long, value_enum, value_name = "FORMAT", default_value = "md")]
    pub format: ReportFormat,
    /// State directory holding the store; overrides daemon.state_dir.
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
}

/// How `mpsync report` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    /// Markdown, for people.
    Md,
    /// CSV, one line per discrepancy and section.
    Csv,
    /// JSON (the same as /v1/report?format=json).
    Json,
}

/// `mpsync apply`.
#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// The plan to apply (`mpsync plan` prints its id).
    #[arg(value_name = "PLAN_ID")]
    pub plan: u64,
    /// Print the exact request of each change and send nothing (not even the re-reads);
    /// nothing is recorded.
    #[arg(long)]
    pub dry_run: bool,
    /// Only these changes: row numbers of the plan or line keys (cw:12/345), separated by
    /// spaces or commas.
    #[arg(long, value_name = "ROW", num_args = 1.., value_delimiter = ',')]
    pub only: Vec<String>,
    /// State directory holding the store; overrides daemon.state_dir.
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
}

/// `mpsync audit`.
#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Print `{"entries": [...]}` as JSON (the same as GET /v1/audit).
    #[arg(long)]
    pub json: bool,
    /// At most this many entries, newest first.
    #[arg(long, value_name = "N", default_value_t = 50)]
    pub limit: usize,
    /// Only the entries of this plan.
    #[arg(long, value_name = "ID")]
    pub plan: Option<u64>,
    /// State directory holding the store; overrides daemon.state_dir.
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
}
