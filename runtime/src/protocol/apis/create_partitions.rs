//! CreatePartitions: TODO describe.

use std::sync::Arc;

use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse};

use crate::broker::Broker;
use crate::protocol::RequestContext;

/// Handles one CreatePartitions request. Errors are reported inside the response's error codes.
pub async fn handle(broker: &Arc<Broker>, ctx: &RequestContext, request: CreatePartitionsRequest) -> CreatePartitionsResponse {
    let _ = (broker, ctx, request);
    todo!("CreatePartitions")
}
