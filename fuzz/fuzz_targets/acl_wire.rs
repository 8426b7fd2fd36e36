//! `cargo fuzz run acl_wire`: see `sluice::fuzzing::acl_wire`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sluice::fuzzing::acl_wire(data));
