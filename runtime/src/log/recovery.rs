//! Opening a partition directory: finishing interrupted compaction swaps, trusting what the
//! recovery checkpoint vouches for, and scanning (CRC-checking) everything after it.

use std::fs::File;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64};

use parking_lot::{Mutex, RwLock};

use super::batch;
use super::checkpoint::Checkpoint;
use super::format::{
    parse_segment_name, segment_path, CLEANED_SUFFIX, INDEX_SUFFIX, LOG_SUFFIX, SWAP_SUFFIX, TIME_INDEX_SUFFIX, TMP_SUFFIX,
};
use super::index::SegmentIndex;
use super::segment::{read_at, scan, sync_dir, Segment};
use super::writer::remove_if_exists;
use super::{LogConfig, LogError, LogStats, PartitionLog, State, WriterState};

pub(super) fn open(dir: &Path, config: LogConfig, now_ms: i64) -> Result<PartitionLog, LogError> {
    std::fs::create_dir_all(dir).map_err(|e| LogError::io("create directory", dir, e))?;
    let mut dir_changed = finish_interrupted_work(dir)?;
    let checkpoint = match Checkpoint::read(dir).map_err(|e| LogError::io("read checkpoint", dir, e))? {
        Ok(cp) => cp,
        Err(reason) => {
            tracing::warn!(dir = %dir.display(), %reason, "recovery checkpoint damaged: scanning every segment");
            None
        }
    };
    let bases = list_segments(dir)?;
    let mut stats = LogStats::default();
    let (mut segments, changed) = load_segments(dir, &bases, checkpoint.as_ref(), &config, &mut stats)?;
    dir_changed |= changed;
    let mut log_start_offset = checkpoint.map_or(0, |c| c.log_start_offset);
    if segments.is_empty() {
        let base = log_start_offset.max(0);
        segments.push(Segment::create(dir, base).map_err(|e| LogError::io("create segment", segment_path(dir, base, LOG_SUFFIX), e))?);
        dir_changed = true;
    }
    dir_changed |= drop_segments_below(dir, &mut segments, log_start_offset);
    log_start_offset = log_start_offset.max(segments[0].base_offset);
    if dir_changed {
        sync_dir(dir).map_err(|e| LogError::io("fsync directory", dir, e))?;
    }
    let clean = checkpoint.is_some_and(|c| c.clean);
    if let Some(active) = segments.last_mut() {
        if active.size > 0 {
            active.first_append_ms = Some(now_ms);
        }
    }
    let leo = segments.last().map_or(0, |s| s.next_offset);
    let recovery_point = match checkpoint {
        Some(c) if c.clean => leo,
        Some(c) => c.recovery_point.min(leo),
        None => segments[0].base_offset,
    };
    tracing::debug!(dir = %dir.display(), clean, leo, segments = segments.len(), scanned = stats.segments_scanned_at_open, "opened partition log");
    Ok(PartitionLog {
        dir: dir.to_path_buf(),
        config: RwLock::new(config),
        writer: Mutex::new(WriterState { clean_on_disk: clean }),
        flush: Mutex::new(()),
        maintenance: Mutex::new(Default::default()),
        state: RwLock::new(State { segments, log_start_offset, recovery_point }),
        durable: AtomicI64::new(leo),
        high_watermark: AtomicI64::new(leo),
        dir_dirty: AtomicBool::new(false),
        device: std::os::unix::fs::MetadataExt::dev(&std::fs::metadata(dir).map_err(|e| LogError::io("stat", dir.to_path_buf(), e))?),
        poison: Mutex::new(None),
        generation: AtomicU64::new(0),
        last_flush_ms: AtomicI64::new(now_ms),
        stats: Mutex::new(stats),
        #[cfg(test)]
        faults: Default::default(),
    })
}

