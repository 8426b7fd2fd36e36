//! ListOffsets: earliest (-2), latest (-1, the high watermark), max-timestamp (-3),
//! earliest-local (-4, the local log start offset under tiered storage), or the first offset whose timestamp is at least the one given.

use std::sync::Arc;

use kafka_protocol::messages::list_offsets_response::{ListOffsetsPartitionResponse, ListOffsetsTopicResponse};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};
use kafka_protocol::ResponseError;

use crate::broker::partition::{blocking, LEADER_EPOCH};
use crate::broker::{Broker, BrokerError, Partition};
use crate::protocol::authorize::{allowed, Operation, Resource};
use crate::protocol::error_code;
use crate::protocol::RequestContext;

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
const EARLIEST_LOCAL: i64 = -4;

/// Handles one ListOffsets request. Errors are reported inside the response's error codes.
pub async fn handle(broker: &Arc<Broker>, ctx: &RequestContext, request: ListOffsetsRequest) -> ListOffsetsResponse {
    let version = ctx.api_version;
    let mut topics = Vec::with_capacity(request.topics.len());
    for topic in request.topics {
        let describable = allowed(broker, ctx, Operation::Describe, Resource::Topic(topic.name.0.as_str()));
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        for p in &topic.partitions {
            let out = ListOffsetsPartitionResponse::default().with_partition_index(p.partition_index);
            let result = match broker.partition(topic.name.0.as_str(), p.partition_index) {
                _ if !describable => Err(ResponseError::TopicAuthorizationFailed),
                None => Err(ResponseError::UnknownTopicOrPartition),
                Some(_) if p.current_leader_epoch > LEADER_EPOCH => Err(ResponseError::UnknownLeaderEpoch),
                Some(partition) => lookup(partition, p.timestamp).await.map_err(|e| error_code::response_error(&e)),
            };
            let out = match result {
                Ok((offset, timestamp)) => {
                    let out = out.with_offset(offset).with_timestamp(timestamp);
                    if version >= 4 {
                        out.with_leader_epoch(LEADER_EPOCH)
                    } else {
                        out
                    }
                }
                Err(code) => out.with_error_code(code.code()).with_offset(-1).with_timestamp(-1),
            };
            partitions.push(out);
        }
        topics.push(ListOffsetsTopicResponse::default().with_name(topic.name).with_partitions(partitions));
    }
    ListOffsetsResponse::default().with_topics(topics)
}

/// (offset, timestamp) for one partition; (-1, -1) when no record matches.
async fn lookup(partition: Arc<Partition>, timestamp: i64) -> Result<(i64, i64), BrokerError> {
    match timestamp {
        LATEST => Ok((partition.high_watermark(), -1)),
        EARLIEST => Ok((partition.log_start_offset(), -1)),
        EARLIEST_LOCAL => Ok((partition.local_log_start_offset(), -1)),
        MAX_TIMESTAMP => {
            blocking("list offsets", move || {
                let hwm = partition.high_watermark();
                let found = partition.max_timestamp()?;
                Ok(found.filter(|&(offset, _)| offset < hwm).unwrap_or((-1, -1)))
            })
            .await?
        }
        ts if ts >= 0 => {
            blocking("list offsets", move || {
                let hwm = partition.high_watermark();
                let found = partition.offset_for_timestamp(ts)?;
                Ok(found.filter(|&(offset, _)| offset < hwm).unwrap_or((-1, -1)))
            })
            .await?
        }
        other => Err(BrokerError::InvalidRequest { reason: format!("timestamp {other} is not a supported ListOffsets query") }),
    }
}
