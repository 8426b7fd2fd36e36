//! Appends, rolls, group-commit flushes, truncation and checkpoints.

use std::io;
use std::ops::ControlFlow;
use std::os::unix::fs::FileExt;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::batch;
use super::checkpoint::Checkpoint;
use super::error::is_storage_full;
use super::format::{segment_path, INDEX_SUFFIX, LOG_SUFFIX, SEGMENT_BYTES_MAX, TIME_INDEX_SUFFIX};
use super::segment::{self, persist_indexes, sync_dir, Segment};
use super::{AppendInfo, BatchHeader, LogError, PartitionLog, WriterState};

/// Batches at least this large are written from the request buffer without being copied (see
/// `write_rewritten`); below it one copy is cheaper than two extra syscalls per batch.
const DIRECT_WRITE_BYTES_MIN: usize = 16 * 1024;

/// Validates every batch of a produce request; returns headers with their positions and sizes.
pub(crate) fn validate_all(records: &[u8], max_batch_bytes: u32) -> Result<Vec<(BatchHeader, usize, usize)>, LogError> {
    if records.is_empty() {
        return Err(LogError::CorruptBatch { position: 0, reason: "no batches".into() });
    }
    let mut out = Vec::new();
    let mut pos = 0usize;
    while pos < records.len() {
        let rest = &records[pos..];
        if let Ok(size) = batch::batch_size(rest) {
            if size > max_batch_bytes as usize {
                return Err(LogError::BatchTooLarge { size, max: max_batch_bytes });
            }
        }
        let (header, size) = batch::validate(rest).map_err(|p| LogError::CorruptBatch { position: pos, reason: p.to_string() })?;
        out.push((header, pos, size));
        pos += size;
    }
    Ok(out)
}

impl PartitionLog {
    /// The append itself. With `may_wait` false (a caller on an async thread) it neither waits for
    /// the writer lock nor does slow file work: it returns `None`, having written nothing, when the
    /// lock is held (a roll, retention or a checkpoint in progress), when the segment must roll, or
    /// before the first write after open (which rewrites the checkpoint with an fsync).
    pub(super) fn append_batches(
        &self,
        records: &[u8],
        leader_epoch: i32,
        now_ms: i64,
        may_wait: bool,
    ) -> Option<Result<AppendInfo, LogError>> {
        let config = self.config();
        let mut batches = match validate_all(records, config.max_batch_bytes) {
            Ok(batches) => batches,
            Err(e) => return Some(Err(e)),
        };
        let offsets: i64 = batches.iter().map(|(h, _, _)| i64::from(h.last_offset_delta) + 1).sum();
        let mut writer = if may_wait { self.writer.lock() } else { self.writer.try_lock()? };
        if !may_wait && writer.clean_on_disk {
            return None;
        }
        if let Err(e) = self.check_poison().and_then(|()| self.mark_unclean(&mut writer)) {
            return Some(Err(e));
        }
        let (roll, leo) = {
            let state = self.state.read();
            let active = state.active();
            let too_big = active.size + records.len() as u64 > config.segment_bytes.min(SEGMENT_BYTES_MAX);
            let too_old = active.first_append_ms.is_some_and(|t| now_ms.saturating_sub(t) >= config.segment_ms as i64);
            let too_many = state.log_end_offset() + offsets - active.base_offset > i64::from(u32::MAX);
            (active.size > 0 && (too_big || too_old || too_many), state.log_end_offset())
        };
        if roll {
            if !may_wait {
                return None;
            }
            if let Err(e) = self.roll() {
                return Some(Err(e));
            }
        }
        let mut next = leo;
        for (header, _, _) in &mut batches {
            header.base_offset = next;
            header.partition_leader_epoch = leader_epoch;
            next = header.last_offset() + 1;
        }
        let (file, position) = {
            let state = self.state.read();
            (Arc::clone(&state.active().file), state.active().size)
        };
        if let Err(e) = self.write_or_undo(&file, records, &batches, position) {
            return Some(Err(e));
        }
        let mut state = self.state.write();
        let active = state.active_mut();
        for (header, pos, size) in &batches {
            active.on_append(header, position + *pos as u64, *size, config.index_interval_bytes, now_ms);
        }
        Some(Ok(AppendInfo { base_offset: leo, last_offset: next - 1, log_start_offset: state.log_start_offset }))
    }

