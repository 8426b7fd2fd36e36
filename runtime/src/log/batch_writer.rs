//! The one writer of Kafka RecordBatch v2 bytes: a header, records written one by one straight
//! into the caller's `BytesMut`, then the counts, the length and the CRC32C patched in. The log
//! (compaction and recompression rebuild batches around copied records), the group coordinator
//! (committed offsets) and the stateful transforms' changelog all write batches with it; the
//! header's byte positions are listed in `batch`, which parses what this writes.
//!
//! Why not kafka-protocol's `RecordBatchEncoder`: it takes owned records with a header map each,
//! so every key and value is copied twice before it is encoded; for the changelog (one record per
//! changed key) that cost more than the guest's own work. `transform::records::encode_batch` still
//! uses it for guest outputs, which carry headers, and a test checks both give the same bytes.
//!
//! Why record lengths are computed rather than measured: a record starts with its own length as a
//! varint, so a writer must either build the body in a scratch buffer first or know its size
//! beforehand. Computing it from the field sizes keeps one copy per byte and no allocation per
//! record.

use bytes::{BufMut, BytesMut};

use super::batch::seal_crc;
use super::format::{BATCH_HEADER_BYTES, BATCH_LOG_OVERHEAD};
use super::BatchHeader;

/// The fields of a new batch that its records do not determine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchStart {
    /// Overwritten by the log on append; -1 is Kafka's "none", 0 is what kafka-protocol writes.
    pub partition_leader_epoch: i32,
    /// Attribute bits; the codec bits (0-2) must be 0: the writer writes records uncompressed.
    pub attributes: i16,
    /// Timestamp of the first record; the others are given as deltas from it.
    pub base_timestamp: i64,
    /// -1 (with epoch and sequence -1) for a batch from no idempotent producer.
    pub producer_id: i64,
    #[allow(missing_docs)]
    pub producer_epoch: i16,
    /// Sequence number of the first record; the others follow it.
    pub base_sequence: i32,
}

/// Writes one batch at the end of a buffer (which may already hold other batches): construct with
/// [`BatchWriter::begin`], add records with [`BatchWriter::push`], seal with
/// [`BatchWriter::finish`]. Offset deltas are 0, 1, 2, ... in push order.
pub struct BatchWriter<'a> {
    out: &'a mut BytesMut,
    /// Where this batch starts in `out`.
    start: usize,
    base_timestamp: i64,
    /// Records pushed so far: also the next record's offset delta.
    records: usize,
    /// Largest timestamp delta pushed (`i64::MIN` before the first record).
    max_timestamp_delta: i64,
}

impl<'a> BatchWriter<'a> {
    /// Writes the header of a new batch at the end of `out`, with its counts, length and CRC
    /// left to [`BatchWriter::finish`].
    pub fn begin(out: &'a mut BytesMut, fields: BatchStart) -> Self {
        debug_assert_eq!(fields.attributes & COMPRESSION_BITS, 0, "the batch writer writes uncompressed records only");
        let start = out.len();
        put_header(
            out,
            &BatchHeader {
                base_offset: 0, // the log assigns it
                last_offset_delta: 0,
                partition_leader_epoch: fields.partition_leader_epoch,
                attributes: fields.attributes,
                base_timestamp: fields.base_timestamp,
                max_timestamp: fields.base_timestamp,
                producer_id: fields.producer_id,
                producer_epoch: fields.producer_epoch,
                base_sequence: fields.base_sequence,
                records_count: 0,
            },
        );
        BatchWriter { out, start, base_timestamp: fields.base_timestamp, records: 0, max_timestamp_delta: i64::MIN }
    }

    /// Appends a record (no headers) `timestamp_delta` ms after the batch's base timestamp;
    /// `None` is a null key or value (a null value is a tombstone).
    ///
    /// Forced inline (with `put_record`): the changelog writes one record per changed key, and
    /// inlined into its loop the constant fields fold away; without it the changelog encoder took
    /// 12.0 ns per record against 10.0 (`state::tests::changelog_batch_timing`).
    #[inline(always)]
    pub fn push(&mut self, timestamp_delta: i64, key: Option<&[u8]>, value: Option<&[u8]>) {
        put_record(self.out, self.records as i64, timestamp_delta, key, value);
        self.records += 1;
        self.max_timestamp_delta = self.max_timestamp_delta.max(timestamp_delta);
    }

    /// Bytes of this batch so far, header included.
    pub fn len(&self) -> usize {
        self.out.len() - self.start
    }

