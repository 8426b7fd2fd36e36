//! JoinGroup: TODO describe.

use std::sync::Arc;

use kafka_protocol::messages::{JoinGroupRequest, JoinGroupResponse};

use crate::broker::Broker;
use crate::protocol::RequestContext;

/// Handles one JoinGroup request. Errors are reported inside the response's error codes.
pub async fn handle(broker: &Arc<Broker>, ctx: &RequestContext, request: JoinGroupRequest) -> JoinGroupResponse {
    let _ = (broker, ctx, request);
    todo!("JoinGroup")
}