    /// Writes the request's `batches` (their headers carry the assigned base offset and leader
    /// epoch) at `position` of the active segment. On failure cuts the file back to `position` so
    /// no partial batch stays behind. A full disk fails only this append; any other write error,
    /// or a failed cut, poisons the log.
    fn write_or_undo(
        &self,
        file: &std::fs::File,
        records: &[u8],
        batches: &[(BatchHeader, usize, usize)],
        position: u64,
    ) -> Result<(), LogError> {
        let result = self.write_rewritten(file, records, batches, position);
        let Err(e) = result else { return Ok(()) };
        let path = self.active_path();
        if let Err(cut) = file.set_len(position) {
            self.poison(format!("write to {} failed ({e}) and cutting it back failed: {cut}", path.display()));
            return Err(LogError::io("write", path, e));
        }
        if is_storage_full(&e) {
            tracing::warn!(path = %path.display(), error = %e, "disk full: append failed, nothing written");
        } else {
            self.poison(format!("write to {} failed: {e}", path.display()));
        }
        Err(LogError::io("write", path, e))
    }

    /// Writes `records` as stored: each batch with its offset and epoch rewritten, without copying
    /// the request. The request buffer stays read-only (it is a slice of the connection's frame),
    /// so a batch of at least [`DIRECT_WRITE_BYTES_MIN`] goes out as two `pwrite`s: its rewritten
    /// [`batch::REWRITTEN_PREFIX_BYTES`], then the rest straight from the request. Smaller batches
    /// are copied, rewritten, into one staging buffer written with one `pwrite`, so a request of
    /// many small batches still costs one syscall. (Copying the whole request into a mutable
    /// buffer, as before, cost a memcpy of every produced byte.)
    fn write_rewritten(
        &self,
        file: &std::fs::File,
        records: &[u8],
        batches: &[(BatchHeader, usize, usize)],
        position: u64,
    ) -> io::Result<()> {
        let mut staged: Vec<u8> = Vec::new();
        let mut staged_at = position;
        for (header, pos, size) in batches {
            let bytes = &records[*pos..*pos + *size];
            let at = position + *pos as u64;
            if *size < DIRECT_WRITE_BYTES_MIN {
                if staged.is_empty() {
                    staged_at = at;
                }
                let start = staged.len();
                staged.extend_from_slice(bytes);
                batch::rewrite_offset_and_epoch(&mut staged[start..], header.base_offset, header.partition_leader_epoch);
                continue;
            }
            if !staged.is_empty() {
                self.pwrite(file, &staged, staged_at)?;
                staged.clear();
            }
            let (prefix, rest) = bytes.split_at(batch::REWRITTEN_PREFIX_BYTES);
            let mut rewritten = [0u8; batch::REWRITTEN_PREFIX_BYTES];
            rewritten.copy_from_slice(prefix);
            batch::rewrite_offset_and_epoch(&mut rewritten, header.base_offset, header.partition_leader_epoch);
            self.pwrite(file, &rewritten, at)?;
            self.pwrite(file, rest, at + batch::REWRITTEN_PREFIX_BYTES as u64)?;
        }
        if !staged.is_empty() {
            self.pwrite(file, &staged, staged_at)?;
        }
        Ok(())
    }

    fn pwrite(&self, file: &std::fs::File, bytes: &[u8], position: u64) -> io::Result<()> {
        #[cfg(test)]
        if let Some((written, error)) = self.faults.take_write_failure() {
            let n = written.min(bytes.len());
            file.write_all_at(&bytes[..n], position)?;
            return Err(error);
        }
        file.write_all_at(bytes, position)
    }

    fn active_path(&self) -> std::path::PathBuf {
        segment_path(&self.dir, self.state.read().active().base_offset, LOG_SUFFIX)
    }

    /// Starts a new active segment at the log end offset. Caller holds the writer lock. The new
    /// file's directory entry is made durable by the next flush (`dir_dirty`).
    pub(super) fn roll(&self) -> Result<(), LogError> {
        let base = self.state.read().log_end_offset();
        let segment =
            Segment::create(&self.dir, base).map_err(|e| LogError::io("create segment", segment_path(&self.dir, base, LOG_SUFFIX), e))?;
        self.dir_dirty.store(true, Ordering::Release);
        self.state.write().segments.push(segment);
        tracing::debug!(dir = %self.dir.display(), base, "rolled segment");
        Ok(())
    }

    /// Rewrites a clean checkpoint as unclean before the first change to any file after open or
    /// close. Caller holds the writer lock.
    pub(super) fn mark_unclean(&self, writer: &mut WriterState) -> Result<(), LogError> {
        if !writer.clean_on_disk {
            return Ok(());
        }
        self.write_checkpoint(false)?;
        writer.clean_on_disk = false;
        Ok(())
    }

