//! Reading whole batches out of remote segments through the chunk cache. Every batch returned is
//! checked (length, magic, CRC32C, offsets inside the segment) so a damaged object becomes an
//! error for that fetch, never wrong records.

use bytes::Bytes;

use super::manifest::RemoteSegment;
use super::{Tier, TierError};
use crate::log::{batch_header, check_batch, BatchHeader, BATCH_HEADER_LEN};

/// The header and size of the batch at `pos`.
async fn header_at(tier: &Tier, seg: &RemoteSegment, pos: u64) -> Result<(BatchHeader, usize), TierError> {
    let corrupt = |reason: String| TierError::Corrupt { key: seg.log_key.clone(), reason };
    if pos + BATCH_HEADER_LEN as u64 > seg.size_bytes {
        return Err(corrupt(format!("batch header at byte {pos} runs past the end ({} bytes)", seg.size_bytes)));
    }
    let bytes = tier.cache.read(&seg.log_key, seg.size_bytes, pos, BATCH_HEADER_LEN as u64).await?;
    let (header, size) = batch_header(&bytes).map_err(|e| corrupt(format!("at byte {pos}: {e}")))?;
    if pos + size as u64 > seg.size_bytes || header.base_offset < seg.base_offset || header.last_offset() >= seg.next_offset {
        return Err(corrupt(format!(
            "batch at byte {pos} (offsets {}..={}, {size} bytes) does not fit the segment",
            header.base_offset,
            header.last_offset()
        )));
    }
    Ok((header, size))
}

/// See [`super::RemoteLog::read`].
pub(crate) async fn read_batches(
    tier: &Tier,
    seg: &RemoteSegment,
    offset: i64,
    max_bytes: usize,
    upper_bound: i64,
) -> Result<Bytes, TierError> {
    let index = tier.index(seg).await?;
    let mut pos = index.floor_position(seg.base_offset, offset);
    let (start, first) = loop {
        if pos >= seg.size_bytes {
            return Ok(Bytes::new());
        }
        let (h, size) = header_at(tier, seg, pos).await?;
        if h.last_offset() >= offset {
            break (pos, (h, size));
        }
        pos += size as u64;
    };
    if first.0.last_offset() >= upper_bound {
        return Ok(Bytes::new());
    }
    let mut end = start + first.1 as u64;
    while end < seg.size_bytes {
        let (h, size) = header_at(tier, seg, end).await?;
        if h.last_offset() >= upper_bound || (end - start) as usize + size > max_bytes {
            break;
        }
        end += size as u64;
    }
    let bytes = tier.cache.read(&seg.log_key, seg.size_bytes, start, end - start).await?;
    verify(seg, &bytes, start)?;
    Ok(bytes)
}

/// Checks every batch in `bytes` (read from byte `start` of the segment).
fn verify(seg: &RemoteSegment, bytes: &[u8], start: u64) -> Result<(), TierError> {
    let mut at = 0usize;
    let mut next = seg.base_offset;
    while at < bytes.len() {
        let (h, size) = check_batch(&bytes[at..]).map_err(|reason| TierError::Corrupt {
            key: seg.log_key.clone(),
            reason: format!("batch at byte {}: {reason}", start + at as u64),
        })?;
        if h.base_offset < next {
            return Err(TierError::Corrupt {
                key: seg.log_key.clone(),
                reason: format!("batch at byte {} goes back to offset {}", start + at as u64, h.base_offset),
            });
        }
        next = h.last_offset() + 1;
        at += size;
    }
    Ok(())
}

/// The first batch in `seg` with max timestamp `>= ts` and last offset `>= log_start`:
/// `(max(base offset, log_start), its max timestamp)`.
pub(crate) async fn find_timestamp(tier: &Tier, seg: &RemoteSegment, ts: i64, log_start: i64) -> Result<Option<(i64, i64)>, TierError> {
    let mut pos = 0u64;
    while pos < seg.size_bytes {
        let (h, size) = header_at(tier, seg, pos).await?;
        if h.max_timestamp >= ts && h.last_offset() >= log_start {
            return Ok(Some((h.base_offset.max(log_start), h.max_timestamp)));
        }
        pos += size as u64;
    }
    Ok(None)
}
