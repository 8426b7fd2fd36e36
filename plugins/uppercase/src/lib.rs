//! `uppercase`: a map transform. Each record's value is upper-cased (ASCII letters; other bytes
//! pass through unchanged); key, headers and timestamp are inherited. A null value stays null.

use sluice_sdk::{transform, OutRecord, Output, Record, Result};

/// The transform function (public so the benchmark can run it natively).
pub fn uppercase(record: &Record, out: &mut Output) -> Result {
    match record.value {
        Some(value) => out.emit(value.to_ascii_uppercase()),
        None => out.send(OutRecord::tombstone()),
    }
    Ok(())
}

transform!(uppercase);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upper_cases_the_value() {
        let mut out = Output::new();
        uppercase(&Record::new(b"hello, World 1").with_key(b"k"), &mut out).unwrap();
        assert_eq!(out.values(), ["HELLO, WORLD 1"]);
        assert_eq!(out.records()[0].key, sluice_sdk::Inherit::Inherit);
    }
}
