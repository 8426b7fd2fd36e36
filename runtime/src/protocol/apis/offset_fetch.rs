//! OffsetFetch: a group's committed offsets. v1–7 ask for one group; v8+ for several
//! (`groups`). A null topic list means "every partition the group committed". Partitions
//! without a commit get offset -1 and no error, as in Kafka. `require_stable` needs no waiting:
//! without transactions there are never pending offsets.

use std::sync::Arc;

use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions, OffsetFetchResponseTopic,
    OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{OffsetFetchRequest, OffsetFetchResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use crate::broker::Broker;
use crate::group::{CommittedOffset, GroupCoordinator};
use crate::protocol::authorize::{allowed, Operation, Resource};
use crate::protocol::RequestContext;

/// One partition's answer, independent of the response version.
struct Fetched {
    partition: i32,
    offset: Option<CommittedOffset>,
    /// Non-zero when the partition is refused (TOPIC_AUTHORIZATION_FAILED).
    error: i16,
}

/// Handles one OffsetFetch request. Errors are reported inside the response's error codes.
pub async fn handle(broker: &Arc<Broker>, ctx: &RequestContext, request: OffsetFetchRequest) -> OffsetFetchResponse {
    let groups = &broker.groups;
    // DESCRIBE on the group; per topic DESCRIBE too: explicitly asked topics are refused, and
    // "every committed topic" leaves out those the principal may not describe (Kafka).
    let group_ok = |group: &str| allowed(broker, ctx, Operation::Describe, Resource::Group(group));
    let visible = |topic: &str| allowed(broker, ctx, Operation::Describe, Resource::Topic(topic));
    let group_refused = ResponseError::GroupAuthorizationFailed.code();
    if ctx.api_version >= 8 {
        let results = request
            .groups
            .into_iter()
            .map(|g| {
                if !group_ok(g.group_id.0.as_str()) {
                    return OffsetFetchResponseGroup::default().with_group_id(g.group_id).with_error_code(group_refused);
                }
                let wanted = g.topics.map(|ts| ts.into_iter().map(|t| (t.name.0.to_string(), t.partition_indexes)).collect());
                let topics = fetch(groups, g.group_id.0.as_str(), wanted, &visible)
                    .into_iter()
                    .map(|(topic, partitions)| {
                        let partitions = partitions.into_iter().map(v8_partition).collect();
                        OffsetFetchResponseTopics::default().with_name(topic_name(topic)).with_partitions(partitions)
                    })
                    .collect();
                OffsetFetchResponseGroup::default().with_group_id(g.group_id).with_topics(topics)
            })
            .collect();
        return OffsetFetchResponse::default().with_groups(results);
    }
    let wanted: Option<Vec<(String, Vec<i32>)>> =
        request.topics.map(|ts| ts.into_iter().map(|t| (t.name.0.to_string(), t.partition_indexes)).collect());
    if !group_ok(request.group_id.0.as_str()) {
        if ctx.api_version >= 2 {
            return OffsetFetchResponse::default().with_error_code(group_refused);
        }
        // v1 has no top-level error: every asked partition carries it.
        let topics = wanted
            .unwrap_or_default()
            .into_iter()
            .map(|(topic, partitions)| {
                let partitions = partitions
                    .into_iter()
                    .map(|partition| v1_partition(Fetched { partition, offset: None, error: group_refused }))
                    .collect();
                OffsetFetchResponseTopic::default().with_name(topic_name(topic)).with_partitions(partitions)
            })
            .collect();
        return OffsetFetchResponse::default().with_topics(topics);
    }
    let topics = fetch(groups, request.group_id.0.as_str(), wanted, &visible)
        .into_iter()
        .map(|(topic, partitions)| {
            let partitions = partitions.into_iter().map(v1_partition).collect();
            OffsetFetchResponseTopic::default().with_name(topic_name(topic)).with_partitions(partitions)
        })
        .collect();
    OffsetFetchResponse::default().with_topics(topics)
}

/// The requested partitions' commits, or every commit of the group when `wanted` is `None`.
fn fetch(
    groups: &GroupCoordinator,
    group_id: &str,
    wanted: Option<Vec<(String, Vec<i32>)>>,
    visible: &dyn Fn(&str) -> bool,
) -> Vec<(String, Vec<Fetched>)> {
    let topic_refused = ResponseError::TopicAuthorizationFailed.code();
    match wanted {
        Some(topics) => topics
            .into_iter()
            .map(|(topic, partitions)| {
                let ok = visible(&topic);
                let fetched = partitions
                    .into_iter()
                    .map(|partition| match ok {
                        true => Fetched { partition, offset: groups.committed_offset(group_id, &topic, partition), error: 0 },
                        false => Fetched { partition, offset: None, error: topic_refused },
                    })
                    .collect();
                (topic, fetched)
            })
            .collect(),
        None => {
            let mut out: Vec<(String, Vec<Fetched>)> = Vec::new();
            for (topic, partition, offset) in groups.committed_offsets(group_id).into_iter().filter(|(t, _, _)| visible(t)) {
                let fetched = Fetched { partition, offset: Some(offset), error: 0 };
                match out.last_mut() {
                    Some((last, list)) if *last == topic => list.push(fetched),
                    _ => out.push((topic, vec![fetched])),
                }
            }
            out
        }
    }
}

fn topic_name(name: String) -> TopicName {
    TopicName(StrBytes::from_string(name))
}

/// (offset, leader epoch, metadata); -1, -1, "" without a commit.
fn parts(f: &Fetched) -> (i64, i32, StrBytes) {
    match &f.offset {
        Some(c) => (c.offset, c.leader_epoch, StrBytes::from_string(c.metadata.clone())),
        None => (-1, -1, StrBytes::default()),
    }
}

fn v1_partition(f: Fetched) -> OffsetFetchResponsePartition {
    let (offset, epoch, metadata) = parts(&f);
    OffsetFetchResponsePartition::default()
        .with_error_code(f.error)
        .with_partition_index(f.partition)
        .with_committed_offset(offset)
        .with_committed_leader_epoch(epoch)
        .with_metadata(Some(metadata))
}

fn v8_partition(f: Fetched) -> OffsetFetchResponsePartitions {
    let (offset, epoch, metadata) = parts(&f);
    OffsetFetchResponsePartitions::default()
        .with_error_code(f.error)
        .with_partition_index(f.partition)
        .with_committed_offset(offset)
        .with_committed_leader_epoch(epoch)
        .with_metadata(Some(metadata))
}