/// Deletes `*.tmp` and `*.log.cleaned` files (work that never reached its commit point) and
/// completes `*.log.swap` files (a compacted segment that did): its old indexes are dropped, it is
/// renamed over the `.log`, and its indexes are rebuilt by the scan. Returns whether anything
/// changed.
fn finish_interrupted_work(dir: &Path) -> Result<bool, LogError> {
    let mut changed = false;
    for entry in std::fs::read_dir(dir).map_err(|e| LogError::io("list directory", dir, e))? {
        let entry = entry.map_err(|e| LogError::io("list directory", dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(&format!(".{TMP_SUFFIX}")) || name.ends_with(&format!(".{CLEANED_SUFFIX}")) {
            tracing::info!(file = %entry.path().display(), "deleting leftover temporary file");
            remove_if_exists(&entry.path());
            changed = true;
        } else if let Some(base) = parse_segment_name(&name, SWAP_SUFFIX) {
            tracing::warn!(file = %entry.path().display(), "completing an interrupted compaction swap");
            remove_if_exists(&segment_path(dir, base, INDEX_SUFFIX));
            remove_if_exists(&segment_path(dir, base, TIME_INDEX_SUFFIX));
            std::fs::rename(entry.path(), segment_path(dir, base, LOG_SUFFIX)).map_err(|e| LogError::io("rename", entry.path(), e))?;
            changed = true;
        }
    }
    Ok(changed)
}

/// Base offsets of all `.log` files, ascending.
fn list_segments(dir: &Path) -> Result<Vec<i64>, LogError> {
    let mut bases = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| LogError::io("list directory", dir, e))? {
        let entry = entry.map_err(|e| LogError::io("list directory", dir, e))?;
        if let Some(base) = parse_segment_name(&entry.file_name().to_string_lossy(), LOG_SUFFIX) {
            bases.push(base);
        }
    }
    bases.sort_unstable();
    Ok(bases)
}

/// Opens every segment: trusted (indexes loaded, nothing read) if the checkpoint vouches for it
/// and its indexes pass their checks, scanned otherwise. A scan that finds a torn or corrupt batch
/// cuts the segment there and deletes every later segment.
fn load_segments(
    dir: &Path,
    bases: &[i64],
    cp: Option<&Checkpoint>,
    config: &LogConfig,
    stats: &mut LogStats,
) -> Result<(Vec<Segment>, bool), LogError> {
    let mut segments: Vec<Segment> = Vec::with_capacity(bases.len());
    let mut changed = false;
    for (i, &base) in bases.iter().enumerate() {
        let path = segment_path(dir, base, LOG_SUFFIX);
        let file = Segment::open_file(dir, base).map_err(|e| LogError::io("open segment", &path, e))?;
        let len = file.metadata().map_err(|e| LogError::io("stat segment", &path, e))?.len();
        let next_base = bases.get(i + 1).copied();
        let trusted = try_trust(dir, base, &file, len, next_base, cp);
        // The last segment's tail is re-checked even after a clean stop: it is the part a torn
        // write or a stray edit while the broker was down would have hit.
        let trusted = match trusted {
            Some(t) if next_base.is_none() && !tail_is_intact(&file, &t.0, len).map_err(|e| LogError::io("read segment", &path, e))? => {
                tracing::warn!(segment = %path.display(), "last segment's tail fails its checks: scanning the segment");
                None
            }
            other => other,
        };
        if let Some(seg) = trusted {
            segments.push(Segment {
                indexes_persisted: true,
                ..Segment::from_parts(base, file, len, seg.0, seg.1.next_offset, seg.1.max_timestamp, seg.1.offset_of_max_timestamp)
            });
            continue;
        }
        let (segment, corrupt) = scan_segment(dir, base, file, len, next_base, config, stats)?;
        segments.push(segment);
        if corrupt {
            for &later in &bases[i + 1..] {
                let len = std::fs::metadata(segment_path(dir, later, LOG_SUFFIX)).map_or(0, |m| m.len());
                tracing::error!(dir = %dir.display(), segment = later, bytes = len, "deleting segment after a corrupt one");
                stats.bytes_truncated_at_open += len;
                for suffix in [LOG_SUFFIX, INDEX_SUFFIX, TIME_INDEX_SUFFIX] {
                    remove_if_exists(&segment_path(dir, later, suffix));
                }
            }
            changed = true;
            break;
        }
    }
    Ok((segments, changed))
}

/// Loads a segment's indexes if the checkpoint says the segment is complete and durable and the
/// indexes pass their checks (CRC, length of the `.log`, offsets within the segment).
fn try_trust(
    dir: &Path,
    base: i64,
    _file: &File,
    len: u64,
    next_base: Option<i64>,
    cp: Option<&Checkpoint>,
) -> Option<(SegmentIndex, super::index::SegmentSummary)> {
    let cp = cp?;
    let offsets = std::fs::read(segment_path(dir, base, INDEX_SUFFIX)).ok();
    let times = std::fs::read(segment_path(dir, base, TIME_INDEX_SUFFIX)).ok();
    let (Some(offsets), Some(times)) = (offsets, times) else {
        if cp.clean || next_base.is_some_and(|n| n <= cp.recovery_point) {
            tracing::warn!(dir = %dir.display(), segment = base, "index missing: rebuilding from the segment");
        }
        return None;
    };
    let decoded = SegmentIndex::decode(&offsets, &times, len);
    let (index, summary) = match decoded {
        Ok(d) => d,
        Err(reason) => {
            tracing::warn!(dir = %dir.display(), segment = base, %reason, "index damaged: rebuilding from the segment");
            return None;
        }
    };
    let vouched = cp.clean || summary.next_offset <= cp.recovery_point;
    let sane = summary.next_offset >= base
        && next_base.is_none_or(|n| summary.next_offset <= n)
        && (len > 0 || summary.next_offset == base || next_base.is_some());
    if !sane {
        tracing::warn!(dir = %dir.display(), segment = base, "index summary inconsistent: rebuilding from the segment");
    }
    (vouched && sane).then_some((index, summary))
}

/// CRC-checks the batches after the segment's last sparse index entry: at most one index interval
/// plus one batch, so a clean start stays cheap however large the active segment is.
fn tail_is_intact(file: &File, index: &SegmentIndex, len: u64) -> std::io::Result<bool> {
    let from = index.offsets.last().map_or(0, |&(_, pos)| u64::from(pos));
    if from > len {
        return Ok(false);
    }
    let tail = read_at(file, from, (len - from) as usize)?;
    let mut at = 0usize;
    while at < tail.len() {
        match batch::validate(&tail[at..]) {
            Ok((_, size)) => at += size,
            Err(_) => return Ok(false),
        }
    }
    Ok(true)
}

/// Reads and checks a segment batch by batch, rebuilding its indexes; cuts off a torn or corrupt
/// tail. Returns the segment and whether it had to be cut.
fn scan_segment(
    dir: &Path,
    base: i64,
    file: File,
    len: u64,
    next_base: Option<i64>,
    config: &LogConfig,
    stats: &mut LogStats,
) -> Result<(Segment, bool), LogError> {
    let path = segment_path(dir, base, LOG_SUFFIX);
    let outcome = scan(&file, base, config.index_interval_bytes).map_err(|e| LogError::io("scan segment", &path, e))?;
    stats.segments_scanned_at_open += 1;
    stats.bytes_scanned_at_open += len;
    let corrupt = outcome.problem.is_some();
    if let Some((position, problem)) = &outcome.problem {
        let cut = len - outcome.valid_bytes;
        tracing::error!(segment = %path.display(), position, bytes_cut = cut, last_offset = outcome.next_offset - 1, %problem, "truncating torn or corrupt tail");
        stats.bytes_truncated_at_open += cut;
        file.set_len(outcome.valid_bytes).map_err(|e| LogError::io("truncate", &path, e))?;
        file.sync_all().map_err(|e| LogError::io("fsync", &path, e))?;
    } else {
        // The data may have been in the page cache only (kill -9): make it durable before the log
        // reports it as such.
        file.sync_data().map_err(|e| LogError::io("fsync", &path, e))?;
    }
    remove_if_exists(&segment_path(dir, base, INDEX_SUFFIX));
    remove_if_exists(&segment_path(dir, base, TIME_INDEX_SUFFIX));
    // A closed segment ends where the next begins, even if compaction removed its last batches.
    let next_offset = match next_base {
        Some(n) if !corrupt => n.max(outcome.next_offset),
        _ => outcome.next_offset,
    };
    let seg = Segment::from_parts(
        base,
        file,
        outcome.valid_bytes,
        outcome.index,
        next_offset,
        outcome.max_timestamp,
        outcome.offset_of_max_timestamp,
    );
    Ok((seg, corrupt))
}

/// Deletes segments entirely below the log start offset (a crash between the checkpoint that
/// advanced it and the deletion). Keeps the last segment.
fn drop_segments_below(dir: &Path, segments: &mut Vec<Segment>, log_start_offset: i64) -> bool {
    let mut changed = false;
    while segments.len() > 1 && segments[1].base_offset <= log_start_offset {
        let seg = segments.remove(0);
        for suffix in [LOG_SUFFIX, INDEX_SUFFIX, TIME_INDEX_SUFFIX] {
            remove_if_exists(&segment_path(dir, seg.base_offset, suffix));
        }
        changed = true;
    }
    changed
}
