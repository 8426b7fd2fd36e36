//! ListGroups: TODO describe.

use std::sync::Arc;

use kafka_protocol::messages::{ListGroupsRequest, ListGroupsResponse};

use crate::broker::Broker;
use crate::protocol::RequestContext;

/// Handles one ListGroups request. Errors are reported inside the response's error codes.
pub async fn handle(broker: &Arc<Broker>, ctx: &RequestContext, request: ListGroupsRequest) -> ListGroupsResponse {
    let _ = (broker, ctx, request);
    todo!("ListGroups")
}
