//! The data-plane requests `sluice produce` and `sluice consume` need, on a [`KafkaClient`]:
//! Metadata, ListOffsets, Produce, Fetch, and the group offset calls (FindCoordinator,
//! OffsetFetch, OffsetCommit).
//!
//! Sluice is a single node that leads every partition and coordinates every group, so all of
//! this goes over the one connection the client opened (a multi-broker client would route by
//! leader). Versions are fixed: the oldest that carry every field we need and that the broker
//! supports, topic-by-name everywhere.

use std::collections::BTreeMap;

use anyhow::{bail, Context};
use bytes::{Bytes, BytesMut};
use kafka_protocol::error::ParseResponseErrorCode;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::offset_commit_request::{OffsetCommitRequestPartition, OffsetCommitRequestTopic};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    FetchRequest, FindCoordinatorRequest, GroupId, ListOffsetsRequest, MetadataRequest, OffsetCommitRequest, OffsetFetchRequest,
    ProduceRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType};

use super::kafka_client::KafkaClient;

const METADATA_VERSION: i16 = 9;
const LIST_OFFSETS_VERSION: i16 = 4;
const PRODUCE_VERSION: i16 = 8;
const FETCH_VERSION: i16 = 11;
const FIND_COORDINATOR_VERSION: i16 = 2;
const OFFSET_FETCH_VERSION: i16 = 7;
const OFFSET_COMMIT_VERSION: i16 = 7;

/// ListOffsets' "earliest" timestamp.
pub const EARLIEST: i64 = -2;
/// ListOffsets' "latest" timestamp.
pub const LATEST: i64 = -1;
/// How long a produce request may wait for the records to be durable.
pub const PRODUCE_TIMEOUT_MS: i32 = 30_000;
/// Bytes one fetch response may carry per partition (a larger first batch still comes whole).
pub const FETCH_PARTITION_BYTES_MAX: i32 = 1024 * 1024;
/// Bytes one fetch response may carry in total; below the client's response limit.
pub const FETCH_BYTES_MAX: i32 = 8 * 1024 * 1024;

/// One record read from a partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consumed {
    /// Partition index.
    pub partition: i32,
    /// Offset in that partition.
    pub offset: i64,
    /// Milliseconds since the Unix epoch.
    pub timestamp: i64,
    /// `None` is a null key.
    pub key: Option<Bytes>,
    /// `None` is a null value (a tombstone).
    pub value: Option<Bytes>,
    /// Headers in record order.
    pub headers: Vec<(String, Option<Bytes>)>,
}

/// What one partition answered to a fetch.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// Partition index.
    pub partition: i32,
    /// Its high watermark at the time of the fetch.
    pub high_watermark: i64,
    /// Records at or after the fetch offset, in offset order.
    pub records: Vec<Consumed>,
    /// The offset after the last record seen (control records included); the next fetch offset.
    pub next_offset: Option<i64>,
}

/// One record to produce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// `None` is a null key.
    pub key: Option<Bytes>,
    /// `None` is a null value.
    pub value: Option<Bytes>,
    /// Milliseconds since the Unix epoch.
    pub timestamp: i64,
}

fn kafka_error(code: i16, message: Option<&StrBytes>) -> Option<String> {
    let error = code.err()?;
    Some(match message {
        Some(m) if !m.is_empty() => format!("{m}"),
        _ => format!("{error}"),
    })
}

