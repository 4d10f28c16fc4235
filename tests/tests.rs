//! mpsync's integration tests, one binary: a module per area, the helpers in [`support`]
//! compiled once. They drive the library, or the real `mpsync` binary, against the simulators
//! (`mpsync_sim`) and servers they start on 127.0.0.1:0, learning each bound address from the
//! server itself. The simulator's own tests are in `crates/sim/tests`.
//!
//! Run one area with a filter on its module: `cargo test --test tests store_open::`.

mod support;

mod billing_autotask;
mod billing_connectwise;
mod billing_csv;
mod billing_generator;
mod billing_halopsa;
mod billing_store;
mod billing_write;
mod browser;
mod capture;
mod config_cli;
mod config_errors;
mod crash;
mod daemon;
mod daemon_access;
mod daemon_logging;
mod daemon_reload;
mod daemon_unit;
mod dashboard;
mod demo;
mod events_crash;
mod events_e2e;
mod fault_matrix;
mod gradient_cli;
mod gradient_client;
mod gradient_daemon;
mod gradient_push;
mod http_hardening;
mod init;
mod mailprotector_counts;
mod mailprotector_faults;
mod mailprotector_requests;
mod mailprotector_sync_cli;
mod monitoring_kit;
mod notify_cli;
mod notify_daemon;
mod parsers_fuzz;
mod plan_cli;
mod plan_e2e;
mod reconcile_api;
mod reconcile_cli;
mod reconcile_e2e;
mod reconcile_e2e_autotask;
mod reconcile_e2e_halopsa;
mod secret_echo;
mod sim_cli;
mod store_backup;
mod store_billing;
mod store_crash;
mod store_fault;
mod store_fixture;
mod store_history;
mod store_measure;
mod store_open;
mod store_runs;
mod store_snapshot_props;
mod store_upgrade;
mod sync_catch_up;
mod sync_cron;
mod sync_daemon;
mod writeback_apply;
mod writeback_autotask;
mod writeback_autotask_cli;
mod writeback_cli;
mod writeback_daemon;
mod writeback_halopsa;
mod writeback_halopsa_cli;
mod writeback_halopsa_daemon;
