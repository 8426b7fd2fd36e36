//! Compaction (`cleanup.policy=compact`): keep the latest record per key in closed segments.
//!
//! 1. Build a map key -> latest offset over all closed segments (never the active one, which is
//!    still changing; its records are seen once it is rolled).
//! 2. Rewrite each closed segment: a record survives if it has no key, or is the latest for its
//!    key, and is not a tombstone (null value) whose timestamp is `delete.retention.ms` in the past.
//!    A batch whose records all survive is copied byte for byte; one that lost some is rebuilt
//!    around the surviving records (same base offset, `lastOffsetDelta`, base timestamp, producer
//!    fields and codec, so every record keeps its offset); one that lost all is dropped. Control
//!    and transactional batches are copied unchanged (aborted-transaction removal comes with
//!    transactions).
//! 3. Swap each changed segment in: write `<base>.log.cleaned`, fsync; rename it to
//!    `<base>.log.swap`, fsync the directory (the commit point); delete the old indexes; rename the
//!    swap file over `<base>.log`, fsync the directory; write the new indexes. Open deletes a
//!    `.cleaned` file and completes a `.swap` file, so a crash at any step leaves either the old
//!    or the new segment, never a mix.
//!
//! The long work (reading, decompressing, writing) holds only the maintenance lock; appends and
//! reads go on. The swap holds the writer lock briefly and is skipped if truncation or retention
//! changed the segment meanwhile. Memory: the key map holds every distinct key of the closed
//! segments (Kafka bounds this with a fixed-size hash table; a bound is future work).

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::ops::ControlFlow;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use bytes::Bytes;

use super::format::{segment_path, CLEANED_SUFFIX, INDEX_SUFFIX, LOG_SUFFIX, SWAP_SUFFIX, TIME_INDEX_SUFFIX};
use super::index::SegmentIndex;
use super::records::{build_batch, parse_records, records_section};
use super::segment::{persist_indexes, read_at, walk_headers, Segment};
use super::writer::remove_if_exists;
use super::{BatchHeader, LogConfig, LogError, PartitionLog};

/// What the last compaction run left to do, so idle partitions are not re-read every interval.
#[derive(Debug, Default)]
pub(crate) struct Progress {
    /// End offset of the closed segments at the last run; nothing new to compact below it.
    clean_upto: i64,
    /// Earliest time a tombstone kept by the last run may be removed.
    next_tombstone_expiry: Option<i64>,
}

/// A closed segment as captured for compaction.
struct Source {
    base_offset: i64,
    file: Arc<File>,
    size: u64,
}

/// A rewritten segment, written to its `.cleaned` file.
struct Cleaned {
    file: File,
    size: u64,
    index: SegmentIndex,
    max_timestamp: i64,
    offset_of_max_timestamp: i64,
    changed: bool,
}

impl PartitionLog {
    pub(super) fn compact(&self, now_ms: i64, config: &LogConfig, progress: &mut Progress) -> Result<(), LogError> {
        let sources: Vec<Source> = {
            let s = self.state.read();
            let closed = &s.segments[..s.segments.len() - 1];
            closed.iter().map(|seg| Source { base_offset: seg.base_offset, file: Arc::clone(&seg.file), size: seg.size }).collect()
        };
        let dirty_end = {
            let s = self.state.read();
            s.segments[s.segments.len() - 1].base_offset
        };
        let tombstones_due = progress.next_tombstone_expiry.is_some_and(|t| now_ms >= t);
        if sources.is_empty() || (dirty_end <= progress.clean_upto && !tombstones_due) {
            return Ok(());
        }
        let latest = self.latest_offsets(&sources)?;
        let mut expiry: Option<i64> = None;
        for source in &sources {
            let (cleaned, seg_expiry) = self.clean_segment(source, &latest, now_ms, config)?;
            expiry = match (expiry, seg_expiry) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let cleaned_path = segment_path(&self.dir, source.base_offset, CLEANED_SUFFIX);
            if cleaned.changed {
                self.swap_in(source, cleaned)?;
            } else {
                drop(cleaned);
                remove_if_exists(&cleaned_path);
            }
        }
        progress.clean_upto = dirty_end;
        progress.next_tombstone_expiry = expiry;
        Ok(())
    }

