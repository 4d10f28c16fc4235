//! Fuzz target `csv`: see `mpsync_fuzz::check_csv` (fuzz/src) for the input and the rules a
//! run must keep (a panic, or a rule broken, is a finding).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mpsync_fuzz::check_csv(data));
