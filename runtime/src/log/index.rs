//! Sparse offset and time indexes of one segment, kept in memory and persisted whole.
//!
//! Why in memory rather than mmapped pre-allocated files (Kafka's way): no `unsafe`, no resizing
//! on roll, and an index file is written once, atomically, when its segment stops changing. The
//! cost is memory: 20 bytes per `index_interval_bytes` of log (5 MB per GiB at the default 4 KiB).

use super::format::{
    FORMAT_VERSION, OFFSET_INDEX_ENTRY_BYTES, OFFSET_INDEX_HEADER_BYTES, OFFSET_INDEX_MAGIC, TIME_INDEX_ENTRY_BYTES,
    TIME_INDEX_HEADER_BYTES, TIME_INDEX_MAGIC,
};

/// What an offset index file also records about its segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SegmentSummary {
    /// Length of the `.log` file the index describes.
    pub log_bytes: u64,
    /// Offset after the segment's last batch.
    pub next_offset: i64,
    /// Largest batch max timestamp (-1 if empty).
    pub max_timestamp: i64,
    /// Last offset of the batch holding `max_timestamp` (-1 if empty).
    pub offset_of_max_timestamp: i64,
}

/// Both indexes of a segment. Entries are added together, for the same batches.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct SegmentIndex {
    /// (base offset - segment base, byte position), ascending in both.
    pub offsets: Vec<(u32, u32)>,
    /// (running max timestamp, base offset - segment base), strictly ascending timestamps.
    pub times: Vec<(i64, u32)>,
    /// Bytes of batches appended since the last entry.
    pub bytes_since_entry: u64,
}

impl SegmentIndex {
    /// Records a batch at `position` (before appending its `size` bytes). `running_max_ts` is the
    /// segment's max timestamp including this batch.
    pub fn on_batch(&mut self, rel_offset: u32, position: u32, size: u64, running_max_ts: i64, interval: u32) {
        if self.bytes_since_entry >= u64::from(interval) {
            self.offsets.push((rel_offset, position));
            if self.times.last().is_none_or(|&(ts, _)| running_max_ts > ts) {
                self.times.push((running_max_ts, rel_offset));
            }
            self.bytes_since_entry = 0;
        }
        self.bytes_since_entry += size;
    }

    /// Position of the last indexed batch whose base offset is `<= rel_offset` (0 if none): a batch
    /// boundary at or before the batch holding `rel_offset`.
    pub fn floor_position(&self, rel_offset: u32) -> u32 {
        let n = self.offsets.partition_point(|&(rel, _)| rel <= rel_offset);
        if n == 0 {
            0
        } else {
            self.offsets[n - 1].1
        }
    }

    /// A batch boundary from which a scan finds the first batch with max timestamp `>= ts`: every
    /// batch before it has a smaller max timestamp.
    pub fn time_floor_position(&self, ts: i64) -> u32 {
        let n = self.times.partition_point(|&(t, _)| t < ts);
        if n == 0 {
            return 0;
        }
        let rel = self.times[n - 1].1;
        // Every time entry has an offset entry for the same batch.
        self.floor_position(rel)
    }

    /// Drops entries at or after `position` (the segment was truncated there).
    pub fn truncate_to_position(&mut self, position: u32) {
        let keep = self.offsets.partition_point(|&(_, pos)| pos < position);
        self.offsets.truncate(keep);
        let last_rel = self.offsets.last().map(|&(rel, _)| rel);
        self.times.retain(|&(_, rel)| last_rel.is_some_and(|last| rel <= last));
        self.bytes_since_entry = 0;
    }

    /// Serialises the offset index file.
    pub fn encode_offsets(&self, summary: &SegmentSummary) -> Vec<u8> {
        let mut b = Vec::with_capacity(OFFSET_INDEX_HEADER_BYTES + self.offsets.len() * OFFSET_INDEX_ENTRY_BYTES);
        b.extend_from_slice(&OFFSET_INDEX_MAGIC.to_be_bytes());
        b.extend_from_slice(&FORMAT_VERSION.to_be_bytes());
        b.extend_from_slice(&0u16.to_be_bytes());
        b.extend_from_slice(&summary.log_bytes.to_be_bytes());
        b.extend_from_slice(&summary.next_offset.to_be_bytes());
        b.extend_from_slice(&summary.max_timestamp.to_be_bytes());
        b.extend_from_slice(&summary.offset_of_max_timestamp.to_be_bytes());
        b.extend_from_slice(&(self.offsets.len() as u32).to_be_bytes());
        b.extend_from_slice(&[0u8; 4]);
        for &(rel, pos) in &self.offsets {
            b.extend_from_slice(&rel.to_be_bytes());
            b.extend_from_slice(&pos.to_be_bytes());
        }
        seal(&mut b, 44);
        b
    }

