//! One partition: its log, its high watermark (with a watch channel that long-poll fetches wait
//! on), and its idempotent-producer state.
//!
//! High watermark: under `flush.policy=batch` it is the durable offset (consumers never see what
//! a crash could take back); under `interval` and `os` it is the log end offset. Replication will
//! later own the high watermark; this file is the only place that sets it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::sync::watch;

use super::producer_state::{scan_batches, CachedBatch, Check, ProducerStates};
use super::{now_ms, BrokerError};
use crate::log::{FlushPolicy, LogConfig, LogError, PartitionLog, ReadResult};
use crate::metrics::PartitionTraffic;

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
    log: PartitionLog,
    /// The high watermark, published to long-poll fetches.
    hwm: watch::Sender<i64>,
    /// Held across check-append-record so idempotence decisions and appends are one step. Appends
    /// to one partition are serialised by the log anyway, so this costs no parallelism.
    producers: Mutex<ProducerStates>,
    /// `flush.policy=batch`: every produce kicks a group-committed fsync and the HWM follows it.
    flush_every_batch: AtomicBool,
    /// Bytes and records in and out, for metrics (counted here so the hot path needs no lookup).
    pub traffic: PartitionTraffic,
}

impl Partition {
    /// Opens (recovers) the log in `dir` and rebuilds producer state. Blocking.
    pub fn open(topic: &str, index: i32, dir: &std::path::Path, config: LogConfig) -> Result<Self, BrokerError> {
        let every_batch = config.flush_policy == FlushPolicy::EveryBatch;
        let log = PartitionLog::open(dir, config, now_ms()).map_err(|e| BrokerError::log(topic, index, e))?;
        let end = log.log_end_offset();
        let (mut producers, from) = ProducerStates::load_snapshot(dir, end).unwrap_or_default();
        let from = from.max(log.log_start_offset());
        if from < end {
            for header in log.batch_headers(from, end).map_err(|e| BrokerError::log(topic, index, e))? {
                producers.replay(&header);
            }
        }
        let (hwm, _) = watch::channel(log.high_watermark());
        Ok(Partition {
            topic: topic.to_string(),
            index,
            log,
            hwm,
            producers: Mutex::new(producers),
            flush_every_batch: AtomicBool::new(every_batch),
            traffic: PartitionTraffic::default(),
        })
    }

    /// Appends a Produce request's records for this partition (no fsync yet). Returns where
    /// they landed; pass it to [`Partition::complete`] to honour `acks`.
    pub async fn append_records(self: &Arc<Self>, records: Bytes) -> Result<Appended, BrokerError> {
        let me = Arc::clone(self);
        let (produced, end) = blocking(&self.topic, move || me.append(records)).await??;
        Ok(Appended { produced, end })
    }

    /// Under `flush.policy=batch`, kicks the group-committed fsync of an append; acks=-1 waits
    /// for it, acks=0/1 do not (the HWM still advances only once it is durable).
    pub async fn complete(self: &Arc<Self>, appended: Appended, acks: i16) -> Result<Produced, BrokerError> {
        if self.flush_every_batch.load(Ordering::Acquire) {
            let me = Arc::clone(self);
            let end = appended.end;
            let flush = tokio::task::spawn_blocking(move || me.flush_to(end));
            if acks == -1 {
                flush.await.map_err(|e| task_error(&self.topic, e))??;
            } else {
                let (topic, index) = (self.topic.clone(), self.index);
                tokio::spawn(async move {
                    match flush.await {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => tracing::error!(%topic, partition = index, "background flush failed: {e}"),
                        Err(e) => tracing::error!(%topic, partition = index, "background flush task failed: {e}"),
                    }
                });
            }
        }
        Ok(appended.produced)
    }

    /// Check idempotence, append, record producer state. Blocking. Returns where the records
    /// landed and the offset to flush to.
    fn append(&self, records: Bytes) -> Result<(Produced, i64), BrokerError> {
        let batches = scan_batches(&records)?;
        if batches.is_empty() {
            return Err(BrokerError::CorruptRecords { reason: "no record batch in the request".into() });
        }
        if batches.iter().any(|b| b.transactional) {
            return Err(BrokerError::TransactionsUnsupported);
        }
        // compression.type: recompressing is CPU work, done before taking the producer lock.
        let mut buf = match self.log.recompress(&records).map_err(|e| self.log_error(e))? {
            Some(rebuilt) => rebuilt,
            None => records.to_vec(),
        };
        let mut producers = self.producers.lock();
        for batch in batches.iter().filter(|b| b.producer_id >= 0) {
            if let Check::Duplicate(original) = producers.check(batch)? {
                if batches.len() > 1 {
                    return Err(BrokerError::InvalidRequest { reason: "a retried batch among new ones in one request".into() });
                }
                let produced = Produced { base_offset: original.first_offset, log_start_offset: self.log.log_start_offset() };
                return Ok((produced, original.last_offset + 1));
            }
        }
        let now = now_ms();
        let info = self.log.append(&mut buf, LEADER_EPOCH, now).map_err(|e| self.log_error(e))?;
        // Bytes as the producer sent them (before any compression.type rewrite), like Kafka's BytesIn.
        self.traffic.appended(records.len() as u64, u64::try_from(info.last_offset - info.base_offset + 1).unwrap_or(0));
        let mut next = info.base_offset;
        for batch in &batches {
            let last = next + i64::from(batch.last_offset_delta);
            if batch.producer_id >= 0 {
                let cached = CachedBatch { first_seq: batch.base_sequence, last_seq: batch.last_sequence(), first_offset: next, last_offset: last };
                producers.record(batch.producer_id, batch.producer_epoch, cached, now);
            }
            next = last + 1;
        }
        drop(producers);
        if !self.flush_every_batch.load(Ordering::Acquire) {
            self.advance_hwm(info.last_offset + 1);
        }
        Ok((Produced { base_offset: info.base_offset, log_start_offset: info.log_start_offset }, info.last_offset + 1))
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

    /// Reads committed batches (below the HWM) from `offset`. Blocking.
    /// An offset between the HWM and the log end offset reads nothing; outside
    /// `[log start, log end]` it is `OffsetOutOfRange`.
    pub fn read(&self, offset: i64, max_bytes: usize) -> Result<ReadResult, BrokerError> {
        self.log.read(offset, max_bytes, self.log.high_watermark()).map_err(|e| self.log_error(e))
    }

    /// Receives every advance of the high watermark (long-poll fetches wait on it).
    pub fn subscribe(&self) -> watch::Receiver<i64> {
        self.hwm.subscribe()
    }

    /// Offset below which records are visible to consumers.
    pub fn high_watermark(&self) -> i64 {
        self.log.high_watermark()
    }

    /// First offset still in the log.
    pub fn log_start_offset(&self) -> i64 {
        self.log.log_start_offset()
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
                log_start_offset: self.log.log_start_offset(),
                high_watermark: hwm,
            });
        }
        self.log.delete_records_before(offset).map_err(|e| self.log_error(e))
    }

    /// Applies new topic configs to the live log.
    pub fn update_config(&self, config: LogConfig) {
        let every_batch = config.flush_policy == FlushPolicy::EveryBatch;
        self.log.update_config(config);
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
}

/// Runs blocking storage work off the async threads.
pub async fn blocking<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> Result<T, BrokerError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| task_error(what, e))
}

fn task_error(what: &str, e: tokio::task::JoinError) -> BrokerError {
    BrokerError::Task { what: what.to_string(), reason: e.to_string() }
}
