//! CreateTopics: TODO describe.

use std::sync::Arc;

use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse};

use crate::broker::Broker;
use crate::protocol::RequestContext;

/// Handles one CreateTopics request. Errors are reported inside the response's error codes.
pub async fn handle(broker: &Arc<Broker>, ctx: &RequestContext, request: CreateTopicsRequest) -> CreateTopicsResponse {
    let _ = (broker, ctx, request);
    todo!("CreateTopics")
}
