//! Committed offsets: an in-memory map in front of the compacted log `__consumer_offsets-0`.
//!
//! Every commit is appended and fsynced before the in-memory map changes, so what a fetch returns
//! has been durable since before the commit was answered. Concurrent commits are not serialised
//! here: the log orders them, and each in-memory entry remembers the log offset it came from, so an
//! older record never overwrites a newer one whichever task gets to the map first.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::records::RecordBatchDecoder;
use parking_lot::RwLock;

use super::format::{self, Key, OffsetKey, OffsetValue};
use super::GroupError;
use crate::log::{CleanupPolicy, FlushPolicy, LogConfig, PartitionLog};

/// The directory of the offsets log inside the data directory (Kafka's topic name, partition 0).
pub const OFFSETS_LOG_DIR: &str = "__consumer_offsets-0";
/// Bytes read per step while replaying the log at open.
const REPLAY_READ_BYTES: usize = 4 * 1024 * 1024;

/// Kafka's settings for `__consumer_offsets`: 100 MiB segments, compacted, kept forever.
fn log_config() -> LogConfig {
    LogConfig {
        segment_bytes: 100 * 1024 * 1024,
        segment_ms: 7 * 24 * 3600 * 1000,
        retention_ms: None,
        retention_bytes: None,
        cleanup_policy: CleanupPolicy { compact: true, delete: false },
        delete_retention_ms: 24 * 3600 * 1000,
        // We call flush_to before answering every commit anyway; EveryBatch states the intent.
        flush_policy: FlushPolicy::EveryBatch,
        index_interval_bytes: 4096,
        max_batch_bytes: 8 * 1024 * 1024,
        compression: None,
    }
}

/// One committed offset in memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedOffset {
    /// The next offset the group will consume.
    pub offset: i64,
    /// Leader epoch the client saw, or -1.
    pub leader_epoch: i32,
    /// Client-supplied metadata.
    pub metadata: String,
    /// When it was committed (wall clock, ms).
    pub commit_timestamp_ms: i64,
    /// Where the record lives in the offsets log: orders concurrent updates.
    log_offset: i64,
}

/// One offset a client asks to commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitEntry {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: i32,
    /// The offset to commit.
    pub offset: i64,
    /// Leader epoch, or -1.
    pub leader_epoch: i32,
    /// Client metadata (bounded by `OFFSET_METADATA_MAX_BYTES`).
    pub metadata: String,
}

type PartitionMap = HashMap<(String, i32), CommittedOffset>;

/// The committed offsets of every group, durable in the offsets log.
pub(crate) struct OffsetStore {
    log: Arc<PartitionLog>,
    path: PathBuf,
    /// group id → (topic, partition) → committed offset.
    committed: RwLock<HashMap<String, PartitionMap>>,
}

impl OffsetStore {
    /// Opens the log under `data_dir` and replays it into memory. Blocking.
    pub fn open(data_dir: &Path, now_ms: i64) -> Result<Self, GroupError> {
        let path = data_dir.join(OFFSETS_LOG_DIR);
        let log = PartitionLog::open(&path, log_config(), now_ms).map_err(|source| GroupError::OpenLog { path: path.clone(), source })?;
        // Everything on disk after recovery is committed: consumers of this log are only us.
        log.set_high_watermark(log.log_end_offset());
        let store = OffsetStore { log: Arc::new(log), path, committed: RwLock::new(HashMap::new()) };
        store.replay()?;
        Ok(store)
    }

    /// Reads the whole (compacted, hence bounded) log, applying records in offset order.
    fn replay(&self) -> Result<(), GroupError> {
        let end = self.log.log_end_offset();
        let mut at = self.log.log_start_offset();
        while at < end {
            let read = self.log.read(at, REPLAY_READ_BYTES, end).map_err(|source| GroupError::Replay {
                path: self.path.clone(),
                offset: at,
                source,
            })?;
            let mut bytes = read.records;
            if bytes.is_empty() {
                break;
            }
            while let Some((_, next, size)) = format::batch_span(&bytes) {
                if size > bytes.len() {
                    break;
                }
                let mut batch = bytes.split_to(size);
                let set = RecordBatchDecoder::decode(&mut batch).map_err(|e| self.bad_record(at, e.to_string()))?;
                for record in set.records {
                    self.apply_record(record.offset, record.key.as_deref(), record.value.as_deref())?;
                }
                // Progress is guaranteed: a batch always ends at or after the offset we asked for.
                at = at.max(next);
            }
        }
        Ok(())
    }

