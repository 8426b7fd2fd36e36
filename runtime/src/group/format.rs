//! The byte layout of `__consumer_offsets` records, the same schemas Kafka uses, so Kafka's own
//! tools could read our log and we read theirs.
//!
//! Key (big-endian, strings are i16 length + UTF-8):
//! - version 0 or 1: offset commit — `i16 version, string group, string topic, i32 partition`.
//! - version 2: group metadata — `i16 version, string group` (we skip these: membership is not
//!   persisted, only committed offsets are).
//!
//! Value of an offset commit (a null value is a tombstone: the offset was deleted):
//! - version 0: `i64 offset, string metadata, i64 commit_timestamp`
//! - version 1: `i64 offset, string metadata, i64 commit_timestamp, i64 expire_timestamp`
//! - version 2: `i64 offset, string metadata, i64 commit_timestamp`
//! - version 3: `i64 offset, i32 leader_epoch, string metadata, i64 commit_timestamp` (we write
//!   this one).
//!
//! Records travel in plain RecordBatch v2 batches written by [`write_batches`] with the log's
//! batch writer: uncompressed, no producer id, offsets 0..n-1 (the log assigns the base offset).

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::log::{BatchStart, BatchWriter};

/// Offset commit key version we write.
const KEY_VERSION_OFFSET: i16 = 1;
/// Offset commit value version we write.
const VALUE_VERSION: i16 = 3;
/// Keep each batch we write below this, so a huge commit becomes several ordinary batches.
pub(crate) const BATCH_TARGET_BYTES: usize = 512 * 1024;

/// The key of an offset commit record: which group committed for which partition.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct OffsetKey {
    pub group: String,
    pub topic: String,
    pub partition: i32,
}

/// A committed offset as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OffsetValue {
    pub offset: i64,
    /// -1 when the client did not send one.
    pub leader_epoch: i32,
    pub metadata: String,
    pub commit_timestamp_ms: i64,
}

/// What a record key turned out to be.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Key {
    Offset(OffsetKey),
    /// Group metadata or a key version we do not know: ignored on replay.
    Other,
}

pub(crate) fn encode_key(key: &OffsetKey) -> Bytes {
    let mut buf = BytesMut::with_capacity(12 + key.group.len() + key.topic.len());
    buf.put_i16(KEY_VERSION_OFFSET);
    put_string(&mut buf, &key.group);
    put_string(&mut buf, &key.topic);
    buf.put_i32(key.partition);
    buf.freeze()
}

pub(crate) fn encode_value(value: &OffsetValue) -> Bytes {
    let mut buf = BytesMut::with_capacity(26 + value.metadata.len());
    buf.put_i16(VALUE_VERSION);
    buf.put_i64(value.offset);
    buf.put_i32(value.leader_epoch);
    put_string(&mut buf, &value.metadata);
    buf.put_i64(value.commit_timestamp_ms);
    buf.freeze()
}

pub(crate) fn decode_key(mut buf: &[u8]) -> Result<Key, String> {
    let version = get_i16(&mut buf)?;
    match version {
        0 | 1 => {
            let group = get_string(&mut buf)?;
            let topic = get_string(&mut buf)?;
            let partition = get_i32(&mut buf)?;
            Ok(Key::Offset(OffsetKey { group, topic, partition }))
        }
        _ => Ok(Key::Other),
    }
}

pub(crate) fn decode_value(mut buf: &[u8]) -> Result<OffsetValue, String> {
    let version = get_i16(&mut buf)?;
    let offset = get_i64(&mut buf)?;
    let leader_epoch = if version >= 3 { get_i32(&mut buf)? } else { -1 };
    let metadata = get_string(&mut buf)?;
    let commit_timestamp_ms = get_i64(&mut buf)?;
    if !(0..=3).contains(&version) {
        return Err(format!("unknown offset commit value version {version}"));
    }
    Ok(OffsetValue { offset, leader_epoch, metadata, commit_timestamp_ms })
}

fn put_string(buf: &mut BytesMut, s: &str) {
    // Group ids, topic names and metadata are all bounded well below i16::MAX by the caller
    // (OFFSET_METADATA_MAX_BYTES, Kafka's 249-byte topic names); truncating would corrupt the
    // key, so this is a programmer error.
    let len = i16::try_from(s.len()).unwrap_or(i16::MAX);
    debug_assert!(s.len() <= i16::MAX as usize, "string of {} bytes does not fit the key schema", s.len());
    buf.put_i16(len);
    buf.put_slice(&s.as_bytes()[..len as usize]);
}

fn get_i16(buf: &mut &[u8]) -> Result<i16, String> {
    buf.try_get_i16().map_err(|_| "truncated i16".to_owned())
}
fn get_i32(buf: &mut &[u8]) -> Result<i32, String> {
    buf.try_get_i32().map_err(|_| "truncated i32".to_owned())
}
fn get_i64(buf: &mut &[u8]) -> Result<i64, String> {
    buf.try_get_i64().map_err(|_| "truncated i64".to_owned())
}
fn get_string(buf: &mut &[u8]) -> Result<String, String> {
    let len = get_i16(buf)?;
    let len = usize::try_from(len).map_err(|_| format!("negative string length {len}"))?;
    if buf.len() < len {
        return Err(format!("string of {len} bytes with {} left", buf.len()));
    }
    let (head, rest) = buf.split_at(len);
    *buf = rest;
    String::from_utf8(head.to_vec()).map_err(|e| format!("string is not UTF-8: {e}"))
}

