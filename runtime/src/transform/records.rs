//! Kafka bytes ↔ transform records: decoding fetched RecordBatches (any codec) into the ABI's
//! [`sluice_abi::Record`]s, encoding one output RecordBatch per output partition with the
//! runner's producer id and sequence numbers, and Kafka's murmur2 key partitioner.

use bytes::{Buf, Bytes, BytesMut};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression, Record as KafkaRecord, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use sluice_abi::{Header, Record};

/// kafka-protocol's decompression hook, on the log's codec table (lz4 via lz4_flex). The CLI
/// consumer decodes fetched batches with it too.
pub(crate) fn decompress(b: &mut Bytes, c: Compression) -> anyhow::Result<Bytes> {
    let codec = match c {
        Compression::None => 0,
        Compression::Gzip => 1,
        Compression::Snappy => 2,
        Compression::Lz4 => 3,
        Compression::Zstd => 4,
    };
    crate::log::decompress(codec, b.copy_to_bytes(b.remaining()))
}

/// Decodes the batches in `bytes` into records with offsets in `[from, to)`; control records
/// (transaction markers) are skipped. Also returns the offset after the last record seen in that
/// range, control records included (`None` if there was none).
pub fn decode(mut bytes: Bytes, from: i64, to: i64) -> Result<(Vec<Record>, Option<i64>), String> {
    let mut out = Vec::new();
    let mut seen_end = None;
    while bytes.has_remaining() {
        let set = RecordBatchDecoder::decode_with_custom_compression(&mut bytes, Some(decompress)).map_err(|e| format!("{e:#}"))?;
        for r in set.records {
            if r.offset < from || r.offset >= to {
                continue;
            }
            seen_end = Some(r.offset + 1);
            if r.control {
                continue;
            }
            let headers = r.headers.into_iter().map(|(k, v)| Header { key: k.to_string(), value: v.map(|v| v.to_vec()) }).collect();
            out.push(Record {
                offset: r.offset,
                timestamp: r.timestamp,
                key: r.key.map(|k| k.to_vec()),
                value: r.value.map(|v| v.to_vec()),
                headers,
            });
        }
    }
    Ok((out, seen_end))
}

/// One output record, resolved (nothing left to inherit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutRecord {
    /// `None` is a null key.
    pub key: Option<Vec<u8>>,
    /// `None` is a null value.
    pub value: Option<Vec<u8>>,
    /// (key, value) pairs. Kafka clients reject duplicate keys only on their side; the encoder
    /// keeps the last value of a repeated key.
    pub headers: Vec<(String, Option<Vec<u8>>)>,
    /// Milliseconds since the Unix epoch.
    pub timestamp: i64,
}

/// Encodes `records` as one RecordBatch v2 from idempotent producer `producer_id` (epoch 0) with
/// sequences `base_sequence..`. Uncompressed.
pub fn encode_batch(records: &[OutRecord], producer_id: i64, base_sequence: i32) -> Result<Bytes, String> {
    let mut batch = Vec::with_capacity(records.len());
    for (i, r) in records.iter().enumerate() {
        let i = i32::try_from(i).map_err(|_| "too many records in one output batch".to_string())?;
        let mut headers = kafka_protocol::indexmap::IndexMap::new();
        for (k, v) in &r.headers {
            headers.insert(StrBytes::from_string(k.clone()), v.as_ref().map(|v| Bytes::copy_from_slice(v)));
        }
        batch.push(KafkaRecord {
            transactional: false,
            control: false,
            partition_leader_epoch: 0,
            producer_id,
            producer_epoch: 0,
            timestamp_type: TimestampType::Creation,
            // offset - sequence is constant, which keeps every record in one batch (FACTS.md).
            offset: i64::from(i),
            sequence: base_sequence.wrapping_add(i),
            timestamp: r.timestamp,
            key: r.key.as_ref().map(|k| Bytes::copy_from_slice(k)),
            value: r.value.as_ref().map(|v| Bytes::copy_from_slice(v)),
            headers,
            delete_horizon: false,
        });
    }
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions { version: 2, compression: Compression::None };
    RecordBatchEncoder::encode(&mut buf, &batch, &options).map_err(|e| format!("{e:#}"))?;
    Ok(buf.freeze())
}

/// Kafka's `Utils.murmur2` (the Java client's default partitioner hash).
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let len = data.len() as u32;
    let mut h: u32 = SEED ^ len;
    let chunks = data.chunks_exact(4);
    let tail = chunks.remainder();
    for c in chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    match tail.len() {
        3 => {
            h ^= u32::from(tail[2]) << 16;
            h ^= u32::from(tail[1]) << 8;
            h ^= u32::from(tail[0]);
            h = h.wrapping_mul(M);
        }
        2 => {
            h ^= u32::from(tail[1]) << 8;
            h ^= u32::from(tail[0]);
            h = h.wrapping_mul(M);
        }
        1 => {
            h ^= u32::from(tail[0]);
            h = h.wrapping_mul(M);
        }
        _ => {}
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// Kafka's default partition for a non-null key: `toPositive(murmur2(key)) % partitions`.
pub fn key_partition(key: &[u8], partitions: i32) -> i32 {
    (murmur2(key) & 0x7fff_ffff) % partitions.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Known values from Kafka's `UtilsTest.testMurmur2`.
    #[test]
    fn murmur2_matches_kafka() {
        assert_eq!(murmur2(b"21"), -973932308);
        assert_eq!(murmur2(b"foobar"), -790332482);
        assert_eq!(murmur2(b"a-little-bit-long-string"), -985981536);
        assert_eq!(murmur2(b"a-little-bit-longer-string"), -1486304829);
        assert_eq!(murmur2(b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8"), -58897971);
        assert_eq!(murmur2(b"abc"), 479470107);
    }

    /// Fetched batches decode into records whatever their codec (the log's codec table).
    #[test]
    fn input_batches_decode_with_every_codec() {
        for codec in 0..=4i16 {
            let batch = crate::log::tests::keyed_batch(&[(Some(b"k"), Some(b"v1")), (None, Some(b"v2"))], 5, codec);
            let (records, end) = decode(Bytes::from(batch), 0, 10).expect("decode");
            let got: Vec<_> = records.iter().map(|r| (r.offset, r.key.clone(), r.value.clone())).collect();
            assert_eq!(got, vec![(0, Some(b"k".to_vec()), Some(b"v1".to_vec())), (1, None, Some(b"v2".to_vec()))], "codec {codec}");
            assert_eq!(end, Some(2));
        }
    }

    /// Output batches decode back (with kafka-protocol's own decoder) with producer fields set.
    #[test]
    fn output_batch_round_trips() {
        let out = vec![
            OutRecord { key: Some(b"k".to_vec()), value: Some(b"v".to_vec()), headers: vec![("h".into(), None)], timestamp: 5 },
            OutRecord { key: None, value: None, headers: vec![], timestamp: 6 },
        ];
        let bytes = encode_batch(&out, 42, 7).expect("encode");
        let mut b = bytes.clone();
        let set = RecordBatchDecoder::decode_with_custom_compression(&mut b, Some(decompress)).expect("decode");
        assert_eq!(set.records.len(), 2);
        assert_eq!(set.records[1].sequence, 8);
        assert_eq!(set.records[0].producer_id, 42);
        let (back, end) = decode(bytes, 0, 10).expect("decode");
        assert_eq!(end, Some(2));
        assert_eq!(back[0].value.as_deref(), Some(&b"v"[..]));
        assert_eq!(back[1].timestamp, 6);
    }
}
