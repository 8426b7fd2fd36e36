//! DescribeProducers: per partition, the idempotent producers this broker tracks (producer id,
//! epoch, last sequence, the last batch's timestamp), from `broker::producer_state`. There are no
//! transactions, so the coordinator epoch and the current transaction's start offset are always
//! -1, as Kafka reports them for a producer outside a transaction.
//!
//! Kafka's rules: READ on the topic (TOPIC_AUTHORIZATION_FAILED for each partition asked), an
//! invalid topic name is INVALID_TOPIC_EXCEPTION, an unknown topic or partition
//! UNKNOWN_TOPIC_OR_PARTITION; each error comes with a message.

use std::sync::Arc;

use kafka_protocol::messages::describe_producers_response::{PartitionResponse, ProducerState, TopicResponse};
use kafka_protocol::messages::{DescribeProducersRequest, DescribeProducersResponse, ProducerId};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use crate::broker::{validate_topic_name, Broker};
use crate::protocol::authorize::{allowed, Operation, Resource};
use crate::protocol::RequestContext;

/// Kafka's coordinator epoch of a producer outside a transaction.
const NO_COORDINATOR_EPOCH: i32 = -1;
/// Kafka's transaction start offset of a producer with no open transaction.
const NO_TRANSACTION_START_OFFSET: i64 = -1;

/// Handles one DescribeProducers request. Errors are reported per partition.
pub async fn handle(broker: &Arc<Broker>, ctx: &RequestContext, request: DescribeProducersRequest) -> DescribeProducersResponse {
    let topics = request
        .topics
        .iter()
        .map(|topic| {
            let name = topic.name.as_str();
            let topic_error = if validate_topic_name(name).is_err() {
                Some((ResponseError::InvalidTopicException, format!("{name:?} is not a valid topic name")))
            } else if !allowed(broker, ctx, Operation::Read, Resource::Topic(name)) {
                Some((ResponseError::TopicAuthorizationFailed, format!("{} may not READ topic {name}", ctx.principal)))
            } else {
                None
            };
            let partitions = topic
                .partition_indexes
                .iter()
                .map(|&index| match &topic_error {
                    Some((error, message)) => failed(index, *error, message.clone()),
                    None => describe(broker, name, index),
                })
                .collect();
            TopicResponse::default().with_name(topic.name.clone()).with_partitions(partitions)
        })
        .collect();
    DescribeProducersResponse::default().with_topics(topics)
}

fn describe(broker: &Broker, topic: &str, index: i32) -> PartitionResponse {
    let Some(partition) = broker.partition(topic, index) else {
        return failed(index, ResponseError::UnknownTopicOrPartition, format!("unknown partition {topic}-{index}"));
    };
    let producers = partition
        .active_producers()
        .into_iter()
        .map(|p| {
            ProducerState::default()
                .with_producer_id(ProducerId(p.producer_id))
                .with_producer_epoch(i32::from(p.epoch))
                .with_last_sequence(p.last_sequence)
                .with_last_timestamp(p.last_timestamp)
                .with_coordinator_epoch(NO_COORDINATOR_EPOCH)
                .with_current_txn_start_offset(NO_TRANSACTION_START_OFFSET)
        })
        .collect();
    PartitionResponse::default().with_partition_index(index).with_active_producers(producers)
}

fn failed(index: i32, error: ResponseError, message: String) -> PartitionResponse {
    PartitionResponse::default()
        .with_partition_index(index)
        .with_error_code(error.code())
        .with_error_message(Some(StrBytes::from_string(message)))
}
