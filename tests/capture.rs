//! `mpsync capture` and `mpsync sim --replay` as a user runs them: a capture of the simulator
//! replays to the same counts and billed lines; no form of any secret reaches a bundle even
//! when every upstream echoes its credentials; the public record's example bundle replays to
//! the counts a person reads off it; bad directories, configs, flags and bundles get their
//! exit codes.

mod common;

#[path = "capture/cli.rs"]
mod cli;
#[path = "capture/public.rs"]
mod public;
#[path = "capture/roundtrip.rs"]
mod roundtrip;
#[path = "capture/secrets.rs"]
mod secrets;
#[path = "capture/support.rs"]
mod support;
