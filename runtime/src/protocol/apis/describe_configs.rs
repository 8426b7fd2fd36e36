//! DescribeConfigs: TODO describe.

use std::sync::Arc;

use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};

use crate::broker::Broker;
use crate::protocol::RequestContext;

/// Handles one DescribeConfigs request. Errors are reported inside the response's error codes.
pub async fn handle(broker: &Arc<Broker>, ctx: &RequestContext, request: DescribeConfigsRequest) -> DescribeConfigsResponse {
    let _ = (broker, ctx, request);
    todo!("DescribeConfigs")
}
