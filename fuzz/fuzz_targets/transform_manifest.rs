//! `cargo fuzz run transform_manifest`: see `sluice::fuzzing::transform_manifest`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sluice::fuzzing::transform_manifest(data));
