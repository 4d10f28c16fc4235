//! Helpers shared by the test modules, compiled once into the one test binary.
//!
//! - [`common`]: temp dirs with secrets and a config, the real binary with a clean
//!   environment, waiting on a condition with a deadline, raw HTTP responses, child guards.
//! - [`daemon`]: a running `mpsync run` (stderr collected, its bound address learned from its
//!   ready line), a blocking HTTP client, a test NOTIFY_SOCKET, signals.
//! - [`sync`]: an in-process simulator on its own runtime and a daemon configured against it.
//! - [`fault`]: the fault matrix's fixtures, cases and daemon wrappers.
//! - [`e2e`]: `mpsync sim --keys-dir` as a child and the rows its planted truth predicts.
//! - [`echo`]: proxies that echo every credential back, and the check that none shows.
//! - [`receivers`]: an HTTP receiver and an SMTP server standing in for notification
//!   receivers (webhook, Teams, Slack, e-mail).
//! - [`sim`]: a client for the simulated Mailprotector API over HTTP.
//! - [`mp`], [`cw`], [`at`], [`halo`], [`gradient`]: clients and configs for each upstream against a
//!   simulator.
//! - [`store`], [`reconcile`], [`dashboard`], [`api`]: store data sets, a sample
//!   reconciliation, seeded dashboard data, and the daemon's router in process.
//! - [`webdriver`]: a minimal WebDriver client and chromedriver for the browser test.
//! - [`writeback`]: plans built from the simulated ConnectWise, and `mpsync apply` runs.

pub mod api;
pub mod at;
pub mod common;
pub mod cw;
pub mod daemon;
pub mod dashboard;
pub mod e2e;
pub mod echo;
pub mod fault;
pub mod gradient;
pub mod halo;
pub mod mp;
pub mod receivers;
pub mod reconcile;
pub mod sim;
pub mod store;
pub mod sync;
pub mod webdriver;
pub mod writeback;
