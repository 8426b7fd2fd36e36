//! Records inside a batch, for compaction and `compression.type`: decompressing a batch's records section, walking its
//! records without re-encoding them, and building a batch back from retained records.
//!
//! Why not decode into `kafka_protocol::records::Record` and re-encode: that type keeps headers in
//! an `IndexMap` keyed by UTF-8 strings, so duplicate or non-UTF-8 header keys would be lost or
//! rejected. A retained record is instead copied byte for byte; only the batch around it is new.
//! Offset and timestamp deltas stay valid because the batch keeps its base offset and base
//! timestamp. Compression codecs come from `kafka_protocol::compression` (gzip, snappy, zstd) and
//! `lz4_flex` (LZ4 frame format with 64 KB blocks, as Kafka writes it).

use std::io::{Read, Write};

use bytes::{Buf, Bytes, BytesMut};
use kafka_protocol::compression::{Compressor, Decompressor, Gzip, Snappy, Zstd};

use super::batch_writer::{put_header, seal};
use super::format::BATCH_HEADER_BYTES;
use super::writer::validate_all;
use super::{BatchHeader, LogError};

/// One record of a batch, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RawRecord {
    /// The whole record including its length varint.
    pub bytes: Bytes,
    pub offset_delta: i32,
    pub timestamp_delta: i64,
    /// `None` for a null key.
    pub key: Option<Bytes>,
    /// The value is null: a tombstone.
    pub tombstone: bool,
}

/// Decompresses the records section of `batch` (a whole, validated batch).
pub(crate) fn records_section(batch: &[u8], header: &BatchHeader) -> Result<Bytes, String> {
    decompress(header.compression(), Bytes::copy_from_slice(&batch[BATCH_HEADER_BYTES..]))
        .map_err(|e| format!("decompressing batch at offset {}: {e:#}", header.base_offset))
}

/// Decompresses a records section written with Kafka codec `codec` (attribute bits 0-2). The one
/// codec table of the crate: the log, compaction and transforms' batch decoding all use it.
pub fn decompress(codec: i16, mut raw: Bytes) -> anyhow::Result<Bytes> {
    match codec {
        0 => Ok(raw),
        1 => Gzip::decompress(&mut raw, |b: &mut Bytes| Ok(b.copy_to_bytes(b.remaining()))),
        2 => Snappy::decompress(&mut raw, |b: &mut Bytes| Ok(b.copy_to_bytes(b.remaining()))),
        3 => {
            let mut out = Vec::new();
            lz4_flex::frame::FrameDecoder::new(&raw[..]).read_to_end(&mut out)?;
            Ok(Bytes::from(out))
        }
        4 => Zstd::decompress(&mut raw, |b: &mut Bytes| Ok(b.copy_to_bytes(b.remaining()))),
        other => Err(anyhow::anyhow!("unknown compression codec {other}")),
    }
}

/// Splits a decompressed records section into `count` records.
pub(crate) fn parse_records(mut section: Bytes, count: i32) -> Result<Vec<RawRecord>, String> {
    let mut out = Vec::with_capacity(count.max(0) as usize);
    for i in 0..count {
        let whole = section.clone();
        let len = varint(&mut section).ok_or_else(|| format!("record {i}: bad length"))?;
        let prefix = whole.len() - section.len();
        if len < 0 || len as usize > section.len() {
            return Err(format!("record {i}: length {len} past the end of the batch"));
        }
        let mut body = section.split_to(len as usize);
        let record = whole.slice(..prefix + len as usize);
        let bad = || format!("record {i}: truncated fields");
        if !body.has_remaining() {
            return Err(bad());
        }
        body.advance(1); // attributes (unused)
        let timestamp_delta = varlong(&mut body).ok_or_else(bad)?;
        let offset_delta = varint(&mut body).ok_or_else(bad)?;
        let key = nullable_bytes(&mut body).ok_or_else(bad)?;
        let value_len = varint(&mut body).ok_or_else(bad)?;
        out.push(RawRecord { bytes: record, offset_delta, timestamp_delta, key, tombstone: value_len < 0 });
    }
    Ok(out)
}

