//! Heartbeat: keeps a member's session alive; REBALANCE_IN_PROGRESS tells it to rejoin.

use std::sync::Arc;

use kafka_protocol::messages::{HeartbeatRequest, HeartbeatResponse};
use kafka_protocol::ResponseError;

use crate::broker::Broker;
use crate::protocol::authorize::{allowed, Operation, Resource};
use crate::protocol::RequestContext;

/// Handles one Heartbeat request. Errors are reported inside the response's error codes.
pub async fn handle(broker: &Arc<Broker>, ctx: &RequestContext, request: HeartbeatRequest) -> HeartbeatResponse {
    if !allowed(broker, ctx, Operation::Read, Resource::Group(request.group_id.0.as_str())) {
        return HeartbeatResponse::default().with_error_code(ResponseError::GroupAuthorizationFailed.code());
    }
    let instance = request.group_instance_id.as_ref().map(|s| s.as_str());
    let result = broker.groups.heartbeat(request.group_id.0.as_str(), request.member_id.as_str(), instance, request.generation_id);
    HeartbeatResponse::default().with_error_code(result.err().map_or(0, |e| e.code()))
}