    /// Serialises the time index file.
    pub fn encode_times(&self, log_bytes: u64) -> Vec<u8> {
        let mut b = Vec::with_capacity(TIME_INDEX_HEADER_BYTES + self.times.len() * TIME_INDEX_ENTRY_BYTES);
        b.extend_from_slice(&TIME_INDEX_MAGIC.to_be_bytes());
        b.extend_from_slice(&FORMAT_VERSION.to_be_bytes());
        b.extend_from_slice(&0u16.to_be_bytes());
        b.extend_from_slice(&log_bytes.to_be_bytes());
        b.extend_from_slice(&(self.times.len() as u32).to_be_bytes());
        b.extend_from_slice(&[0u8; 4]);
        for &(ts, rel) in &self.times {
            b.extend_from_slice(&ts.to_be_bytes());
            b.extend_from_slice(&rel.to_be_bytes());
        }
        seal(&mut b, 20);
        b
    }

    /// The `log_bytes` an offset index file claims to describe (its header only; [`Self::decode`]
    /// checks the rest).
    pub fn offset_file_log_bytes(offsets: &[u8]) -> Result<u64, String> {
        if offsets.len() < OFFSET_INDEX_HEADER_BYTES {
            return Err(format!("index file of {} bytes is shorter than its header", offsets.len()));
        }
        Ok(u64_at(offsets, 8))
    }

    /// Parses both index files and checks them against the `.log` length. An error means "rebuild
    /// from the segment"; it carries the reason for the log line.
    pub fn decode(offsets: &[u8], times: &[u8], log_bytes: u64) -> Result<(Self, SegmentSummary), String> {
        check_header(offsets, OFFSET_INDEX_MAGIC, 40, OFFSET_INDEX_HEADER_BYTES, OFFSET_INDEX_ENTRY_BYTES)?;
        check_header(times, TIME_INDEX_MAGIC, 16, TIME_INDEX_HEADER_BYTES, TIME_INDEX_ENTRY_BYTES)?;
        let summary = SegmentSummary {
            log_bytes: u64_at(offsets, 8),
            next_offset: u64_at(offsets, 16) as i64,
            max_timestamp: u64_at(offsets, 24) as i64,
            offset_of_max_timestamp: u64_at(offsets, 32) as i64,
        };
        if summary.log_bytes != log_bytes || u64_at(times, 8) != log_bytes {
            return Err(format!("index describes {} log bytes, the file has {log_bytes}", summary.log_bytes));
        }
        let offsets_vec: Vec<(u32, u32)> =
            offsets[OFFSET_INDEX_HEADER_BYTES..].chunks_exact(OFFSET_INDEX_ENTRY_BYTES).map(|e| (u32_at(e, 0), u32_at(e, 4))).collect();
        let times_vec: Vec<(i64, u32)> =
            times[TIME_INDEX_HEADER_BYTES..].chunks_exact(TIME_INDEX_ENTRY_BYTES).map(|e| (u64_at(e, 0) as i64, u32_at(e, 8))).collect();
        let ascending = offsets_vec.windows(2).all(|w| w[0].0 < w[1].0 && w[0].1 < w[1].1);
        let times_ok = times_vec.windows(2).all(|w| w[0].0 < w[1].0 && w[0].1 < w[1].1);
        let in_file = offsets_vec.last().is_none_or(|&(_, pos)| u64::from(pos) < log_bytes);
        if !ascending || !times_ok || !in_file {
            return Err("index entries out of order or past the end of the segment".into());
        }
        let index = SegmentIndex { offsets: offsets_vec, times: times_vec, bytes_since_entry: 0 };
        Ok((index, summary))
    }
}

/// Writes the CRC32C of everything but the 4 CRC bytes at `crc_at`.
fn seal(b: &mut [u8], crc_at: usize) {
    let mut crc = crc32c::crc32c(&b[..crc_at]);
    crc = crc32c::crc32c_append(crc, &b[crc_at + 4..]);
    b[crc_at..crc_at + 4].copy_from_slice(&crc.to_be_bytes());
}

/// Checks magic, version, length and CRC.
fn check_header(b: &[u8], magic: u32, count_at: usize, header: usize, entry: usize) -> Result<(), String> {
    if b.len() < header {
        return Err(format!("index file of {} bytes is shorter than its header", b.len()));
    }
    if u32_at(b, 0) != magic || u16::from_be_bytes([b[4], b[5]]) != FORMAT_VERSION {
        return Err("bad index magic or version".into());
    }
    let count = u32_at(b, count_at) as usize;
    if b.len() != header + count * entry {
        return Err(format!("index file has {} bytes, {count} entries need {}", b.len(), header + count * entry));
    }
    let crc_at = count_at + 4;
    let stored = u32_at(b, crc_at);
    let computed = crc32c::crc32c_append(crc32c::crc32c(&b[..crc_at]), &b[crc_at + 4..]);
    if stored != computed {
        return Err("index CRC mismatch".into());
    }
    Ok(())
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_be_bytes(a)
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_be_bytes(a)
}
