//! One partition: its log, its high watermark (with a watch channel that long-poll fetches wait
//! on), its idempotent-producer state, and the glue between its local log and its remote (tiered)
//! side: reads below the local log start go to [`RemoteLog`], and the log start offset reported
//! to clients is the earliest offset that exists anywhere.
//!
//! High watermark: under `flush.policy=batch` it is the durable offset (consumers never see what
//! a crash could take back); under `interval` and `os` it is the log end offset. Replication will
//! later own the high watermark; this file is the only place that sets it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::sync::watch;

use super::flusher::{FlushTarget, Flusher};
use super::leader_epochs::LeaderEpochCache;
use super::producer_state::{scan_batches, ActiveProducer, CachedBatch, Check, ProducerStates};
use super::{now_ms, BrokerError};
use crate::log::{FlushPolicy, FsFlush, LogConfig, LogError, PartitionLog, ReadResult};
use crate::metrics::PartitionTraffic;
use crate::tier::{RemoteLog, Tier, TierError, TierSettings};

/// A partition's settings, converted from topic configs at the broker's edge.
#[derive(Debug, Clone, PartialEq)]
pub struct PartitionSettings {
    /// The log's settings as the topic configs say.
    pub log: LogConfig,
    /// Tiering settings.
    pub tier: TierSettings,
}

impl PartitionSettings {
    /// What the log itself applies: when tiered, the tier owns deletion (a local segment may go
    /// only once uploaded), so the log's own retention is off.
    fn effective_log_config(&self) -> LogConfig {
        let mut log = self.log.clone();
        if self.tier.enabled {
            log.retention_ms = None;
            log.retention_bytes = None;
        }
        log
    }
}

/// Produce requests up to this size are appended on the async thread that decoded them, unless
/// that would wait (see [`PartitionLog::try_append_now`]): a `pwrite` of a few KiB into the page
/// cache takes microseconds, less than handing it to a blocking thread and back. At 50 MB/s over 8
/// partitions librdkafka sends ~8,000 requests a second of ~6 KiB, and two thread switches each
/// kept the broker's core busy (bench/README.md). Larger requests still go to a blocking thread,
/// so a 1 MB copy never holds up other connections' requests.
const INLINE_APPEND_BYTES_MAX: usize = 64 * 1024;

/// The partition leader epoch this single-node broker stamps on batches and reports in Metadata.
pub const LEADER_EPOCH: i32 = 0;

/// Where a produced batch landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Produced {
    /// Offset of the first record (the original one for a retried idempotent batch).
    pub base_offset: i64,
    /// For the Produce response (v5+).
    pub log_start_offset: i64,
}

/// An append waiting for [`Partition::complete`].
#[derive(Debug, Clone, Copy)]
pub struct Appended {
    produced: Produced,
    /// Offset to make durable (exclusive).
    end: i64,
}

/// One partition of a topic.
pub struct Partition {
    /// The topic's name.
    pub topic: String,
    /// The partition number.
    pub index: i32,
    log: Arc<PartitionLog>,
    /// The remote side: manifest, remote reads, uploads.
    remote: RemoteLog,
    /// The high watermark, published to long-poll fetches.
    hwm: watch::Sender<i64>,
    /// Held across check-append-record so idempotence decisions and appends are one step. Appends
    /// to one partition are serialised by the log anyway, so this costs no parallelism.
    producers: Mutex<ProducerStates>,
    /// Leader epoch → first offset (OffsetForLeaderEpoch; see `leader_epochs`).
    epochs: Mutex<LeaderEpochCache>,
    /// `flush.policy=batch`: every produce marks the partition dirty for the flusher, and the HWM
    /// follows its fsyncs.
    flush_every_batch: AtomicBool,
    /// The broker's flusher (see `flusher`).
    flusher: Arc<Flusher>,
    /// The flusher's shared round in progress for this partition: what its filesystem sync
    /// covers, and when it began.
    shared_flush: Mutex<Option<(FsFlush, std::time::Instant)>>,
    /// Bytes and records in and out, for metrics (counted here so the hot path needs no lookup).
    pub traffic: PartitionTraffic,
}

