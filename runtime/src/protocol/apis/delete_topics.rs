//! DeleteTopics: TODO describe.

use std::sync::Arc;

use kafka_protocol::messages::{DeleteTopicsRequest, DeleteTopicsResponse};

use crate::broker::Broker;
use crate::protocol::RequestContext;

/// Handles one DeleteTopics request. Errors are reported inside the response's error codes.
pub async fn handle(broker: &Arc<Broker>, ctx: &RequestContext, request: DeleteTopicsRequest) -> DeleteTopicsResponse {
    let _ = (broker, ctx, request);
    todo!("DeleteTopics")
}