    /// Writes the checkpoint from the published state. A failure to make it durable poisons.
    pub(super) fn write_checkpoint(&self, clean: bool) -> Result<(), LogError> {
        let cp = {
            let s = self.state.read();
            Checkpoint { clean, recovery_point: s.recovery_point, log_start_offset: s.log_start_offset, log_end_offset: s.log_end_offset() }
        };
        cp.write(&self.dir).map_err(|e| self.fail_sync("write checkpoint", self.dir.join(super::format::CHECKPOINT_FILE), e))
    }

    /// Turns an error from a durability step into a `LogError`, poisoning unless the disk is full.
    pub(super) fn fail_sync(&self, op: &'static str, path: std::path::PathBuf, e: io::Error) -> LogError {
        if !is_storage_full(&e) {
            self.poison(format!("{op} {}: {e}", path.display()));
        }
        LogError::io(op, path, e)
    }

    /// Group commit: whoever holds the flush lock fsyncs everything up to the current end;
    /// callers that waited for it find their offset covered and return without an fsync.
    pub(super) fn group_commit(&self, offset: i64) -> Result<(), LogError> {
        if self.durable.load(Ordering::Acquire) >= offset {
            return Ok(());
        }
        let _flush = self.flush.lock();
        if self.durable.load(Ordering::Acquire) >= offset {
            return Ok(());
        }
        self.check_poison()?;
        let durable = self.durable.load(Ordering::Acquire);
        let (end, files) = {
            let s = self.state.read();
            let files: Vec<_> =
                s.segments.iter().filter(|seg| seg.next_offset > durable && seg.size > 0).map(|seg| Arc::clone(&seg.file)).collect();
            (s.log_end_offset(), files)
        };
        if self.dir_dirty.swap(false, Ordering::AcqRel) {
            self.sync_dir_or_poison()?;
        }
        for file in files {
            #[cfg(test)]
            self.faults.check_fsync().map_err(|e| self.fail_sync("fsync", self.dir.clone(), e))?;
            file.sync_data().map_err(|e| self.fail_sync("fsync", self.dir.clone(), e))?;
        }
        self.durable.fetch_max(end, Ordering::AcqRel);
        self.stats.lock().flush_fsyncs += 1;
        Ok(())
    }

    pub(super) fn sync_dir_or_poison(&self) -> Result<(), LogError> {
        sync_dir(&self.dir).map_err(|e| {
            self.poison(format!("fsync directory {}: {e}", self.dir.display()));
            LogError::io("fsync directory", self.dir.clone(), e)
        })
    }

    /// fsyncs closed segments, writes their indexes and moves the recovery point past them, so a
    /// restart after a crash scans only the active segment. Caller holds the writer lock.
    pub(super) fn checkpoint_closed(&self) -> Result<(), LogError> {
        let pending: Vec<_> = {
            let s = self.state.read();
            let closed = &s.segments[..s.segments.len() - 1];
            closed
                .iter()
                .filter(|seg| !seg.indexes_persisted)
                .map(|seg| (seg.base_offset, Arc::clone(&seg.file), seg.index.clone(), seg.summary()))
                .collect()
        };
        if pending.is_empty() {
            return Ok(());
        }
        for (base, file, index, summary) in &pending {
            let path = segment_path(&self.dir, *base, LOG_SUFFIX);
            file.sync_data().map_err(|e| self.fail_sync("fsync", path.clone(), e))?;
            persist_indexes(&self.dir, *base, index, summary).map_err(|e| self.fail_sync("write index", path, e))?;
        }
        self.sync_dir_or_poison()?;
        {
            let mut s = self.state.write();
            let n = s.segments.len() - 1;
            for seg in &mut s.segments[..n] {
                if pending.iter().any(|(base, _, _, sum)| *base == seg.base_offset && sum.log_bytes == seg.size) {
                    seg.indexes_persisted = true;
                }
            }
            let first_unpersisted = s.segments.iter().position(|seg| !seg.indexes_persisted).unwrap_or(n);
            s.recovery_point = s.segments[first_unpersisted].base_offset;
        }
        self.write_checkpoint(false)
    }

    pub(super) fn close_cleanly(&self) -> Result<(), LogError> {
        let mut writer = self.writer.lock();
        self.check_poison()?;
        self.checkpoint_closed()?;
        let end = self.log_end_offset();
        self.group_commit(end)?;
        let (base, index, summary) = {
            let s = self.state.read();
            (s.active().base_offset, s.active().index.clone(), s.active().summary())
        };
        persist_indexes(&self.dir, base, &index, &summary)
            .map_err(|e| self.fail_sync("write index", segment_path(&self.dir, base, INDEX_SUFFIX), e))?;
        self.sync_dir_or_poison()?;
        {
            let mut s = self.state.write();
            s.active_mut().indexes_persisted = true;
            s.recovery_point = s.log_end_offset();
        }
        self.write_checkpoint(true)?;
        writer.clean_on_disk = true;
        Ok(())
    }