/// Builds a batch with `header`'s fields around `records` (copied as they are), compressed with
/// the header's codec; `records_count`, the length and the CRC are set from what is written. The
/// header keeps `last_offset_delta` and the timestamps, which compaction preserves, so this writes
/// the header itself rather than through [`super::BatchWriter`], which numbers its own records.
pub(crate) fn build_batch(header: &BatchHeader, records: &[&[u8]]) -> Result<Vec<u8>, String> {
    let mut section = BytesMut::new();
    for r in records {
        section.extend_from_slice(r);
    }
    let payload: Vec<u8> = match header.compression() {
        0 => section.to_vec(),
        1 => compress_with::<Gzip>(&section)?,
        2 => compress_with::<Snappy>(&section)?,
        3 => {
            let info = lz4_flex::frame::FrameInfo::new().block_size(lz4_flex::frame::BlockSize::Max64KB);
            let mut enc = lz4_flex::frame::FrameEncoder::with_frame_info(info, Vec::new());
            enc.write_all(&section).map_err(|e| format!("lz4: {e}"))?;
            enc.finish().map_err(|e| format!("lz4: {e}"))?
        }
        4 => compress_with::<Zstd>(&section)?,
        other => return Err(format!("unknown compression codec {other}")),
    };
    let count = i32::try_from(records.len()).map_err(|_| format!("{} records do not fit one batch", records.len()))?;
    let mut b = BytesMut::with_capacity(BATCH_HEADER_BYTES + payload.len());
    put_header(&mut b, &BatchHeader { records_count: count, ..*header });
    b.extend_from_slice(&payload);
    seal(&mut b)?;
    Ok(b.into())
}

/// Rebuilds each batch of a produce request whose codec is not `codec` with `codec`: record bytes,
/// header fields, offsets and sequences stay; only the records section and the CRC change. Every
/// batch is validated first (a corrupt batch is refused, never rewritten). Control batches are
/// left alone. `None` when every batch already uses `codec`.
pub(crate) fn recompress(records: &[u8], codec: i16, max_batch_bytes: u32) -> Result<Option<Vec<u8>>, LogError> {
    let batches = validate_all(records, max_batch_bytes)?;
    let keep = |h: &BatchHeader| h.compression() == codec || h.attributes & CONTROL_BIT != 0;
    if batches.iter().all(|(h, _, _)| keep(h)) {
        return Ok(None);
    }
    let mut out = Vec::with_capacity(records.len());
    for (header, pos, size) in batches {
        let bytes = &records[pos..pos + size];
        if keep(&header) {
            out.extend_from_slice(bytes);
            continue;
        }
        let corrupt = |reason: String| LogError::CorruptBatch { position: pos, reason };
        let section = records_section(bytes, &header).map_err(corrupt)?;
        let parsed = parse_records(section, header.records_count).map_err(corrupt)?;
        let refs: Vec<&[u8]> = parsed.iter().map(|r| r.bytes.as_ref()).collect();
        let rebuilt = BatchHeader { attributes: (header.attributes & !0x7) | codec, ..header };
        out.extend_from_slice(&build_batch(&rebuilt, &refs).map_err(corrupt)?);
    }
    Ok(Some(out))
}

/// Attribute bit of a transaction control batch.
const CONTROL_BIT: i16 = 0x20;

fn compress_with<C: Compressor<BytesMut, BufMut = BytesMut>>(section: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = BytesMut::new();
    C::compress(&mut out, |b: &mut BytesMut| {
        b.extend_from_slice(section);
        Ok(())
    })
    .map_err(|e| format!("compressing: {e:#}"))?;
    Ok(out.to_vec())
}

fn varlong(b: &mut Bytes) -> Option<i64> {
    let mut z = 0u64;
    for shift in (0..70).step_by(7) {
        if !b.has_remaining() {
            return None;
        }
        let byte = b.get_u8();
        z |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some((z >> 1) as i64 ^ -((z & 1) as i64));
        }
    }
    None
}

fn varint(b: &mut Bytes) -> Option<i32> {
    varlong(b).and_then(|v| i32::try_from(v).ok())
}

fn nullable_bytes(b: &mut Bytes) -> Option<Option<Bytes>> {
    let len = varint(b)?;
    if len < 0 {
        return Some(None);
    }
    if len as usize > b.remaining() {
        return None;
    }
    Some(Some(b.split_to(len as usize)))
}