    /// Pass 1: the latest offset of every key in the closed segments.
    fn latest_offsets(&self, sources: &[Source]) -> Result<HashMap<Bytes, i64>, LogError> {
        let mut latest = HashMap::new();
        for source in sources {
            self.for_each_batch(source, |header, bytes| {
                if header.is_control() {
                    return Ok(());
                }
                let section = records_section(bytes, header)?;
                for r in parse_records(section, header.records_count)? {
                    if let Some(key) = r.key {
                        latest.insert(key, header.base_offset + i64::from(r.offset_delta));
                    }
                }
                Ok(())
            })?;
        }
        Ok(latest)
    }

    /// Calls `f` with every batch of a segment (read one at a time).
    fn for_each_batch<F>(&self, source: &Source, mut f: F) -> Result<(), LogError>
    where
        F: FnMut(&BatchHeader, &[u8]) -> Result<(), String>,
    {
        let path = segment_path(&self.dir, source.base_offset, LOG_SUFFIX);
        let mut failure: Option<LogError> = None;
        walk_headers(&source.file, 0, source.size, |pos, header, size| {
            let result = read_at(&source.file, pos, size).map_err(|e| LogError::io("read", path.clone(), e)).and_then(|bytes| {
                f(header, &bytes)
                    .map_err(|reason| LogError::CorruptBatch { position: pos as usize, reason: format!("{}: {reason}", path.display()) })
            });
            match result {
                Ok(()) => ControlFlow::Continue(()),
                Err(e) => {
                    failure = Some(e);
                    ControlFlow::Break(())
                }
            }
        })
        .map_err(|e| LogError::io("read", path.clone(), e))?;
        failure.map_or(Ok(()), Err)
    }

    /// Pass 2 for one segment: writes the surviving batches to `<base>.log.cleaned` (fsynced).
    /// Returns it with the earliest expiry of a tombstone it kept.
    fn clean_segment(
        &self,
        source: &Source,
        latest: &HashMap<Bytes, i64>,
        now_ms: i64,
        config: &LogConfig,
    ) -> Result<(Cleaned, Option<i64>), LogError> {
        let path = segment_path(&self.dir, source.base_offset, CLEANED_SUFFIX);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .map_err(|e| LogError::io("create", &path, e))?;
        let mut out =
            Cleaned { file, size: 0, index: SegmentIndex::default(), max_timestamp: -1, offset_of_max_timestamp: -1, changed: false };
        let mut expiry: Option<i64> = None;
        let mut write_error: Option<std::io::Error> = None;
        self.for_each_batch(source, |header, bytes| {
            let kept = retain(header, bytes, latest, now_ms, config.delete_retention_ms, &mut expiry)?;
            let bytes: &[u8] = match &kept {
                Kept::All => bytes,
                Kept::None => {
                    out.changed = true;
                    return Ok(());
                }
                Kept::Some(rebuilt) => {
                    out.changed = true;
                    rebuilt
                }
            };
            let header = BatchHeader::parse(bytes);
            if let Err(e) = out.file.write_all_at(bytes, out.size) {
                write_error = Some(e);
                return Err("write failed".into());
            }
            if header.max_timestamp > out.max_timestamp {
                out.max_timestamp = header.max_timestamp;
                out.offset_of_max_timestamp = header.last_offset();
            }
            let rel = (header.base_offset - source.base_offset) as u32;
            out.index.on_batch(rel, out.size as u32, bytes.len() as u64, out.max_timestamp, config.index_interval_bytes);
            out.size += bytes.len() as u64;
            Ok(())
        })
        .map_err(|e| match write_error.take() {
            Some(io) => LogError::io("write", &path, io),
            None => e,
        })?;
        out.file.sync_all().map_err(|e| LogError::io("fsync", &path, e))?;
        Ok((out, expiry))
    }

