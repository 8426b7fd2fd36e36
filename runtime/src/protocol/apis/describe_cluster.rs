//! DescribeCluster: TODO describe.

use std::sync::Arc;

use kafka_protocol::messages::{DescribeClusterRequest, DescribeClusterResponse};

use crate::broker::Broker;
use crate::protocol::RequestContext;

/// Handles one DescribeCluster request. Errors are reported inside the response's error codes.
pub async fn handle(broker: &Arc<Broker>, ctx: &RequestContext, request: DescribeClusterRequest) -> DescribeClusterResponse {
    let _ = (broker, ctx, request);
    todo!("DescribeCluster")
}
