//! Unit tests of the partition log, against real files in temporary directories.
#![allow(clippy::unwrap_used)]

use std::io;
use std::path::Path;
use std::sync::{Arc, Barrier};

use parking_lot::Mutex;

use super::batch;
use super::batch_writer::put_record;
use super::format::{segment_path, INDEX_SUFFIX, LOG_SUFFIX, TIME_INDEX_SUFFIX};
use super::records::build_batch;
use super::*;

#[path = "tests/append_now_tests.rs"]
mod append_now_tests;
#[path = "tests/compaction_tests.rs"]
mod compaction_tests;
#[path = "tests/property_tests.rs"]
mod property_tests;

/// Failure points the tests can arm; the log consults them before real I/O.
#[derive(Default)]
pub(crate) struct Faults {
    /// The next segment write writes this many bytes, then fails with the error.
    write: Mutex<Option<(usize, io::Error)>>,
    /// The next flush fsync fails with this error.
    fsync: Mutex<Option<io::Error>>,
}

impl Faults {
    pub fn take_write_failure(&self) -> Option<(usize, io::Error)> {
        self.write.lock().take()
    }
    pub fn check_fsync(&self) -> io::Result<()> {
        self.fsync.lock().take().map_or(Ok(()), Err)
    }
}

/// A record's optional key and value.
pub(crate) type Kv<'a> = (Option<&'a [u8]>, Option<&'a [u8]>);

pub(crate) fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 1 << 20,
        segment_ms: 7 * 24 * 3600 * 1000,
        retention_ms: None,
        retention_bytes: None,
        cleanup_policy: CleanupPolicy { delete: true, compact: false },
        delete_retention_ms: 0,
        flush_policy: FlushPolicy::EveryBatch,
        index_interval_bytes: 4096,
        max_batch_bytes: 1 << 20,
        compression: None,
    }
}

/// A valid uncompressed batch of `records` (key, value) with all timestamps `ts`.
pub(crate) fn keyed_batch(records: &[Kv<'_>], ts: i64, compression: i16) -> Vec<u8> {
    let encoded: Vec<bytes::BytesMut> = records
        .iter()
        .enumerate()
        .map(|(i, (k, v))| {
            let mut record = bytes::BytesMut::new();
            put_record(&mut record, i as i64, 0, *k, *v);
            record
        })
        .collect();
    let refs: Vec<&[u8]> = encoded.iter().map(|r| &r[..]).collect();
    let header = BatchHeader {
        base_offset: 0,
        last_offset_delta: records.len() as i32 - 1,
        partition_leader_epoch: -1,
        attributes: compression,
        base_timestamp: ts,
        max_timestamp: ts,
        producer_id: -1,
        producer_epoch: -1,
        base_sequence: -1,
        records_count: records.len() as i32,
    };
    build_batch(&header, &refs).unwrap()
}

/// A batch of `n` records with `value_len`-byte values.
pub(crate) fn batch_of(n: usize, value_len: usize, ts: i64) -> Vec<u8> {
    let value = vec![b'v'; value_len];
    let recs: Vec<Kv<'_>> = (0..n).map(|_| (None, Some(value.as_slice()))).collect();
    keyed_batch(&recs, ts, 0)
}

/// Headers of the whole batches in `bytes`, checking each one's CRC.
pub(crate) fn headers_of(bytes: &[u8]) -> Vec<BatchHeader> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < bytes.len() {
        let (h, size) = batch::validate(&bytes[pos..]).unwrap();
        out.push(h);
        pos += size;
    }
    out
}

/// `records` as the log should store them from `base_offset` on: each batch's base offset and
/// leader epoch rewritten, nothing else changed.
fn rewritten(records: &[u8], base_offset: i64, leader_epoch: i32) -> Vec<u8> {
    let mut out = records.to_vec();
    let mut next = base_offset;
    for (h, pos, size) in batch::whole_batches(records).collect::<Vec<_>>() {
        batch::rewrite_offset_and_epoch(&mut out[pos..pos + size], next, leader_epoch);
        next += i64::from(h.last_offset_delta) + 1;
    }
    out
}

fn append(log: &PartitionLog, b: Vec<u8>) -> AppendInfo {
    log.append(&b, 7, 1000).unwrap()
}

