//! Flushes completed by a sync of the whole filesystem, for a caller that makes many partitions
//! durable at once (the broker's flusher, `broker/flusher.rs`).
//!
//! Why: an `fdatasync` per partition costs a device cache flush per partition (and, on ext4
//! without a journal, a synchronous inode write each). With 8 partitions receiving small produce
//! requests the flusher issued ~1,800 fdatasyncs a second and spent a third of the broker's core
//! on them (bench/README.md). One `syncfs` writes every dirty file of the filesystem and flushes
//! the device once, so a round over N partitions costs one flush instead of N.
//!
//! The protocol: [`PartitionLog::begin_fs_flush`] notes the log end offset (everything below it
//! has been written to the page cache) and takes the "directory entry to sync" flag; the caller
//! syncs the filesystem; [`PartitionLog::end_fs_flush`] then raises the durable offset to the
//! noted end, or poisons the log if the sync failed, exactly as a failed fsync does.

use std::fs::File;
use std::io;
use std::os::unix::io::AsRawFd;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::{LogError, PartitionLog};

/// What a filesystem sync started after [`PartitionLog::begin_fs_flush`] covers.
#[derive(Debug)]
pub struct FsFlush {
    /// The log end offset when the flush began: durable once the sync succeeds.
    end: i64,
    /// The log's truncation generation then: a truncation in between makes `end` meaningless.
    generation: u64,
    /// The directory had unsynced entries (a roll): the sync covers them, or they stay dirty.
    dir_was_dirty: bool,
}

impl PartitionLog {
    /// Starts a flush that a sync of this log's filesystem completes. Returns the ticket for
    /// [`Self::end_fs_flush`], the filesystem's device id (to sync each filesystem once) and an
    /// open file on it. `Err(Poisoned)` if the log refuses writes.
    pub fn begin_fs_flush(&self) -> Result<(FsFlush, u64, Arc<File>), LogError> {
        self.check_poison()?;
        let (end, file) = {
            let s = self.state.read();
            (s.log_end_offset(), Arc::clone(&s.active().file))
        };
        let generation = self.generation.load(Ordering::Acquire);
        let dir_was_dirty = self.dir_dirty.swap(false, Ordering::AcqRel);
        Ok((FsFlush { end, generation, dir_was_dirty }, self.device, file))
    }

    /// Ends a flush begun with [`Self::begin_fs_flush`]: `synced` is the outcome of the
    /// filesystem sync. A failed sync poisons the log (unless the disk is full), like a failed
    /// fsync. If the log was truncated meanwhile, falls back to its own fsync.
    pub fn end_fs_flush(&self, flush: FsFlush, synced: Result<(), &io::Error>) -> Result<(), LogError> {
        if let Err(e) = synced {
            if flush.dir_was_dirty {
                self.dir_dirty.store(true, Ordering::Release);
            }
            return Err(self.fail_sync("syncfs", self.dir.clone(), io::Error::new(e.kind(), e.to_string())));
        }
        {
            // Truncation lowers `durable` holding the flush lock: raise it under the same lock,
            // and only if no truncation happened since the end was noted.
            let _flush = self.flush.lock();
            if self.generation.load(Ordering::Acquire) == flush.generation {
                self.durable.fetch_max(flush.end, Ordering::AcqRel);
                self.stats.lock().flush_fsyncs += 1;
                return Ok(());
            }
        }
        self.group_commit(flush.end)
    }
}

/// Writes every dirty file of `file`'s filesystem and flushes the device's write cache.
///
/// `syncfs` alone is not enough on ext4 without a journal (this project's CI disk): it issues
/// the device flush before writing the inode-table blocks that hold the new file sizes, so an
/// `fdatasync` follows, whose flush covers them. On a journalled filesystem that second call finds
/// nothing dirty and costs one more flush.
pub fn sync_filesystem(file: &File) -> io::Result<()> {
    #[cfg(test)]
    if let Some(e) = tests::injected_sync_failure() {
        return Err(e);
    }
    #[allow(unsafe_code)] // syncfs has no safe wrapper in std or our dependencies
    // SAFETY: the descriptor belongs to `file`, which is borrowed (open) for the whole call.
    let rc = unsafe { libc::syncfs(file.as_raw_fd()) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    file.sync_data()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod tests {
    use std::cell::Cell;

    use super::*;
    use crate::log::tests::{batch_of, config};

    thread_local! {
        static FAIL_NEXT_SYNC: Cell<bool> = const { Cell::new(false) };
    }

    pub(super) fn injected_sync_failure() -> Option<io::Error> {
        FAIL_NEXT_SYNC.with(|f| f.replace(false)).then(|| io::Error::other("injected syncfs failure"))
    }

    fn batch(n: usize) -> Vec<u8> {
        batch_of(n, 100, 0)
    }

    /// A log in `dir` holding offsets 0-2, none durable, with a filesystem flush begun.
    fn three_records_and_a_flush_begun(dir: &std::path::Path) -> (PartitionLog, FsFlush, Arc<File>) {
        let log = PartitionLog::open(dir, config(), 0).unwrap();
        log.append(&batch(3), 0, 0).unwrap();
        let (flush, _, file) = log.begin_fs_flush().unwrap();
        (log, flush, file)
    }

    #[test]
    fn a_filesystem_sync_makes_what_was_appended_before_it_durable() {
        // Goal: the durable offset covers what was appended before the flush began, not what
        // came after. Method: append, begin, append more, sync, end.
        let dir = tempfile::tempdir().unwrap();
        let (log, flush, file) = three_records_and_a_flush_begun(dir.path());
        log.append(&batch(2), 0, 0).unwrap();
        sync_filesystem(&file).unwrap();
        log.end_fs_flush(flush, Ok(())).unwrap();
        assert_eq!(log.durable_offset(), 3);
    }

    #[test]
    fn a_failed_filesystem_sync_poisons_the_log() {
        // Goal: a sync that fails is treated like a failed fsync: nothing more becomes durable and
        // the log refuses writes (the data may never reach the disk).
        let dir = tempfile::tempdir().unwrap();
        let (log, flush, file) = three_records_and_a_flush_begun(dir.path());
        FAIL_NEXT_SYNC.with(|f| f.set(true));
        let synced = sync_filesystem(&file);
        let e = log.end_fs_flush(flush, synced.as_ref().map(|_| ())).unwrap_err();
        assert!(e.to_string().contains("injected syncfs failure"), "{e}");
        assert_eq!(log.durable_offset(), 0);
        assert!(matches!(log.append(&batch(1), 0, 0), Err(LogError::Poisoned { .. })));
    }

    #[test]
    fn a_truncation_during_the_sync_falls_back_to_the_logs_own_fsync() {
        // Goal: an end noted before a truncation is never made durable as is. Method: begin at
        // end 5, truncate to 2, end: the durable offset is the truncated end, not 5.
        let dir = tempfile::tempdir().unwrap();
        let log = PartitionLog::open(dir.path(), config(), 0).unwrap();
        log.append(&batch(2), 0, 0).unwrap();
        log.append(&batch(3), 0, 0).unwrap();
        let (flush, _, file) = log.begin_fs_flush().unwrap();
        log.truncate_to(2).unwrap();
        sync_filesystem(&file).unwrap();
        log.end_fs_flush(flush, Ok(())).unwrap();
        assert_eq!(log.log_end_offset(), 2);
        assert!(log.durable_offset() <= 2, "durable {} past the truncated end", log.durable_offset());
    }
}
