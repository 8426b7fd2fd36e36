//! Produce: appends RecordBatch v2 batches as received (any compression), then honours acks
//! (0: no response, 1: after the append, -1: after the group-committed fsync).

use std::sync::Arc;

use futures::future::join_all;
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use crate::broker::partition::Appended;
use crate::broker::{Broker, BrokerError, Partition};
use crate::protocol::authorize::{allowed, denied, may_create_topic, Operation, Resource};
use crate::protocol::error_code;
use crate::protocol::RequestContext;

/// A partition (if it exists) and how its append went.
type AppendOutcome = (Option<Arc<Partition>>, Result<Appended, BrokerError>);

/// Handles one Produce request. Errors are reported inside the response's error codes.
///
/// Appends from one connection happen in request order (`ctx.append_turn`); the fsync waits of
/// different requests overlap, which is what lets group commit batch them.
pub async fn handle(broker: &Arc<Broker>, ctx: &RequestContext, request: ProduceRequest) -> ProduceResponse {
    let acks = request.acks;
    // Request-level refusals, reported on every partition like Kafka does.
    let refuse = |transactional: bool| -> Option<BrokerError> {
        if transactional {
            Some(BrokerError::TransactionsUnsupported)
        } else if !matches!(acks, -1..=1) {
            Some(BrokerError::InvalidRequiredAcks { acks })
        } else {
            None
        }
    };
    let transactional = request.transactional_id.is_some();

    // WRITE on each topic, decided once per topic; refused topics are neither created nor written.
    let writable: Vec<bool> =
        request.topic_data.iter().map(|t| allowed(broker, ctx, Operation::Write, Resource::Topic(t.name.0.as_str()))).collect();

    // Like Metadata, Produce creates unknown topics when `auto.create.topics.enable` is on (and
    // the principal may create them); a name that cannot be created is answered per partition
    // below as an unknown topic.
    for (topic, _) in request.topic_data.iter().zip(&writable).filter(|(_, w)| **w) {
        if broker.topic(topic.name.0.as_str()).is_some() || !may_create_topic(broker, ctx, topic.name.0.as_str()) {
            continue;
        }
        if let Err(e) = broker.auto_create_topic(topic.name.0.as_str()).await {
            tracing::debug!(topic = topic.name.0.as_str(), "produce could not auto-create the topic: {e}");
        }
    }

    ctx.append_turn.wait().await;
    // Phase 1, in request order: resolve and append every partition (partitions in parallel).
    let mut appends = Vec::new();
    for (topic, &writable) in request.topic_data.iter().zip(&writable) {
        let name = topic.name.0.as_str();
        for data in &topic.partition_data {
            let refused_write = if writable { None } else { Some(denied(ctx, Operation::Write, Resource::Topic(name))) };
            let partition = if writable { broker.partition(name, data.index) } else { None };
            let records = data.records.clone();
            appends.push(async move {
                if let Some(e) = refused_write {
                    return (None, Err(e));
                }
                if let Some(refusal) = refuse(transactional) {
                    return (partition, Err(refusal));
                }
                let Some(p) = partition else {
                    return (None, Err(BrokerError::UnknownPartition { topic: name.to_string(), partition: data.index }));
                };
                let Some(records) = records.filter(|r| !r.is_empty()) else {
                    return (Some(p), Err(BrokerError::CorruptRecords { reason: "no records".into() }));
                };
                let appended = p.append_records(records).await;
                (Some(p), appended)
            });
        }
    }
    let appended: Vec<AppendOutcome> = join_all(appends).await;
    ctx.append_turn.finish();

    // Phase 2, concurrently: durability per acks.
    let completions = appended.into_iter().map(|(partition, appended)| async move {
        match (partition, appended) {
            (Some(p), Ok(a)) => p.complete(a, acks).await,
            (_, Err(e)) => Err(e),
            (None, Ok(_)) => Err(BrokerError::InvalidRequest { reason: "append without a partition".into() }),
        }
    });
    let mut results = join_all(completions).await.into_iter();

    let mut responses = Vec::with_capacity(request.topic_data.len());
    for topic in &request.topic_data {
        let mut partitions = Vec::with_capacity(topic.partition_data.len());
        for data in &topic.partition_data {
            let result = results.next().unwrap_or(Err(BrokerError::InvalidRequest { reason: "missing result".into() }));
            partitions.push(partition_response(topic.name.0.as_str(), data.index, result));
        }
        responses.push(TopicProduceResponse::default().with_name(topic.name.clone()).with_partition_responses(partitions));
    }
    ProduceResponse::default().with_responses(responses)
}

fn partition_response(
    topic: &str,
    index: i32,
    result: Result<crate::broker::partition::Produced, BrokerError>,
) -> PartitionProduceResponse {
    let response = PartitionProduceResponse::default().with_index(index).with_log_append_time_ms(-1);
    match result {
        Ok(p) => response.with_base_offset(p.base_offset).with_log_start_offset(p.log_start_offset),
        Err(e) => {
            let code = error_code::response_error(&e);
            if code == ResponseError::KafkaStorageError {
                tracing::warn!(topic, partition = index, "produce failed: {e}");
            } else {
                tracing::debug!(topic, partition = index, "produce refused: {e}");
            }
            response
                .with_error_code(code.code())
                .with_base_offset(-1)
                .with_log_start_offset(-1)
                .with_error_message(Some(StrBytes::from_string(e.to_string())))
        }
    }
}