/// Everything from `from` to the end, one read per segment.
pub(crate) fn read_all(log: &PartitionLog, from: i64) -> Vec<u8> {
    let mut out = Vec::new();
    let mut at = from;
    while at < log.log_end_offset() {
        let r = log.read(at, 1 << 30, i64::MAX).unwrap();
        let Some(last) = headers_of(&r.records).last().map(|h| h.last_offset()) else { break };
        out.extend_from_slice(&r.records);
        at = last + 1;
    }
    out
}

fn file_len(dir: &Path, base: i64, suffix: &str) -> u64 {
    std::fs::metadata(segment_path(dir, base, suffix)).unwrap().len()
}

#[test]
fn large_and_small_batches_of_one_request_are_stored_rewritten() {
    // Goal: the copy-free write path (large batches written from the request, small ones staged)
    // stores every byte of a mixed request in order, rewritten, with valid CRCs; a later append
    // lands right after it. Method: compare the stored bytes with the expected rewrite.
    let dir = tempfile::tempdir().unwrap();
    let log = PartitionLog::open(dir.path(), config(), 0).unwrap();
    let large = 40_000; // above DIRECT_WRITE_BYTES_MIN
    let input = [batch_of(2, 10, 1), batch_of(1, large, 2), batch_of(1, large, 3), batch_of(3, 10, 4), batch_of(2, large, 5)].concat();
    let info = log.append(&input, 9, 1000).unwrap();
    assert_eq!((info.base_offset, info.last_offset), (0, 8));
    let tail = batch_of(1, 10, 6);
    assert_eq!(log.append(&tail, 9, 1000).unwrap().base_offset, 9);
    let all = read_all(&log, 0);
    let expected = [rewritten(&input, 0, 9), rewritten(&tail, 9, 9)].concat();
    assert_eq!(all.len(), expected.len());
    assert!(all == expected, "stored bytes differ from the rewritten request");
    let bases: Vec<i64> = headers_of(&all).iter().map(|h| h.base_offset).collect();
    assert_eq!(bases, vec![0, 2, 3, 4, 7, 9]);
}

#[test]
fn append_read_round_trip_with_multi_batch_input() {
    // Goal: offsets are assigned across several batches of one request and read back unchanged.
    let dir = tempfile::tempdir().unwrap();
    let log = PartitionLog::open(dir.path(), config(), 0).unwrap();
    let input = [batch_of(3, 10, 100), batch_of(2, 10, 101), batch_of(1, 10, 102)].concat();
    let info = log.append(&input, 5, 1000).unwrap();
    assert_eq!((info.base_offset, info.last_offset), (0, 5));
    let info = append(&log, batch_of(4, 10, 103));
    assert_eq!((info.base_offset, info.last_offset), (6, 9));
    assert_eq!(log.log_end_offset(), 10);
    let all = log.read(0, 1 << 20, i64::MAX).unwrap();
    assert_eq!(&all.records[..input.len()], &rewritten(&input, 0, 5)[..], "stored bytes are the input with offsets and epoch rewritten");
    let bases: Vec<i64> = headers_of(&all.records).iter().map(|h| h.base_offset).collect();
    assert_eq!(bases, vec![0, 3, 5, 6]);
    assert!(headers_of(&all.records).iter().all(|h| h.partition_leader_epoch == 5 || h.base_offset == 6));
    // Reading from the middle of a batch starts with that batch; max_bytes and the upper bound cut
    // at whole batches; the first batch is returned even if larger than max_bytes.
    let mid = log.read(4, 1, i64::MAX).unwrap();
    assert_eq!(headers_of(&mid.records).iter().map(|h| h.base_offset).collect::<Vec<_>>(), vec![3]);
    let bounded = log.read(0, 1 << 20, 6).unwrap();
    assert_eq!(headers_of(&bounded.records).len(), 3);
    assert!(log.read(10, 100, i64::MAX).unwrap().records.is_empty());
    assert!(matches!(log.read(11, 100, i64::MAX), Err(LogError::OffsetOutOfRange { .. })));
    assert_eq!(log.batch_headers(4, 7).unwrap().iter().map(|h| h.base_offset).collect::<Vec<_>>(), vec![3, 5, 6]);
}

