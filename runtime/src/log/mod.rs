//! The partition log: an append-only sequence of Kafka RecordBatch v2 batches on local disk.
//!
//! This module is the storage engine. It knows nothing of the network, of tiering or of
//! transforms: it stores batches exactly as received (after assigning offsets), indexes them, makes
//! them durable according to a [`FlushPolicy`], recovers after a crash, and applies retention and
//! compaction. Everything above it talks to [`PartitionLog`].
//!
//! # Layout
//! - `format`: the byte layout of segments, indexes and checkpoints (read this first).
//! - `batch`: parsing and validating RecordBatch v2 headers (CRC, lengths, offsets).
//! - `segment`, `index`: one segment file and its sparse offset/time indexes.
//! - `recovery`: opening a partition directory; scanning the tail since the recovery point.
//! - `retention`, `compaction`: background clean-up.
//! - `error`: [`LogError`].
//!
//! # Concurrency
//! A [`PartitionLog`] is `Send + Sync` and every method takes `&self`. Methods are blocking (file
//! I/O): async callers run them on `spawn_blocking`. Appends are serialised inside; reads never wait
//! for an fsync; concurrent [`PartitionLog::flush_to`] calls share one fsync (group commit).

// API CONTRACT (written before the implementation, shared with the broker layer):
// keep these public signatures; add to them freely.

use std::path::Path;

use bytes::Bytes;

mod error;
pub use error::LogError;

/// When written data is forced to stable storage. Named per topic (`flush.policy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlushPolicy {
    /// fsync before a batch is acknowledged to an acks=all producer (group commit makes this cheap
    /// under concurrency). The default: what acks=all promises survives `kill -9` and power loss.
    EveryBatch,
    /// fsync at most every N milliseconds; a crash may lose the last interval.
    IntervalMs(u64),
    /// Never fsync explicitly; the OS writes back dirty pages. Survives `kill -9`, not power loss.
    Os,
}

/// What `cleanup.policy` asks of a partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CleanupPolicy {
    /// `delete`: drop whole segments past retention.
    pub delete: bool,
    /// `compact`: keep the latest record per key.
    pub compact: bool,
}

/// Per-partition storage settings, converted from topic configs at the broker's edge.
#[derive(Debug, Clone, PartialEq)]
pub struct LogConfig {
    /// `segment.bytes`: roll the active segment when it would exceed this size.
    pub segment_bytes: u64,
    /// `segment.ms`: roll the active segment when its first batch is older than this.
    pub segment_ms: u64,
    /// `retention.ms`: delete closed segments whose newest record is older; `None` keeps forever.
    pub retention_ms: Option<u64>,
    /// `retention.bytes`: delete oldest closed segments while the log is larger; `None`: no cap.
    pub retention_bytes: Option<u64>,
    /// `cleanup.policy`.
    pub cleanup_policy: CleanupPolicy,
    /// `delete.retention.ms`: how long compaction keeps tombstones.
    pub delete_retention_ms: u64,
    /// `flush.policy` / `flush.ms`.
    pub flush_policy: FlushPolicy,
    /// `index.interval.bytes`: bytes of batches between two sparse index entries.
    pub index_interval_bytes: u32,
    /// `max.message.bytes`: the largest batch accepted.
    pub max_batch_bytes: u32,
}

/// Where an appended batch landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendInfo {
    /// Offset assigned to the first record of the first appended batch.
    pub base_offset: i64,
    /// Offset of the last record appended.
    pub last_offset: i64,
    /// The log start offset after the append.
    pub log_start_offset: i64,
}

/// Bytes returned by a read: whole batches, unmodified.
#[derive(Debug, Clone)]
pub struct ReadResult {
    /// Zero or more complete RecordBatch v2 batches, in offset order.
    pub records: Bytes,
    /// The log start offset at the time of the read.
    pub log_start_offset: i64,
    /// The log end offset at the time of the read.
    pub log_end_offset: i64,
    /// The high watermark at the time of the read.
    pub high_watermark: i64,
}

/// One batch's header fields that the broker needs (idempotence, timestamps) without the payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    pub base_offset: i64,
    pub last_offset_delta: i32,
    pub partition_leader_epoch: i32,
    pub attributes: i16,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub records_count: i32,
}

/// An append-only, segmented, indexed log for one partition.
pub struct PartitionLog {
    _private: (),
}

