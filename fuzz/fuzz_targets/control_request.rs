//! cargo-fuzz target; the entry point and what it checks are in hearth_tests::fuzzing.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hearth_tests::fuzzing::control_request(data));
