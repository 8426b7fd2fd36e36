//! Metadata: TODO describe.

use std::sync::Arc;

use kafka_protocol::messages::{MetadataRequest, MetadataResponse};

use crate::broker::Broker;
use crate::protocol::RequestContext;

/// Handles one Metadata request. Errors are reported inside the response's error codes.
pub async fn handle(broker: &Arc<Broker>, ctx: &RequestContext, request: MetadataRequest) -> MetadataResponse {
    let _ = (broker, ctx, request);
    todo!("Metadata")
}
