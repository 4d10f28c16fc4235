//! Property-test versions of the cargo-fuzz targets in `fuzz/` (run by `cargo test`, so CI
//! runs them): each parser — config, mapping, billing CSV, upstream answers — gets arbitrary
//! input (never a panic), valid documents with random damage (an error that says where), and
//! round trips where they exist. Case counts stay small so the suite stays fast.
//!
//! The inputs and rules are the fuzz crate's own harness (`fuzz/src`), compiled in here, so
//! both hold mpsync's real functions to the same rules.

#[path = "../../fuzz/src/lib.rs"]
mod harness;

mod config;
mod csv;
mod mapping;
mod mutate;
mod seeds;
mod upstream;
