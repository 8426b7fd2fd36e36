//! A partition's leader-epoch cache: for each leader epoch, the first offset written in it
//! (Kafka's `LeaderEpochFileCache`). OffsetForLeaderEpoch answers from it (consumers' truncation
//! checks, KIP-320), and replication will use it for follower truncation (KIP-101).
//!
//! Entries ascend in both epoch and start offset. An epoch begins when this node becomes the
//! partition's leader ([`LeaderEpochCache::assign`] at the log end offset, as Kafka's
//! `Partition.makeLeader`); every batch appended afterwards carries that epoch in its
//! `partition_leader_epoch`, so appends never change the cache. Today a node leads every partition
//! at one constant epoch (`partition::LEADER_EPOCH`) from the moment it opens it.
//!
//! Durability: the file `leader-epoch-checkpoint` in the partition directory, in Kafka's format
//! (a version line `0`, a count line, then `epoch start_offset` lines), rewritten atomically on
//! every change and so authoritative. At open it is truncated to the recovered log end (recovery
//! may have cut a torn tail that an epoch began in). Without a readable checkpoint (a data
//! directory from before it existed, or a damaged file) the cache is rebuilt from the
//! `partition_leader_epoch` of every batch header, read [`REBUILD_OFFSETS_PER_READ`] offsets at a
//! time so memory stays bounded whatever the log's size.

use std::path::Path;

use super::{fsutil, BrokerError};
use crate::log::{LogError, PartitionLog};

/// The checkpoint's file name inside the partition directory (Kafka's; the log ignores it).
pub const CHECKPOINT_FILE: &str = "leader-epoch-checkpoint";
/// Kafka's checkpoint format version.
const CHECKPOINT_VERSION: u32 = 0;
/// Entries a checkpoint may hold: one per leader change, so far beyond any real partition's
/// history; a larger count is a damaged file, rebuilt from the log instead of trusted.
pub const CHECKPOINT_ENTRIES_MAX: usize = 1 << 20;
/// Offsets whose batch headers one read returns while rebuilding (each batch holds at least one
/// offset, so at most this many headers are in memory at once).
pub const REBUILD_OFFSETS_PER_READ: i64 = 100_000;
/// Kafka's `UNDEFINED_EPOCH` (also `NO_PARTITION_LEADER_EPOCH` in batch headers).
pub const UNDEFINED_EPOCH: i32 = -1;
/// Kafka's `UNDEFINED_EPOCH_OFFSET`.
pub const UNDEFINED_EPOCH_OFFSET: i64 = -1;

/// One epoch and the first offset written in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpochEntry {
    /// The leader epoch.
    pub epoch: i32,
    /// The first offset with that epoch.
    pub start_offset: i64,
}

/// A partition's epochs, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeaderEpochCache {
    entries: Vec<EpochEntry>,
}

impl LeaderEpochCache {
    /// A cache holding `entries` (ascending), for tests and the rebuild.
    pub fn from_entries(entries: Vec<EpochEntry>) -> Self {
        let mut cache = LeaderEpochCache::default();
        for e in entries {
            cache.assign(e.epoch, e.start_offset);
        }
        cache
    }

    /// The entries, oldest first.
    pub fn entries(&self) -> &[EpochEntry] {
        &self.entries
    }

    /// The newest epoch, if any.
    pub fn latest_epoch(&self) -> Option<i32> {
        self.entries.last().map(|e| e.epoch)
    }

    /// Records that `epoch` begins at `start_offset`, as Kafka's `assign`: ignored unless the
    /// epoch is newer than the latest one and both are defined; entries that would break the
    /// ordering (an epoch not older, or a start offset not earlier) are dropped first. Returns
    /// whether the cache changed.
    pub fn assign(&mut self, epoch: i32, start_offset: i64) -> bool {
        if epoch < 0 || start_offset < 0 || self.latest_epoch().is_some_and(|latest| latest >= epoch) {
            return false;
        }
        self.entries.retain(|e| e.epoch < epoch && e.start_offset < start_offset);
        self.entries.push(EpochEntry { epoch, start_offset });
        true
    }

    /// Removes the epochs that began at or after `end_offset` (the log was truncated there).
    /// Returns whether the cache changed.
    pub fn truncate_from_end(&mut self, end_offset: i64) -> bool {
        let before = self.entries.len();
        self.entries.retain(|e| e.start_offset < end_offset);
        self.entries.len() != before
    }

    /// Kafka's `endOffsetFor`: `(epoch, end offset)` for a requested epoch, where the end offset
    /// is the start of the next larger epoch (the log end offset for the latest one) and the epoch
    /// is the largest known one not above the request. `log_start_offset` plays the part of
    /// Kafka's `truncateFromStart` (epochs wholly below it are gone, the oldest remaining one
    /// starts there). Undefined answers are `(UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET)`.
    pub fn end_offset_for(&self, requested: i32, log_start_offset: i64, log_end_offset: i64) -> (i32, i64) {
        const UNDEFINED: (i32, i64) = (UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET);
        if requested == UNDEFINED_EPOCH {
            return UNDEFINED;
        }
        let entries = self.truncated_at_start(log_start_offset);
        match entries.last() {
            None => return UNDEFINED,
            Some(latest) if latest.epoch == requested => return (requested, log_end_offset),
            Some(_) => {}
        }
        let Some(higher) = entries.iter().find(|e| e.epoch > requested) else {
            return UNDEFINED;
        };
        match entries.iter().rev().find(|e| e.epoch <= requested) {
            // Older than anything known: its data is gone; the next epoch's start is the best
            // answer (a follower then replicates from the leader's start).
            None => (requested, higher.start_offset),
            Some(floor) => (floor.epoch, higher.start_offset),
        }
    }