/// Encodes `records` as one RecordBatch v2 from no producer (id -1, base sequence -1).
pub fn encode_batch(records: &[Outgoing]) -> anyhow::Result<Bytes> {
    let batch: Vec<Record> = records
        .iter()
        .enumerate()
        .map(|(i, r)| Record {
            transactional: false,
            control: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            // offset - sequence is constant (1), which keeps every record in one batch
            // (shared/FACTS.md) and makes the batch's base sequence -1, "no sequence".
            sequence: (i as i32).wrapping_sub(1),
            timestamp: r.timestamp,
            key: r.key.clone(),
            value: r.value.clone(),
            headers: Default::default(),
            delete_horizon: false,
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(&mut buf, &batch, &RecordEncodeOptions { version: 2, compression: Compression::None })
        .context("cannot encode the record batch")?;
    Ok(buf.freeze())
}

/// Decodes every batch in `bytes`, keeping records at or after `from`. Control records are
/// skipped but still advance the returned next offset.
pub fn decode_records(partition: i32, mut bytes: Bytes, from: i64) -> anyhow::Result<(Vec<Consumed>, Option<i64>)> {
    let mut out = Vec::new();
    let mut next = None;
    while !bytes.is_empty() {
        let set = RecordBatchDecoder::decode_with_custom_compression(&mut bytes, Some(crate::transform::records::decompress))
            .with_context(|| format!("partition {partition}: cannot decode a record batch"))?;
        for r in set.records {
            if r.offset < from {
                continue;
            }
            next = Some(r.offset + 1);
            if r.control {
                continue;
            }
            let headers = r.headers.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
            out.push(Consumed { partition, offset: r.offset, timestamp: r.timestamp, key: r.key, value: r.value, headers });
        }
    }
    Ok((out, next))
}

impl KafkaClient {
    /// The partition indexes of `topic`, sorted. `auto_create` asks the broker to create it
    /// (if its `auto_create_topics` allows) as a Kafka producer would.
    pub async fn partitions(&mut self, topic: &str, auto_create: bool) -> anyhow::Result<Vec<i32>> {
        let request = MetadataRequest::default()
            .with_topics(Some(vec![MetadataRequestTopic::default().with_name(Some(TopicName(StrBytes::from_string(topic.to_string()))))]))
            .with_allow_auto_topic_creation(auto_create);
        let response = self.call(&request, METADATA_VERSION).await?;
        let Some(t) = response.topics.into_iter().find(|t| t.name.as_ref().is_some_and(|n| n.0.as_str() == topic)) else {
            bail!("the broker did not describe topic {topic}");
        };
        if t.error_code == kafka_protocol::ResponseError::UnknownTopicOrPartition.code() {
            bail!("unknown topic {topic}");
        }
        if let Some(e) = kafka_error(t.error_code, None) {
            bail!("topic {topic}: {e}");
        }
        let mut partitions: Vec<i32> = t.partitions.iter().map(|p| p.partition_index).collect();
        partitions.sort_unstable();
        Ok(partitions)
    }

    /// The offset for `timestamp` ([`EARLIEST`], [`LATEST`] or ms) of each partition.
    pub async fn list_offsets(&mut self, topic: &str, partitions: &[i32], timestamp: i64) -> anyhow::Result<BTreeMap<i32, i64>> {
        let parts = partitions.iter().map(|&p| ListOffsetsPartition::default().with_partition_index(p).with_timestamp(timestamp)).collect();
        let request = ListOffsetsRequest::default().with_replica_id((-1).into()).with_topics(vec![ListOffsetsTopic::default()
            .with_name(TopicName(StrBytes::from_string(topic.to_string())))
            .with_partitions(parts)]);
        let response = self.call(&request, LIST_OFFSETS_VERSION).await?;
        let mut out = BTreeMap::new();
        for t in response.topics {
            for p in t.partitions {
                if let Some(e) = kafka_error(p.error_code, None) {
                    bail!("list offsets of {topic}-{}: {e}", p.partition_index);
                }
                out.insert(p.partition_index, p.offset);
            }
        }
        Ok(out)
    }

    /// Produces one batch to one partition with acks=all; returns its base offset.
    pub async fn produce(&mut self, topic: &str, partition: i32, batch: Bytes) -> anyhow::Result<i64> {
        let request =
            ProduceRequest::default().with_acks(-1).with_timeout_ms(PRODUCE_TIMEOUT_MS).with_topic_data(vec![TopicProduceData::default()
                .with_name(TopicName(StrBytes::from_string(topic.to_string())))
                .with_partition_data(vec![PartitionProduceData::default().with_index(partition).with_records(Some(batch))])]);
        let response = self.call(&request, PRODUCE_VERSION).await?;
        let Some(p) = response.responses.into_iter().flat_map(|t| t.partition_responses).find(|p| p.index == partition) else {
            bail!("the broker did not answer for {topic}-{partition}");
        };
        if let Some(e) = kafka_error(p.error_code, p.error_message.as_ref()) {
            bail!("produce to {topic}-{partition}: {e}");
        }
        Ok(p.base_offset)
    }

    /// One fetch of `topic` from each partition's position, waiting up to `max_wait_ms` for data.
    pub async fn fetch(&mut self, topic: &str, positions: &BTreeMap<i32, i64>, max_wait_ms: i32) -> anyhow::Result<Vec<Fetched>> {
        let partitions = positions
            .iter()
            .map(|(&p, &offset)| {
                FetchPartition::default().with_partition(p).with_fetch_offset(offset).with_partition_max_bytes(FETCH_PARTITION_BYTES_MAX)
            })
            .collect();
        let request = FetchRequest::default()
            .with_replica_id((-1).into())
            .with_max_wait_ms(max_wait_ms)
            .with_min_bytes(1)
            .with_max_bytes(FETCH_BYTES_MAX)
            .with_session_epoch(-1)
            .with_topics(vec![FetchTopic::default()
                .with_topic(TopicName(StrBytes::from_string(topic.to_string())))
                .with_partitions(partitions)]);
        let response = self.call(&request, FETCH_VERSION).await?;
        if let Some(e) = kafka_error(response.error_code, None) {
            bail!("fetch from {topic}: {e}");
        }
        let mut out = Vec::new();
        for t in response.responses {
            for p in t.partitions {
                if let Some(e) = kafka_error(p.error_code, None) {
                    bail!("fetch from {topic}-{}: {e}", p.partition_index);
                }
                let from = positions.get(&p.partition_index).copied().unwrap_or(0);
                let (records, next_offset) = match p.records {
                    Some(bytes) => decode_records(p.partition_index, bytes, from)?,
                    None => (Vec::new(), None),
                };
                out.push(Fetched { partition: p.partition_index, high_watermark: p.high_watermark, records, next_offset });
            }
        }
        Ok(out)
    }

    /// Checks that this broker coordinates `group` (always true for a single node; the call also
    /// validates the group id).
    pub async fn find_coordinator(&mut self, group: &str) -> anyhow::Result<()> {
        let request = FindCoordinatorRequest::default().with_key(StrBytes::from_string(group.to_string())).with_key_type(0);
        let response = self.call(&request, FIND_COORDINATOR_VERSION).await?;
        if let Some(e) = kafka_error(response.error_code, response.error_message.as_ref()) {
            bail!("group {group}: {e}");
        }
        Ok(())
    }

    /// The group's committed offsets for `partitions` of `topic`; partitions without a commit
    /// are left out.
    pub async fn committed(&mut self, group: &str, topic: &str, partitions: &[i32]) -> anyhow::Result<BTreeMap<i32, i64>> {
        let request =
            OffsetFetchRequest::default().with_group_id(GroupId(StrBytes::from_string(group.to_string()))).with_topics(Some(vec![
                OffsetFetchRequestTopic::default()
                    .with_name(TopicName(StrBytes::from_string(topic.to_string())))
                    .with_partition_indexes(partitions.to_vec()),
            ]));
        let response = self.call(&request, OFFSET_FETCH_VERSION).await?;
        if let Some(e) = kafka_error(response.error_code, None) {
            bail!("committed offsets of group {group}: {e}");
        }
        let mut out = BTreeMap::new();
        for p in response.topics.into_iter().flat_map(|t| t.partitions) {
            if let Some(e) = kafka_error(p.error_code, None) {
                bail!("committed offset of group {group} on {topic}-{}: {e}", p.partition_index);
            }
            if p.committed_offset >= 0 {
                out.insert(p.partition_index, p.committed_offset);
            }
        }
        Ok(out)
    }

    /// Commits `offsets` (next offset to read, per partition) for `group` as a "simple" consumer
    /// (no member id, generation -1): the coordinator accepts that while the group has no
    /// members.
    pub async fn commit(&mut self, group: &str, topic: &str, offsets: &BTreeMap<i32, i64>) -> anyhow::Result<()> {
        self.commit_as(group, topic, offsets, (-1, "")).await
    }

    /// Commits `offsets` as member `member_id` of generation `generation` (or, with (-1, ""), as a
    /// simple consumer).
    pub async fn commit_as(
        &mut self,
        group: &str,
        topic: &str,
        offsets: &BTreeMap<i32, i64>,
        (generation, member_id): (i32, &str),
    ) -> anyhow::Result<()> {
        let partitions = offsets
            .iter()
            .map(|(&p, &o)| OffsetCommitRequestPartition::default().with_partition_index(p).with_committed_offset(o))
            .collect();
        let request = OffsetCommitRequest::default()
            .with_group_id(GroupId(StrBytes::from_string(group.to_string())))
            .with_generation_id_or_member_epoch(generation)
            .with_member_id(StrBytes::from_string(member_id.to_string()))
            .with_topics(vec![OffsetCommitRequestTopic::default()
                .with_name(TopicName(StrBytes::from_string(topic.to_string())))
                .with_partitions(partitions)]);
        let response = self.call(&request, OFFSET_COMMIT_VERSION).await?;
        for p in response.topics.into_iter().flat_map(|t| t.partitions) {
            if let Some(e) = kafka_error(p.error_code, None) {
                bail!("commit for group {group} on {topic}-{}: {e}", p.partition_index);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Many records encode as ONE batch with no producer and base sequence -1, and decode back
    /// with their offsets; records before `from` are dropped (a fetch may start mid-batch).
    #[test]
    fn batches_round_trip_as_one_batch() {
        let records: Vec<Outgoing> = (0..500)
            .map(|i| Outgoing {
                key: (i % 2 == 0).then(|| Bytes::from(format!("k{i}"))),
                value: Some(Bytes::from(format!("v{i}"))),
                timestamp: 1_000 + i,
            })
            .collect();
        let bytes = encode_batch(&records).unwrap();
        let (header, size) = crate::log::batch_header(&bytes).unwrap();
        assert_eq!(header.producer_id, -1);
        assert_eq!(header.base_sequence, -1);
        assert_eq!((size, header.records_count), (bytes.len(), 500), "one batch holds every record");
        let (decoded, next) = decode_records(3, bytes, 498).unwrap();
        assert_eq!(next, Some(500));
        assert_eq!(decoded.len(), 2);
        assert_eq!(
            decoded[0],
            Consumed {
                partition: 3,
                offset: 498,
                timestamp: 1_498,
                key: Some(Bytes::from("k498")),
                value: Some(Bytes::from("v498")),
                headers: vec![]
            }
        );
        assert_eq!(decoded[1].key, None);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(decode_records(0, Bytes::from_static(&[0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 9, 1, 2]), 0).is_err());
    }
}
