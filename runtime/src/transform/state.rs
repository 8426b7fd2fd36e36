//! The host side of keyed state (ABI v2): the changelog topic, and bringing a fresh instance
//! back to the committed state.
//!
//! # Where state lives, and why it is exactly-once
//! A stateful guest keeps its state in its own memory (no per-record host calls). After each
//! batch it reports its net changes; the runner writes them to the compacted changelog topic
//! `_sluice_state.<transform>` (partition = input partition, key = state key, value = state
//! bytes, null = deleted) with the runner's idempotent producer id and checkpointed sequence,
//! like any output, before the checkpoint advances. The checkpoint records the changelog range
//! that holds committed state: `state_from` (the changelog's end when the runner first started,
//! so leftovers of an earlier transform of the same name are never read) and `state_end` (the
//! changelog's end after the last committed batch).
//!
//! A new instance (start, restart after `kill -9`, or a guest failure) is restored from
//! `[state_from, state_end)` before its first batch. A batch interrupted by a crash may already
//! have its changes in the log past `state_end`; they are not restored, the batch is replayed
//! on the committed state, regenerates the same changes (the guest is deterministic) with the
//! same producer id and sequence, and the log drops them as duplicates. Compaction cannot remove
//! a committed record in favour of such an uncommitted one first: it only reads closed segments,
//! the uncommitted changes are the log's newest records, and the replay happens before anything
//! else is appended to the partition.
//!
//! Only the runner of partition p writes changelog partition p (it is an internal topic).

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use sluice_abi::{StateCommand, StateOp};

use super::instance::Guest;
use super::records;
use super::GuestError;
use crate::broker::Partition;

/// Changelog topics are named `<prefix><transform name>`.
pub const CHANGELOG_PREFIX: &str = "_sluice_state.";
/// Bytes read from the changelog per restore command (one guest call each).
pub const RESTORE_READ_BYTES: usize = 4 << 20;

/// The changelog topic of transform `name`.
pub fn changelog_topic(name: &str) -> String {
    format!("{CHANGELOG_PREFIX}{name}")
}

/// What a restore read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RestoreStats {
    /// Changelog records applied.
    pub records: u64,
    /// Milliseconds it took.
    pub millis: u64,
}

/// One runner's durable state: its changelog partition and the committed range.
pub struct StateLog {
    /// Changelog partition (same number as the input partition).
    pub partition: Arc<Partition>,
    /// First changelog offset of this runner's state.
    pub from: i64,
    /// End (exclusive) of the committed state in the changelog.
    pub end: i64,
    /// Net changes of batches the live instance has run and committed whose changelog write is
    /// not confirmed yet, oldest first, one entry per batch (the runner writes batch N while
    /// the guest runs N+1, so there can be two). Shared with the batch's outcome, not copied.
    pub unwritten: VecDeque<Arc<Vec<StateOp>>>,
    /// Changes accepted during the batch being run now (the per-record isolation path commits
    /// record by record); a re-created instance gets them too.
    pub pending: Vec<Arc<Vec<StateOp>>>,
}

impl StateLog {
    /// A runner's state range `[from, end)` with nothing in flight.
    pub fn new(partition: Arc<Partition>, from: i64, end: i64) -> Self {
        StateLog { partition, from, end, unwritten: VecDeque::new(), pending: Vec::new() }
    }

