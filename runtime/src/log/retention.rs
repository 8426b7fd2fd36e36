//! Periodic maintenance: roll by age, background flushing, retention by time and size, and
//! DeleteRecords. Only whole closed segments are deleted; the active segment never is.

use std::sync::atomic::Ordering;

use super::format::{segment_path, INDEX_SUFFIX, LOG_SUFFIX, TIME_INDEX_SUFFIX};
use super::writer::remove_if_exists;
use super::{FlushPolicy, LogConfig, LogError, PartitionLog};

impl PartitionLog {
    pub(super) fn run_maintenance(&self, now_ms: i64) -> Result<usize, LogError> {
        let mut progress = self.maintenance.lock();
        if self.check_poison().is_err() {
            // Already logged when it happened; reads go on, maintenance would only fail again.
            return Ok(0);
        }
        let config = self.config();
        self.roll_by_age(now_ms, &config)?;
        if let FlushPolicy::IntervalMs(ms) = config.flush_policy {
            if now_ms.saturating_sub(self.last_flush_ms.load(Ordering::Acquire)) >= ms as i64 {
                self.flush_to(self.log_end_offset())?;
                self.last_flush_ms.store(now_ms, Ordering::Release);
            }
        }
        {
            let mut writer = self.writer.lock();
            if self.has_unpersisted_closed_segments() {
                self.mark_unclean(&mut writer)?;
                self.checkpoint_closed()?;
            }
        }
        let deleted = if config.cleanup_policy.delete { self.apply_retention(now_ms, &config)? } else { 0 };
        if config.cleanup_policy.compact {
            self.compact(now_ms, &config, &mut progress)?;
        }
        Ok(deleted)
    }

    fn has_unpersisted_closed_segments(&self) -> bool {
        let s = self.state.read();
        s.segments[..s.segments.len() - 1].iter().any(|seg| !seg.indexes_persisted)
    }

    /// Rolls the active segment if its first append is `segment.ms` old (so time retention and
    /// compaction can reach its data even when a partition receives little traffic).
    fn roll_by_age(&self, now_ms: i64, config: &LogConfig) -> Result<(), LogError> {
        let mut writer = self.writer.lock();
        let due = {
            let s = self.state.read();
            let active = s.active();
            active.size > 0 && active.first_append_ms.is_some_and(|t| now_ms.saturating_sub(t) >= config.segment_ms as i64)
        };
        if due {
            self.mark_unclean(&mut writer)?;
            self.roll()?;
        }
        Ok(())
    }

    /// Deletes the oldest closed segments whose newest record is past `retention.ms`, then more
    /// while the log is larger than `retention.bytes`. Returns how many were deleted.
    fn apply_retention(&self, now_ms: i64, config: &LogConfig) -> Result<usize, LogError> {
        let _writer = self.writer.lock();
        let (count, new_start) = {
            let s = self.state.read();
            let closed = &s.segments[..s.segments.len() - 1];
            let mut n = 0;
            if let Some(ms) = config.retention_ms {
                let horizon = now_ms.saturating_sub(ms as i64);
                while n < closed.len() && closed[n].max_timestamp < horizon {
                    n += 1;
                }
            }
            if let Some(limit) = config.retention_bytes {
                let mut total: u64 = s.segments[n..].iter().map(|seg| seg.size).sum();
                while n < closed.len() && total - closed[n].size >= limit {
                    total -= closed[n].size;
                    n += 1;
                }
            }
            (n, s.segments[n].base_offset.max(s.log_start_offset))
        };
        if count == 0 {
            return Ok(0);
        }
        tracing::info!(dir = %self.dir.display(), segments = count, log_start_offset = new_start, "retention: deleting segments");
        self.remove_prefix(count, new_start)?;
        Ok(count)
    }

    pub(super) fn advance_log_start(&self, offset: i64) -> Result<i64, LogError> {
        let mut writer = self.writer.lock();
        let (lso, leo, count) = {
            let s = self.state.read();
            let n = s.segments[..s.segments.len() - 1].iter().take_while(|seg| seg.next_offset <= offset).count();
            (s.log_start_offset, s.log_end_offset(), n)
        };
        if offset > leo {
            return Err(LogError::OffsetOutOfRange { offset, log_start_offset: lso, log_end_offset: leo });
        }
        if offset <= lso {
            return Ok(lso);
        }
        self.check_poison()?;
        self.mark_unclean(&mut writer)?;
        self.remove_prefix(count, offset)?;
        Ok(offset)
    }

    /// Sets the log start offset and deletes the first `count` segments (closed ones). The new log
    /// start offset reaches the checkpoint before any file is deleted; a crash in between leaves
    /// files that open deletes. Caller holds the writer lock.
    fn remove_prefix(&self, count: usize, new_start: i64) -> Result<(), LogError> {
        let removed: Vec<i64> = {
            let mut s = self.state.write();
            s.log_start_offset = s.log_start_offset.max(new_start);
            let count = count.min(s.segments.len() - 1);
            s.segments.drain(..count).map(|seg| seg.base_offset).collect()
        };
        self.write_checkpoint(false)?;
        for base in &removed {
            for suffix in [LOG_SUFFIX, INDEX_SUFFIX, TIME_INDEX_SUFFIX] {
                remove_if_exists(&segment_path(&self.dir, *base, suffix));
            }
        }
        if !removed.is_empty() {
            self.sync_dir_or_poison()?;
        }
        Ok(())
    }
}
