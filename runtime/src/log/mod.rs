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
//! - `batch_writer`: the one writer of new batches ([`BatchWriter`]): the log's compaction and
//!   recompression, the group coordinator's offsets and the transforms' changelog use it.
//! - `segment`, `index`: one segment file and its sparse offset/time indexes.
//! - `recovery`: opening a partition directory; scanning the tail since the recovery point.
//! - `retention`, `compaction`: background clean-up.
//! - `export`: generic views for layers that copy the log elsewhere (closed segments, a decoded
//!   offset index, a standalone batch check, restarting an empty log at an offset).
//! - `error`: [`LogError`].
//!
//! # Concurrency
//! A [`PartitionLog`] is `Send + Sync` and every method takes `&self`. Methods are blocking (file
//! I/O): async callers run them on `spawn_blocking`. Appends are serialised inside; reads never wait
//! for an fsync; concurrent [`PartitionLog::flush_to`] calls share one fsync (group commit).

// API CONTRACT (written before the implementation, shared with the broker layer):
// keep these public signatures; add to them freely.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};

use bytes::Bytes;
use parking_lot::{Mutex, RwLock};

mod batch;
mod batch_writer;
mod checkpoint;
mod compaction;
mod error;
mod export;
mod format;
mod fs_flush;
mod index;
mod reader;
mod records;
mod recovery;
mod retention;
mod segment;
#[cfg(test)]
pub(crate) mod tests;
mod writer;

pub use batch_writer::{BatchStart, BatchWriter};
pub use error::LogError;
pub use export::{batch_header, check_batch, ClosedSegment, OffsetIndex, BATCH_HEADER_LEN};
pub use fs_flush::{sync_filesystem, FsFlush};
pub use records::decompress;
use segment::Segment;

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
    /// `compression.type`: the codec batches are stored with (Kafka attribute ids: 0 none,
    /// 1 gzip, 2 snappy, 3 lz4, 4 zstd); `None` (`producer`) stores them as received. Applied by
    /// [`recompress`] before an append, outside the log's locks.
    pub compression: Option<i16>,
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
#[allow(missing_docs)] // the fields are the RecordBatch v2 header fields of the same names
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

/// Counters for tests, benchmarks and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LogStats {
    /// Group-commit fsync rounds done by [`PartitionLog::flush_to`] (one round may sync a few
    /// files: the directory, a just-rolled segment and the active one).
    pub flush_fsyncs: u64,
    /// Segments `open` read and checked batch by batch (after the recovery point, or with a damaged
    /// index).
    pub segments_scanned_at_open: u64,
    /// Bytes `open` read from segment files.
    pub bytes_scanned_at_open: u64,
    /// Bytes `open` cut off (torn or corrupt tails, segments after a corrupt one).
    pub bytes_truncated_at_open: u64,
    /// Segments replaced by a compacted version since open.
    pub segments_compacted: u64,
}

/// An append-only, segmented, indexed log for one partition.
///
/// Locking, in acquisition order (never the reverse):
/// - `writer`: serialises everything that changes files (append, roll, truncation, retention,
///   compaction swaps, checkpoints). Held across the `pwrite` of an append, so appends do not block
///   readers while copying bytes into the page cache.
/// - `flush`: one group-commit fsync at a time.
/// - `state`: the published view (segments, sizes, offsets, indexes). Held only for memory
///   updates and lookups, never across an fsync; readers `pread` after releasing it.
pub struct PartitionLog {
    dir: PathBuf,
    config: RwLock<LogConfig>,
    writer: Mutex<WriterState>,
    flush: Mutex<()>,
    /// One `maintain` at a time; compaction does its long work holding only this.
    maintenance: Mutex<compaction::Progress>,
    state: RwLock<State>,
    /// Offset below which data is on stable storage.
    durable: AtomicI64,
    high_watermark: AtomicI64,
    /// A file was created, renamed or deleted since the directory was last fsynced.
    dir_dirty: AtomicBool,
    /// The filesystem the log lives on (`st_dev`), so a flusher syncs each filesystem once.
    device: u64,
    /// Why writes are refused (a failed fsync or an unrecoverable write error).
    poison: Mutex<Option<String>>,
    /// Bumped whenever bytes already published change in place (truncation), so a read that raced
    /// with it retries instead of returning bytes of the new contents under the old layout.
    generation: AtomicU64,
    /// Last time `maintain` flushed under `FlushPolicy::IntervalMs`.
    last_flush_ms: AtomicI64,
    stats: Mutex<LogStats>,
    #[cfg(test)]
    faults: tests::Faults,
}

