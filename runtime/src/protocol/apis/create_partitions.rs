//! CreatePartitions: grows a topic's partition count (never shrinks), recorded in the metadata
//! log before the new partitions open.

use std::sync::Arc;

use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse};
use kafka_protocol::protocol::StrBytes;

use crate::broker::{Broker, BrokerError};
use crate::protocol::authorize::{authorize, Operation, Resource};
use crate::protocol::error_code;
use crate::protocol::RequestContext;

/// Handles one CreatePartitions request. Errors are reported inside the response's error codes.
pub async fn handle(broker: &Arc<Broker>, ctx: &RequestContext, request: CreatePartitionsRequest) -> CreatePartitionsResponse {
    let me = broker.config.node_id;
    let mut results = Vec::with_capacity(request.topics.len());
    for topic in &request.topics {
        let name = topic.name.0.as_str();
        let bad_assignment = topic.assignments.as_ref().is_some_and(|all| all.iter().any(|a| a.broker_ids.iter().map(|b| b.0).ne([me])));
        let outcome = if let Err(e) = authorize(broker, ctx, Operation::Alter, Resource::Topic(name)) {
            Err(e)
        } else if bad_assignment {
            Err(BrokerError::InvalidReplicaAssignment { reason: format!("new partitions can only be placed on broker {me}") })
        } else {
            broker.create_partitions(name, topic.count, request.validate_only).await
        };
        let result = CreatePartitionsTopicResult::default().with_name(topic.name.clone());
        results.push(match outcome {
            Ok(()) => result,
            Err(e) => result.with_error_code(error_code::code(&e)).with_error_message(Some(StrBytes::from_string(e.to_string()))),
        });
    }
    CreatePartitionsResponse::default().with_results(results)
}
