//! How state values (accumulators, `Context::put` values, the session index) are stored as
//! bytes: JSON (serde_json), encoded into a reused buffer.
//!
//! # Why JSON, and not a binary codec
//! JSON keeps a state type's evolution lenient: a field added with `#[serde(default)]` still
//! reads values written before it, which is how a redeploy that changes a state type keeps its
//! state (see the SDK README). A binary codec was measured as the alternative (postcard behind a
//! tag byte, so old JSON values would still have read): in wasm it was *slower* for
//! `windowed-count` (715k against 801k records per CPU second at 1M keys, 1.37M against 2.03M at
//! 10k keys, `state_bench`), because the per-record cost is the hash map and allocation, not
//! number formatting. What JSON did cost, a fresh `Vec` per value, is gone: values are encoded
//! into buffers the store recycles after each commit.

use serde::de::DeserializeOwned;
use serde::Serialize;

/// Appends `value`'s encoding to `buf`.
pub(crate) fn encode_into<T: Serialize + ?Sized>(value: &T, buf: &mut Vec<u8>) -> crate::Result {
    serde_json::to_writer(&mut *buf, value)?;
    Ok(())
}

/// `value` encoded in a new buffer.
pub(crate) fn encode<T: Serialize + ?Sized>(value: &T) -> crate::Result<Vec<u8>> {
    Ok(serde_json::to_vec(value)?)
}

/// Decodes a value written by [`encode`] / [`encode_into`].
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> crate::Result<T> {
    Ok(serde_json::from_slice(bytes)?)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq, Default)]
    struct Acc {
        count: u64,
        #[serde(default)]
        last: Option<String>,
    }

    /// Values round-trip, including into a buffer that already holds bytes; a value written
    /// before a `serde(default)` field was added still reads; a value of another type is an
    /// error, not a panic.
    #[test]
    fn round_trip_and_lenient_evolution() {
        for n in [0u64, 1, 127, u64::MAX] {
            assert_eq!(decode::<u64>(&encode(&n).unwrap()).unwrap(), n);
        }
        let acc = Acc { count: 3, last: Some("x".into()) };
        assert_eq!(decode::<Acc>(&encode(&acc).unwrap()).unwrap(), acc);
        assert_eq!(decode::<Acc>(br#"{"count":3}"#).unwrap(), Acc { count: 3, last: None });
        assert!(decode::<u64>(&encode(&acc).unwrap()).is_err());
        assert!(decode::<u64>(b"").is_err());
        let mut buf = b"prefix".to_vec();
        encode_into(&9u64, &mut buf).unwrap();
        assert_eq!(decode::<u64>(&buf[6..]).unwrap(), 9);
    }
}
