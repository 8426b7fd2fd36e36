//! DescribeTopicPartitions (KIP-966, Kafka 3.7+ admin clients' `describeTopics`): topics with
//! their partitions, paginated. Topics are answered in name order, starting at the request's
//! cursor (topic, partition); once `response_partition_limit` partitions are in the response
//! (capped by [`RESPONSE_PARTITIONS_MAX`], Kafka's `max.request.partition.size.limit`), the
//! response ends with `next_cursor` naming where to continue.
//!
//! Kafka's rules (`DescribeTopicPartitionsRequestHandler`): an empty topic list means every topic
//! the principal may DESCRIBE (the others are silently left out); named topics it may not describe
//! are TOPIC_AUTHORIZATION_FAILED (with a zero topic id, never revealing whether they exist),
//! unknown ones UNKNOWN_TOPIC_OR_PARTITION (INVALID_TOPIC_EXCEPTION for an invalid name). A cursor
//! whose topic is not among the named topics, or whose partition is negative, is INVALID_REQUEST
//! for every requested topic (the response has no top-level error code). This node leads every
//! partition: leader, replicas and ISR are this node, eligible leader replicas are empty.

use std::sync::Arc;

use kafka_protocol::messages::describe_topic_partitions_response::{
    Cursor, DescribeTopicPartitionsResponsePartition, DescribeTopicPartitionsResponseTopic,
};
use kafka_protocol::messages::{BrokerId, DescribeTopicPartitionsRequest, DescribeTopicPartitionsResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use crate::broker::partition::LEADER_EPOCH;
use crate::broker::{validate_topic_name, Broker, Topic};
use crate::protocol::authorize::{allowed, authorized_operations, Operation, Resource, TOPIC_OPERATIONS};
use crate::protocol::RequestContext;

/// The most partitions one response holds, whatever the request asks (Kafka's
/// `max.request.partition.size.limit` default).
pub const RESPONSE_PARTITIONS_MAX: i32 = 2000;

/// Handles one DescribeTopicPartitions request.
pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: DescribeTopicPartitionsRequest,
) -> DescribeTopicPartitionsResponse {
    let every_topic = request.topics.is_empty();
    let (cursor_topic, cursor_partition) = match &request.cursor {
        Some(c) => (c.topic_name.as_str().to_string(), c.partition_index),
        None => (String::new(), 0),
    };
    let mut names: Vec<String> = if every_topic {
        broker.topics().iter().map(|t| t.name.clone()).collect()
    } else {
        request.topics.iter().map(|t| t.name.as_str().to_string()).collect()
    };
    names.retain(|n| *n >= cursor_topic);
    names.sort();
    names.dedup();
    let cursor_invalid = request.cursor.is_some() && ((!every_topic && !names.contains(&cursor_topic)) || cursor_partition < 0);
    if cursor_invalid {
        return invalid_request(&request);
    }
    let mut unauthorized = Vec::new();
    let mut authorized = Vec::with_capacity(names.len());
    for name in names {
        if allowed(broker, ctx, Operation::Describe, Resource::Topic(&name)) {
            authorized.push(name);
        } else if !every_topic {
            unauthorized.push(topic_error(&name, ResponseError::TopicAuthorizationFailed));
        }
    }
    let limit = request.response_partition_limit.clamp(1, RESPONSE_PARTITIONS_MAX);
    let start = |name: &str| if name == cursor_topic { cursor_partition } else { 0 };
    let mut response = paginate(broker, &authorized, start, limit, every_topic);
    for t in response.topics.iter_mut().filter(|t| t.error_code == 0) {
        if let Some(name) = &t.name {
            t.topic_authorized_operations = authorized_operations(broker, ctx, Resource::Topic(name.0.as_str()), &TOPIC_OPERATIONS);
        }
    }
    response.topics.extend(unauthorized);
    response
}

/// Kafka's `getTopicMetadataForDescribeTopicResponse`: topics in order until `limit` partitions
/// are in; a topic cut short, or the next topic once the limit is reached, becomes the cursor.
fn paginate(
    broker: &Broker,
    names: &[String],
    start: impl Fn(&str) -> i32,
    limit: i32,
    skip_unknown: bool,
) -> DescribeTopicPartitionsResponse {
    let me = BrokerId(broker.config.node_id);
    let mut remaining = limit;
    let mut response = DescribeTopicPartitionsResponse::default();
    for name in names {
        if remaining == 0 {
            response.next_cursor = Some(cursor(name, 0));
            break;
        }
        let Some(topic) = broker.topic(name) else {
            if !skip_unknown {
                let invalid = validate_topic_name(name).is_err();
                let error = if invalid { ResponseError::InvalidTopicException } else { ResponseError::UnknownTopicOrPartition };
                response.topics.push(topic_error(name, error));
            }
            continue;
        };
        let (partitions, next) = partitions_from(&topic, start(name), remaining, me);
        remaining -= i32::try_from(partitions.len()).unwrap_or(remaining);
        response.topics.push(
            DescribeTopicPartitionsResponseTopic::default()
                .with_name(Some(topic_name(name)))
                .with_topic_id(topic.id)
                .with_is_internal(false)
                .with_partitions(partitions),
        );
        if let Some(next) = next {
            response.next_cursor = Some(cursor(name, next));
            break;
        }
    }
    response
}

/// Partitions `start..` of `topic`, at most `max`, and the index to continue from if some are left.
fn partitions_from(topic: &Topic, start: i32, max: i32, me: BrokerId) -> (Vec<DescribeTopicPartitionsResponsePartition>, Option<i32>) {
    let count = i32::try_from(topic.partitions.len()).unwrap_or(i32::MAX);
    let upper = count.min(start.saturating_add(max));
    let partitions = (start..upper)
        .map(|index| {
            DescribeTopicPartitionsResponsePartition::default()
                .with_partition_index(index)
                .with_leader_id(me)
                .with_leader_epoch(LEADER_EPOCH)
                .with_replica_nodes(vec![me])
                .with_isr_nodes(vec![me])
                .with_eligible_leader_replicas(Some(Vec::new()))
                .with_last_known_elr(Some(Vec::new()))
        })
        .collect();
    (partitions, (upper < count).then_some(upper))
}

fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_string()))
}

fn cursor(name: &str, partition_index: i32) -> Cursor {
    Cursor::default().with_topic_name(topic_name(name)).with_partition_index(partition_index)
}

fn topic_error(name: &str, error: ResponseError) -> DescribeTopicPartitionsResponseTopic {
    DescribeTopicPartitionsResponseTopic::default().with_name(Some(topic_name(name))).with_error_code(error.code())
}

/// Kafka's answer to a request it refuses whole: INVALID_REQUEST for each topic named.
fn invalid_request(request: &DescribeTopicPartitionsRequest) -> DescribeTopicPartitionsResponse {
    let topics = request.topics.iter().map(|t| topic_error(t.name.as_str(), ResponseError::InvalidRequest)).collect();
    DescribeTopicPartitionsResponse::default().with_topics(topics)
}