/// Owned by the `writer` lock.
struct WriterState {
    /// The checkpoint on disk says "clean shutdown": it must be rewritten as unclean before the
    /// first change to any file.
    clean_on_disk: bool,
}

/// The published view of the log.
struct State {
    /// Ascending by base offset; never empty; the last one is the active segment.
    segments: Vec<Segment>,
    log_start_offset: i64,
    /// As last written to the checkpoint.
    recovery_point: i64,
}

impl State {
    fn active(&self) -> &Segment {
        // `segments` is never empty: open creates one and removal keeps the active segment.
        self.segments.last().expect("a log always has an active segment")
    }
    fn active_mut(&mut self) -> &mut Segment {
        self.segments.last_mut().expect("a log always has an active segment")
    }
    fn log_end_offset(&self) -> i64 {
        self.active().next_offset
    }
    /// Index of the segment that would hold `offset` (the last one with base <= offset, or 0).
    fn segment_for(&self, offset: i64) -> usize {
        self.segments.partition_point(|s| s.base_offset <= offset).saturating_sub(1)
    }
}

impl PartitionLog {
    /// Opens (or creates) the partition in `dir`, recovering the tail since the last recovery
    /// checkpoint: CRCs checked, a torn tail truncated, damaged indexes rebuilt.
    pub fn open(dir: &Path, config: LogConfig, now_ms: i64) -> Result<Self, LogError> {
        recovery::open(dir, config, now_ms)
    }

    /// Validates every batch in `records` (magic, lengths, CRC, size limit), assigns offsets from
    /// the log end offset and appends them with base offset and partition leader epoch rewritten
    /// as they are written (the CRC does not cover them; `records` itself is not changed, so a
    /// Produce request's bytes are written without a copy). Rolls the segment first if size or age
    /// says so.
    /// Does not fsync: see [`PartitionLog::flush_to`].
    ///
    /// Errors: `CorruptBatch`/`BatchTooLarge` (nothing written), `Poisoned` after a failed fsync,
    /// `StorageFull` when the disk is full (nothing written, the log stays writable).
    pub fn append(&self, records: &[u8], leader_epoch: i32, now_ms: i64) -> Result<AppendInfo, LogError> {
        self.append_batches(records, leader_epoch, now_ms, true)
            .unwrap_or_else(|| Err(LogError::Poisoned { path: self.dir.clone(), reason: "an append that may wait did not run".into() }))
    }

    /// [`Self::append`] for a caller on an async thread: the same append when it can be done at
    /// once (a `pwrite` into the page cache), or `None`, with nothing written, when it would wait
    /// for the writer lock (a roll, retention or checkpoint in progress) or do slow file work (a
    /// segment roll, the first write after open). Then call [`Self::append`] on a blocking thread.
    pub fn try_append_now(&self, records: &[u8], leader_epoch: i32, now_ms: i64) -> Option<Result<AppendInfo, LogError>> {
        self.append_batches(records, leader_epoch, now_ms, false)
    }

    /// Reads whole batches starting with the one that contains `offset`, up to `max_bytes`, never
    /// past `upper_bound` (exclusive; the high watermark for consumers). The first batch is returned
    /// even when larger than `max_bytes` so a consumer always makes progress.
    /// `offset` outside `[log_start_offset, log_end_offset]` is `LogError::OffsetOutOfRange`.
    pub fn read(&self, offset: i64, max_bytes: usize, upper_bound: i64) -> Result<ReadResult, LogError> {
        self.read_batches(offset, max_bytes, upper_bound)
    }

    /// Headers of the batches in `[from, to)` (for rebuilding producer state), without payloads.
    pub fn batch_headers(&self, from: i64, to: i64) -> Result<Vec<BatchHeader>, LogError> {
        self.headers_between(from, to)
    }

    /// Makes everything up to at least `offset` (exclusive) durable. Concurrent callers share one
    /// fsync. A failed fsync poisons the log: later appends fail with `LogError::Poisoned`.
    pub fn flush_to(&self, offset: i64) -> Result<(), LogError> {
        self.group_commit(offset)
    }

    /// The offset up to which data is known to be on stable storage.
    pub fn durable_offset(&self) -> i64 {
        self.durable.load(Ordering::Acquire)
    }

    /// The first offset still in the log.
    pub fn log_start_offset(&self) -> i64 {
        self.state.read().log_start_offset
    }

    /// The offset the next appended record will get.
    pub fn log_end_offset(&self) -> i64 {
        self.state.read().log_end_offset()
    }

