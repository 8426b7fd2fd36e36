//! Small generic views of the log for layers that copy it elsewhere (tiered storage, later
//! replication): the closed segments and their files, an offset index file decoded on its own, a
//! standalone batch check, and restarting an empty log at a given offset. Nothing here knows why
//! it is asked; the log still owns every file.

use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;

use super::batch;
use super::format::{segment_path, BATCH_HEADER_BYTES, INDEX_SUFFIX, LOG_SUFFIX, TIME_INDEX_SUFFIX};
use super::index::SegmentIndex;
use super::segment::Segment;
use super::{BatchHeader, LogError, PartitionLog};

/// A closed segment (never the active one) whose data and indexes are durable on disk.
#[derive(Debug, Clone)]
pub struct ClosedSegment {
    /// Offset the segment is named after.
    pub base_offset: i64,
    /// Offset after its last batch (the next segment's base offset).
    pub next_offset: i64,
    /// Bytes of whole batches in the `.log` file.
    pub size_bytes: u64,
    /// Largest batch max timestamp (-1 if empty).
    pub max_timestamp: i64,
    /// Last offset of the batch holding `max_timestamp` (-1 if empty).
    pub offset_of_max_timestamp: i64,
    /// The `.log` file, open: it stays readable even if the log deletes the segment meanwhile.
    pub file: Arc<File>,
    /// Paths of the segment's `.log`, `.index` and `.timeindex` files.
    pub log_path: PathBuf,
    #[allow(missing_docs)]
    pub index_path: PathBuf,
    #[allow(missing_docs)]
    pub time_index_path: PathBuf,
}

/// A decoded offset index file: sparse (relative offset, byte position) pairs of one segment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OffsetIndex {
    index: SegmentIndex,
    log_bytes: u64,
}

impl OffsetIndex {
    /// Decodes a `.index` file (magic, version, CRC and order checked). An error names the problem.
    pub fn decode(bytes: &[u8]) -> Result<Self, String> {
        let log_bytes = SegmentIndex::offset_file_log_bytes(bytes)?;
        // The time index is not needed for positioning; an empty, valid one stands in for it.
        let times = SegmentIndex::default().encode_times(log_bytes);
        let (index, _) = SegmentIndex::decode(bytes, &times, log_bytes)?;
        Ok(OffsetIndex { index, log_bytes })
    }

    /// A batch boundary at or before the batch holding `offset` in a segment based at `base`.
    pub fn floor_position(&self, base: i64, offset: i64) -> u64 {
        let rel = (offset - base).clamp(0, i64::from(u32::MAX)) as u32;
        u64::from(self.index.floor_position(rel))
    }

    /// Length of the `.log` file this index describes.
    pub fn log_bytes(&self) -> u64 {
        self.log_bytes
    }
}

/// Validates the whole batch at the start of `bytes` (length, magic, CRC32C, counts) and returns
/// its header and size. For bytes that come back from somewhere the log does not control.
pub fn check_batch(bytes: &[u8]) -> Result<(BatchHeader, usize), String> {
    batch::validate(bytes).map_err(|p| p.to_string())
}

/// The header of the batch at the start of `bytes` and its total size, without checking the CRC
/// (for walking batches whose payload is not needed). Needs the 61 header bytes.
pub fn batch_header(bytes: &[u8]) -> Result<(BatchHeader, usize), String> {
    if bytes.len() < BATCH_HEADER_BYTES {
        return Err(format!("{} bytes are too few for a batch header", bytes.len()));
    }
    let size = batch::batch_size(bytes).map_err(|p| p.to_string())?;
    Ok((BatchHeader::parse(bytes), size))
}

/// Bytes of a RecordBatch v2 header up to and including `recordsCount`.
pub const BATCH_HEADER_LEN: usize = BATCH_HEADER_BYTES;

impl PartitionLog {
    /// The closed segments whose indexes are persisted, oldest first, stopping at the first one
    /// that is not (so the list is a contiguous run from the local log start).
    pub fn closed_segments(&self) -> Vec<ClosedSegment> {
        let s = self.state.read();
        let closed = &s.segments[..s.segments.len() - 1];
        closed
            .iter()
            .take_while(|seg| seg.indexes_persisted)
            .map(|seg| ClosedSegment {
                base_offset: seg.base_offset,
                next_offset: seg.next_offset,
                size_bytes: seg.size,
                max_timestamp: seg.max_timestamp,
                offset_of_max_timestamp: seg.offset_of_max_timestamp,
                file: Arc::clone(&seg.file),
                log_path: segment_path(&self.dir, seg.base_offset, LOG_SUFFIX),
                index_path: segment_path(&self.dir, seg.base_offset, INDEX_SUFFIX),
                time_index_path: segment_path(&self.dir, seg.base_offset, TIME_INDEX_SUFFIX),
            })
            .collect()
    }

    /// Makes an empty log (log start == log end) start at `offset` instead: the next append gets
    /// `offset`. Used when the records below `offset` live elsewhere. Errors if the log holds data.
    pub fn restart_empty_at(&self, offset: i64) -> Result<(), LogError> {
        let mut writer = self.writer.lock();
        let (lso, leo, old_base) = {
            let s = self.state.read();
            (s.log_start_offset, s.log_end_offset(), s.active().base_offset)
        };
        if lso != leo || offset < leo {
            return Err(LogError::OffsetOutOfRange { offset, log_start_offset: lso, log_end_offset: leo });
        }
        if offset == leo {
            return Ok(());
        }
        self.check_poison()?;
        self.mark_unclean(&mut writer)?;
        let segment = Segment::create(&self.dir, offset)
            .map_err(|e| LogError::io("create segment", segment_path(&self.dir, offset, LOG_SUFFIX), e))?;
        {
            let mut s = self.state.write();
            s.segments = vec![segment];
            s.log_start_offset = offset;
            s.recovery_point = offset;
        }
        self.write_checkpoint(false)?;
        for suffix in [LOG_SUFFIX, INDEX_SUFFIX, TIME_INDEX_SUFFIX] {
            super::writer::remove_if_exists(&segment_path(&self.dir, old_base, suffix));
        }
        self.sync_dir_or_poison()?;
        self.durable.fetch_max(offset, std::sync::atomic::Ordering::AcqRel);
        self.set_high_watermark(offset);
        tracing::info!(dir = %self.dir.display(), offset, "empty log restarted at a later offset");
        Ok(())
    }
}
