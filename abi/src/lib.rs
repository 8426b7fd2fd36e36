//! The batch ABI between the Sluice broker (host) and a WebAssembly transform (guest), versions 1
//! (stateless) and 2 (v1 plus keyed state).
//!
//! Both sides depend on this crate, so the layout is written down once. It knows nothing of
//! wasmtime and nothing of Kafka's wire format: plain types and byte layouts only.
//!
//! # The module
//! A transform is a WebAssembly **core module** (not a component) built for `wasm32-wasip1`.
//! The version is part of every symbol name, so a module built for another ABI version fails
//! validation on deploy with a clear message instead of misbehaving at run time.
//!
//! Exports the guest must provide (the SDK's `transform!` macro writes them):
//! - `memory`: the linear memory.
//! - `sluice_transform_v1_alloc(len: i32) -> i32`: returns a pointer to `len` writable bytes,
//!   16-byte aligned, valid until the next call of `init` or `process`.
//! - `sluice_transform_v1_init(ptr: i32, len: i32) -> i64`: called once per instance with the
//!   transform's config parameters as a JSON object (UTF-8). Returns an [`Output`] location.
//! - `sluice_transform_v1_process(ptr: i32, len: i32) -> i64`: called once per batch with an
//!   rkyv-archived [`Batch`] (the guest reads it in place, validated). Returns an [`Output`]
//!   location.
//! - `_initialize` (optional): called once after instantiation (wasi-libc reactor start).
//!
//! # Version 2: keyed state
//! A stateful module exports the same functions under `sluice_transform_v2_*` names, plus
//! `sluice_transform_v2_state(ptr: i32, len: i32) -> i64`, which takes a [`StateCommand`]
//! (commit, abort, restore; layout in `state.rs`) and returns an [`Output`] location (status
//! only). State lives in the guest's memory; at the end of each `process` call the guest lists
//! its changes (one [`StateOp`] per changed key, in the order the batch first touched them) and its state size in the output
//! buffer, and keeps them provisional until the host sends `commit` (the host wrote them to the
//! changelog) or `abort` (the host will retry the batch). A new instance is brought back with
//! `restore` commands before its first batch. All names change with the version, rather than v1
//! gaining an optional export, so a broker that only knows v1 refuses a stateful module at deploy
//! instead of running it without ever committing or restoring its state.
//!
//! Imports the guest may use: only the `wasi_snapshot_preview1` functions a Rust std guest needs
//! (`fd_write`, `environ_get`, `environ_sizes_get`, `clock_time_get`, `random_get`,
//! `proc_exit`, `sched_yield`). The host makes them deterministic: the clock reads the current
//! record's timestamp, randomness is seeded from the input position, there are no files and no
//! network. Anything else is refused at deploy.
//!
//! # Host → guest: the batch
//! The host serialises a [`Batch`] with rkyv 0.8 (little-endian, 32-bit relative pointers, the
//! rkyv defaults), copies it into memory obtained from `alloc`, and calls `process` once. No
//! per-record calls cross the boundary.
//!
//! # Guest → host: the output buffer
//! `init` and `process` return `(ptr << 32) | len` of a buffer in guest memory, valid until the
//! next call. Serialising with rkyv inside wasm costs ~10× more than reading (see FACTS.md), so
//! the output is a compact little-endian, length-prefixed stream instead:
//!
//! ```text
//! output   := status entry*
//! status   := u8 0 (ok) | u8 1 (the whole call failed) bytes(message)     -- nothing follows 1
//! entry    := u8 1 record | u8 2 log | u8 3 record_error | u8 4 state | u8 5 state_bytes
//! record   := u32 input_index  topic  key  value  headers  timestamp
//! topic    := bytes            -- empty: the transform's default output topic
//! key      := u8 0 (inherit the input's) | u8 1 (null) | u8 2 bytes
//! value    := u8 0 (null) | u8 1 bytes
//! headers  := u8 0 (inherit) | u8 1 u32 count (bytes key, value)*count
//! timestamp:= u8 0 (inherit) | u8 1 i64
//! log      := u32 input_index (u32::MAX: none)  u8 level (0 error .. 4 trace)  bytes(message)
//! record_error := u32 input_index  bytes(message)  -- that record failed; the error policy applies
//! state    := state_op (see `state.rs`)                            -- v2 only, entry tag 4
//! state_bytes := i64                                               -- v2 only, entry tag 5
//! bytes    := u32 len  len*u8
//! ```
//! `input_index` is the record's position in the batch, so the host knows which input offset
//! each output came from (exactly-once bookkeeping and dead-lettering use it).

#![warn(missing_docs)]

mod output;
mod state;

pub use output::{DecodeError, Decoded, Emitted, Inherit, LogLine, OutputWriter, RecordError, Status};
pub use state::{StateCommand, StateOp};

/// The newest ABI version this crate describes; it appears in every export name. Hosts accept
/// every version in [`ABI_VERSIONS`].
pub const ABI_VERSION: u32 = 2;
/// Every ABI version a host built from this crate runs.
pub const ABI_VERSIONS: [u32; 2] = [1, 2];

