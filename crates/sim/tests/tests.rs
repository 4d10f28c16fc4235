//! The simulators' tests, one binary: a module per area, the helpers in [`support`] compiled
//! once. They drive `mpsync_sim` in process and over HTTP on 127.0.0.1:0 and know nothing of
//! the daemon; tests that run the `mpsync` binary (`mpsync sim`) are the daemon's.

mod support;

mod api;
mod autotask;
mod cw_writes;
mod dataset;
mod faults;
mod gradient;
mod halopsa;
mod halopsa_writes;
mod mutations;
mod scale;
mod scale_http;
mod variants;
