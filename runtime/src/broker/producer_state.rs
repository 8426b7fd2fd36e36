//! Idempotent-producer state of one partition: for each producer id, its epoch and the last
//! [`BATCHES_PER_PRODUCER`] batches' sequence ranges and offsets, so a retried batch is
//! acknowledged with its original offsets instead of being appended twice.
//!
//! The rules follow Kafka's `ProducerAppendInfo.checkSequence` and `checkProducerEpoch`:
//! - an epoch older than the known one is INVALID_PRODUCER_EPOCH;
//! - a newer epoch must start at sequence 0 (unless we knew no epoch at all);
//! - within an epoch the next batch must start at `last_seq + 1` (wrapping at `i32::MAX`),
//!   otherwise OUT_OF_ORDER_SEQUENCE_NUMBER — unless it equals one of the cached batches, which is
//!   a duplicate;
//! - a producer we know nothing about (new, or its batches were removed by retention) may start
//!   at any sequence.
//!
//! Recovery: a snapshot file (`producer-state.json` in the partition directory, written at
//! shutdown and by periodic maintenance) plus the headers of every batch after it
//! (`PartitionLog::batch_headers`). Without a usable snapshot the whole log's headers are replayed
//! (headers only, so this reads a few bytes per batch).

use std::collections::{HashMap, VecDeque};
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::BrokerError;
use crate::log::BatchHeader;

/// Batches remembered per producer for duplicate detection; Kafka clients keep at most 5 in
/// flight per connection, so a retry is always among the last 5.
pub const BATCHES_PER_PRODUCER: usize = 5;
/// A producer id that has not written for this long is forgotten (Kafka's
/// `producer.id.expiration.ms` default).
pub const PRODUCER_ID_EXPIRATION_MS: i64 = 24 * 3600 * 1000;
/// The snapshot's file name inside the partition directory (the log ignores unknown files).
pub const SNAPSHOT_FILE: &str = "producer-state.json";
const SNAPSHOT_VERSION: u32 = 1;

/// RecordBatch v2 header layout (Kafka's `DefaultRecordBatch`): the fields idempotence needs.
mod layout {
    pub const BATCH_LENGTH: usize = 8;
    pub const MAGIC: usize = 16;
    pub const ATTRIBUTES: usize = 21;
    pub const LAST_OFFSET_DELTA: usize = 23;
    pub const MAX_TIMESTAMP: usize = 35;
    pub const PRODUCER_ID: usize = 43;
    pub const PRODUCER_EPOCH: usize = 51;
    pub const BASE_SEQUENCE: usize = 53;
    pub const HEADER_BYTES: usize = 61;
    /// baseOffset (8) + batchLength (4): batchLength counts the bytes after these.
    pub const LOG_OVERHEAD: usize = 12;
}

/// The producer fields of one incoming batch (RecordBatch v2 header names).
#[allow(missing_docs)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IncomingBatch {
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    /// Records in the batch minus one.
    pub last_offset_delta: i32,
    pub max_timestamp: i64,
    pub transactional: bool,
}

impl IncomingBatch {
    /// The sequence of the batch's last record.
    pub fn last_sequence(&self) -> i32 {
        // Sequences wrap at i32::MAX like Kafka's DefaultRecordBatch.incrementSequence.
        let last = i64::from(self.base_sequence) + i64::from(self.last_offset_delta);
        if last > i64::from(i32::MAX) {
            (last - i64::from(i32::MAX) - 1) as i32
        } else {
            last as i32
        }
    }
}