    fn bad_record(&self, offset: i64, reason: String) -> GroupError {
        GroupError::BadRecord { path: self.path.clone(), offset, reason }
    }

    fn apply_record(&self, offset: i64, key: Option<&[u8]>, value: Option<&[u8]>) -> Result<(), GroupError> {
        let Some(key) = key else { return Ok(()) };
        let Key::Offset(key) = format::decode_key(key).map_err(|e| self.bad_record(offset, e))? else {
            return Ok(());
        };
        match value {
            None => self.forget(&key.group, &[(key.topic, key.partition)], offset),
            Some(value) => {
                let value = format::decode_value(value).map_err(|e| self.bad_record(offset, e))?;
                self.remember(key, value, offset);
            }
        }
        Ok(())
    }

    /// Applies one record to memory unless memory already holds a newer one.
    fn remember(&self, key: OffsetKey, value: OffsetValue, log_offset: i64) {
        let mut committed = self.committed.write();
        let partitions = committed.entry(key.group).or_default();
        let entry = CommittedOffset {
            offset: value.offset,
            leader_epoch: value.leader_epoch,
            metadata: value.metadata,
            commit_timestamp_ms: value.commit_timestamp_ms,
            log_offset,
        };
        match partitions.get(&(key.topic.clone(), key.partition)) {
            Some(existing) if existing.log_offset > log_offset => {}
            _ => {
                partitions.insert((key.topic, key.partition), entry);
            }
        }
    }

    /// Removes partitions from memory unless they were recommitted after `log_offset`.
    fn forget(&self, group: &str, partitions: &[(String, i32)], log_offset: i64) {
        let mut committed = self.committed.write();
        let Some(map) = committed.get_mut(group) else { return };
        for key in partitions {
            if map.get(key).is_some_and(|c| c.log_offset < log_offset) {
                map.remove(key);
            }
        }
        if map.is_empty() {
            committed.remove(group);
        }
    }

    /// Appends and fsyncs the records, returning the log offset of the first one.
    async fn write(&self, group: &str, records: Vec<(Bytes, Option<Bytes>)>, now_ms: i64) -> Result<i64, GroupError> {
        let log = Arc::clone(&self.log);
        let count = records.len();
        let name = group.to_owned();
        let task = tokio::task::spawn_blocking(move || {
            let batches = format::write_batches(&records, now_ms).map_err(|reason| GroupError::Encode {
                group: name.clone(),
                records: count,
                reason,
            })?;
            let write = |source| GroupError::Write { group: name.clone(), records: count, source };
            let info = log.append(&batches, 0, now_ms).map_err(write)?;
            log.flush_to(info.last_offset + 1).map_err(write)?;
            log.set_high_watermark(info.last_offset + 1);
            Ok(info.base_offset)
        });
        match task.await {
            Ok(result) => result,
            Err(e) => Err(GroupError::Task { group: group.to_owned(), reason: e.to_string() }),
        }
    }

    /// Durably commits `entries` for `group`; memory changes only after the fsync.
    pub async fn commit(&self, group: &str, entries: &[CommitEntry], now_ms: i64) -> Result<(), GroupError> {
        if entries.is_empty() {
            return Ok(());
        }
        let pairs: Vec<(OffsetKey, OffsetValue)> = entries
            .iter()
            .map(|e| {
                let key = OffsetKey { group: group.to_owned(), topic: e.topic.clone(), partition: e.partition };
                let value = OffsetValue {
                    offset: e.offset,
                    leader_epoch: e.leader_epoch,
                    metadata: e.metadata.clone(),
                    commit_timestamp_ms: now_ms,
                };
                (key, value)
            })
            .collect();
        let records = pairs.iter().map(|(k, v)| (format::encode_key(k), Some(format::encode_value(v)))).collect();
        let base = self.write(group, records, now_ms).await?;
        for (i, (key, value)) in pairs.into_iter().enumerate() {
            self.remember(key, value, base + i as i64);
        }
        Ok(())
    }