#[allow(unused_variables)]
impl PartitionLog {
    /// Opens (or creates) the partition in `dir`, recovering the tail since the last recovery
    /// checkpoint: CRCs checked, a torn tail truncated, damaged indexes rebuilt.
    pub fn open(dir: &Path, config: LogConfig, now_ms: i64) -> Result<Self, LogError> {
        todo!()
    }

    /// Validates every batch in `records` (magic, lengths, CRC, size limit), assigns offsets from
    /// the log end offset (rewriting base offset and partition leader epoch in place; the CRC does
    /// not cover them) and appends them. Rolls the segment first if size or age says so.
    /// Does not fsync: see [`PartitionLog::flush_to`].
    pub fn append(&self, records: &mut [u8], leader_epoch: i32, now_ms: i64) -> Result<AppendInfo, LogError> {
        todo!()
    }

    /// Reads whole batches starting with the one that contains `offset`, up to `max_bytes`, never
    /// past `upper_bound` (exclusive; the high watermark for consumers). The first batch is returned
    /// even when larger than `max_bytes` so a consumer always makes progress.
    /// `offset` outside `[log_start_offset, log_end_offset]` is `LogError::OffsetOutOfRange`.
    pub fn read(&self, offset: i64, max_bytes: usize, upper_bound: i64) -> Result<ReadResult, LogError> {
        todo!()
    }

    /// Headers of the batches in `[from, to)` (for rebuilding producer state), without payloads.
    pub fn batch_headers(&self, from: i64, to: i64) -> Result<Vec<BatchHeader>, LogError> {
        todo!()
    }

    /// Makes everything up to at least `offset` (exclusive) durable. Concurrent callers share one
    /// fsync. A failed fsync poisons the log: later appends fail with `LogError::Poisoned`.
    pub fn flush_to(&self, offset: i64) -> Result<(), LogError> {
        todo!()
    }

    /// The offset up to which data is known to be on stable storage.
    pub fn durable_offset(&self) -> i64 {
        todo!()
    }

    /// The first offset still in the log.
    pub fn log_start_offset(&self) -> i64 {
        todo!()
    }

    /// The offset the next appended record will get.
    pub fn log_end_offset(&self) -> i64 {
        todo!()
    }

    /// The offset below which records are committed and visible to consumers. Set by the owner
    /// (today: the single-node broker, from the flush policy; later: replication).
    pub fn high_watermark(&self) -> i64 {
        todo!()
    }

    /// Advances the high watermark (never past the log end offset, never backwards).
    pub fn set_high_watermark(&self, offset: i64) {
        todo!()
    }

    /// The earliest offset whose batch max timestamp is `>= timestamp_ms`, with that timestamp;
    /// `None` if every record is older.
    pub fn offset_for_timestamp(&self, timestamp_ms: i64) -> Result<Option<(i64, i64)>, LogError> {
        todo!()
    }

    /// The offset and timestamp of the record with the largest timestamp (ListOffsets -3).
    pub fn max_timestamp(&self) -> Result<Option<(i64, i64)>, LogError> {
        todo!()
    }

    /// Removes everything at and after `offset` (replication will need this on leader change).
    pub fn truncate_to(&self, offset: i64) -> Result<(), LogError> {
        todo!()
    }

    /// Advances the log start offset to `offset` (DeleteRecords), deleting whole segments below it.
    pub fn delete_records_before(&self, offset: i64) -> Result<i64, LogError> {
        todo!()
    }

    /// Rolls by age, applies retention (time and size), and compaction if the policy asks.
    /// Called periodically by the broker. Returns how many segments were deleted.
    pub fn maintain(&self, now_ms: i64) -> Result<usize, LogError> {
        todo!()
    }

    /// Replaces the configuration (IncrementalAlterConfigs); takes effect at the next append/roll.
    pub fn update_config(&self, config: LogConfig) {
        todo!()
    }

    /// Flushes everything and writes a clean-shutdown checkpoint so the next open scans nothing.
    pub fn close(&self) -> Result<(), LogError> {
        todo!()
    }

    /// Bytes on disk across all segments.
    pub fn size_bytes(&self) -> u64 {
        todo!()
    }

    /// Number of segments.
    pub fn segment_count(&self) -> usize {
        todo!()
    }
}