/// Reads the producer fields of every batch in a Produce request's records. Validates only what
/// idempotence needs (magic and lengths); the log validates CRCs when appending.
pub fn scan_batches(records: &[u8]) -> Result<Vec<IncomingBatch>, BrokerError> {
    let mut out = Vec::new();
    let mut at = 0usize;
    while at < records.len() {
        let rest = &records[at..];
        if rest.len() > layout::MAGIC && rest[layout::MAGIC] != 2 {
            return Err(BrokerError::UnsupportedMessageFormat { magic: rest[layout::MAGIC] as i8 });
        }
        if rest.len() < layout::HEADER_BYTES {
            return Err(BrokerError::CorruptRecords { reason: format!("{} trailing bytes are not a batch header", rest.len()) });
        }
        let length = i32::from_be_bytes(array(rest, layout::BATCH_LENGTH));
        let total = usize::try_from(length)
            .ok()
            .and_then(|l| l.checked_add(layout::LOG_OVERHEAD))
            .filter(|&t| t >= layout::HEADER_BYTES && t <= rest.len())
            .ok_or_else(|| BrokerError::CorruptRecords { reason: format!("batch length {length} at byte {at} is invalid") })?;
        let attributes = i16::from_be_bytes(array(rest, layout::ATTRIBUTES));
        out.push(IncomingBatch {
            producer_id: i64::from_be_bytes(array(rest, layout::PRODUCER_ID)),
            producer_epoch: i16::from_be_bytes(array(rest, layout::PRODUCER_EPOCH)),
            base_sequence: i32::from_be_bytes(array(rest, layout::BASE_SEQUENCE)),
            last_offset_delta: i32::from_be_bytes(array(rest, layout::LAST_OFFSET_DELTA)),
            max_timestamp: i64::from_be_bytes(array(rest, layout::MAX_TIMESTAMP)),
            transactional: attributes & 0x10 != 0,
        });
        at += total;
    }
    Ok(out)
}

fn array<const N: usize>(bytes: &[u8], at: usize) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(&bytes[at..at + N]);
    out
}

/// One remembered batch: its sequence range and where it landed.
#[allow(missing_docs)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachedBatch {
    pub first_seq: i32,
    pub last_seq: i32,
    pub first_offset: i64,
    pub last_offset: i64,
    /// The batch's max timestamp (DescribeProducers' `last_timestamp`, as Kafka's
    /// `ProducerStateEntry`); snapshots written before it existed read as -1 (no timestamp).
    #[serde(default = "no_timestamp")]
    pub max_timestamp: i64,
}

fn no_timestamp() -> i64 {
    -1
}

/// One producer as DescribeProducers shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActiveProducer {
    /// The producer id.
    pub producer_id: i64,
    /// Its newest epoch.
    pub epoch: i16,
    /// The sequence of the last record it appended.
    pub last_sequence: i32,
    /// The max timestamp of its last batch.
    pub last_timestamp: i64,
}

/// What we know about one producer id on this partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProducerEntry {
    /// The newest epoch seen.
    pub epoch: i16,
    /// Oldest first; at most [`BATCHES_PER_PRODUCER`].
    pub batches: VecDeque<CachedBatch>,
    /// Wall-clock time of the last append, for expiry.
    pub last_append_ms: i64,
}

/// The verdict on an incoming idempotent batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// Append it.
    Append,
    /// Already appended: acknowledge these offsets, append nothing.
    Duplicate(CachedBatch),
}

/// Every producer's state on one partition.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProducerStates {
    producers: HashMap<i64, ProducerEntry>,
}

#[derive(Serialize, Deserialize)]
struct Snapshot {
    version: u32,
    /// The log end offset the snapshot covers (exclusive).
    end_offset: i64,
    states: ProducerStates,
}

fn in_sequence(last_seq: i32, next_seq: i32) -> bool {
    next_seq == last_seq.wrapping_add(1) || (next_seq == 0 && last_seq == i32::MAX)
}

impl ProducerStates {
    /// Checks `batch` (which has a producer id) against the known state.
    pub fn check(&self, batch: &IncomingBatch) -> Result<Check, BrokerError> {
        let Some(entry) = self.producers.get(&batch.producer_id) else {
            return Ok(Check::Append);
        };
        if batch.producer_epoch < entry.epoch {
            return Err(BrokerError::InvalidProducerEpoch {
                producer_id: batch.producer_id,
                epoch: batch.producer_epoch,
                current: entry.epoch,
            });
        }
        if batch.producer_epoch > entry.epoch {
            if batch.base_sequence != 0 {
                return Err(BrokerError::OutOfOrderSequence { producer_id: batch.producer_id, expected: 0, received: batch.base_sequence });
            }
            return Ok(Check::Append);
        }
        let last_seq = batch.last_sequence();
        if let Some(found) = entry.batches.iter().find(|b| b.first_seq == batch.base_sequence && b.last_seq == last_seq) {
            return Ok(Check::Duplicate(*found));
        }
        match entry.batches.back() {
            Some(last) if !in_sequence(last.last_seq, batch.base_sequence) => Err(BrokerError::OutOfOrderSequence {
                producer_id: batch.producer_id,
                expected: last.last_seq.wrapping_add(1),
                received: batch.base_sequence,
            }),
            _ => Ok(Check::Append),
        }
    }

