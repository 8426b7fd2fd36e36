//! One segment: its `.log` file, its in-memory indexes and the reads and scans over it.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::ops::ControlFlow;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};

use super::batch::{self, BatchProblem};
use super::format::{segment_path, tmp_path, BATCH_HEADER_BYTES, INDEX_SUFFIX, LOG_SUFFIX, TIME_INDEX_SUFFIX};
use super::index::{SegmentIndex, SegmentSummary};
use super::BatchHeader;

/// Bytes read per `pread` when walking batch headers or scanning a segment.
const SCAN_CHUNK_BYTES: usize = 1 << 20;

/// A segment as the log sees it. Mutated only under the log's state write lock.
#[derive(Debug)]
pub(crate) struct Segment {
    /// Offset the file is named after; every batch in it starts at or after this offset.
    pub base_offset: i64,
    /// The `.log` file. Shared with readers, who `pread` without holding any lock; a segment that
    /// is deleted or swapped stays readable through handles already taken.
    pub file: Arc<File>,
    /// Bytes of whole batches in the file; readers never look past it.
    pub size: u64,
    /// Offset after the last batch (for a closed segment: the next segment's base offset).
    pub next_offset: i64,
    /// Largest batch max timestamp (-1 if empty).
    pub max_timestamp: i64,
    /// Last offset of the batch that holds `max_timestamp`.
    pub offset_of_max_timestamp: i64,
    /// Sparse offset and time indexes.
    pub index: SegmentIndex,
    /// Time of the first append, for `segment.ms` (None while empty).
    pub first_append_ms: Option<i64>,
    /// The index files on disk describe exactly this segment (fsynced).
    pub indexes_persisted: bool,
}

impl Segment {
    /// Creates an empty segment file (replacing a leftover file of the same name).
    pub fn create(dir: &Path, base_offset: i64) -> io::Result<Segment> {
        let path = segment_path(dir, base_offset, LOG_SUFFIX);
        let file = OpenOptions::new().read(true).write(true).create(true).truncate(true).open(path)?;
        Ok(Segment::from_parts(base_offset, file, 0, SegmentIndex::default(), base_offset, -1, -1))
    }

    pub fn from_parts(
        base_offset: i64,
        file: File,
        size: u64,
        index: SegmentIndex,
        next_offset: i64,
        max_timestamp: i64,
        offset_of_max_timestamp: i64,
    ) -> Segment {
        Segment {
            base_offset,
            file: Arc::new(file),
            size,
            next_offset,
            max_timestamp,
            offset_of_max_timestamp,
            index,
            first_append_ms: None,
            indexes_persisted: false,
        }
    }

    /// Opens the `.log` file of an existing segment for reading and appending.
    pub fn open_file(dir: &Path, base_offset: i64) -> io::Result<File> {
        OpenOptions::new().read(true).write(true).open(segment_path(dir, base_offset, LOG_SUFFIX))
    }

    /// Books a batch just written at `position` (header already validated, offsets assigned).
    pub fn on_append(&mut self, header: &BatchHeader, position: u64, size: usize, interval: u32, now_ms: i64) {
        if header.max_timestamp > self.max_timestamp {
            self.max_timestamp = header.max_timestamp;
            self.offset_of_max_timestamp = header.last_offset();
        }
        let rel = (header.base_offset - self.base_offset) as u32;
        self.index.on_batch(rel, position as u32, size as u64, self.max_timestamp, interval);
        self.size = position + size as u64;
        self.next_offset = header.last_offset() + 1;
        self.first_append_ms.get_or_insert(now_ms);
        self.indexes_persisted = false;
    }

    /// Relative offset of `offset` in this segment, clamped into u32.
    pub fn relative(&self, offset: i64) -> u32 {
        (offset - self.base_offset).clamp(0, i64::from(u32::MAX)) as u32
    }

    pub fn summary(&self) -> SegmentSummary {
        SegmentSummary {
            log_bytes: self.size,
            next_offset: self.next_offset,
            max_timestamp: self.max_timestamp,
            offset_of_max_timestamp: self.offset_of_max_timestamp,
        }
    }
}

/// Writes both index files of a segment atomically (tmp, fsync, rename). The caller fsyncs the
/// directory.
pub(crate) fn persist_indexes(dir: &Path, base_offset: i64, index: &SegmentIndex, summary: &SegmentSummary) -> io::Result<()> {
    write_atomically(&segment_path(dir, base_offset, INDEX_SUFFIX), &index.encode_offsets(summary))?;
    write_atomically(&segment_path(dir, base_offset, TIME_INDEX_SUFFIX), &index.encode_times(summary.log_bytes))
}

/// Writes `bytes` to `path.tmp`, fsyncs it and renames it over `path`.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = tmp_path(path);
    let mut f = File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

