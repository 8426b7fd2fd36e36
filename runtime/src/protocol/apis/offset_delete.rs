//! OffsetDelete: removes some committed offsets of a group (`kafka-consumer-groups
//! --delete-offsets`, admin clients' `deleteConsumerGroupOffsets`). The group rules are the
//! coordinator's (`group::offset_delete`); this file does Kafka's request-level checks first
//! (`KafkaApis.handleOffsetDeleteRequest`): DELETE on the group (else a top-level
//! GROUP_AUTHORIZATION_FAILED), READ on each topic (TOPIC_AUTHORIZATION_FAILED for its
//! partitions), and partitions that do not exist are UNKNOWN_TOPIC_OR_PARTITION. A group-level
//! error (GROUP_ID_NOT_FOUND, NON_EMPTY_GROUP, …) is the top-level error code, alongside the
//! partitions refused before the group was asked, as Kafka merges them.

use std::sync::Arc;

use kafka_protocol::messages::offset_delete_response::{OffsetDeleteResponsePartition, OffsetDeleteResponseTopic};
use kafka_protocol::messages::{OffsetDeleteRequest, OffsetDeleteResponse};
use kafka_protocol::ResponseError;

use crate::broker::Broker;
use crate::group::GroupOpError;
use crate::protocol::authorize::{allowed, Operation, Resource};
use crate::protocol::{error_code, RequestContext};

/// Handles one OffsetDelete request.
pub async fn handle(broker: &Arc<Broker>, ctx: &RequestContext, request: OffsetDeleteRequest) -> OffsetDeleteResponse {
    let group_id = request.group_id.0.as_str();
    if !allowed(broker, ctx, Operation::Delete, Resource::Group(group_id)) {
        return OffsetDeleteResponse::default().with_error_code(ResponseError::GroupAuthorizationFailed.code());
    }
    if group_id.is_empty() {
        return OffsetDeleteResponse::default().with_error_code(ResponseError::InvalidGroupId.code());
    }
    // Per partition in request order: Some(code) decided here, None asked of the coordinator.
    let mut decided: Vec<Vec<Option<i16>>> = Vec::with_capacity(request.topics.len());
    let mut asked: Vec<(String, i32)> = Vec::new();
    for topic in &request.topics {
        let name = topic.name.0.as_str();
        let readable = allowed(broker, ctx, Operation::Read, Resource::Topic(name));
        let codes = topic
            .partitions
            .iter()
            .map(|p| {
                if !readable {
                    Some(ResponseError::TopicAuthorizationFailed.code())
                } else if broker.partition_exists(name, p.partition_index) {
                    asked.push((name.to_string(), p.partition_index));
                    None
                } else {
                    Some(ResponseError::UnknownTopicOrPartition.code())
                }
            })
            .collect();
        decided.push(codes);
    }
    let (group_error, mut outcome) = match broker.groups.delete_offsets(group_id, &asked).await {
        Ok(results) => (0, results.into_iter().map(|r| r.map_or(0, |e| e.code())).collect::<Vec<_>>().into_iter()),
        Err(GroupOpError::Rejected(e)) => (e.code(), Vec::new().into_iter()),
        Err(GroupOpError::Storage(e)) => {
            tracing::error!(group = %group_id, "offset deletion failed: {e}");
            (error_code::group_error(&e).code(), Vec::new().into_iter())
        }
    };
    let topics = request
        .topics
        .iter()
        .zip(decided)
        .filter_map(|(topic, codes)| {
            let partitions: Vec<OffsetDeleteResponsePartition> = topic
                .partitions
                .iter()
                .zip(codes)
                .filter_map(|(p, code)| {
                    // After a group-level error only the partitions refused here are listed.
                    let code = match code {
                        Some(code) => code,
                        None if group_error != 0 => return None,
                        None => outcome.next().unwrap_or(0),
                    };
                    Some(OffsetDeleteResponsePartition::default().with_partition_index(p.partition_index).with_error_code(code))
                })
                .collect();
            (!partitions.is_empty()).then(|| OffsetDeleteResponseTopic::default().with_name(topic.name.clone()).with_partitions(partitions))
        })
        .collect();
    OffsetDeleteResponse::default().with_error_code(group_error).with_topics(topics)
}