    /// Records an appended batch (or one replayed from the log).
    pub fn record(&mut self, producer_id: i64, epoch: i16, batch: CachedBatch, now_ms: i64) {
        let entry =
            self.producers.entry(producer_id).or_insert_with(|| ProducerEntry { epoch, batches: VecDeque::new(), last_append_ms: now_ms });
        if epoch != entry.epoch {
            entry.epoch = epoch;
            entry.batches.clear();
        }
        if entry.batches.len() == BATCHES_PER_PRODUCER {
            entry.batches.pop_front();
        }
        entry.batches.push_back(batch);
        entry.last_append_ms = entry.last_append_ms.max(now_ms);
    }

    /// Replays one batch header from the log.
    pub fn replay(&mut self, header: &BatchHeader) {
        if header.producer_id < 0 {
            return;
        }
        let incoming = IncomingBatch {
            producer_id: header.producer_id,
            producer_epoch: header.producer_epoch,
            base_sequence: header.base_sequence,
            last_offset_delta: header.last_offset_delta,
            max_timestamp: header.max_timestamp,
            transactional: false,
        };
        let last_offset = header.base_offset + i64::from(header.last_offset_delta);
        // The batch's own timestamp stands in for its append time; expiry is approximate anyway.
        let batch = CachedBatch {
            first_seq: header.base_sequence,
            last_seq: incoming.last_sequence(),
            first_offset: header.base_offset,
            last_offset,
            max_timestamp: header.max_timestamp,
        };
        self.record(header.producer_id, header.producer_epoch, batch, header.max_timestamp);
    }

    /// Forgets producers idle for longer than [`PRODUCER_ID_EXPIRATION_MS`].
    pub fn expire(&mut self, now_ms: i64) {
        self.producers.retain(|_, e| now_ms.saturating_sub(e.last_append_ms) < PRODUCER_ID_EXPIRATION_MS);
    }

    /// The producers not yet expired at `now_ms` that have a batch, by producer id.
    pub fn active(&self, now_ms: i64) -> Vec<ActiveProducer> {
        let mut out: Vec<ActiveProducer> = self
            .producers
            .iter()
            .filter(|(_, e)| now_ms.saturating_sub(e.last_append_ms) < PRODUCER_ID_EXPIRATION_MS)
            .filter_map(|(&producer_id, e)| {
                let last = e.batches.back()?;
                Some(ActiveProducer { producer_id, epoch: e.epoch, last_sequence: last.last_seq, last_timestamp: last.max_timestamp })
            })
            .collect();
        out.sort_by_key(|p| p.producer_id);
        out
    }

    /// Number of producers tracked.
    pub fn len(&self) -> usize {
        self.producers.len()
    }

    /// Whether no producer is tracked.
    pub fn is_empty(&self) -> bool {
        self.producers.is_empty()
    }

    /// Writes the snapshot atomically (temp file, fsync, rename).
    pub fn write_snapshot(&self, dir: &Path, end_offset: i64) -> Result<(), BrokerError> {
        let snapshot = Snapshot { version: SNAPSHOT_VERSION, end_offset, states: self.clone() };
        let bytes = serde_json::to_vec(&snapshot).map_err(|e| BrokerError::Io {
            op: "encode producer snapshot",
            path: dir.join(SNAPSHOT_FILE),
            source: std::io::Error::other(e),
        })?;
        super::fsutil::write_atomically(&dir.join(SNAPSHOT_FILE), &bytes)
    }