    /// Writes tombstones for every committed offset of `group` and forgets them. Returns how many.
    pub async fn delete_group(&self, group: &str, now_ms: i64) -> Result<usize, GroupError> {
        let partitions: Vec<(String, i32)> = match self.committed.read().get(group) {
            Some(map) => map.keys().cloned().collect(),
            None => return Ok(0),
        };
        let records = partitions
            .iter()
            .map(|(topic, partition)| {
                let key = OffsetKey { group: group.to_owned(), topic: topic.clone(), partition: *partition };
                (format::encode_key(&key), None)
            })
            .collect();
        let base = self.write(group, records, now_ms).await?;
        // The tombstones sit at `base..`; anything recommitted meanwhile has a higher log offset
        // and survives in memory, as it will after the next replay.
        self.forget(group, &partitions, base);
        Ok(partitions.len())
    }

    /// Writes tombstones for `partitions` of `group` that have a committed offset (OffsetDelete)
    /// and forgets them. Partitions without one are skipped. Returns how many were deleted.
    pub async fn delete_partitions(&self, group: &str, partitions: &[(String, i32)], now_ms: i64) -> Result<usize, GroupError> {
        let doomed: Vec<(String, i32)> = match self.committed.read().get(group) {
            Some(map) => partitions.iter().filter(|key| map.contains_key(*key)).cloned().collect(),
            None => return Ok(0),
        };
        if doomed.is_empty() {
            return Ok(0);
        }
        let keys =
            doomed.iter().map(|(topic, partition)| OffsetKey { group: group.to_owned(), topic: topic.clone(), partition: *partition });
        let base = self.write(group, tombstones(keys), now_ms).await?;
        self.forget(group, &doomed, base);
        Ok(doomed.len())
    }

    /// Writes tombstones for every group's committed offsets of `topic` (deleted topic), so a
    /// topic re-created under the same name does not inherit stale positions. Returns how many.
    pub async fn delete_topic(&self, topic: &str, now_ms: i64) -> Result<usize, GroupError> {
        let doomed: Vec<(String, i32)> = {
            let committed = self.committed.read();
            committed
                .iter()
                .flat_map(|(group, map)| map.keys().filter(|(t, _)| t == topic).map(move |(_, p)| (group.clone(), *p)))
                .collect()
        };
        if doomed.is_empty() {
            return Ok(0);
        }
        let keys =
            doomed.iter().map(|(group, partition)| OffsetKey { group: group.clone(), topic: topic.to_owned(), partition: *partition });
        let base = self.write(&format!("(offsets of deleted topic {topic})"), tombstones(keys), now_ms).await?;
        for (group, partition) in &doomed {
            self.forget(group, &[(topic.to_owned(), *partition)], base);
        }
        Ok(doomed.len())
    }

    /// The committed offset of one partition.
    pub fn get(&self, group: &str, topic: &str, partition: i32) -> Option<CommittedOffset> {
        self.committed.read().get(group)?.get(&(topic.to_owned(), partition)).cloned()
    }

    /// Every committed offset of `group`, sorted by topic then partition.
    pub fn all(&self, group: &str) -> Vec<(String, i32, CommittedOffset)> {
        let mut all: Vec<_> = match self.committed.read().get(group) {
            Some(map) => map.iter().map(|((t, p), c)| (t.clone(), *p, c.clone())).collect(),
            None => Vec::new(),
        };
        all.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
        all
    }

    /// Whether `group` has any committed offset.
    pub fn has_group(&self, group: &str) -> bool {
        self.committed.read().contains_key(group)
    }

    /// Ids of every group with committed offsets.
    pub fn group_ids(&self) -> Vec<String> {
        self.committed.read().keys().cloned().collect()
    }

    /// Compaction and age-based rolling of the offsets log. Blocking.
    pub fn maintain(&self, now_ms: i64) -> Result<(), GroupError> {
        self.log.maintain(now_ms).map(|_| ()).map_err(|source| GroupError::Maintain { source })
    }

    /// Flushes and writes the clean-shutdown checkpoint. Blocking.
    pub fn close(&self) -> Result<(), GroupError> {
        self.log.close().map_err(|source| GroupError::Close { source })
    }
}

/// One tombstone record (a key with no value) per offset key: compaction then drops the key.
fn tombstones(keys: impl Iterator<Item = OffsetKey>) -> Vec<(Bytes, Option<Bytes>)> {
    keys.map(|key| (format::encode_key(&key), None)).collect()
}
