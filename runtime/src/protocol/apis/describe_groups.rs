//! DescribeGroups: TODO describe.

use std::sync::Arc;

use kafka_protocol::messages::{DescribeGroupsRequest, DescribeGroupsResponse};

use crate::broker::Broker;
use crate::protocol::RequestContext;

/// Handles one DescribeGroups request. Errors are reported inside the response's error codes.
pub async fn handle(broker: &Arc<Broker>, ctx: &RequestContext, request: DescribeGroupsRequest) -> DescribeGroupsResponse {
    let _ = (broker, ctx, request);
    todo!("DescribeGroups")
}
