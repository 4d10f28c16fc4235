//! mpsync keeps Mailprotector email-security usage and an MSP's billing in agreement.
//!
//! It polls Mailprotector on a schedule for customers and per-product user counts, keeps every
//! run in a redb store, reads what is billed from the PSA, reconciles the two, and serves the
//! result and its own health on a local HTTP endpoint.
//!
//! # Layout
//!
//! - [`config`]: raw TOML/env settings → validated [`config::Config`]; secrets.
//! - [`store`]: the redb database: schema version, runs, snapshots, caches.
//! - [`upstream`]: shared HTTP plumbing: client builder, rate limiter, retry, typed errors.
//! - [`mailprotector`]: the Mailprotector API client and usage-count collection.
//! - [`billing`]: billed quantities from ConnectWise Manage or a CSV export.
//! - [`gradient`]: the Gradient Synthesize vendor API client and the push plan and report.
//! - [`reconcile`]: the pure reconciliation engine: snapshots + mapping → typed rows.
//! - [`report`]: the period report (`mpsync report`, `/v1/report`) from the event log.
//! - [`sync`]: the sync engine: schedules, run lifecycle, catch-up, backoff.
//! - [`server`]: the axum routes: probes, health, v1 API.
//! - [`health`]: the in-memory state that health answers from.
//! - [`systemd`]: the notify protocol and the watchdog heartbeat.
//! - [`telemetry`]: logging set-up.
//! - [`metrics`]: the Prometheus registry served on `/metrics`.
//! - [`app`]: builds everything from a `Config` and runs until shutdown; the only module that
//!   knows all the others.
//! - [`cli`]: the command-line definition (clap).
//! - [`commands`]: one function per CLI command, called by the thin binary.
//! - [`control`]: the daemon's local control socket, through which the command line applies
//!   plans and reads the audit log while the daemon holds the store.
//! - [`events`]: the event log's events (discrepancies raised, changed, resolved; sources
//!   failing and recovering; push and write-back failures), derived purely.
//! - [`notify`]: notifications (webhook, Teams, Slack, e-mail) delivered from the event log,
//!   at least once, with retries that survive restarts.
//! - [`writeback`]: the reviewed plan of PSA quantity changes, applied once, and its audit.
//! - [`model`]: the domain words shared by every module (customer, product, run, snapshot).
//! - [`exit`]: exit codes (sysexits) and the mapping from errors to them.
//!
//! The workspace around it: the simulators of the upstream APIs (part of the product: `mpsync
//! sim`, `mpsync demo`, the tests and the benchmarks) are the `mpsync_sim` crate
//! (`crates/sim`), which knows nothing of this one; the benchmark harness behind BENCHMARKS.md
//! is `mpsync-bench` (`crates/bench`). The cargo-fuzz targets (`fuzz/`, a workspace of their
//! own) call this crate's public parsers and answer readers directly.
#![forbid(unsafe_code)]

pub mod app;
pub mod billing;
pub mod capture;
pub mod cli;
pub mod commands;
pub mod config;
pub mod control;
pub mod events;
pub mod exit;
pub mod gradient;
pub mod health;
pub mod mailprotector;
pub mod metrics;
pub mod model;
pub mod notify;
pub mod reconcile;
pub mod report;
pub mod server;
pub mod store;
pub mod sync;
pub mod systemd;
pub mod telemetry;
pub mod upstream;
pub mod writeback;