    /// Loads the snapshot if it exists, is readable and covers no more than `log_end_offset`.
    /// Returns the states and the offset replay must continue from.
    pub fn load_snapshot(dir: &Path, log_end_offset: i64) -> Option<(ProducerStates, i64)> {
        let path = dir.join(SNAPSHOT_FILE);
        let bytes = std::fs::read(&path).ok()?;
        match serde_json::from_slice::<Snapshot>(&bytes) {
            Ok(s) if s.version == SNAPSHOT_VERSION && s.end_offset <= log_end_offset => Some((s.states, s.end_offset)),
            Ok(_) => {
                tracing::info!(path = %path.display(), "ignoring a producer snapshot ahead of the log; rebuilding from the log");
                None
            }
            Err(e) => {
                tracing::warn!(path = %path.display(), "ignoring an unreadable producer snapshot ({e}); rebuilding from the log");
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(pid: i64, epoch: i16, seq: i32, count: i32) -> IncomingBatch {
        IncomingBatch {
            producer_id: pid,
            producer_epoch: epoch,
            base_sequence: seq,
            last_offset_delta: count - 1,
            max_timestamp: 0,
            transactional: false,
        }
    }

    /// Duplicates, gaps, fencing and epoch bumps follow Kafka's rules.
    #[test]
    fn kafka_sequence_rules() {
        let mut s = ProducerStates::default();
        assert_eq!(s.check(&batch(7, 0, 5, 1)).ok(), Some(Check::Append), "unknown producer: any sequence");
        s.record(7, 0, CachedBatch { first_seq: 0, last_seq: 1, first_offset: 0, last_offset: 1, max_timestamp: 10 }, 0);
        let dup = s.check(&batch(7, 0, 0, 2)).ok();
        assert_eq!(
            dup,
            Some(Check::Duplicate(CachedBatch { first_seq: 0, last_seq: 1, first_offset: 0, last_offset: 1, max_timestamp: 10 }))
        );
        assert_eq!(s.check(&batch(7, 0, 2, 1)).ok(), Some(Check::Append));
        assert!(matches!(s.check(&batch(7, 0, 4, 1)), Err(BrokerError::OutOfOrderSequence { expected: 2, .. })));
        assert!(matches!(s.check(&batch(7, 1, 3, 1)), Err(BrokerError::OutOfOrderSequence { expected: 0, .. })));
        assert_eq!(s.check(&batch(7, 1, 0, 1)).ok(), Some(Check::Append));
        s.record(7, 1, CachedBatch { first_seq: 0, last_seq: 0, first_offset: 2, last_offset: 2, max_timestamp: 20 }, 0);
        assert!(matches!(s.check(&batch(7, 0, 2, 1)), Err(BrokerError::InvalidProducerEpoch { .. })));
    }

    /// DescribeProducers sees each live producer's newest epoch, last sequence and last batch's
    /// timestamp; expired producers are not shown even before maintenance forgets them.
    #[test]
    fn active_producers_for_describe() {
        let mut s = ProducerStates::default();
        s.record(9, 2, CachedBatch { first_seq: 0, last_seq: 4, first_offset: 0, last_offset: 4, max_timestamp: 1_000 }, 1_000);
        s.record(9, 2, CachedBatch { first_seq: 5, last_seq: 6, first_offset: 5, last_offset: 6, max_timestamp: 1_500 }, 2_000);
        s.record(3, 0, CachedBatch { first_seq: 0, last_seq: 0, first_offset: 7, last_offset: 7, max_timestamp: 1_700 }, 1_700);
        let active = s.active(2_000);
        assert_eq!(
            active,
            vec![
                ActiveProducer { producer_id: 3, epoch: 0, last_sequence: 0, last_timestamp: 1_700 },
                ActiveProducer { producer_id: 9, epoch: 2, last_sequence: 6, last_timestamp: 1_500 },
            ]
        );
        assert_eq!(s.active(1_700 + PRODUCER_ID_EXPIRATION_MS).len(), 1, "producer 3 expired, 9 not yet");
    }

    /// A snapshot from before `max_timestamp` existed still loads.
    #[test]
    fn old_snapshot_batches_have_no_timestamp() {
        let old = r#"{"first_seq":0,"last_seq":1,"first_offset":0,"last_offset":1}"#;
        let batch: CachedBatch = serde_json::from_str(old).expect("old layout");
        assert_eq!(batch.max_timestamp, -1);
    }

    #[test]
    fn sequence_wraps_at_i32_max() {
        assert!(in_sequence(i32::MAX, 0));
        assert_eq!(batch(1, 0, i32::MAX, 2).last_sequence(), 0);
    }
}