    /// Whether no record was pushed yet.
    pub fn is_empty(&self) -> bool {
        self.records == 0
    }

    /// Patches the record count, last offset delta, max timestamp, length and CRC32C; returns the
    /// batch's size. An empty batch or one past Kafka's i32 limits is refused and removed from
    /// `out` again, leaving it as it was before [`BatchWriter::begin`].
    pub fn finish(self) -> Result<usize, String> {
        let problem = if self.records == 0 {
            Some("a batch needs at least one record".to_string())
        } else if i32::try_from(self.records).is_err() {
            Some(format!("{} records do not fit one batch", self.records))
        } else {
            None
        };
        if let Some(reason) = problem {
            self.out.truncate(self.start);
            return Err(reason);
        }
        let count = self.records as i32;
        let batch = &mut self.out[self.start..];
        batch[23..27].copy_from_slice(&(count - 1).to_be_bytes());
        let max_timestamp = self.base_timestamp.saturating_add(self.max_timestamp_delta);
        batch[35..43].copy_from_slice(&max_timestamp.to_be_bytes());
        batch[57..61].copy_from_slice(&count.to_be_bytes());
        match seal(batch) {
            Ok(()) => Ok(self.out.len() - self.start),
            Err(reason) => {
                self.out.truncate(self.start);
                Err(reason)
            }
        }
    }
}

/// Attribute bits 0-2: the compression codec.
const COMPRESSION_BITS: i16 = 0x7;

/// Writes `header` as the first [`BATCH_HEADER_BYTES`] of a batch (the inverse of
/// `BatchHeader::parse`), with the length and CRC left zero for [`seal`].
pub(crate) fn put_header(out: &mut BytesMut, header: &BatchHeader) {
    out.reserve(BATCH_HEADER_BYTES);
    out.put_i64(header.base_offset);
    out.put_i32(0); // batch length, set by `seal`
    out.put_i32(header.partition_leader_epoch);
    out.put_i8(2); // magic
    out.put_u32(0); // CRC32C, set by `seal`
    out.put_i16(header.attributes);
    out.put_i32(header.last_offset_delta);
    out.put_i64(header.base_timestamp);
    out.put_i64(header.max_timestamp);
    out.put_i64(header.producer_id);
    out.put_i16(header.producer_epoch);
    out.put_i32(header.base_sequence);
    out.put_i32(header.records_count);
}

/// Sets the batch length and CRC32C of `batch` (exactly one whole batch, every other field final).
pub(crate) fn seal(batch: &mut [u8]) -> Result<(), String> {
    debug_assert!(batch.len() >= BATCH_HEADER_BYTES);
    let length = i32::try_from(batch.len() - BATCH_LOG_OVERHEAD)
        .map_err(|_| format!("a batch of {} bytes is over Kafka's 2 GiB limit", batch.len()))?;
    batch[8..12].copy_from_slice(&length.to_be_bytes());
    seal_crc(batch);
    Ok(())
}

/// Appends one record in Kafka's `DefaultRecord` layout (attributes 0, no headers), its length
/// varint computed from the field sizes first.
#[inline(always)]
pub(crate) fn put_record(out: &mut BytesMut, offset_delta: i64, timestamp_delta: i64, key: Option<&[u8]>, value: Option<&[u8]>) {
    let field = |f: Option<&[u8]>| f.map_or(1, |f| varlong_len(f.len() as i64) + f.len());
    // attributes (1) + timestamp delta + offset delta + key + value + header count 0 (1)
    let body = 2 + varlong_len(timestamp_delta) + varlong_len(offset_delta) + field(key) + field(value);
    put_varlong(out, body as i64);
    out.put_i8(0);
    put_varlong(out, timestamp_delta);
    put_varlong(out, offset_delta);
    put_nullable(out, key);
    put_nullable(out, value);
    put_varlong(out, 0);
}

/// A nullable byte string: its length as a varint (-1 for null), then its bytes.
#[inline]
fn put_nullable(out: &mut BytesMut, bytes: Option<&[u8]>) {
    match bytes {
        Some(b) => {
            put_varlong(out, b.len() as i64);
            out.put_slice(b);
        }
        None => put_varlong(out, -1),
    }
}

#[inline]
fn zigzag(value: i64) -> u64 {
    ((value << 1) ^ (value >> 63)) as u64
}