#[test]
fn corrupt_and_oversize_batches_are_rejected() {
    // Goal: a flipped payload byte (CRC), a bad magic and an oversize batch append nothing.
    let dir = tempfile::tempdir().unwrap();
    let log = PartitionLog::open(dir.path(), LogConfig { max_batch_bytes: 200, ..config() }, 0).unwrap();
    let mut bad = batch_of(1, 10, 0);
    let last = bad.len() - 1;
    bad[last] ^= 1;
    assert!(matches!(log.append(&bad, 0, 0), Err(LogError::CorruptBatch { .. })));
    let mut magic = batch_of(1, 10, 0);
    magic[16] = 1;
    assert!(matches!(log.append(&magic, 0, 0), Err(LogError::CorruptBatch { .. })));
    let big = batch_of(1, 300, 0);
    assert!(matches!(log.append(&big, 0, 0), Err(LogError::BatchTooLarge { .. })));
    let mut torn = batch_of(1, 10, 0);
    torn.pop();
    assert!(matches!(log.append(&torn, 0, 0), Err(LogError::CorruptBatch { .. })));
    assert_eq!(log.log_end_offset(), 0);
    assert_eq!(log.size_bytes(), 0);
}

#[test]
fn torn_tail_is_cut_back_to_the_last_whole_batch() {
    // Goal: a file cut mid-batch (crash during write) loses only that batch. Method: drop without
    // close, cut the file, reopen.
    let dir = tempfile::tempdir().unwrap();
    let sizes = {
        let log = PartitionLog::open(dir.path(), config(), 0).unwrap();
        (0..3)
            .map(|i| {
                append(&log, batch_of(2, 100, i));
                log.size_bytes()
            })
            .collect::<Vec<_>>()
    };
    let f = std::fs::OpenOptions::new().write(true).open(segment_path(dir.path(), 0, LOG_SUFFIX)).unwrap();
    f.set_len(sizes[2] - 7).unwrap();
    let log = PartitionLog::open(dir.path(), config(), 0).unwrap();
    assert_eq!(log.log_end_offset(), 4);
    assert_eq!(log.size_bytes(), sizes[1]);
    assert_eq!(log.stats().bytes_truncated_at_open, sizes[2] - 7 - sizes[1]);
    assert_eq!(headers_of(&log.read(0, 1 << 20, i64::MAX).unwrap().records).len(), 2);
    assert_eq!(append(&log, batch_of(1, 10, 0)).base_offset, 4, "appends continue after the cut");
}

#[test]
fn flipped_bytes_cut_the_log_at_the_damaged_batch_and_drop_later_segments() {
    // Goal: corruption in the middle of a segment keeps everything before it and nothing after,
    // including later segments.
    let dir = tempfile::tempdir().unwrap();
    let cfg = LogConfig { segment_bytes: 1000, ..config() };
    let first_size = {
        let log = PartitionLog::open(dir.path(), cfg.clone(), 0).unwrap();
        for i in 0..8 {
            append(&log, batch_of(1, 300, i));
        }
        assert!(log.segment_count() >= 3);
        let s = log.state.read();
        (s.segments[0].size, s.segments[1].base_offset)
    };
    let path = segment_path(dir.path(), 0, LOG_SUFFIX);
    let mut bytes = std::fs::read(&path).unwrap();
    let second_batch_start = (first_size.0 / 2) as usize; // segment 0 holds 2 equal batches
    bytes[second_batch_start + 100] ^= 0xff;
    std::fs::write(&path, &bytes).unwrap();
    let log = PartitionLog::open(dir.path(), cfg, 0).unwrap();
    assert_eq!(log.log_end_offset(), 1);
    assert_eq!(log.segment_count(), 1);
    assert!(!segment_path(dir.path(), first_size.1, LOG_SUFFIX).exists());
    assert_eq!(headers_of(&log.read(0, 1 << 20, i64::MAX).unwrap().records).len(), 1);
}