/// The export names of one ABI version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exports {
    /// The version.
    pub version: u32,
    /// `alloc`.
    pub alloc: &'static str,
    /// `init`.
    pub init: &'static str,
    /// `process`.
    pub process: &'static str,
    /// `state` (v2 and later).
    pub state: Option<&'static str>,
}

/// Export names of ABI v1 (stateless).
pub const EXPORTS_V1: Exports = Exports { version: 1, alloc: EXPORT_ALLOC, init: EXPORT_INIT, process: EXPORT_PROCESS, state: None };
/// Export names of ABI v2 (keyed state).
pub const EXPORTS_V2: Exports = Exports {
    version: 2,
    alloc: "sluice_transform_v2_alloc",
    init: "sluice_transform_v2_init",
    process: "sluice_transform_v2_process",
    state: Some("sluice_transform_v2_state"),
};

/// The export names of `version`, if this crate knows it.
pub fn exports(version: u32) -> Option<Exports> {
    match version {
        1 => Some(EXPORTS_V1),
        2 => Some(EXPORTS_V2),
        _ => None,
    }
}
/// Export (v1): allocate guest memory for the host to write into.
pub const EXPORT_ALLOC: &str = "sluice_transform_v1_alloc";
/// Export (v1): configure a fresh instance.
pub const EXPORT_INIT: &str = "sluice_transform_v1_init";
/// Export (v1): process one batch.
pub const EXPORT_PROCESS: &str = "sluice_transform_v1_process";
/// Export: the linear memory.
pub const EXPORT_MEMORY: &str = "memory";
/// Export name prefix shared by every ABI version; a module exporting `sluice_transform_v2_*`
/// is recognised as "built for another ABI version".
pub const EXPORT_PREFIX: &str = "sluice_transform_v";
/// `input_index` of a log line not tied to one record.
pub const NO_RECORD: u32 = u32::MAX;

/// One Kafka record header. Kafka header keys are strings; values may be null.
#[derive(Debug, Clone, PartialEq, Eq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct Header {
    /// The header key.
    pub key: String,
    /// The header value; `None` is a null value.
    pub value: Option<Vec<u8>>,
}

/// One input record as the guest sees it.
#[derive(Debug, Clone, PartialEq, Eq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct Record {
    /// Offset in the input partition.
    pub offset: i64,
    /// Milliseconds since the Unix epoch (the record's own timestamp).
    pub timestamp: i64,
    /// `None` is a null key.
    pub key: Option<Vec<u8>>,
    /// `None` is a null value (a tombstone).
    pub value: Option<Vec<u8>>,
    /// In the order the producer wrote them.
    pub headers: Vec<Header>,
}

/// One call's worth of input: consecutive records of one input partition.
#[derive(Debug, Clone, PartialEq, Eq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct Batch {
    /// The input topic.
    pub topic: String,
    /// The input partition.
    pub partition: i32,
    /// In offset order.
    pub records: Vec<Record>,
}

/// Packs a buffer location into the `i64` that `init` and `process` return.
pub fn pack_location(ptr: u32, len: u32) -> i64 {
    ((u64::from(ptr) << 32) | u64::from(len)) as i64
}

/// Splits the `i64` that `init` and `process` return into `(ptr, len)`.
pub fn unpack_location(packed: i64) -> (u32, u32) {
    let packed = packed as u64;
    ((packed >> 32) as u32, packed as u32)
}

/// Serialises a batch for the guest (host side).
pub fn encode_batch(batch: &Batch) -> Result<rkyv::util::AlignedVec, rkyv::rancor::Error> {
    rkyv::to_bytes::<rkyv::rancor::Error>(batch)
}

/// Validates and reads an archived batch in place (guest side, and host-side tests).
pub fn access_batch(bytes: &[u8]) -> Result<&ArchivedBatch, rkyv::rancor::Error> {
    rkyv::access::<ArchivedBatch, rkyv::rancor::Error>(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A batch survives encode → validated access with every field intact.
    #[test]
    fn batch_round_trip() {
        let batch = Batch {
            topic: "in".into(),
            partition: 3,
            records: vec![Record {
                offset: 42,
                timestamp: 1_700_000_000_000,
                key: Some(b"k".to_vec()),
                value: None,
                headers: vec![Header { key: "h".into(), value: Some(b"v".to_vec()) }],
            }],
        };
        let bytes = encode_batch(&batch).expect("encode");
        let archived = access_batch(&bytes).expect("access");
        assert_eq!(archived.topic.as_str(), "in");
        assert_eq!(archived.records[0].offset.to_native(), 42);
        assert!(archived.records[0].value.is_none());
        assert_eq!(archived.records[0].headers[0].key.as_str(), "h");
    }

    #[test]
    fn location_packing_round_trips() {
        assert_eq!(unpack_location(pack_location(0xdead_beef, 7)), (0xdead_beef, 7));
    }
}
