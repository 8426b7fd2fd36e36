//! DeleteGroups: TODO describe.

use std::sync::Arc;

use kafka_protocol::messages::{DeleteGroupsRequest, DeleteGroupsResponse};

use crate::broker::Broker;
use crate::protocol::RequestContext;

/// Handles one DeleteGroups request. Errors are reported inside the response's error codes.
pub async fn handle(broker: &Arc<Broker>, ctx: &RequestContext, request: DeleteGroupsRequest) -> DeleteGroupsResponse {
    let _ = (broker, ctx, request);
    todo!("DeleteGroups")
}
