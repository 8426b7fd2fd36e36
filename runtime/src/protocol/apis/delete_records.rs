//! DeleteRecords: advances a partition's log start offset (whole segments below it are removed
//! by the log); offset -1 means "up to the high watermark".

use std::sync::Arc;

use kafka_protocol::messages::delete_records_response::{DeleteRecordsPartitionResult, DeleteRecordsTopicResult};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};
use kafka_protocol::ResponseError;

use crate::broker::partition::blocking;
use crate::broker::Broker;
use crate::protocol::authorize::{allowed, Operation, Resource};
use crate::protocol::error_code;
use crate::protocol::RequestContext;

/// Handles one DeleteRecords request. Errors are reported inside the response's error codes.
pub async fn handle(broker: &Arc<Broker>, ctx: &RequestContext, request: DeleteRecordsRequest) -> DeleteRecordsResponse {
    let mut topics = Vec::with_capacity(request.topics.len());
    for topic in request.topics {
        let deletable = allowed(broker, ctx, Operation::Delete, Resource::Topic(topic.name.0.as_str()));
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        for p in &topic.partitions {
            let out = DeleteRecordsPartitionResult::default().with_partition_index(p.partition_index);
            let outcome = match broker.partition(topic.name.0.as_str(), p.partition_index) {
                _ if !deletable => Err(ResponseError::TopicAuthorizationFailed),
                None => Err(ResponseError::UnknownTopicOrPartition),
                Some(partition) => {
                    let offset = p.offset;
                    match blocking("delete records", move || partition.delete_records_before(offset)).await {
                        Ok(Ok(low)) => Ok(low),
                        Ok(Err(e)) | Err(e) => Err(error_code::response_error(&e)),
                    }
                }
            };
            partitions.push(match outcome {
                Ok(low) => out.with_low_watermark(low),
                Err(code) => out.with_error_code(code.code()).with_low_watermark(-1),
            });
        }
        topics.push(DeleteRecordsTopicResult::default().with_name(topic.name).with_partitions(partitions));
    }
    DeleteRecordsResponse::default().with_topics(topics)
}
