//! Fuzz target `upstream`: see `mpsync::fuzzing::check_upstream` for the input and the rules a run
//! must keep (a panic, or a rule broken, is a finding).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mpsync::fuzzing::check_upstream(data));
