//! LeaveGroup: TODO describe.

use std::sync::Arc;

use kafka_protocol::messages::{LeaveGroupRequest, LeaveGroupResponse};

use crate::broker::Broker;
use crate::protocol::RequestContext;

/// Handles one LeaveGroup request. Errors are reported inside the response's error codes.
pub async fn handle(broker: &Arc<Broker>, ctx: &RequestContext, request: LeaveGroupRequest) -> LeaveGroupResponse {
    let _ = (broker, ctx, request);
    todo!("LeaveGroup")
}