#[test]
fn bytes_flipped_in_the_last_batch_after_a_clean_close_are_cut_off() {
    // Goal: a clean checkpoint does not vouch for bytes changed while the broker was stopped in
    // the last segment's tail; the damaged last batch goes, everything before it stays.
    let dir = tempfile::tempdir().unwrap();
    let cfg = LogConfig { index_interval_bytes: 300, ..config() };
    let sizes = {
        let log = PartitionLog::open(dir.path(), cfg.clone(), 0).unwrap();
        let sizes: Vec<u64> = (0..10)
            .map(|i| {
                append(&log, batch_of(2, 200, i));
                log.size_bytes()
            })
            .collect();
        log.close().unwrap();
        sizes
    };
    let path = segment_path(dir.path(), 0, LOG_SUFFIX);
    let mut bytes = std::fs::read(&path).unwrap();
    let at = (sizes[9] - 20) as usize;
    bytes[at] ^= 0xff;
    std::fs::write(&path, &bytes).unwrap();
    let log = PartitionLog::open(dir.path(), cfg.clone(), 0).unwrap();
    assert_eq!(log.log_end_offset(), 18);
    assert_eq!(log.size_bytes(), sizes[8]);
    log.close().unwrap();
    drop(log);
    let log = PartitionLog::open(dir.path(), cfg, 0).unwrap();
    assert_eq!(log.stats().bytes_scanned_at_open, 0, "an intact clean log is still not scanned");
    assert_eq!(log.log_end_offset(), 18);
}

#[test]
fn clean_close_reopen_scans_nothing_and_missing_or_damaged_indexes_are_rebuilt() {
    // Goal: after close nothing is read at open; an index that is missing or damaged is rebuilt
    // from its segment (only that segment is scanned) and lookups still work.
    let dir = tempfile::tempdir().unwrap();
    let cfg = LogConfig { segment_bytes: 4000, index_interval_bytes: 300, ..config() };
    let expected = {
        let log = PartitionLog::open(dir.path(), cfg.clone(), 0).unwrap();
        for i in 0..40 {
            append(&log, batch_of(2, 200, i));
        }
        log.close().unwrap();
        read_all(&log, 0)
    };
    let log = PartitionLog::open(dir.path(), cfg.clone(), 0).unwrap();
    assert_eq!(log.stats().bytes_scanned_at_open, 0);
    assert_eq!(log.log_end_offset(), 80);
    let bases: Vec<i64> = log.state.read().segments.iter().map(|s| s.base_offset).collect();
    drop(log);
    std::fs::remove_file(segment_path(dir.path(), bases[1], INDEX_SUFFIX)).unwrap();
    let ti = segment_path(dir.path(), bases[2], TIME_INDEX_SUFFIX);
    let mut t = std::fs::read(&ti).unwrap();
    let n = t.len() - 1;
    t[n] ^= 1;
    std::fs::write(&ti, t).unwrap();
    let log = PartitionLog::open(dir.path(), cfg, 0).unwrap();
    assert_eq!(log.stats().segments_scanned_at_open, 2);
    let mut got = Vec::new();
    let mut at = 0;
    while at < log.log_end_offset() {
        let r = log.read(at, 1, i64::MAX).unwrap();
        let hs = headers_of(&r.records);
        at = hs.last().unwrap().last_offset() + 1;
        got.extend_from_slice(&r.records);
    }
    assert_eq!(got, expected);
    assert_eq!(log.offset_for_timestamp(25).unwrap(), Some((50, 25)));
}

#[test]
fn unclean_restart_scans_only_segments_after_the_recovery_point() {
    // Goal: after maintain has checkpointed closed segments, a crash costs a scan of the active
    // segment only.
    let dir = tempfile::tempdir().unwrap();
    let cfg = LogConfig { segment_bytes: 2000, ..config() };
    let active_size = {
        let log = PartitionLog::open(dir.path(), cfg.clone(), 0).unwrap();
        for i in 0..19 {
            append(&log, batch_of(1, 300, i));
        }
        log.maintain(0).unwrap();
        append(&log, batch_of(1, 300, 99));
        let s = log.state.read();
        s.active().size
    };
    let log = PartitionLog::open(dir.path(), cfg, 0).unwrap();
    assert_eq!(log.stats().segments_scanned_at_open, 1);
    assert_eq!(log.stats().bytes_scanned_at_open, active_size);
    assert_eq!(log.log_end_offset(), 20);
}