    /// The entries as Kafka's `truncateFromStart(log_start_offset)` would leave them.
    fn truncated_at_start(&self, log_start_offset: i64) -> Vec<EpochEntry> {
        let first_kept = self.entries.partition_point(|e| e.start_offset <= log_start_offset).saturating_sub(1);
        let mut out = self.entries[first_kept.min(self.entries.len())..].to_vec();
        if let Some(first) = out.first_mut() {
            first.start_offset = first.start_offset.max(log_start_offset);
        }
        out
    }

    /// Opens the cache of partition `topic`-`partition`, whose log is `log`: the checkpoint
    /// truncated to the log end, or a rebuild from batch headers, then `leader_epoch` assigned at
    /// the log end (this node leads the partition from now). Persisted if that changed anything.
    /// Blocking.
    pub fn open(topic: &str, partition: i32, log: &PartitionLog, leader_epoch: i32) -> Result<Self, BrokerError> {
        let dir = log.dir();
        let end = log.log_end_offset();
        let (mut cache, mut changed) = match read_checkpoint(dir) {
            Some(cache) => (cache, false),
            None => (rebuild(log).map_err(|e| BrokerError::log(topic, partition, e))?, true),
        };
        changed |= cache.truncate_from_end(end);
        changed |= cache.assign(leader_epoch, end);
        if changed {
            cache.write_checkpoint(dir)?;
        }
        Ok(cache)
    }

    /// Writes the checkpoint atomically (temp file, fsync, rename, directory fsync).
    pub fn write_checkpoint(&self, dir: &Path) -> Result<(), BrokerError> {
        let mut text = format!("{CHECKPOINT_VERSION}\n{}\n", self.entries.len());
        for e in &self.entries {
            text.push_str(&format!("{} {}\n", e.epoch, e.start_offset));
        }
        fsutil::write_atomically(&dir.join(CHECKPOINT_FILE), text.as_bytes())
    }
}

/// The checkpoint in `dir`, or `None` (with a log line) if it is missing or not a valid one.
fn read_checkpoint(dir: &Path) -> Option<LeaderEpochCache> {
    let path = dir.join(CHECKPOINT_FILE);
    let text = std::fs::read_to_string(&path).ok()?;
    match parse_checkpoint(&text) {
        Ok(cache) => Some(cache),
        Err(reason) => {
            tracing::warn!(path = %path.display(), "ignoring a damaged leader-epoch checkpoint ({reason}); rebuilding it from the log");
            None
        }
    }
}

fn parse_checkpoint(text: &str) -> Result<LeaderEpochCache, String> {
    let mut lines = text.lines();
    let mut next = |what: &str| lines.next().ok_or_else(|| format!("missing {what}"));
    let version: u32 = next("version")?.trim().parse().map_err(|e| format!("version: {e}"))?;
    if version != CHECKPOINT_VERSION {
        return Err(format!("version {version}, expected {CHECKPOINT_VERSION}"));
    }
    let count: usize = next("entry count")?.trim().parse().map_err(|e| format!("entry count: {e}"))?;
    if count > CHECKPOINT_ENTRIES_MAX {
        return Err(format!("{count} entries, more than {CHECKPOINT_ENTRIES_MAX}"));
    }
    let mut entries = Vec::with_capacity(count);
    for i in 0..count {
        let line = next("entry")?;
        let mut fields = line.split_whitespace();
        let epoch = fields.next().and_then(|f| f.parse::<i32>().ok());
        let start = fields.next().and_then(|f| f.parse::<i64>().ok());
        match (epoch, start, fields.next()) {
            (Some(epoch), Some(start_offset), None) if epoch >= 0 && start_offset >= 0 => entries.push(EpochEntry { epoch, start_offset }),
            _ => return Err(format!("entry {i} is not `epoch offset`: {line:?}")),
        }
    }
    let ascending = entries.windows(2).all(|w| w[0].epoch < w[1].epoch && w[0].start_offset < w[1].start_offset);
    if !ascending {
        return Err("entries do not ascend".into());
    }
    Ok(LeaderEpochCache { entries })
}