impl Partition {
    /// Opens (recovers) the log in `dir`, loads its remote manifest and rebuilds producer state.
    /// An empty local log with remote history (a restore) restarts at the remote end offset.
    /// Blocking: call on a blocking thread.
    pub fn open(
        topic: &str,
        topic_id: uuid::Uuid,
        index: i32,
        dir: &std::path::Path,
        settings: PartitionSettings,
        tier: &Arc<Tier>,
        flusher: &Arc<Flusher>,
    ) -> Result<Self, BrokerError> {
        let every_batch = settings.log.flush_policy == FlushPolicy::EveryBatch;
        let log = PartitionLog::open(dir, settings.effective_log_config(), now_ms()).map_err(|e| BrokerError::log(topic, index, e))?;
        let remote = tier.block_on(RemoteLog::open(tier, topic, topic_id, index, settings.tier));
        if let Some(remote_end) = remote.end_offset() {
            if log.log_start_offset() == log.log_end_offset() && log.log_end_offset() < remote_end {
                log.restart_empty_at(remote_end).map_err(|e| BrokerError::log(topic, index, e))?;
                tracing::info!(
                    topic,
                    partition = index,
                    remote_end,
                    "restored from the object store: local log restarts at the remote end"
                );
            }
        }
        let end = log.log_end_offset();
        let (mut producers, from) = ProducerStates::load_snapshot(dir, end).unwrap_or_default();
        let from = from.max(log.log_start_offset());
        if from < end {
            for header in log.batch_headers(from, end).map_err(|e| BrokerError::log(topic, index, e))? {
                producers.replay(&header);
            }
        }
        let epochs = LeaderEpochCache::open(topic, index, &log, LEADER_EPOCH)?;
        let (hwm, _) = watch::channel(log.high_watermark());
        Ok(Partition {
            topic: topic.to_string(),
            index,
            log: Arc::new(log),
            remote,
            hwm,
            producers: Mutex::new(producers),
            epochs: Mutex::new(epochs),
            flush_every_batch: AtomicBool::new(every_batch),
            flusher: Arc::clone(flusher),
            shared_flush: Mutex::new(None),
            traffic: PartitionTraffic::default(),
        })
    }

    /// Appends a Produce request's records for this partition (no fsync yet). Returns where
    /// they landed; pass it to [`Partition::complete`] to honour `acks`.
    ///
    /// A small request is appended on the calling async thread when that cannot wait (see
    /// [`INLINE_APPEND_BYTES_MAX`]); anything else goes to a blocking thread.
    pub async fn append_records(self: &Arc<Self>, records: Bytes) -> Result<Appended, BrokerError> {
        if records.len() <= INLINE_APPEND_BYTES_MAX {
            if let Some(done) = self.append(&records, false) {
                let (produced, end) = done?;
                return Ok(Appended { produced, end });
            }
        }
        let me = Arc::clone(self);
        let appended = blocking(&self.topic, move || me.append(&records, true)).await?;
        let (produced, end) = appended.unwrap_or_else(|| {
            Err(BrokerError::Task {
                what: format!("append to {}-{}", self.topic, self.index),
                reason: "an append that may wait did not run".into(),
            })
        })?;
        Ok(Appended { produced, end })
    }

    /// Under `flush.policy=batch`, hands the append to the flusher; acks=-1 waits for its fsync,
    /// acks=0/1 do not (the HWM still advances only once it is durable).
    pub async fn complete(self: &Arc<Self>, appended: Appended, acks: i16) -> Result<Produced, BrokerError> {
        if !self.flush_every_batch.load(Ordering::Acquire) || self.log.durable_offset() >= appended.end {
            return Ok(appended.produced);
        }
        let target: Arc<dyn FlushTarget> = Arc::clone(self) as Arc<dyn FlushTarget>;
        if let Some(durable) = self.flusher.request(target, appended.end, acks == -1) {
            durable.await.map_err(|_| BrokerError::Task {
                what: format!("flush of {}-{}", self.topic, self.index),
                reason: "the flusher stopped".into(),
            })??;
        }
        Ok(appended.produced)
    }

