//! ApiVersions: TODO describe.

use std::sync::Arc;

use kafka_protocol::messages::{ApiVersionsRequest, ApiVersionsResponse};

use crate::broker::Broker;
use crate::protocol::RequestContext;

/// Handles one ApiVersions request. Errors are reported inside the response's error codes.
pub async fn handle(broker: &Arc<Broker>, ctx: &RequestContext, request: ApiVersionsRequest) -> ApiVersionsResponse {
    let _ = (broker, ctx, request);
    todo!("ApiVersions")
}
