//! The on-disk layout of one partition directory. All integers are big-endian (as in Kafka).
//!
//! ```text
//! <partition-dir>/
//!   00000000000000000000.log        segment: RecordBatch v2 batches, back to back
//!   00000000000000000000.index      sparse offset index of that segment
//!   00000000000000000000.timeindex  sparse time index of that segment
//!   00000000000000004711.log        next segment, named by its base offset (20 digits)
//!   ...
//!   recovery.checkpoint             recovery point, log start offset, clean-shutdown flag
//! ```
//!
//! # Segment file (`<base>.log`)
//! Batches exactly as the producer sent them, except `baseOffset` (bytes 0..8) and
//! `partitionLeaderEpoch` (bytes 12..16), which the log assigns; the CRC32C (bytes 17..21) covers
//! bytes 21..end only, so it stays valid. Batches are contiguous; offsets increase strictly from one
//! batch to the next. After compaction a segment may have gaps in its offsets (records keep their
//! offsets) and batches may have fewer records than `lastOffsetDelta + 1`.
//!
//! # Offset index (`<base>.index`)
//! ```text
//! header (48 bytes)
//!   0  u32  magic "SLOI"
//!   4  u16  version (1)
//!   6  u16  reserved (0)
//!   8  u64  log_bytes: length of the .log file this index describes
//!  16  i64  next_offset: offset after the segment's last batch
//!  24  i64  max_timestamp of the segment (-1 if empty)
//!  32  i64  last offset of the batch holding max_timestamp (-1 if empty)
//!  40  u32  entry count
//!  44  u32  CRC32C of bytes 0..44 and of all entries
//! entries (8 bytes each), ascending
//!   u32 base offset of a batch minus the segment base offset
//!   u32 byte position of that batch in the .log file
//! ```
//!
//! # Time index (`<base>.timeindex`)
//! ```text
//! header (24 bytes)
//!   0  u32  magic "SLTI"
//!   4  u16  version (1)
//!   6  u16  reserved (0)
//!   8  u64  log_bytes (as above)
//!  16  u32  entry count
//!  20  u32  CRC32C of bytes 0..20 and of all entries
//! entries (12 bytes each), timestamps strictly ascending
//!   i64 largest batch max timestamp in the segment up to and including the batch below
//!   u32 base offset of that batch minus the segment base offset (it also has an offset index entry)
//! ```
//! An entry is added for a batch when at least `index_interval_bytes` of batches were appended
//! since the previous entry. Indexes of the active segment live in memory and are written (whole,
//! to a `.tmp` file that is fsynced and renamed) when the segment is closed by a roll, by a
//! compaction swap, or by [`super::PartitionLog::close`]. An index is trusted only if its CRC
//! matches and its `log_bytes` equals the `.log` file's length; otherwise it is rebuilt from the
//! segment.
//!
//! # Recovery checkpoint (`recovery.checkpoint`)
//! ```text
//!   0  u32  magic "SLRC"
//!   4  u16  version (1)
//!   6  u8   clean shutdown (1) or not (0)
//!   7  u8   reserved (0)
//!   8  i64  recovery point: every segment that ends at or below it is fsynced with its indexes
//!  16  i64  log start offset
//!  24  i64  log end offset (meaningful when clean)
//!  32  u32  CRC32C of bytes 0..32
//! ```
//! Written to `recovery.checkpoint.tmp`, fsynced, renamed over the old one, directory fsynced.
//!
//! # Temporary files
//! `*.tmp` (an index or checkpoint being written) and `<base>.log.cleaned` (a compacted segment
//! being written) are deleted on open. `<base>.log.swap` is a fully written, fsynced compacted
//! segment: open completes its swap (drops the old indexes, renames it over `<base>.log`).

use std::path::{Path, PathBuf};

/// Suffix of segment files.
pub(crate) const LOG_SUFFIX: &str = "log";
/// Suffix of offset index files.
pub(crate) const INDEX_SUFFIX: &str = "index";
/// Suffix of time index files.
pub(crate) const TIME_INDEX_SUFFIX: &str = "timeindex";
/// Suffix (after `.log`) of a compacted segment being written.
pub(crate) const CLEANED_SUFFIX: &str = "log.cleaned";
/// Suffix (after `.log`) of a compacted segment ready to replace the original.
pub(crate) const SWAP_SUFFIX: &str = "log.swap";
/// Suffix of any file being written before an atomic rename.
pub(crate) const TMP_SUFFIX: &str = "tmp";
/// Name of the recovery checkpoint file.
pub(crate) const CHECKPOINT_FILE: &str = "recovery.checkpoint";

/// Size of a RecordBatch v2 header up to and including `recordsCount`.
pub(crate) const BATCH_HEADER_BYTES: usize = 61;
/// Bytes before `batchLength` counts: baseOffset (8) + batchLength (4).
pub(crate) const BATCH_LOG_OVERHEAD: usize = 12;

pub(crate) const OFFSET_INDEX_MAGIC: u32 = u32::from_be_bytes(*b"SLOI");
pub(crate) const TIME_INDEX_MAGIC: u32 = u32::from_be_bytes(*b"SLTI");
pub(crate) const CHECKPOINT_MAGIC: u32 = u32::from_be_bytes(*b"SLRC");
pub(crate) const FORMAT_VERSION: u16 = 1;
pub(crate) const OFFSET_INDEX_HEADER_BYTES: usize = 48;
pub(crate) const OFFSET_INDEX_ENTRY_BYTES: usize = 8;
pub(crate) const TIME_INDEX_HEADER_BYTES: usize = 24;
pub(crate) const TIME_INDEX_ENTRY_BYTES: usize = 12;
pub(crate) const CHECKPOINT_BYTES: usize = 36;

/// Segment positions and relative offsets are stored as u32: a segment never grows past this.
pub(crate) const SEGMENT_BYTES_MAX: u64 = u32::MAX as u64;

const _: () = assert!(BATCH_HEADER_BYTES == 61);
const _: () = assert!(OFFSET_INDEX_HEADER_BYTES == 44 + 4);
const _: () = assert!(TIME_INDEX_HEADER_BYTES == 20 + 4);
const _: () = assert!(CHECKPOINT_BYTES == 32 + 4);

/// `<dir>/<20-digit base offset>.<suffix>`.
pub(crate) fn segment_path(dir: &Path, base_offset: i64, suffix: &str) -> PathBuf {
    dir.join(format!("{base_offset:020}.{suffix}"))
}

/// `path` with `.tmp` appended.
pub(crate) fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".");
    name.push(TMP_SUFFIX);
    PathBuf::from(name)
}

/// Parses `<20 digits>.<suffix>` into the base offset, if `name` has that form.
pub(crate) fn parse_segment_name(name: &str, suffix: &str) -> Option<i64> {
    let stem = name.strip_suffix(suffix)?.strip_suffix('.')?;
    if stem.len() != 20 || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    stem.parse().ok()
}
