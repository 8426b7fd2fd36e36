//! SyncGroup: TODO describe.

use std::sync::Arc;

use kafka_protocol::messages::{SyncGroupRequest, SyncGroupResponse};

use crate::broker::Broker;
use crate::protocol::RequestContext;

/// Handles one SyncGroup request. Errors are reported inside the response's error codes.
pub async fn handle(broker: &Arc<Broker>, ctx: &RequestContext, request: SyncGroupRequest) -> SyncGroupResponse {
    let _ = (broker, ctx, request);
    todo!("SyncGroup")
}
