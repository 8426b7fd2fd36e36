//! DeleteTopics: by name (v0-5) or by name or topic id (v6+); records the deletion in the
//! metadata log, then removes the partition directories.

use std::sync::Arc;

use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{DeleteTopicsRequest, DeleteTopicsResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

use crate::broker::{Broker, BrokerError};
use crate::protocol::authorize::{authorize, Operation, Resource};
use crate::protocol::error_code;
use crate::protocol::RequestContext;

/// Handles one DeleteTopics request. Errors are reported inside the response's error codes.
pub async fn handle(broker: &Arc<Broker>, ctx: &RequestContext, request: DeleteTopicsRequest) -> DeleteTopicsResponse {
    let version = ctx.api_version;
    let targets: Vec<(Option<String>, Uuid)> = if version >= 6 {
        request.topics.iter().map(|t| (t.name.as_ref().map(|n| n.0.to_string()), t.topic_id)).collect()
    } else {
        request.topic_names.iter().map(|n| (Some(n.0.to_string()), Uuid::nil())).collect()
    };
    let mut responses = Vec::with_capacity(targets.len());
    for (name, id) in targets {
        let resolved = match &name {
            Some(n) => Ok(n.clone()),
            None => broker.topic_by_id(id).map(|t| t.name.clone()).ok_or(BrokerError::UnknownTopicId { topic_id: id }),
        };
        let outcome = match resolved {
            Ok(n) => match authorize(broker, ctx, Operation::Delete, Resource::Topic(&n)) {
                Ok(()) => broker.delete_topic(&n).await.map(|deleted_id| (n, deleted_id)),
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        let result = match outcome {
            Ok((n, deleted_id)) => {
                let r = DeletableTopicResult::default().with_name(Some(TopicName(StrBytes::from_string(n))));
                if version >= 6 {
                    r.with_topic_id(deleted_id)
                } else {
                    r
                }
            }
            Err(e) => {
                let r = DeletableTopicResult::default()
                    .with_name(name.map(|n| TopicName(StrBytes::from_string(n))))
                    .with_error_code(error_code::code(&e))
                    .with_error_message(Some(StrBytes::from_string(e.to_string())));
                if version >= 6 {
                    r.with_topic_id(id)
                } else {
                    r
                }
            }
        };
        responses.push(result);
    }
    DeleteTopicsResponse::default().with_responses(responses)
}