/// fsyncs a directory so that creations, renames and deletions in it are durable.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Reads up to `len` bytes at `pos`; fewer if the file is shorter (a concurrent truncation).
// Zero-copy would go here: instead of copying into a buffer, hand the (file, pos, len) range to
// the connection, which would `sendfile`/`splice` it into the socket.
pub(crate) fn read_at(file: &File, pos: u64, len: usize) -> io::Result<Bytes> {
    let mut buf = BytesMut::zeroed(len);
    let mut filled = 0usize;
    while filled < len {
        match file.read_at(&mut buf[filled..], pos + filled as u64) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(filled);
    Ok(buf.freeze())
}

/// Walks batch headers from `pos` (a batch boundary) to `end`, reading in large chunks. `f` gets
/// each header with its position and size and may stop the walk. Stops early at a header that does
/// not fit before `end` or has a bad length (callers only walk bytes the log validated).
pub(crate) fn walk_headers<F>(file: &File, mut pos: u64, end: u64, mut f: F) -> io::Result<()>
where
    F: FnMut(u64, &BatchHeader, usize) -> ControlFlow<()>,
{
    let mut chunk = Bytes::new();
    let mut chunk_pos = pos;
    while pos + BATCH_HEADER_BYTES as u64 <= end {
        let in_chunk = pos >= chunk_pos && pos + BATCH_HEADER_BYTES as u64 <= chunk_pos + chunk.len() as u64;
        if !in_chunk {
            let len = (end - pos).min(SCAN_CHUNK_BYTES as u64) as usize;
            chunk = read_at(file, pos, len)?;
            chunk_pos = pos;
            if chunk.len() < BATCH_HEADER_BYTES {
                return Ok(());
            }
        }
        let at = (pos - chunk_pos) as usize;
        let bytes = &chunk[at..];
        let Ok(size) = batch::batch_size(bytes) else { return Ok(()) };
        if pos + size as u64 > end {
            return Ok(());
        }
        let header = BatchHeader::parse(bytes);
        if f(pos, &header, size).is_break() {
            return Ok(());
        }
        pos += size as u64;
    }
    Ok(())
}

/// Position, header and size of the first batch at or after `start` (a batch boundary, e.g. from
/// [`SegmentIndex::floor_position`]) whose last offset is `>= offset`.
pub(crate) fn find_batch(file: &File, start: u64, size: u64, offset: i64) -> io::Result<Option<(u64, BatchHeader, usize)>> {
    let mut found = None;
    walk_headers(file, start, size, |pos, h, sz| {
        if h.last_offset() >= offset {
            found = Some((pos, *h, sz));
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    })?;
    Ok(found)
}

/// Result of scanning a segment file batch by batch with full validation.
#[derive(Debug)]
pub(crate) struct Scan {
    pub index: SegmentIndex,
    /// Bytes of valid batches from the start of the file.
    pub valid_bytes: u64,
    pub next_offset: i64,
    pub max_timestamp: i64,
    pub offset_of_max_timestamp: i64,
    /// Where and why the scan stopped before the end of the file.
    pub problem: Option<(u64, BatchProblem)>,
}

/// Reads the whole segment, checks every batch (length, magic, CRC, offsets increasing from
/// `seg_base`) and rebuilds its indexes.
pub(crate) fn scan(file: &File, seg_base: i64, interval: u32) -> io::Result<Scan> {
    let len = file.metadata()?.len();
    let mut out = Scan {
        index: SegmentIndex::default(),
        valid_bytes: 0,
        next_offset: seg_base,
        max_timestamp: -1,
        offset_of_max_timestamp: -1,
        problem: None,
    };
    let mut pending = BytesMut::new();
    let mut read_pos = 0u64;
    loop {
        // Parse every whole batch in `pending`, which starts at `out.valid_bytes`.
        let mut consumed = 0usize;
        while consumed < pending.len() {
            match batch::validate(&pending[consumed..]) {
                Ok((h, size)) => {
                    if h.base_offset < out.next_offset || h.last_offset() - seg_base > i64::from(u32::MAX) {
                        let why = format!("batch offset {} after offset {} out of order", h.base_offset, out.next_offset);
                        out.problem = Some((out.valid_bytes, BatchProblem::Invalid(why)));
                        return Ok(out);
                    }
                    if h.max_timestamp > out.max_timestamp {
                        out.max_timestamp = h.max_timestamp;
                        out.offset_of_max_timestamp = h.last_offset();
                    }
                    let rel = (h.base_offset - seg_base) as u32;
                    out.index.on_batch(rel, out.valid_bytes as u32, size as u64, out.max_timestamp, interval);
                    out.next_offset = h.last_offset() + 1;
                    out.valid_bytes += size as u64;
                    consumed += size;
                }
                Err(BatchProblem::Incomplete { .. }) if read_pos < len => break,
                Err(p) => {
                    out.problem = Some((out.valid_bytes, p));
                    return Ok(out);
                }
            }
        }
        let _ = pending.split_to(consumed);
        if read_pos >= len {
            return Ok(out);
        }
        let want = (len - read_pos).min(SCAN_CHUNK_BYTES as u64 * 8) as usize;
        let chunk = read_at(file, read_pos, want)?;
        if chunk.is_empty() {
            return Ok(out);
        }
        read_pos += chunk.len() as u64;
        pending.extend_from_slice(&chunk);
    }
}
