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

use bytes::{Bytes, BytesMut};
use sluice_abi::{StateCommand, StateOp};

use super::instance::Guest;
use super::records;
use super::GuestError;
use crate::broker::Partition;
use crate::log::{BatchStart, BatchWriter, BATCH_HEADER_LEN};

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
            let read =
                self.partition.read(offset, RESTORE_READ_BYTES).map_err(|e| fail(format!("reading changelog {name} at {offset}: {e}")))?;
            let next = batches_end(&read.records).map_err(|e| fail(format!("changelog {name} at {offset}: {e}")))?;
            let (found, _) =
                records::decode(read.records, offset, self.end).map_err(|e| fail(format!("changelog {name} at {offset}: {e}")))?;
            let Some(next) = next.filter(|n| *n > offset) else {
                return Err(fail(format!(
                    "changelog {name} ends at {offset}, before the checkpoint's state end {} (was the topic deleted or truncated?)",
                    self.end
                )));
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
            guest
                .state_command(&StateCommand::Restore(ops.to_vec()))
                .map_err(|e| fail(format!("restoring the batches in progress: {e}")))?;
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
/// Written with the log's [`BatchWriter`] rather than [`records::encode_batch`]: that path copies
/// each key and value twice (into owned records, then into `Bytes`) and builds a header map per
/// record, which cost more per changed key than the guest's own work.
pub fn changelog_batch(ops: &[StateOp], timestamp: i64, producer_id: i64, base_sequence: i32) -> Result<Bytes, String> {
    let payload: usize = ops.iter().map(|op| op.key().len() + if let StateOp::Put { value, .. } = op { value.len() } else { 0 }).sum();
    // Every record's fixed fields and varints fit in 16 bytes unless a key or value is over 2 MiB.
    let mut out = BytesMut::with_capacity(BATCH_HEADER_LEN + payload + ops.len() * 16);
    let fields = BatchStart {
        partition_leader_epoch: 0, // the log assigns it (0 as `records::encode_batch` writes)
        attributes: 0,             // no compression, create time, not transactional
        base_timestamp: timestamp,
        producer_id,
        producer_epoch: 0,
        base_sequence,
    };
    let mut batch = BatchWriter::begin(&mut out, fields);
    for op in ops {
        match op {
            StateOp::Put { key, value } => batch.push(0, Some(key), Some(value)),
            StateOp::Delete { key } => batch.push(0, Some(key), None),
        }
    }
    batch.finish().map_err(|e| format!("changelog batch of {} state changes: {e}", ops.len()))?;
    Ok(out.freeze())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// The changelog batch is a valid RecordBatch (length, CRC) that Kafka's own
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
                StateOp::Put { key, value } => records::OutRecord {
                    key: Some(key.clone()),
                    value: Some(value.clone()),
                    headers: Vec::new(),
                    timestamp: 1_700_000_000_123,
                },
                StateOp::Delete { key } => {
                    records::OutRecord { key: Some(key.clone()), value: None, headers: Vec::new(), timestamp: 1_700_000_000_123 }
                }
            })
            .collect();
        assert_eq!(bytes, records::encode_batch(&generic, 42, 9).unwrap());
        let (back, end) = records::decode(bytes, 0, 10).unwrap();
        assert_eq!(end, Some(4));
        assert_eq!(back[2].key.as_deref(), Some(&long[..]));
        assert_eq!(back[1].value, None);
        assert_eq!(back[3].value.as_deref(), Some(&b""[..]));
        assert!(changelog_batch(&[], 0, 1, 0).is_err());
    }

    /// Cost of the changelog encoder per changed key, for comparing its inner loop across
    /// changes (prints, asserts nothing: timings depend on the machine). Method: 4,000 windowed
    /// counters (16-byte key, 8-byte value) encoded 500 times, best of 5 rounds.
    /// Run: `cargo test --release -p sluice changelog_batch_timing -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn changelog_batch_timing() {
        let ops: Vec<StateOp> =
            (0..4_000u64).map(|i| StateOp::Put { key: format!("window-{i:09}").into_bytes(), value: i.to_le_bytes().to_vec() }).collect();
        let rounds = 500;
        let mut best = f64::MAX;
        for _ in 0..5 {
            let started = std::time::Instant::now();
            for r in 0..rounds {
                let bytes = changelog_batch(std::hint::black_box(&ops), 1_700_000_000_000, 7, r).unwrap();
                std::hint::black_box(bytes);
            }
            best = best.min(started.elapsed().as_nanos() as f64 / (rounds as usize * ops.len()) as f64);
        }
        println!("changelog_batch: {best:.1} ns/record (best of 5, {} records x {rounds})", ops.len());
    }
}
