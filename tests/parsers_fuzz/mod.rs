//! Property-test versions of the cargo-fuzz targets in `fuzz/` (run by `cargo test`, so CI
//! runs them): each parser — config, mapping, billing CSV, upstream answers — gets arbitrary
//! input (never a panic), valid documents with random damage (an error that says where), and
//! round trips where they exist. Case counts stay small so the suite stays fast.

mod config;
mod csv;
mod mapping;
mod mutate;
mod seeds;
mod upstream;