    /// Brings a fresh instance to the committed state: the changelog's `[from, end)`, then
    /// `unwritten` and `pending`. Blocking. A failure is [`GuestError::Restore`]: the runner stops rather than
    /// run records on state it could not rebuild.
    pub fn restore(&self, guest: &mut Guest) -> Result<RestoreStats, GuestError> {
        let started = std::time::Instant::now();
        let fail = |reason: String| GuestError::Restore { reason };
        let name = format!("{}-{}", self.partition.topic, self.partition.index);
        let mut stats = RestoreStats::default();
        let mut offset = self.from;
        while offset < self.end {
            let read = self.partition.read(offset, RESTORE_READ_BYTES).map_err(|e| fail(format!("reading changelog {name} at {offset}: {e}")))?;
            let next = batches_end(&read.records).map_err(|e| fail(format!("changelog {name} at {offset}: {e}")))?;
            let (found, _) = records::decode(read.records, offset, self.end).map_err(|e| fail(format!("changelog {name} at {offset}: {e}")))?;
            let Some(next) = next.filter(|n| *n > offset) else {
                return Err(fail(format!("changelog {name} ends at {offset}, before the checkpoint's state end {} (was the topic deleted or truncated?)", self.end)));
            };
            let ops: Vec<StateOp> = found
                .into_iter()
                .filter_map(|r| {
                    let key = r.key?;
                    Some(match r.value {
                        Some(value) => StateOp::Put { key, value },
                        None => StateOp::Delete { key },
                    })
                })
                .collect();
            stats.records += ops.len() as u64;
            guest.state_command(&StateCommand::Restore(ops)).map_err(|e| fail(format!("restoring from {name}: {e}")))?;
            offset = next;
        }
        for ops in self.unwritten.iter().chain(&self.pending).filter(|ops| !ops.is_empty()) {
            guest.state_command(&StateCommand::Restore(ops.to_vec())).map_err(|e| fail(format!("restoring the batches in progress: {e}")))?;
        }
        stats.millis = started.elapsed().as_millis() as u64;
        Ok(stats)
    }
}

/// The offset after the last batch in `bytes` (whole batches), walking headers only.
fn batches_end(bytes: &Bytes) -> Result<Option<i64>, String> {
    let mut at = 0;
    let mut end = None;
    while at < bytes.len() {
        let (header, size) = crate::log::batch_header(&bytes[at..])?;
        end = Some(header.base_offset + i64::from(header.last_offset_delta) + 1);
        at += size.max(1);
    }
    Ok(end)
}

/// Encodes a batch's state changes as one changelog RecordBatch v2 (uncompressed) from
/// idempotent producer `producer_id` (epoch 0) with sequences `base_sequence..`: key = state
/// key, value = state bytes, null value = deleted, every record timestamped `timestamp` (the
/// batch's last record time: deterministic on replay).
///
/// Written directly rather than through [`records::encode_batch`]: that path copies each key
/// and value twice (into owned records, then into `Bytes`) and builds a header map per record,
/// which cost more per changed key than the guest's own work. The layout is Kafka's
/// `DefaultRecord` (see `log::batch` for the header's byte positions).
pub fn changelog_batch(ops: &[StateOp], timestamp: i64, producer_id: i64, base_sequence: i32) -> Result<Bytes, String> {
    const CRC_START: usize = 21;
    let count = i32::try_from(ops.len()).map_err(|_| "too many state changes in one changelog batch".to_string())?;
    if count == 0 {
        return Err("a changelog batch needs at least one state change".into());
    }
    let payload: usize = ops.iter().map(|op| op.key().len() + if let StateOp::Put { value, .. } = op { value.len() } else { 0 }).sum();
    let mut out = BytesMut::with_capacity(61 + payload + ops.len() * 16);
    out.put_i64(0); // base offset: the log assigns it
    out.put_i32(0); // batch length, patched below
    out.put_i32(0); // partition leader epoch: the log assigns it (0 as `records::encode_batch` writes)
    out.put_i8(2); // magic
    out.put_u32(0); // crc, patched below
    out.put_i16(0); // attributes: no compression, create time, not transactional
    out.put_i32(count - 1); // last offset delta
    out.put_i64(timestamp); // base timestamp
    out.put_i64(timestamp); // max timestamp
    out.put_i64(producer_id);
    out.put_i16(0); // producer epoch
    out.put_i32(base_sequence);
    out.put_i32(count);
    for (delta, op) in ops.iter().enumerate() {
        let (key, value) = match op {
            StateOp::Put { key, value } => (key.as_slice(), Some(value.as_slice())),
            StateOp::Delete { key } => (key.as_slice(), None),
        };
        let delta = delta as i64;
        // attributes (1) + timestamp delta 0 (1) + offset delta + key + value + header count 0 (1)
        let body = 3 + varlong_len(delta) + varlong_len(key.len() as i64) + key.len() + value.map_or(1, |v| varlong_len(v.len() as i64) + v.len());
        put_varlong(&mut out, body as i64);
        out.put_i8(0);
        put_varlong(&mut out, 0);
        put_varlong(&mut out, delta);
        put_varlong(&mut out, key.len() as i64);
        out.put_slice(key);
        match value {
            Some(v) => {
                put_varlong(&mut out, v.len() as i64);
                out.put_slice(v);
            }
            None => put_varlong(&mut out, -1),
        }
        put_varlong(&mut out, 0);
    }
    let batch_length = i32::try_from(out.len() - 12).map_err(|_| "changelog batch over 2 GiB".to_string())?;
    out[8..12].copy_from_slice(&batch_length.to_be_bytes());
    let crc = crc32c::crc32c(&out[CRC_START..]);
    out[17..21].copy_from_slice(&crc.to_be_bytes());
    Ok(out.freeze())
}

