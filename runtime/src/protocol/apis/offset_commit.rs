//! OffsetCommit: stores a group's consumed positions durably (appended to `__consumer_offsets-0`
//! and fsynced before we answer). Partitions that do not exist get UNKNOWN_TOPIC_OR_PARTITION;
//! group-level rejections (ILLEGAL_GENERATION, ...) apply to every partition, as in Kafka.

use std::sync::Arc;

use kafka_protocol::messages::offset_commit_response::{OffsetCommitResponsePartition, OffsetCommitResponseTopic};
use kafka_protocol::messages::{OffsetCommitRequest, OffsetCommitResponse};
use kafka_protocol::ResponseError;

use crate::broker::Broker;
use crate::group::{CommitEntry, Committer, GroupOpError};
use crate::protocol::authorize::{allowed, Operation, Resource};
use crate::protocol::{error_code, RequestContext};

/// Handles one OffsetCommit request. Errors are reported inside the response's error codes.
pub async fn handle(broker: &Arc<Broker>, ctx: &RequestContext, request: OffsetCommitRequest) -> OffsetCommitResponse {
    let who = Committer {
        group_id: request.group_id.0.to_string(),
        generation_id: request.generation_id_or_member_epoch,
        member_id: request.member_id.to_string(),
        group_instance_id: request.group_instance_id.as_ref().map(|s| s.to_string()),
    };
    // Per partition, in request order: Some(code) decided here, None handed to the coordinator.
    let mut codes: Vec<Vec<Option<i16>>> = Vec::with_capacity(request.topics.len());
    let mut entries = Vec::new();
    // READ on the group, then READ on each topic (Kafka's order: a refused group refuses all).
    let group_readable = allowed(broker, ctx, Operation::Read, Resource::Group(&who.group_id));
    for topic in &request.topics {
        let mut topic_codes = Vec::with_capacity(topic.partitions.len());
        let topic_readable = group_readable && allowed(broker, ctx, Operation::Read, Resource::Topic(topic.name.0.as_str()));
        for p in &topic.partitions {
            if !group_readable {
                topic_codes.push(Some(ResponseError::GroupAuthorizationFailed.code()));
            } else if !topic_readable {
                topic_codes.push(Some(ResponseError::TopicAuthorizationFailed.code()));
            } else if broker.partition_exists(topic.name.0.as_str(), p.partition_index) {
                topic_codes.push(None);
                entries.push(CommitEntry {
                    topic: topic.name.0.to_string(),
                    partition: p.partition_index,
                    offset: p.committed_offset,
                    leader_epoch: if ctx.api_version >= 6 { p.committed_leader_epoch } else { -1 },
                    metadata: p.committed_metadata.as_ref().map(|m| m.to_string()).unwrap_or_default(),
                });
            } else {
                topic_codes.push(Some(ResponseError::UnknownTopicOrPartition.code()));
            }
        }
        codes.push(topic_codes);
    }
    let mut outcome: Box<dyn Iterator<Item = i16>> = if entries.is_empty() {
        Box::new(std::iter::empty())
    } else {
        let count = entries.len();
        match broker.groups.commit_offsets(&who, entries).await {
            Ok(results) => Box::new(results.into_iter().map(|r| r.map_or(0, |e| e.code()))),
            Err(GroupOpError::Rejected(e)) => Box::new(std::iter::repeat_n(e.code(), count)),
            Err(GroupOpError::Storage(e)) => {
                tracing::error!(group = %who.group_id, "offset commit failed: {e}");
                Box::new(std::iter::repeat_n(error_code::group_error(&e).code(), count))
            }
        }
    };
    let topics = request
        .topics
        .into_iter()
        .zip(codes)
        .map(|(topic, topic_codes)| {
            let partitions = topic
                .partitions
                .iter()
                .zip(topic_codes)
                .map(|(p, code)| {
                    let code = code.unwrap_or_else(|| outcome.next().unwrap_or(0));
                    OffsetCommitResponsePartition::default().with_partition_index(p.partition_index).with_error_code(code)
                })
                .collect();
            OffsetCommitResponseTopic::default().with_name(topic.name).with_partitions(partitions)
        })
        .collect();
    OffsetCommitResponse::default().with_topics(topics)
}
