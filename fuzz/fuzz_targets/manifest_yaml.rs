//! `cargo fuzz run manifest_yaml`: see `sluice::fuzzing::manifest_yaml`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sluice::fuzzing::manifest_yaml(data));