#[test]
fn retention_by_time_and_size_advances_the_log_start() {
    // Goal: closed segments past retention.ms (by newest timestamp) and beyond retention.bytes are
    // deleted whole, oldest first; the active segment never is.
    let dir = tempfile::tempdir().unwrap();
    let cfg = LogConfig { segment_bytes: 1000, retention_ms: Some(1000), ..config() };
    let log = PartitionLog::open(dir.path(), cfg.clone(), 0).unwrap();
    for i in 0..10 {
        append(&log, batch_of(1, 400, i * 1000)); // 2 batches per segment
    }
    assert_eq!(log.segment_count(), 5);
    assert_eq!(log.maintain(4500).unwrap(), 2, "segments with newest ts 1000 and 3000 are older than 3500");
    assert_eq!(log.log_start_offset(), 4);
    assert!(matches!(log.read(3, 10, i64::MAX), Err(LogError::OffsetOutOfRange { .. })));
    log.update_config(LogConfig { retention_ms: None, retention_bytes: Some(1500), ..cfg });
    assert_eq!(log.maintain(4500).unwrap(), 1);
    assert_eq!((log.log_start_offset(), log.segment_count()), (6, 2));
    assert_eq!(log.maintain(5000).unwrap(), 0, "the active segment stays");
    assert_eq!(log.delete_records_before(9).unwrap(), 9);
    assert_eq!(log.segment_count(), 1);
    drop(log);
    let log = PartitionLog::open(dir.path(), config(), 0).unwrap();
    assert_eq!(log.log_start_offset(), 9, "log start offset survives a restart");
}

#[test]
fn truncate_to_removes_the_batch_holding_the_offset_and_later_segments() {
    // Goal: truncation is whole-batch, crosses segments and survives a reopen.
    let dir = tempfile::tempdir().unwrap();
    let cfg = LogConfig { segment_bytes: 1000, ..config() };
    let log = PartitionLog::open(dir.path(), cfg.clone(), 0).unwrap();
    for i in 0..6 {
        append(&log, batch_of(2, 400, i));
    }
    log.set_high_watermark(12);
    log.truncate_to(3).unwrap();
    assert_eq!((log.log_end_offset(), log.segment_count(), log.high_watermark()), (2, 2, 2));
    assert_eq!(log.max_timestamp().unwrap(), Some((1, 0)));
    assert_eq!(append(&log, batch_of(1, 10, 50)).base_offset, 2);
    drop(log);
    let log = PartitionLog::open(dir.path(), cfg, 0).unwrap();
    assert_eq!(log.log_end_offset(), 3);
    assert_eq!(headers_of(&read_all(&log, 0)).len(), 2);
}

#[test]
fn concurrent_flush_to_shares_one_fsync() {
    // Goal: group commit. Method: 8 threads wait on a barrier and flush at once; the first to take
    // the flush lock covers everyone.
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(PartitionLog::open(dir.path(), config(), 0).unwrap());
    for i in 0..8 {
        append(&log, batch_of(1, 100, i));
    }
    let barrier = Arc::new(Barrier::new(8));
    let handles: Vec<_> = (0..8)
        .map(|i| {
            let (log, barrier) = (Arc::clone(&log), Arc::clone(&barrier));
            std::thread::spawn(move || {
                barrier.wait();
                log.flush_to(i + 1).unwrap();
            })
        })
        .collect();
    handles.into_iter().for_each(|h| h.join().unwrap());
    assert_eq!(log.stats().flush_fsyncs, 1);
    assert_eq!(log.durable_offset(), 8);
}

#[test]
fn concurrent_appends_flushes_and_reads_stay_consistent() {
    // Goal: reads during appends only ever see whole, valid batches; every flush returns durable.
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(PartitionLog::open(dir.path(), LogConfig { segment_bytes: 20_000, ..config() }, 0).unwrap());
    let writers: Vec<_> = (0..4)
        .map(|_| {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                for i in 0..50 {
                    let info = append(&log, batch_of(2, 200, i));
                    log.flush_to(info.last_offset + 1).unwrap();
                    assert!(log.durable_offset() > info.last_offset);
                }
            })
        })
        .collect();
    let reader = {
        let log = Arc::clone(&log);
        std::thread::spawn(move || {
            for _ in 0..200 {
                let r = log.read(0, 1 << 20, i64::MAX).unwrap();
                headers_of(&r.records);
            }
        })
    };
    writers.into_iter().for_each(|h| h.join().unwrap());
    reader.join().unwrap();
    assert_eq!(log.log_end_offset(), 400);
    assert!(log.stats().flush_fsyncs <= 200);
}

