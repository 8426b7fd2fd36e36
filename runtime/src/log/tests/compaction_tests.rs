//! Compaction tests. Results are decoded with kafka-protocol's own `RecordBatchDecoder`, an
//! independent implementation of the format, so a batch we rebuild wrongly cannot pass.
#![allow(clippy::unwrap_used)]

use bytes::{Buf, Bytes};
use kafka_protocol::compression::{Decompressor, Gzip, Snappy, Zstd};
use kafka_protocol::records::{Compression, RecordBatchDecoder};

use super::{config, keyed_batch, read_all};
use crate::log::format::{segment_path, CLEANED_SUFFIX, LOG_SUFFIX, SWAP_SUFFIX};
use crate::log::{CleanupPolicy, LogConfig, PartitionLog};

type Row = (i64, Option<String>, Option<String>);

fn decompress(b: &mut Bytes, c: Compression) -> anyhow::Result<Bytes> {
    let all = |b: &mut Bytes| Ok(b.copy_to_bytes(b.remaining()));
    match c {
        Compression::None => Ok(b.copy_to_bytes(b.remaining())),
        Compression::Gzip => Gzip::decompress(b, all),
        Compression::Snappy => Snappy::decompress(b, all),
        Compression::Zstd => Zstd::decompress(b, all),
        Compression::Lz4 => {
            let mut out = Vec::new();
            std::io::Read::read_to_end(&mut lz4_flex::frame::FrameDecoder::new(&b[..]), &mut out)?;
            Ok(out.into())
        }
    }
}

/// (offset, key, value) of every record, decoded by kafka-protocol.
fn rows(log: &PartitionLog) -> Vec<Row> {
    let mut bytes = Bytes::from(read_all(log, log.log_start_offset()));
    let mut out = Vec::new();
    while bytes.has_remaining() {
        let set = RecordBatchDecoder::decode_with_custom_compression(&mut bytes, Some(decompress)).unwrap();
        for r in set.records {
            let s = |b: Option<Bytes>| b.map(|b| String::from_utf8(b.to_vec()).unwrap());
            out.push((r.offset, s(r.key), s(r.value)));
        }
    }
    out
}

fn compact_config() -> LogConfig {
    LogConfig {
        segment_bytes: 300,
        cleanup_policy: CleanupPolicy { delete: false, compact: true },
        delete_retention_ms: 1000,
        index_interval_bytes: 1,
        ..config()
    }
}

/// Appends a batch of (key, value) records with timestamp `ts` and codec `codec`.
fn put(log: &PartitionLog, recs: &[(&str, Option<&str>)], ts: i64, codec: i16) {
    let recs: Vec<super::Kv<'_>> = recs.iter().map(|(k, v)| (Some(k.as_bytes()), v.map(str::as_bytes))).collect();
    log.append(&keyed_batch(&recs, ts, codec), 0, ts).unwrap();
}

fn row(offset: i64, key: &str, value: Option<&str>) -> Row {
    (offset, Some(key.to_string()), value.map(str::to_string))
}

/// Writes a changelog over every codec: each batch mixes superseded and surviving records.
fn fill(log: &PartitionLog) {
    put(log, &[("a", Some("a0")), ("b", Some("b0")), ("c", Some("c0"))], 100, 0); // 0..2
    put(log, &[("a", Some("a1")), ("d", Some("d0"))], 100, 1); // 3..4 gzip
    put(log, &[("b", None), ("e", Some("e0"))], 100, 2); // 5..6 snappy, b deleted
    put(log, &[("c", Some("c1")), ("a", Some("a2"))], 100, 3); // 7..8 lz4
    put(log, &[("d", Some("d1")), ("f", Some("f0"))], 100, 4); // 9..10 zstd
    log.roll().unwrap(); // everything above is now in closed segments
    put(log, &[("z", Some("active"))], 100, 0); // 11
}