/// Bytes [`put_varlong`] writes for `value`.
#[inline]
fn varlong_len(value: i64) -> usize {
    let bits = 64 - zigzag(value).leading_zeros() as usize;
    bits.max(1).div_ceil(7)
}

/// Zig-zag varint, as RecordBatch v2 records use.
#[inline]
fn put_varlong(out: &mut BytesMut, value: i64) {
    let mut v = zigzag(value);
    while v >= 0x80 {
        out.put_u8((v as u8) | 0x80);
        v >>= 7;
    }
    out.put_u8(v as u8);
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::log::check_batch;

    /// A varint's computed length is the length written, across every size boundary.
    #[test]
    fn varlong_len_matches_what_is_written() {
        for v in [0i64, 1, -1, 63, 64, -64, -65, 8191, 8192, 1 << 20, -(1 << 40), i64::MAX, i64::MIN] {
            let mut b = BytesMut::new();
            put_varlong(&mut b, v);
            assert_eq!(b.len(), varlong_len(v), "{v}");
        }
    }

    /// Two batches written back to back into one buffer are each valid (length, CRC) and carry the
    /// header fields, counts and max timestamp they were given; kafka-protocol decodes every
    /// record's offset, timestamp, key and value.
    #[test]
    fn batches_back_to_back_decode_with_kafka_protocol() {
        let mut out = BytesMut::new();
        let fields = BatchStart {
            partition_leader_epoch: -1,
            attributes: 0,
            base_timestamp: 1000,
            producer_id: 9,
            producer_epoch: 2,
            base_sequence: 40,
        };
        let mut first = BatchWriter::begin(&mut out, fields);
        first.push(0, Some(b"k1"), Some(b"v1"));
        first.push(7, None, Some(&[0u8; 200]));
        first.push(3, Some(b"k1"), None);
        let first_size = first.finish().unwrap();
        let mut second = BatchWriter::begin(&mut out, BatchStart { producer_id: -1, producer_epoch: -1, base_sequence: -1, ..fields });
        second.push(-5, Some(b""), Some(b""));
        let second_size = second.finish().unwrap();
        assert_eq!(first_size + second_size, out.len());

        let (header, size) = check_batch(&out).unwrap();
        assert_eq!(size, first_size);
        assert_eq!((header.records_count, header.last_offset_delta, header.base_timestamp, header.max_timestamp), (3, 2, 1000, 1007));
        assert_eq!((header.producer_id, header.producer_epoch, header.base_sequence, header.partition_leader_epoch), (9, 2, 40, -1));
        let (header, _) = check_batch(&out[first_size..]).unwrap();
        assert_eq!((header.records_count, header.max_timestamp, header.producer_id), (1, 995, -1));

        let mut bytes = out.freeze();
        let set = kafka_protocol::records::RecordBatchDecoder::decode(&mut bytes).unwrap();
        let got: Vec<_> = set
            .records
            .iter()
            .map(|r| (r.offset, r.timestamp, r.key.as_deref().map(<[u8]>::len), r.value.as_deref().map(<[u8]>::len)))
            .collect();
        assert_eq!(got, vec![(0, 1000, Some(2), Some(2)), (1, 1007, None, Some(200)), (2, 1003, Some(2), None)]);
        assert_eq!(set.records[1].sequence, 41);
    }

    /// An empty batch is refused and leaves the buffer as it was (the batches before it intact).
    #[test]
    fn an_empty_batch_is_refused_and_removed() {
        let mut out = BytesMut::from(&b"earlier"[..]);
        let fields = BatchStart {
            partition_leader_epoch: 0,
            attributes: 0,
            base_timestamp: 0,
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
        };
        assert!(BatchWriter::begin(&mut out, fields).finish().is_err());
        assert_eq!(&out[..], b"earlier");
    }

    /// `put_header` writes exactly what `BatchHeader::parse` reads back.
    #[test]
    fn header_round_trips_through_parse() {
        let header = BatchHeader {
            base_offset: 1 << 40,
            last_offset_delta: 17,
            partition_leader_epoch: 3,
            attributes: 0x14,
            base_timestamp: -1,
            max_timestamp: 1_700_000_000_000,
            producer_id: 77,
            producer_epoch: 4,
            base_sequence: i32::MAX,
            records_count: 5,
        };
        let mut out = BytesMut::new();
        put_header(&mut out, &header);
        assert_eq!(out.len(), BATCH_HEADER_BYTES);
        assert_eq!(BatchHeader::parse(&out), header);
    }
}
