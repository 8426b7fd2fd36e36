//! RecordBatch v2 headers: parsing, validation (magic, lengths, CRC32C) and the offset rewrite.
//!
//! Byte positions (see Kafka's `DefaultRecordBatch`): baseOffset i64 @0, batchLength i32 @8,
//! partitionLeaderEpoch i32 @12, magic i8 @16, crc u32 @17, attributes i16 @21,
//! lastOffsetDelta i32 @23, baseTimestamp i64 @27, maxTimestamp i64 @35, producerId i64 @43,
//! producerEpoch i16 @51, baseSequence i32 @53, recordsCount i32 @57, records @61.
//! The CRC32C covers bytes 21..end, so baseOffset and partitionLeaderEpoch can be rewritten.

use super::format::{BATCH_HEADER_BYTES, BATCH_LOG_OVERHEAD};
use super::BatchHeader;

const MAGIC_V2: i8 = 2;
const CRC_START: usize = 21;

fn be_i64(b: &[u8], at: usize) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    i64::from_be_bytes(a)
}
fn be_i32(b: &[u8], at: usize) -> i32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    i32::from_be_bytes(a)
}
fn be_u32(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_be_bytes(a)
}
fn be_i16(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([b[at], b[at + 1]])
}

impl BatchHeader {
    /// Parses the first [`BATCH_HEADER_BYTES`] of `b` (the caller checked the length).
    pub(crate) fn parse(b: &[u8]) -> BatchHeader {
        debug_assert!(b.len() >= BATCH_HEADER_BYTES);
        BatchHeader {
            base_offset: be_i64(b, 0),
            last_offset_delta: be_i32(b, 23),
            partition_leader_epoch: be_i32(b, 12),
            attributes: be_i16(b, 21),
            base_timestamp: be_i64(b, 27),
            max_timestamp: be_i64(b, 35),
            producer_id: be_i64(b, 43),
            producer_epoch: be_i16(b, 51),
            base_sequence: be_i32(b, 53),
            records_count: be_i32(b, 57),
        }
    }

    /// Offset of the last record of the batch (kept across compaction).
    pub fn last_offset(&self) -> i64 {
        self.base_offset + i64::from(self.last_offset_delta)
    }

    /// Compression codec id (attribute bits 0-2).
    pub fn compression(&self) -> i16 {
        self.attributes & 0x7
    }

    /// A transaction marker (attribute bit 5).
    pub fn is_control(&self) -> bool {
        self.attributes & (1 << 5) != 0
    }

    /// Part of a transaction (attribute bit 4).
    pub fn is_transactional(&self) -> bool {
        self.attributes & (1 << 4) != 0
    }

    /// Timestamps are LogAppendTime (attribute bit 3).
    pub fn is_log_append_time(&self) -> bool {
        self.attributes & (1 << 3) != 0
    }
}

/// Why bytes are not a valid batch; `Incomplete` at the end of a file is a torn write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum BatchProblem {
    /// Fewer bytes than the header or than `batchLength` says.
    Incomplete { needed: usize, available: usize },
    /// The bytes are there but wrong.
    Invalid(String),
}

impl std::fmt::Display for BatchProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BatchProblem::Incomplete { needed, available } => {
                write!(f, "incomplete batch: {needed} bytes needed, {available} available")
            }
            BatchProblem::Invalid(reason) => f.write_str(reason),
        }
    }
}

/// Total size of the batch at the start of `b` from its header (`batchLength + 12`), checking only
/// that the length field is sane. Needs at least 12 bytes.
pub(crate) fn batch_size(b: &[u8]) -> Result<usize, BatchProblem> {
    if b.len() < BATCH_LOG_OVERHEAD {
        return Err(BatchProblem::Incomplete { needed: BATCH_LOG_OVERHEAD, available: b.len() });
    }
    let length = be_i32(b, 8);
    let min = (BATCH_HEADER_BYTES - BATCH_LOG_OVERHEAD) as i32;
    if length < min {
        return Err(BatchProblem::Invalid(format!("batchLength {length} below the minimum {min}")));
    }
    Ok(length as usize + BATCH_LOG_OVERHEAD)
}

/// Validates the whole batch at the start of `b`: length, magic, CRC32C, offset delta and count.
/// Returns its header and total size.
pub(crate) fn validate(b: &[u8]) -> Result<(BatchHeader, usize), BatchProblem> {
    let size = batch_size(b)?;
    if b.len() < size {
        return Err(BatchProblem::Incomplete { needed: size, available: b.len() });
    }
    let magic = b[16] as i8;
    if magic != MAGIC_V2 {
        return Err(BatchProblem::Invalid(format!("magic {magic}, only 2 is supported")));
    }
    let stored = be_u32(b, 17);
    let computed = crc32c::crc32c(&b[CRC_START..size]);
    if stored != computed {
        return Err(BatchProblem::Invalid(format!("CRC32C mismatch: stored {stored:#010x}, computed {computed:#010x}")));
    }
    let header = BatchHeader::parse(b);
    if header.last_offset_delta < 0 {
        return Err(BatchProblem::Invalid(format!("negative lastOffsetDelta {}", header.last_offset_delta)));
    }
    if header.records_count < 0 || header.records_count > header.last_offset_delta.saturating_add(1) {
        return Err(BatchProblem::Invalid(format!(
            "recordsCount {} does not fit lastOffsetDelta {}",
            header.records_count, header.last_offset_delta
        )));
    }
    Ok((header, size))
}

/// The bytes [`rewrite_offset_and_epoch`] may change: baseOffset, batchLength, partitionLeaderEpoch.
pub(crate) const REWRITTEN_PREFIX_BYTES: usize = 16;
const _: () = assert!(REWRITTEN_PREFIX_BYTES <= CRC_START && REWRITTEN_PREFIX_BYTES <= BATCH_HEADER_BYTES);

/// Rewrites baseOffset and partitionLeaderEpoch of the batch at the start of `b` (not covered by
/// the CRC); `b` holds at least [`REWRITTEN_PREFIX_BYTES`].
pub(crate) fn rewrite_offset_and_epoch(b: &mut [u8], base_offset: i64, leader_epoch: i32) {
    b[0..8].copy_from_slice(&base_offset.to_be_bytes());
    b[12..16].copy_from_slice(&leader_epoch.to_be_bytes());
}

/// Recomputes and stores the CRC32C of a batch built or modified by the log itself.
pub(crate) fn seal_crc(b: &mut [u8]) {
    let crc = crc32c::crc32c(&b[CRC_START..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
}

/// Iterates over the whole batches at the start of `b`, stopping before the first incomplete one.
/// Checks lengths only (no CRC): used on bytes the log itself wrote and already validated.
pub(crate) fn whole_batches(b: &[u8]) -> impl Iterator<Item = (BatchHeader, usize, usize)> + '_ {
    let mut pos = 0usize;
    std::iter::from_fn(move || {
        let rest = &b[pos..];
        if rest.len() < BATCH_HEADER_BYTES {
            return None;
        }
        let size = batch_size(rest).ok()?;
        if rest.len() < size {
            return None;
        }
        let start = pos;
        pos += size;
        Some((BatchHeader::parse(rest), start, size))
    })
}