    /// Check idempotence, append, record producer state. Returns where the records landed and
    /// the offset to flush to. With `may_wait` it blocks (call on a blocking thread); without, it
    /// returns `None`, having changed nothing, where it would wait for a lock, recompress or do
    /// slow file work.
    fn append(&self, records: &[u8], may_wait: bool) -> Option<Result<(Produced, i64), BrokerError>> {
        if !may_wait && self.log.recompresses() {
            return None;
        }
        let batches = match scan_batches(records) {
            Ok(batches) if batches.is_empty() => {
                return Some(Err(BrokerError::CorruptRecords { reason: "no record batch in the request".into() }))
            }
            Ok(batches) => batches,
            Err(e) => return Some(Err(e)),
        };
        if batches.iter().any(|b| b.transactional) {
            return Some(Err(BrokerError::TransactionsUnsupported));
        }
        // compression.type: recompressing is CPU work, done before taking the producer lock.
        // Otherwise the request's bytes are written as they are, without a copy.
        let rebuilt = match self.log.recompress(records) {
            Ok(rebuilt) => rebuilt,
            Err(e) => return Some(Err(self.log_error(e))),
        };
        let stored: &[u8] = rebuilt.as_deref().unwrap_or(records);
        let mut producers = if may_wait { self.producers.lock() } else { self.producers.try_lock()? };
        for batch in batches.iter().filter(|b| b.producer_id >= 0) {
            match producers.check(batch) {
                Ok(Check::Duplicate(original)) => {
                    if batches.len() > 1 {
                        return Some(Err(BrokerError::InvalidRequest { reason: "a retried batch among new ones in one request".into() }));
                    }
                    let produced = Produced { base_offset: original.first_offset, log_start_offset: self.log_start_offset() };
                    return Some(Ok((produced, original.last_offset + 1)));
                }
                Ok(Check::Append) => {}
                Err(e) => return Some(Err(e)),
            }
        }
        let now = now_ms();
        let appended =
            if may_wait { Some(self.log.append(stored, LEADER_EPOCH, now)) } else { self.log.try_append_now(stored, LEADER_EPOCH, now) };
        let info = match appended? {
            Ok(info) => info,
            Err(e) => return Some(Err(self.log_error(e))),
        };
        // Bytes as the producer sent them (before any compression.type rewrite), like Kafka's BytesIn.
        self.traffic.appended(records.len() as u64, u64::try_from(info.last_offset - info.base_offset + 1).unwrap_or(0));
        let mut next = info.base_offset;
        for batch in &batches {
            let last = next + i64::from(batch.last_offset_delta);
            if batch.producer_id >= 0 {
                let cached = CachedBatch {
                    first_seq: batch.base_sequence,
                    last_seq: batch.last_sequence(),
                    first_offset: next,
                    last_offset: last,
                    max_timestamp: batch.max_timestamp,
                };
                producers.record(batch.producer_id, batch.producer_epoch, cached, now);
            }
            next = last + 1;
        }
        drop(producers);
        if !self.flush_every_batch.load(Ordering::Acquire) {
            self.advance_hwm(info.last_offset + 1);
        }
        Some(Ok((Produced { base_offset: info.base_offset, log_start_offset: self.log_start_offset() }, info.last_offset + 1)))
    }

    /// Group-committed fsync up to `end`, then the HWM follows the durable offset. Blocking.
    fn flush_to(&self, end: i64) -> Result<(), BrokerError> {
        let started = std::time::Instant::now();
        self.log.flush_to(end).map_err(|e| self.log_error(e))?;
        crate::metrics::traffic::flush_duration().observe(started.elapsed().as_secs_f64());
        self.advance_hwm(self.log.durable_offset());
        Ok(())
    }

    fn advance_hwm(&self, offset: i64) {
        self.log.set_high_watermark(offset);
        let hwm = self.log.high_watermark();
        self.hwm.send_if_modified(|current| {
            let changed = hwm > *current;
            *current = (*current).max(hwm);
            changed
        });
    }

    /// Reads committed batches (below the HWM) from `offset`: from the object store below the
    /// local log start, else from the local log. Blocking (not on an async thread).
    /// An offset between the HWM and the log end offset reads nothing; outside
    /// `[log start, log end]` it is `OffsetOutOfRange`.
    pub fn read(&self, offset: i64, max_bytes: usize) -> Result<ReadResult, BrokerError> {
        let hwm = self.log.high_watermark();
        if offset < self.log.log_start_offset() {
            return self.read_remote(offset, max_bytes, hwm);
        }
        match self.log.read(offset, max_bytes, hwm) {
            Ok(mut r) => {
                r.log_start_offset = self.log_start_offset();
                Ok(r)
            }
            // Local retention deleted the segment between the check and the read.
            Err(LogError::OffsetOutOfRange { .. }) if offset < self.log.log_start_offset() => self.read_remote(offset, max_bytes, hwm),
            Err(e) => Err(self.log_error(e)),
        }
    }