fn zigzag(value: i64) -> u64 {
    ((value << 1) ^ (value >> 63)) as u64
}

fn varlong_len(value: i64) -> usize {
    let bits = 64 - zigzag(value).leading_zeros() as usize;
    bits.max(1).div_ceil(7)
}

/// Zig-zag varint, as RecordBatch v2 records use.
fn put_varlong(buf: &mut BytesMut, value: i64) {
    let mut v = zigzag(value);
    while v >= 0x80 {
        buf.put_u8((v as u8) | 0x80);
        v >>= 7;
    }
    buf.put_u8(v as u8);
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// The hand-written changelog batch is a valid RecordBatch (length, CRC) that Kafka's own
    /// decoder (kafka-protocol) reads back record for record, with the producer fields set; it
    /// matches the generic encoder's bytes exactly.
    #[test]
    fn changelog_batch_matches_the_generic_encoder() {
        let long = vec![7u8; 300];
        let ops = vec![
            StateOp::Put { key: b"wkey-1".to_vec(), value: vec![0xC1, 5] },
            StateOp::Delete { key: b"gone".to_vec() },
            StateOp::Put { key: long.clone(), value: long.clone() },
            StateOp::Put { key: b"empty".to_vec(), value: Vec::new() },
        ];
        let bytes = changelog_batch(&ops, 1_700_000_000_123, 42, 9).unwrap();
        let (header, size) = crate::log::check_batch(&bytes).unwrap();
        assert_eq!((size, header.records_count, header.producer_id, header.base_sequence), (bytes.len(), 4, 42, 9));
        let generic: Vec<records::OutRecord> = ops
            .iter()
            .map(|op| match op {
                StateOp::Put { key, value } => records::OutRecord { key: Some(key.clone()), value: Some(value.clone()), headers: Vec::new(), timestamp: 1_700_000_000_123 },
                StateOp::Delete { key } => records::OutRecord { key: Some(key.clone()), value: None, headers: Vec::new(), timestamp: 1_700_000_000_123 },
            })
            .collect();
        assert_eq!(bytes, records::encode_batch(&generic, 42, 9).unwrap());
        let (back, end) = records::decode(bytes, 0, 10).unwrap();
        assert_eq!(end, Some(4));
        assert_eq!(back[2].key.as_deref(), Some(&long[..]));
        assert_eq!(back[1].value, None);
        assert_eq!(back[3].value.as_deref(), Some(&b""[..]));
        assert!(changelog_batch(&[], 0, 1, 0).is_err());
        for v in [0i64, 1, -1, 63, 64, -65, 8191, 8192, i64::MAX, i64::MIN] {
            let mut b = BytesMut::new();
            put_varlong(&mut b, v);
            assert_eq!(b.len(), varlong_len(v), "{v}");
        }
    }
}
