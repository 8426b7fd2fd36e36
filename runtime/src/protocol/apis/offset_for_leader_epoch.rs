//! OffsetForLeaderEpoch (v2+): for each partition, the end offset of a requested leader epoch, from
//! the partition's leader-epoch cache (`broker::leader_epochs`). Consumers send it to detect log
//! truncation after a leader change or a seek with a known epoch (KIP-320); followers (KIP-101)
//! will when replication arrives.
//!
//! Kafka's rules: CLUSTER_ACTION on the cluster, or else DESCRIBE on the topic
//! (TOPIC_AUTHORIZATION_FAILED per partition); `current_leader_epoch` -1 skips the fencing check,
//! one older than the partition's epoch is FENCED_LEADER_EPOCH and a newer one
//! UNKNOWN_LEADER_EPOCH; an epoch with no answer (-1, or newer than any) is leader epoch -1 and end
//! offset -1 without an error.

use std::sync::Arc;

use kafka_protocol::messages::offset_for_leader_epoch_request::{OffsetForLeaderPartition, OffsetForLeaderTopic};
use kafka_protocol::messages::offset_for_leader_epoch_response::{EpochEndOffset, OffsetForLeaderTopicResult};
use kafka_protocol::messages::{OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};
use kafka_protocol::ResponseError;

use crate::broker::leader_epochs::UNDEFINED_EPOCH;
use crate::broker::partition::LEADER_EPOCH;
use crate::broker::Broker;
use crate::protocol::authorize::{allowed, Operation, Resource};
use crate::protocol::RequestContext;

/// Handles one OffsetForLeaderEpoch request. Errors are reported per partition.
pub async fn handle(broker: &Arc<Broker>, ctx: &RequestContext, request: OffsetForLeaderEpochRequest) -> OffsetForLeaderEpochResponse {
    let cluster_action = allowed(broker, ctx, Operation::ClusterAction, Resource::Cluster);
    let topics = request
        .topics
        .iter()
        .map(|topic| {
            let authorized = cluster_action || allowed(broker, ctx, Operation::Describe, Resource::Topic(topic.topic.as_str()));
            let partitions = topic
                .partitions
                .iter()
                .map(|p| if authorized { end_offset(broker, topic, p) } else { refused(p, ResponseError::TopicAuthorizationFailed) })
                .collect();
            OffsetForLeaderTopicResult::default().with_topic(topic.topic.clone()).with_partitions(partitions)
        })
        .collect();
    OffsetForLeaderEpochResponse::default().with_topics(topics)
}

fn end_offset(broker: &Broker, topic: &OffsetForLeaderTopic, request: &OffsetForLeaderPartition) -> EpochEndOffset {
    let Some(partition) = broker.partition(topic.topic.as_str(), request.partition) else {
        return refused(request, ResponseError::UnknownTopicOrPartition);
    };
    if let Some(error) = fencing_error(request.current_leader_epoch, LEADER_EPOCH) {
        return refused(request, error);
    }
    let (leader_epoch, end_offset) = partition.end_offset_for_epoch(request.leader_epoch);
    EpochEndOffset::default().with_partition(request.partition).with_leader_epoch(leader_epoch).with_end_offset(end_offset)
}

/// Kafka's `checkCurrentLeaderEpoch`: the client's idea of the current epoch against ours.
fn fencing_error(client_epoch: i32, partition_epoch: i32) -> Option<ResponseError> {
    match client_epoch {
        UNDEFINED_EPOCH => None,
        e if e < partition_epoch => Some(ResponseError::FencedLeaderEpoch),
        e if e > partition_epoch => Some(ResponseError::UnknownLeaderEpoch),
        _ => None,
    }
}

fn refused(request: &OffsetForLeaderPartition, error: ResponseError) -> EpochEndOffset {
    EpochEndOffset::default().with_partition(request.partition).with_error_code(error.code())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// -1 means "do not check"; anything else must equal the partition's epoch.
    #[test]
    fn current_leader_epoch_checks() {
        assert_eq!(fencing_error(-1, 3), None);
        assert_eq!(fencing_error(3, 3), None);
        assert_eq!(fencing_error(2, 3), Some(ResponseError::FencedLeaderEpoch));
        assert_eq!(fencing_error(4, 3), Some(ResponseError::UnknownLeaderEpoch));
    }
}