    fn read_remote(&self, offset: i64, max_bytes: usize, hwm: i64) -> Result<ReadResult, BrokerError> {
        let log_start_offset = self.log_start_offset();
        if offset < log_start_offset {
            return Err(BrokerError::OffsetOutOfRange {
                topic: self.topic.clone(),
                partition: self.index,
                offset,
                log_start_offset,
                high_watermark: hwm,
            });
        }
        let records = self.remote.tier.block_on(self.remote.read(offset, max_bytes, hwm)).map_err(|e| self.tier_error(e))?;
        Ok(ReadResult { records, log_start_offset, log_end_offset: self.log.log_end_offset(), high_watermark: hwm })
    }

    /// ListOffsets by timestamp: remote history first, then the local log. Blocking.
    pub fn offset_for_timestamp(&self, timestamp_ms: i64) -> Result<Option<(i64, i64)>, BrokerError> {
        if self.remote.start_offset().is_some_and(|start| start < self.log.log_start_offset()) {
            let found = self.remote.tier.block_on(self.remote.offset_for_timestamp(timestamp_ms)).map_err(|e| self.tier_error(e))?;
            if found.is_some() {
                return Ok(found);
            }
        }
        self.log.offset_for_timestamp(timestamp_ms).map_err(|e| self.log_error(e))
    }

    /// ListOffsets -3: the record with the largest timestamp, local or remote. Blocking.
    pub fn max_timestamp(&self) -> Result<Option<(i64, i64)>, BrokerError> {
        let local = self.log.max_timestamp().map_err(|e| self.log_error(e))?;
        let remote = self.remote.max_timestamp();
        Ok(match (remote, local) {
            (Some(r), Some(l)) => Some(if r.1 > l.1 { r } else { l }),
            (r, l) => r.or(l),
        })
    }

    /// OffsetForLeaderEpoch: `(epoch, end offset)` for `requested` (see
    /// [`LeaderEpochCache::end_offset_for`]).
    pub fn end_offset_for_epoch(&self, requested: i32) -> (i32, i64) {
        let (start, end) = (self.log_start_offset(), self.log.log_end_offset());
        self.epochs.lock().end_offset_for(requested, start, end)
    }

    /// DescribeProducers: the idempotent producers not yet expired.
    pub fn active_producers(&self) -> Vec<ActiveProducer> {
        self.producers.lock().active(now_ms())
    }

    /// Receives every advance of the high watermark (long-poll fetches wait on it).
    pub fn subscribe(&self) -> watch::Receiver<i64> {
        self.hwm.subscribe()
    }

    /// Offset below which records are visible to consumers.
    pub fn high_watermark(&self) -> i64 {
        self.log.high_watermark()
    }

    /// The log start offset: the earliest offset that exists, remote or local.
    pub fn log_start_offset(&self) -> i64 {
        let local = self.log.log_start_offset();
        match self.remote.start_offset() {
            Some(remote) if remote < local => remote,
            _ => local,
        }
    }

    /// The local log start offset: the earliest offset on local disk (ListOffsets -4).
    pub fn local_log_start_offset(&self) -> i64 {
        self.log.log_start_offset()
    }

    /// The remote side (manifest, counters).
    pub fn remote(&self) -> &RemoteLog {
        &self.remote
    }

    /// One tiered-storage pass: upload closed segments, local and remote retention.
    pub async fn tier_pass(&self, now: i64) {
        self.remote.run_pass(&self.log, now).await;
    }

    /// Offset the next appended record gets.
    pub fn log_end_offset(&self) -> i64 {
        self.log.log_end_offset()
    }

    /// The storage engine, for reads that need nothing from the broker (timestamps, sizes).
    pub fn log(&self) -> &PartitionLog {
        &self.log
    }

