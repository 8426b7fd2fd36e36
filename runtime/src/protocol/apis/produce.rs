//! Produce: TODO describe.

use std::sync::Arc;

use kafka_protocol::messages::{ProduceRequest, ProduceResponse};

use crate::broker::Broker;
use crate::protocol::RequestContext;

/// Handles one Produce request. Errors are reported inside the response's error codes.
pub async fn handle(broker: &Arc<Broker>, ctx: &RequestContext, request: ProduceRequest) -> ProduceResponse {
    let _ = (broker, ctx, request);
    todo!("Produce")
}
