//! `fail-on`: passes values through unchanged, except for chosen inputs, on which it fails in a
//! chosen way — for the error-policy and resource-limit tests. Config (all optional substrings
//! of the value): `{"panic_on": "boom", "error_on": "bad", "loop_on": "spin",
//! "memory_on": "bomb"}`.

use serde::Deserialize;
use sluice_sdk::{transform, Output, Record, Result};

/// Which inputs fail, and how.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Panics (a trap in wasm).
    #[serde(default)]
    panic_on: Option<String>,
    /// Returns an error for the record.
    #[serde(default)]
    error_on: Option<String>,
    /// Loops forever (the broker's time limit must stop it).
    #[serde(default)]
    loop_on: Option<String>,
    /// Allocates without bound (the broker's memory limit must stop it).
    #[serde(default)]
    memory_on: Option<String>,
    /// Writes a log line (and passes the record through).
    #[serde(default)]
    log_on: Option<String>,
}

fn hits(text: &str, needle: &Option<String>) -> bool {
    needle.as_deref().is_some_and(|n| text.contains(n))
}

/// The transform function.
pub fn fail_on(record: &Record, out: &mut Output, config: &Config) -> Result {
    let text = record.value_str();
    if hits(&text, &config.panic_on) {
        panic!("fail-on: panic requested by offset {}", record.offset);
    }
    if hits(&text, &config.error_on) {
        return Err(format!("fail-on: error requested by offset {}", record.offset).into());
    }
    if hits(&text, &config.loop_on) {
        let mut i = 0u64;
        loop {
            i = std::hint::black_box(i.wrapping_add(1));
        }
    }
    if hits(&text, &config.memory_on) {
        let mut hoard: Vec<Vec<u8>> = Vec::new();
        loop {
            hoard.push(vec![1u8; 1 << 20]);
            std::hint::black_box(&hoard);
        }
    }
    if hits(&text, &config.log_on) {
        sluice_sdk::info!("log requested by offset {}", record.offset);
    }
    out.emit(record.value());
    Ok(())
}

transform!(fail_on, Config);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passes_through_and_errs_on_request() {
        let config = Config { error_on: Some("bad".into()), ..Config::default() };
        let mut out = Output::new();
        fail_on(&Record::new(b"ok"), &mut out, &config).unwrap();
        assert!(fail_on(&Record::new(b"bad one"), &mut out, &config).is_err());
        assert_eq!(out.values(), ["ok"]);
    }

    #[test]
    #[should_panic(expected = "panic requested")]
    fn panics_on_request() {
        let config = Config { panic_on: Some("boom".into()), ..Config::default() };
        let _ = fail_on(&Record::new(b"boom"), &mut Output::new(), &config);
    }
}
