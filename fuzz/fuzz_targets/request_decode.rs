//! `cargo fuzz run request_decode`: see `sluice::fuzzing::request_decode`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sluice::fuzzing::request_decode(data));