    /// DeleteRecords: advances the log start offset. `offset` -1 means the high watermark.
    /// Blocking. Returns the new log start offset.
    pub fn delete_records_before(&self, offset: i64) -> Result<i64, BrokerError> {
        let hwm = self.log.high_watermark();
        let offset = if offset == -1 { hwm } else { offset };
        if offset < 0 || offset > hwm {
            return Err(BrokerError::OffsetOutOfRange {
                topic: self.topic.clone(),
                partition: self.index,
                offset,
                log_start_offset: self.log_start_offset(),
                high_watermark: hwm,
            });
        }
        // Remote first: a read racing with this sees the new start either way.
        self.remote.advance_log_start(offset);
        if offset > self.log.log_start_offset() {
            self.log.delete_records_before(offset).map_err(|e| self.log_error(e))?;
        }
        Ok(self.log_start_offset())
    }

    /// Applies new topic configs to the live log and its remote side.
    pub fn update_config(&self, settings: PartitionSettings) {
        let every_batch = settings.log.flush_policy == FlushPolicy::EveryBatch;
        self.remote.update_settings(settings.tier);
        self.log.update_config(settings.effective_log_config());
        if !every_batch {
            // Leaving `batch`: what is in the log is now visible without waiting for an fsync.
            self.advance_hwm(self.log.log_end_offset());
        }
        self.flush_every_batch.store(every_batch, Ordering::Release);
    }

    /// Retention, rolling, compaction, interval flushes; expires idle producers and snapshots
    /// producer state. Blocking.
    pub fn maintain(&self, now: i64) -> Result<(), BrokerError> {
        self.log.maintain(now).map_err(|e| self.log_error(e))?;
        let snapshot = {
            let mut producers = self.producers.lock();
            producers.expire(now);
            (!producers.is_empty()).then(|| (producers.clone(), self.log.log_end_offset()))
        };
        if let Some((states, end)) = snapshot {
            states.write_snapshot(self.log.dir(), end)?;
        }
        Ok(())
    }

    /// Snapshots producer state and writes the log's clean-shutdown checkpoint. Blocking.
    pub fn close(&self) -> Result<(), BrokerError> {
        let (states, end) = {
            let producers = self.producers.lock();
            (producers.clone(), self.log.log_end_offset())
        };
        if !states.is_empty() {
            states.write_snapshot(self.log.dir(), end)?;
        }
        self.log.close().map_err(|e| self.log_error(e))
    }

    fn log_error(&self, e: LogError) -> BrokerError {
        BrokerError::log(&self.topic, self.index, e)
    }

    fn tier_error(&self, source: TierError) -> BrokerError {
        BrokerError::Tier { topic: self.topic.clone(), partition: self.index, source: Box::new(source) }
    }
}

impl FlushTarget for Partition {
    /// One flush: everything appended so far becomes durable and visible.
    fn flush_round(&self) -> Result<i64, BrokerError> {
        self.flush_to(self.log.log_end_offset())?;
        Ok(self.log.durable_offset())
    }

    /// A poisoned log cannot share a round: flushed alone, it reports why.
    fn begin_shared(&self) -> Option<(u64, Arc<std::fs::File>)> {
        let (flush, device, file) = self.log.begin_fs_flush().ok()?;
        *self.shared_flush.lock() = Some((flush, std::time::Instant::now()));
        Some((device, file))
    }

    fn end_shared(&self, synced: Result<(), &std::io::Error>) -> Result<i64, BrokerError> {
        // The flusher runs one flush of a partition at a time, so this is the round's own ticket.
        let Some((flush, started)) = self.shared_flush.lock().take() else {
            return self.flush_round();
        };
        self.log.end_fs_flush(flush, synced).map_err(|e| self.log_error(e))?;
        crate::metrics::traffic::flush_duration().observe(started.elapsed().as_secs_f64());
        self.advance_hwm(self.log.durable_offset());
        Ok(self.log.durable_offset())
    }
}

/// Runs blocking storage work off the async threads.
pub async fn blocking<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> Result<T, BrokerError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| task_error(what, e))
}

fn task_error(what: &str, e: tokio::task::JoinError) -> BrokerError {
    BrokerError::Task { what: what.to_string(), reason: e.to_string() }
}