    /// The offset below which records are committed and visible to consumers. Set by the owner
    /// (today: the single-node broker, from the flush policy; later: replication).
    pub fn high_watermark(&self) -> i64 {
        self.high_watermark.load(Ordering::Acquire)
    }

    /// Advances the high watermark (never past the log end offset, never backwards).
    pub fn set_high_watermark(&self, offset: i64) {
        let state = self.state.read();
        let offset = offset.min(state.log_end_offset());
        self.high_watermark.fetch_max(offset, Ordering::AcqRel);
    }

    /// The earliest offset whose batch max timestamp is `>= timestamp_ms`, with that timestamp;
    /// `None` if every record is older. (Batch granularity: the offset is the batch's base offset,
    /// or the log start offset if that is later.)
    pub fn offset_for_timestamp(&self, timestamp_ms: i64) -> Result<Option<(i64, i64)>, LogError> {
        self.search_timestamp(timestamp_ms)
    }

    /// The offset and timestamp of the record with the largest timestamp (ListOffsets -3).
    /// (Batch granularity: the last offset of the batch with the largest max timestamp.)
    pub fn max_timestamp(&self) -> Result<Option<(i64, i64)>, LogError> {
        let state = self.state.read();
        let best =
            state.segments.iter().filter(|s| s.size > 0 && s.offset_of_max_timestamp >= 0).fold(None, |best: Option<(i64, i64)>, s| {
                match best {
                    Some((_, ts)) if ts >= s.max_timestamp => best,
                    _ => Some((s.offset_of_max_timestamp, s.max_timestamp)),
                }
            });
        Ok(best)
    }

    /// Removes everything at and after `offset` (replication will need this on leader change).
    /// The batch holding `offset` is removed whole, so the log end offset may end up below
    /// `offset`.
    pub fn truncate_to(&self, offset: i64) -> Result<(), LogError> {
        self.truncate_tail(offset)
    }

    /// Advances the log start offset to `offset` (DeleteRecords), deleting whole segments below it.
    pub fn delete_records_before(&self, offset: i64) -> Result<i64, LogError> {
        self.advance_log_start(offset)
    }

    /// Rolls by age, applies retention (time and size), and compaction if the policy asks.
    /// Called periodically by the broker. Returns how many segments were deleted.
    pub fn maintain(&self, now_ms: i64) -> Result<usize, LogError> {
        self.run_maintenance(now_ms)
    }

    /// Replaces the configuration (IncrementalAlterConfigs); takes effect at the next append/roll.
    pub fn update_config(&self, config: LogConfig) {
        *self.config.write() = config;
    }

    /// Flushes everything and writes a clean-shutdown checkpoint so the next open scans nothing.
    /// The log stays usable; a later append marks it unclean again.
    pub fn close(&self) -> Result<(), LogError> {
        self.close_cleanly()
    }

    /// Bytes on disk across all segments.
    pub fn size_bytes(&self) -> u64 {
        self.state.read().segments.iter().map(|s| s.size).sum()
    }

    /// Number of segments.
    pub fn segment_count(&self) -> usize {
        self.state.read().segments.len()
    }

    /// The directory this log lives in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Counters (fsync rounds, recovery work, compaction).
    pub fn stats(&self) -> LogStats {
        *self.stats.lock()
    }

    /// Applies `compression.type`: the request's batches rebuilt with the configured codec, or
    /// `None` if they are to be stored as received. CPU-heavy: call before [`Self::append`], whose
    /// locks it does not take.
    pub fn recompress(&self, records: &[u8]) -> Result<Option<Vec<u8>>, LogError> {
        let config = self.config();
        match config.compression {
            Some(codec) => records::recompress(records, codec, config.max_batch_bytes),
            None => Ok(None),
        }
    }

    /// Whether `compression.type` makes [`Self::recompress`] rebuild batches (CPU work).
    pub fn recompresses(&self) -> bool {
        self.config.read().compression.is_some()
    }

    fn config(&self) -> LogConfig {
        self.config.read().clone()
    }

    /// `Err(Poisoned)` if an earlier fsync or write failed beyond repair.
    fn check_poison(&self) -> Result<(), LogError> {
        match &*self.poison.lock() {
            Some(reason) => Err(LogError::Poisoned { path: self.dir.clone(), reason: reason.clone() }),
            None => Ok(()),
        }
    }

    /// Refuses all further writes, logging why.
    fn poison(&self, reason: String) {
        tracing::error!(dir = %self.dir.display(), %reason, "partition log poisoned: refusing writes until reopened");
        let mut poison = self.poison.lock();
        if poison.is_none() {
            *poison = Some(reason);
        }
    }
}
