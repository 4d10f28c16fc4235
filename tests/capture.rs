//! `mpsync capture` and `mpsync sim --replay` as a user runs them: a capture of the simulator
//! replays to the same counts and billed lines; no form of any secret reaches a bundle even
//! when every upstream echoes its credentials; the public record's example bundle replays to
//! the counts a person reads off it; bad directories, configs, flags and bundles get their
//! exit codes.

mod cli;
mod public;
mod roundtrip;
mod secrets;
mod support;