#[test]
fn disk_full_fails_the_append_without_damage_and_writes_resume() {
    // Goal: ENOSPC mid-write leaves no partial batch, does not poison, and the next append works.
    let dir = tempfile::tempdir().unwrap();
    let log = PartitionLog::open(dir.path(), config(), 0).unwrap();
    append(&log, batch_of(2, 100, 0));
    let before = file_len(dir.path(), 0, LOG_SUFFIX);
    *log.faults.write.lock() = Some((50, io::Error::from_raw_os_error(28)));
    let b = batch_of(2, 100, 1);
    assert!(matches!(log.append(&b, 0, 0), Err(LogError::StorageFull { .. })));
    assert_eq!(file_len(dir.path(), 0, LOG_SUFFIX), before);
    assert_eq!(log.log_end_offset(), 2);
    assert_eq!(append(&log, batch_of(1, 100, 2)).base_offset, 2);
    log.flush_to(3).unwrap();
    assert_eq!(headers_of(&log.read(0, 1 << 20, i64::MAX).unwrap().records).len(), 2);
}

#[test]
fn failed_fsync_poisons_writes_but_not_reads() {
    // Goal: after a failed fsync appends fail with Poisoned (KAFKA_STORAGE_ERROR) and reads go on.
    let dir = tempfile::tempdir().unwrap();
    let log = PartitionLog::open(dir.path(), config(), 0).unwrap();
    append(&log, batch_of(1, 100, 0));
    *log.faults.fsync.lock() = Some(io::Error::from_raw_os_error(5));
    assert!(log.flush_to(1).is_err());
    let b = batch_of(1, 100, 0);
    assert!(matches!(log.append(&b, 0, 0), Err(LogError::Poisoned { .. })));
    assert!(matches!(log.flush_to(1), Err(LogError::Poisoned { .. })));
    assert_eq!(headers_of(&log.read(0, 1 << 20, i64::MAX).unwrap().records).len(), 1);
    assert_eq!(log.durable_offset(), 0);
}

#[test]
fn roll_by_age_and_timestamp_queries() {
    // Goal: segment.ms rolls on append and in maintain; time lookups span segments.
    let dir = tempfile::tempdir().unwrap();
    let log = PartitionLog::open(dir.path(), LogConfig { segment_ms: 100, ..config() }, 0).unwrap();
    log.append(&batch_of(1, 10, 5), 0, 0).unwrap();
    log.append(&batch_of(1, 10, 7), 0, 50).unwrap();
    log.append(&batch_of(1, 10, 6), 0, 150).unwrap();
    assert_eq!(log.segment_count(), 2);
    log.maintain(300).unwrap();
    assert_eq!(log.segment_count(), 3);
    assert_eq!(log.offset_for_timestamp(6).unwrap(), Some((1, 7)));
    assert_eq!(log.offset_for_timestamp(8).unwrap(), None);
    assert_eq!(log.max_timestamp().unwrap(), Some((1, 7)));
}

#[test]
fn recompress_changes_only_the_codec_and_refuses_corrupt_batches() {
    // Goal: compression.type rebuilds batches with the topic's codec, record bytes and header
    // fields unchanged, from every codec to every other.
    let recs: Vec<Kv<'_>> = vec![(Some(b"a"), Some(b"one")), (None, Some(b"two")), (Some(b"c"), None)];
    for from in 0..=4i16 {
        let original = keyed_batch(&recs, 42, from);
        for to in 0..=4i16 {
            let out = super::records::recompress(&original, to, 1 << 20).unwrap();
            let Some(out) = out else {
                assert_eq!(from, to, "a batch with another codec was left alone");
                continue;
            };
            let (h, size) = batch::validate(&out).unwrap();
            assert_eq!(size, out.len());
            assert_eq!(h.compression(), to);
            let (orig, _) = batch::validate(&original).unwrap();
            assert_eq!(BatchHeader { attributes: orig.attributes, ..h }, orig);
            let section = |b: &[u8], h: &BatchHeader| {
                super::records::parse_records(super::records::records_section(b, h).unwrap(), h.records_count).unwrap()
            };
            let (a, b) = (section(&original, &orig), section(&out, &h));
            assert_eq!(a.iter().map(|r| &r.bytes).collect::<Vec<_>>(), b.iter().map(|r| &r.bytes).collect::<Vec<_>>());
        }
    }
    let mut corrupt = keyed_batch(&recs, 42, 0);
    let n = corrupt.len() - 1;
    corrupt[n] ^= 1;
    assert!(matches!(super::records::recompress(&corrupt, 4, 1 << 20), Err(LogError::CorruptBatch { .. })));
}
