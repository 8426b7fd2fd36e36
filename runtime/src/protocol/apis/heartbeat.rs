//! Heartbeat: TODO describe.

use std::sync::Arc;

use kafka_protocol::messages::{HeartbeatRequest, HeartbeatResponse};

use crate::broker::Broker;
use crate::protocol::RequestContext;

/// Handles one Heartbeat request. Errors are reported inside the response's error codes.
pub async fn handle(broker: &Arc<Broker>, ctx: &RequestContext, request: HeartbeatRequest) -> HeartbeatResponse {
    let _ = (broker, ctx, request);
    todo!("Heartbeat")
}