/// Encodes `records` (key, optional value) as one or more RecordBatch v2 batches of at most
/// about [`BATCH_TARGET_BYTES`] each (a batch closes once it reaches the target), concatenated.
/// Fails only past Kafka's i32 limits, which bounded commit records cannot reach.
pub(crate) fn write_batches(records: &[(Bytes, Option<Bytes>)], timestamp_ms: i64) -> Result<BytesMut, String> {
    let fields = BatchStart {
        partition_leader_epoch: -1, // the log assigns it
        attributes: 0,              // no compression, create time, not transactional
        base_timestamp: timestamp_ms,
        producer_id: -1, // not idempotent: the coordinator is the only writer
        producer_epoch: -1,
        base_sequence: -1,
    };
    let mut out = BytesMut::new();
    let mut rest = records;
    while !rest.is_empty() {
        let mut batch = BatchWriter::begin(&mut out, fields);
        let mut taken = 0;
        for (key, value) in rest {
            if batch.len() >= BATCH_TARGET_BYTES && !batch.is_empty() {
                break;
            }
            batch.push(0, Some(key), value.as_deref());
            taken += 1;
        }
        batch.finish()?;
        rest = &rest[taken..];
    }
    Ok(out)
}

/// Header bytes before the records: the RecordBatch v2 layout.
const BATCH_HEADER_BYTES: usize = crate::log::BATCH_HEADER_LEN;

/// (base offset, next offset after the batch, batch length in bytes) of the batch at the start of
/// `buf`, read from its header, or `None` if fewer than a header's bytes remain. The next offset
/// comes from `last_offset_delta`, which compaction preserves even when it drops the last records.
pub(crate) fn batch_span(buf: &[u8]) -> Option<(i64, i64, usize)> {
    let header = buf.get(..BATCH_HEADER_BYTES)?;
    let base = i64::from_be_bytes(header[0..8].try_into().ok()?);
    let length = i32::from_be_bytes(header[8..12].try_into().ok()?);
    let last_delta = i32::from_be_bytes(header[23..27].try_into().ok()?);
    let size = usize::try_from(length).ok()?.checked_add(12)?;
    Some((base, base + i64::from(last_delta) + 1, size))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::records::RecordBatchDecoder;

    /// Our hand-written batches must decode with kafka-protocol (CRC, varints, offsets).
    #[test]
    fn batches_round_trip_through_kafka_protocol() {
        let key = OffsetKey { group: "g".into(), topic: "t".into(), partition: 3 };
        let value = OffsetValue { offset: 42, leader_epoch: 7, metadata: "meta".into(), commit_timestamp_ms: 99 };
        let records: Vec<_> = (0..3).map(|i| (encode_key(&key), if i == 2 { None } else { Some(encode_value(&value)) })).collect();
        let mut bytes = write_batches(&records, 1234).expect("encodes").freeze();
        let (base, next, size) = batch_span(&bytes).expect("header");
        assert_eq!((base, next, size), (0, 3, bytes.len()));
        let set = RecordBatchDecoder::decode(&mut bytes).expect("decodes");
        assert_eq!(set.records.len(), 3);
        assert_eq!(set.records[1].offset, 1);
        let k = decode_key(set.records[0].key.as_deref().expect("key")).expect("key decodes");
        assert_eq!(k, Key::Offset(key));
        let v = decode_value(set.records[0].value.as_deref().expect("value")).expect("value decodes");
        assert_eq!(v, value);
        assert!(set.records[2].value.is_none());
    }

    /// A commit larger than the batch target is split into several valid batches near the target,
    /// with no record lost: 400 commits with 4 KiB of metadata each (about 1.6 MB).
    #[test]
    fn large_commits_split_into_batches_near_the_target() {
        let value = OffsetValue { offset: 1, leader_epoch: -1, metadata: "m".repeat(4096), commit_timestamp_ms: 5 };
        let records: Vec<_> = (0..400)
            .map(|p| (encode_key(&OffsetKey { group: "g".into(), topic: "t".into(), partition: p }), Some(encode_value(&value))))
            .collect();
        let bytes = write_batches(&records, 5).expect("encodes").freeze();
        let (mut at, mut batches, mut partitions) = (0, 0, Vec::new());
        while at < bytes.len() {
            let (header, size) = crate::log::check_batch(&bytes[at..]).expect("valid batch");
            assert!(size < BATCH_TARGET_BYTES + 5000, "batch of {size} bytes");
            let mut batch = bytes.slice(at..at + size);
            let decoded = RecordBatchDecoder::decode(&mut batch).expect("decodes").records;
            assert_eq!(decoded.len(), header.records_count as usize);
            for r in decoded {
                match decode_key(r.key.as_deref().expect("key")).expect("key decodes") {
                    Key::Offset(k) => partitions.push(k.partition),
                    Key::Other => panic!("unexpected key"),
                }
            }
            batches += 1;
            at += size;
        }
        assert_eq!(batches, 4, "{at} bytes written");
        assert_eq!(partitions, (0..400).collect::<Vec<_>>());
    }

    /// Values of older versions (Kafka 2.0 wrote v1/v2) still load; garbage is an error, not a panic.
    #[test]
    fn old_value_versions_and_garbage() {
        let mut v1 = BytesMut::new();
        v1.put_i16(1);
        v1.put_i64(5);
        v1.put_i16(0);
        v1.put_i64(10);
        v1.put_i64(20);
        let v = decode_value(&v1).expect("v1");
        assert_eq!((v.offset, v.leader_epoch, v.commit_timestamp_ms), (5, -1, 10));
        assert!(decode_value(&[0, 3, 1]).is_err());
        assert!(decode_key(&[0, 1, 0, 9, b'x']).is_err());
        assert_eq!(decode_key(&[0, 2, 0, 1, b'g']), Ok(Key::Other));
    }
}
