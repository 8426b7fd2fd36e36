//! Reads: whole batches by offset, batch headers, timestamp search. Reads take the state lock
//! only to look up a segment and a start position, then `pread` without any lock, so they never
//! wait for an fsync and run alongside appends.

use std::fs::File;
use std::ops::ControlFlow;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;

use super::batch;
use super::format::{segment_path, LOG_SUFFIX};
use super::segment::{self, read_at};
use super::{BatchHeader, LogError, PartitionLog, ReadResult};

/// How often a read retries after racing with a truncation before giving up.
const READ_RETRIES_MAX: usize = 8;

/// A segment to look at, captured under the state lock.
struct Located {
    file: Arc<File>,
    base_offset: i64,
    start: u64,
    size: u64,
}

impl PartitionLog {
    pub(super) fn read_batches(&self, offset: i64, max_bytes: usize, upper_bound: i64) -> Result<ReadResult, LogError> {
        for _ in 0..READ_RETRIES_MAX {
            let generation = self.generation.load(Ordering::Acquire);
            let result = self.read_once(offset, max_bytes, upper_bound)?;
            if self.generation.load(Ordering::Acquire) == generation {
                return Ok(result);
            }
        }
        Err(LogError::io("read", self.dir.clone(), std::io::Error::other("log kept changing under the read")))
    }

    fn read_once(&self, offset: i64, max_bytes: usize, upper_bound: i64) -> Result<ReadResult, LogError> {
        let (lso, leo) = {
            let s = self.state.read();
            (s.log_start_offset, s.log_end_offset())
        };
        let hw = self.high_watermark();
        let mut result = ReadResult { records: Bytes::new(), log_start_offset: lso, log_end_offset: leo, high_watermark: hw };
        if offset < lso || offset > leo {
            return Err(LogError::OffsetOutOfRange { offset, log_start_offset: lso, log_end_offset: leo });
        }
        let mut at = offset;
        while let Some(loc) = self.locate(at) {
            let path = || segment_path(&self.dir, loc.base_offset, LOG_SUFFIX);
            let found = segment::find_batch(&loc.file, loc.start, loc.size, offset).map_err(|e| LogError::io("read", path(), e))?;
            let Some((pos, header, first_size)) = found else {
                // Nothing at or after `offset` here (compaction removed it): try the next segment.
                at = self.next_segment_base(loc.base_offset).unwrap_or(i64::MAX);
                continue;
            };
            if header.last_offset() >= upper_bound {
                return Ok(result);
            }
            let want = first_size.max(max_bytes.min((loc.size - pos) as usize));
            let bytes = read_at(&loc.file, pos, want).map_err(|e| LogError::io("read", path(), e))?;
            let mut end = 0usize;
            for (h, start, size) in batch::whole_batches(&bytes) {
                let fits = start == 0 || start + size <= max_bytes;
                if !fits || h.last_offset() >= upper_bound {
                    break;
                }
                end = start + size;
            }
            result.records = bytes.slice(..end);
            return Ok(result);
        }
        Ok(result)
    }

    /// The segment that would hold `offset`, with the indexed start position for it; `None` past
    /// the last segment.
    fn locate(&self, offset: i64) -> Option<Located> {
        let s = self.state.read();
        if offset >= s.log_end_offset() {
            return None;
        }
        let seg = &s.segments[s.segment_for(offset)];
        Some(Located {
            file: Arc::clone(&seg.file),
            base_offset: seg.base_offset,
            start: u64::from(seg.index.floor_position(seg.relative(offset))),
            size: seg.size,
        })
    }

    fn next_segment_base(&self, base_offset: i64) -> Option<i64> {
        let s = self.state.read();
        s.segments.iter().map(|seg| seg.base_offset).find(|&b| b > base_offset)
    }

    pub(super) fn headers_between(&self, from: i64, to: i64) -> Result<Vec<BatchHeader>, LogError> {
        let segments: Vec<Located> = {
            let s = self.state.read();
            let first = s.segment_for(from);
            s.segments[first..]
                .iter()
                .take_while(|seg| seg.base_offset < to)
                .map(|seg| Located {
                    file: Arc::clone(&seg.file),
                    base_offset: seg.base_offset,
                    start: u64::from(seg.index.floor_position(seg.relative(from))),
                    size: seg.size,
                })
                .collect()
        };
        let mut out = Vec::new();
        for loc in segments {
            segment::walk_headers(&loc.file, loc.start, loc.size, |_, h, _| {
                if h.base_offset >= to {
                    return ControlFlow::Break(());
                }
                if h.last_offset() >= from {
                    out.push(*h);
                }
                ControlFlow::Continue(())
            })
            .map_err(|e| LogError::io("read", segment_path(&self.dir, loc.base_offset, LOG_SUFFIX), e))?;
        }
        Ok(out)
    }

    pub(super) fn search_timestamp(&self, ts: i64) -> Result<Option<(i64, i64)>, LogError> {
        let (lso, candidates) = {
            let s = self.state.read();
            let c: Vec<Located> = s
                .segments
                .iter()
                .filter(|seg| seg.size > 0 && seg.max_timestamp >= ts)
                .map(|seg| Located {
                    file: Arc::clone(&seg.file),
                    base_offset: seg.base_offset,
                    start: u64::from(seg.index.time_floor_position(ts)),
                    size: seg.size,
                })
                .collect();
            (s.log_start_offset, c)
        };
        for loc in candidates {
            let mut found = None;
            segment::walk_headers(&loc.file, loc.start, loc.size, |_, h, _| {
                if h.max_timestamp >= ts && h.last_offset() >= lso {
                    found = Some((h.base_offset.max(lso), h.max_timestamp));
                    return ControlFlow::Break(());
                }
                ControlFlow::Continue(())
            })
            .map_err(|e| LogError::io("read", segment_path(&self.dir, loc.base_offset, LOG_SUFFIX), e))?;
            if found.is_some() {
                return Ok(found);
            }
        }
        Ok(None)
    }
}