    /// Step 3: atomically replaces the segment's file with the cleaned one.
    fn swap_in(&self, source: &Source, cleaned: Cleaned) -> Result<(), LogError> {
        let mut writer = self.writer.lock();
        let base = source.base_offset;
        let (cleaned_path, swap_path, log_path) = (
            segment_path(&self.dir, base, CLEANED_SUFFIX),
            segment_path(&self.dir, base, SWAP_SUFFIX),
            segment_path(&self.dir, base, LOG_SUFFIX),
        );
        let unchanged = {
            let s = self.state.read();
            let n = s.segments.len() - 1;
            s.segments[..n].iter().any(|seg| seg.base_offset == base && seg.size == source.size && Arc::ptr_eq(&seg.file, &source.file))
        };
        if !unchanged {
            remove_if_exists(&cleaned_path);
            return Ok(());
        }
        self.mark_unclean(&mut writer)?;
        std::fs::rename(&cleaned_path, &swap_path).map_err(|e| LogError::io("rename", &cleaned_path, e))?;
        self.sync_dir_or_poison()?;
        remove_if_exists(&segment_path(&self.dir, base, INDEX_SUFFIX));
        remove_if_exists(&segment_path(&self.dir, base, TIME_INDEX_SUFFIX));
        std::fs::rename(&swap_path, &log_path).map_err(|e| self.fail_sync("rename", swap_path.clone(), e))?;
        self.sync_dir_or_poison()?;
        let mut state = self.state.write();
        let Some(seg) = state.segments.iter_mut().find(|seg| seg.base_offset == base) else { return Ok(()) };
        let summary_next = seg.next_offset;
        let new = Segment {
            first_append_ms: seg.first_append_ms,
            indexes_persisted: false,
            ..Segment::from_parts(
                base,
                cleaned.file,
                cleaned.size,
                cleaned.index,
                summary_next,
                cleaned.max_timestamp,
                cleaned.offset_of_max_timestamp,
            )
        };
        let (old_size, new_size) = (seg.size, new.size);
        *seg = new;
        let (index, summary) = (seg.index.clone(), seg.summary());
        drop(state);
        // The swapped segment's indexes: written now; if this fails, open rebuilds them.
        if persist_indexes(&self.dir, base, &index, &summary).is_ok() && self.sync_dir_or_poison().is_ok() {
            if let Some(seg) = self.state.write().segments.iter_mut().find(|seg| seg.base_offset == base) {
                seg.indexes_persisted = true;
            }
        }
        self.stats.lock().segments_compacted += 1;
        tracing::info!(dir = %self.dir.display(), segment = base, old_size, new_size, "compacted segment");
        Ok(())
    }
}

/// Which records of a batch survive.
enum Kept {
    All,
    None,
    Some(Vec<u8>),
}

fn retain(
    header: &BatchHeader,
    bytes: &[u8],
    latest: &HashMap<Bytes, i64>,
    now_ms: i64,
    delete_retention_ms: u64,
    expiry: &mut Option<i64>,
) -> Result<Kept, String> {
    if header.is_control() || header.is_transactional() {
        return Ok(Kept::All);
    }
    let records = parse_records(records_section(bytes, header)?, header.records_count)?;
    let total = records.len();
    let mut kept = Vec::with_capacity(total);
    let mut max_ts = -1i64;
    for r in &records {
        let offset = header.base_offset + i64::from(r.offset_delta);
        let ts = if header.is_log_append_time() { header.max_timestamp } else { header.base_timestamp + r.timestamp_delta };
        let superseded = r.key.as_ref().is_some_and(|k| latest.get(k).is_some_and(|&l| l != offset));
        if superseded {
            continue;
        }
        if r.tombstone && r.key.is_some() {
            let expires = ts.saturating_add(delete_retention_ms as i64);
            if expires <= now_ms {
                continue;
            }
            *expiry = Some(expiry.map_or(expires, |e| e.min(expires)));
        }
        max_ts = max_ts.max(ts);
        kept.push(r.bytes.as_ref());
    }
    if kept.len() == total {
        return Ok(Kept::All);
    }
    if kept.is_empty() {
        return Ok(Kept::None);
    }
    let new_header = BatchHeader {
        max_timestamp: if header.is_log_append_time() { header.max_timestamp } else { max_ts },
        records_count: kept.len() as i32,
        ..*header
    };
    build_batch(&new_header, &kept).map(Kept::Some)
}