    /// Removes the batch holding `offset` and everything after it.
    pub(super) fn truncate_tail(&self, offset: i64) -> Result<(), LogError> {
        let mut writer = self.writer.lock();
        self.check_poison()?;
        if offset >= self.log_end_offset() {
            return Ok(());
        }
        self.mark_unclean(&mut writer)?;
        let (idx, cut) = self.truncation_point(offset)?;
        // Lower the recovery point first: a crash must not trust indexes of cut segments.
        {
            let mut s = self.state.write();
            let base = s.segments[idx].base_offset;
            s.recovery_point = s.recovery_point.min(base);
        }
        self.write_checkpoint(false)?;
        let _flush = self.flush.lock();
        let removed = {
            let mut s = self.state.write();
            let removed: Vec<i64> = s.segments.drain(idx + 1..).map(|seg| seg.base_offset).collect();
            let seg = s.active_mut();
            self.generation.fetch_add(1, Ordering::AcqRel);
            seg.size = cut.0;
            seg.next_offset = cut.1;
            seg.index.truncate_to_position(cut.0 as u32);
            seg.indexes_persisted = false;
            let lso = s.log_start_offset.min(cut.1);
            s.log_start_offset = lso;
            removed
        };
        self.finish_truncation(cut, removed)
    }

    /// (segment index, (byte position, new end offset)) of the cut for `truncate_tail`.
    fn truncation_point(&self, offset: i64) -> Result<(usize, (u64, i64)), LogError> {
        let (idx, file, base, start, size) = {
            let s = self.state.read();
            let idx = s.segment_for(offset);
            let seg = &s.segments[idx];
            (idx, Arc::clone(&seg.file), seg.base_offset, seg.index.floor_position(seg.relative(offset)), seg.size)
        };
        let path = segment_path(&self.dir, base, LOG_SUFFIX);
        let found = segment::find_batch(&file, u64::from(start), size, offset).map_err(|e| LogError::io("read", path, e))?;
        Ok(match found {
            Some((pos, header, _)) => (idx, (pos, header.base_offset.max(base))),
            None => (idx, (size, offset)),
        })
    }

    fn finish_truncation(&self, cut: (u64, i64), removed: Vec<i64>) -> Result<(), LogError> {
        let (file, base) = {
            let s = self.state.read();
            (Arc::clone(&s.active().file), s.active().base_offset)
        };
        let path = segment_path(&self.dir, base, LOG_SUFFIX);
        file.set_len(cut.0).map_err(|e| self.fail_sync("truncate", path.clone(), e))?;
        file.sync_all().map_err(|e| self.fail_sync("fsync", path, e))?;
        for suffix in [INDEX_SUFFIX, TIME_INDEX_SUFFIX] {
            remove_if_exists(&segment_path(&self.dir, base, suffix));
        }
        for b in &removed {
            for suffix in [LOG_SUFFIX, INDEX_SUFFIX, TIME_INDEX_SUFFIX] {
                remove_if_exists(&segment_path(&self.dir, *b, suffix));
            }
        }
        self.sync_dir_or_poison()?;
        let end = cut.1;
        self.durable.fetch_min(end, Ordering::AcqRel);
        self.high_watermark.fetch_min(end, Ordering::AcqRel);
        self.recompute_active_max_timestamp()?;
        tracing::info!(dir = %self.dir.display(), new_end = end, segments_removed = removed.len(), "truncated log");
        Ok(())
    }

    fn recompute_active_max_timestamp(&self) -> Result<(), LogError> {
        let (file, size) = {
            let s = self.state.read();
            (Arc::clone(&s.active().file), s.active().size)
        };
        let mut max = (-1i64, -1i64);
        segment::walk_headers(&file, 0, size, |_, h, _| {
            if h.max_timestamp > max.0 {
                max = (h.max_timestamp, h.last_offset());
            }
            ControlFlow::Continue(())
        })
        .map_err(|e| LogError::io("read", self.dir.clone(), e))?;
        let mut s = self.state.write();
        let active = s.active_mut();
        active.max_timestamp = max.0;
        active.offset_of_max_timestamp = max.1;
        Ok(())
    }
}

/// Deletes a file, ignoring "not found"; other errors are logged (a leftover file is harmless:
/// open ignores or rebuilds it).
pub(crate) fn remove_if_exists(path: &std::path::Path) {
    if let Err(e) = std::fs::remove_file(path) {
        if e.kind() != io::ErrorKind::NotFound {
            tracing::warn!(path = %path.display(), error = %e, "could not delete file");
        }
    }
}