/// The cache as the log's batch headers say: each batch whose epoch is newer than the latest seen
/// begins that epoch (Kafka's rule when appending as a follower).
fn rebuild(log: &PartitionLog) -> Result<LeaderEpochCache, LogError> {
    let (mut at, end) = (log.log_start_offset(), log.log_end_offset());
    let mut cache = LeaderEpochCache::default();
    while at < end {
        let to = at.saturating_add(REBUILD_OFFSETS_PER_READ).min(end);
        let headers = log.batch_headers(at, to)?;
        for h in &headers {
            cache.assign(h.partition_leader_epoch, h.base_offset.max(log.log_start_offset()));
        }
        // A batch that straddles `to` was returned whole; continue after it.
        at = headers.last().map_or(to, |h| (h.base_offset + i64::from(h.last_offset_delta) + 1).max(to));
    }
    Ok(cache)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(entries: &[(i32, i64)]) -> LeaderEpochCache {
        LeaderEpochCache::from_entries(entries.iter().map(|&(epoch, start_offset)| EpochEntry { epoch, start_offset }).collect())
    }

    /// Kafka's `endOffsetFor` cases: the latest epoch ends at the log end, an older one at the
    /// next epoch's start, a gap in epochs answers with the floor epoch, and unknowable requests
    /// are undefined.
    #[test]
    fn end_offset_for_follows_kafka() {
        let c = cache(&[(0, 0), (2, 100), (5, 250)]);
        assert_eq!(c.end_offset_for(5, 0, 300), (5, 300), "latest epoch: the log end offset");
        assert_eq!(c.end_offset_for(2, 0, 300), (2, 250));
        assert_eq!(c.end_offset_for(0, 0, 300), (0, 100));
        assert_eq!(c.end_offset_for(3, 0, 300), (2, 250), "unknown epoch in a gap: floor epoch, next start");
        assert_eq!(c.end_offset_for(6, 0, 300), (UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET), "newer than any");
        assert_eq!(c.end_offset_for(UNDEFINED_EPOCH, 0, 300), (UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET));
        assert_eq!(LeaderEpochCache::default().end_offset_for(0, 0, 0), (UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET));
    }

    /// Epochs below the log start offset are gone, as after Kafka's `truncateFromStart`.
    #[test]
    fn log_start_hides_older_epochs() {
        let c = cache(&[(1, 10), (3, 100), (4, 200)]);
        assert_eq!(c.end_offset_for(1, 150, 300), (1, 150), "epoch 3 now starts at 150; epoch 1 is older than any");
        assert_eq!(c.end_offset_for(3, 150, 300), (3, 200));
        assert_eq!(c.end_offset_for(0, 5, 300), (0, 10), "before the first epoch: the first one's start");
    }

    /// `assign` keeps epochs and offsets ascending; truncation drops epochs begun past the end.
    #[test]
    fn assign_and_truncate() {
        let mut c = cache(&[(0, 0), (2, 100)]);
        assert!(!c.assign(2, 150), "same epoch: no change");
        assert!(!c.assign(1, 150), "older epoch: no change");
        assert!(c.assign(3, 90), "a newer epoch starting earlier replaces what it overlaps");
        assert_eq!(c.entries(), &[EpochEntry { epoch: 0, start_offset: 0 }, EpochEntry { epoch: 3, start_offset: 90 }]);
        assert!(c.truncate_from_end(90));
        assert_eq!(c.latest_epoch(), Some(0));
        assert!(!c.truncate_from_end(90));
    }

    /// The checkpoint round-trips in Kafka's text format; damaged files are refused.
    #[test]
    fn checkpoint_format() {
        let dir = tempfile::tempdir().expect("tempdir");
        let c = cache(&[(0, 0), (4, 17)]);
        c.write_checkpoint(dir.path()).expect("write");
        let text = std::fs::read_to_string(dir.path().join(CHECKPOINT_FILE)).expect("read");
        assert_eq!(text, "0\n2\n0 0\n4 17\n");
        assert_eq!(read_checkpoint(dir.path()), Some(c));
        for bad in ["", "1\n0\n", "0\n2\n0 0\n", "0\n1\n0 x\n", "0\n2\n3 5\n2 9\n", "0\n1\n-1 0\n", "0\n99999999999\n"] {
            assert!(parse_checkpoint(bad).is_err(), "{bad:?}");
        }
    }

    /// Without a checkpoint the cache comes from the batches' leader epochs, and the node's own
    /// epoch is assigned at the log end; a restart reads the checkpoint that open wrote.
    #[test]
    fn rebuilt_from_batch_headers() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = PartitionLog::open(dir.path(), crate::log::tests::config(), 0).expect("open");
        for (epoch, records) in [(0, 3), (0, 2), (2, 4), (7, 1)] {
            log.append(&crate::log::tests::batch_of(records, 8, 0), epoch, 0).expect("append");
        }
        let opened = LeaderEpochCache::open("t", 0, &log, 9).expect("open cache");
        let expected = cache(&[(0, 0), (2, 5), (7, 9), (9, 10)]);
        assert_eq!(opened, expected);
        assert_eq!(read_checkpoint(dir.path()), Some(expected.clone()), "persisted");
        // A torn tail cut by recovery: epochs begun after the new end are dropped.
        log.truncate_to(9).expect("truncate");
        let reopened = LeaderEpochCache::open("t", 0, &log, 9).expect("reopen");
        assert_eq!(reopened, cache(&[(0, 0), (2, 5), (9, 9)]));
    }
}