#[test]
fn compaction_keeps_the_latest_record_per_key_with_its_offset_in_every_codec() {
    // Goal: latest-per-key survives with original offsets; superseded records go; batches that
    // lost records are rebuilt in their codec and decode with an independent decoder.
    let dir = tempfile::tempdir().unwrap();
    let log = PartitionLog::open(dir.path(), compact_config(), 0).unwrap();
    fill(&log);
    assert!(log.segment_count() >= 3);
    let before = log.size_bytes();
    log.maintain(500).unwrap();
    let expected = vec![
        row(5, "b", None), // tombstone younger than delete.retention.ms: kept
        row(6, "e", Some("e0")),
        row(7, "c", Some("c1")),
        row(8, "a", Some("a2")),
        row(9, "d", Some("d1")),
        row(10, "f", Some("f0")),
        row(11, "z", Some("active")),
    ];
    assert_eq!(rows(&log), expected);
    assert!(log.size_bytes() < before);
    assert!(log.stats().segments_compacted >= 1);
    assert_eq!(log.log_end_offset(), 12);
    // Reading from an offset compaction removed starts at the next surviving batch.
    let r = log.read(1, 1 << 20, i64::MAX).unwrap();
    assert_eq!(super::headers_of(&r.records)[0].base_offset, 5);
    // Tombstones go once delete.retention.ms has passed (maintain reruns for that alone).
    log.maintain(1100).unwrap();
    assert_eq!(rows(&log), expected[1..].to_vec());
    // The result survives a clean and an unclean reopen.
    log.close().unwrap();
    drop(log);
    let log = PartitionLog::open(dir.path(), compact_config(), 0).unwrap();
    assert_eq!(rows(&log), expected[1..].to_vec());
    std::fs::remove_file(dir.path().join("recovery.checkpoint")).unwrap();
    drop(log);
    let log = PartitionLog::open(dir.path(), compact_config(), 0).unwrap();
    assert_eq!(rows(&log), expected[1..].to_vec());
}

#[test]
fn compact_and_delete_both_apply() {
    // Goal: with cleanup.policy=compact,delete, retention still removes old segments.
    let dir = tempfile::tempdir().unwrap();
    let cfg = LogConfig { cleanup_policy: CleanupPolicy { delete: true, compact: true }, retention_ms: Some(1000), ..compact_config() };
    let log = PartitionLog::open(dir.path(), cfg, 0).unwrap();
    fill(&log);
    log.maintain(5000).unwrap();
    assert_eq!(log.log_start_offset(), 11);
    assert_eq!(rows(&log), vec![row(11, "z", Some("active"))]);
}

#[test]
fn recovery_completes_an_interrupted_swap_and_drops_an_unfinished_one() {
    // Goal: a crash after the `.swap` commit point yields the compacted segment; a `.cleaned` file
    // (before the commit point) is ignored. Method: compact one copy of a log, then plant its
    // compacted segment as `.swap` (and junk as `.cleaned`) in an uncompacted copy.
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let log = PartitionLog::open(a.path(), compact_config(), 0).unwrap();
    fill(&log);
    log.close().unwrap();
    for entry in std::fs::read_dir(a.path()).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), b.path().join(entry.file_name())).unwrap();
    }
    log.maintain(500).unwrap();
    let compacted = rows(&log);
    log.close().unwrap();
    std::fs::copy(segment_path(a.path(), 0, LOG_SUFFIX), segment_path(b.path(), 0, SWAP_SUFFIX)).unwrap();
    std::fs::write(segment_path(b.path(), 3, CLEANED_SUFFIX), b"half-written").unwrap();
    let other = PartitionLog::open(b.path(), compact_config(), 0).unwrap();
    assert!(!segment_path(b.path(), 0, SWAP_SUFFIX).exists());
    assert!(!segment_path(b.path(), 3, CLEANED_SUFFIX).exists());
    let got = rows(&other);
    assert_eq!(got.iter().filter(|r| r.0 < 3).collect::<Vec<_>>(), compacted.iter().filter(|r| r.0 < 3).collect::<Vec<_>>());
    assert_eq!(other.log_end_offset(), 12);
}
