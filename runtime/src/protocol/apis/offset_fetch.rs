//! OffsetFetch: TODO describe.

use std::sync::Arc;

use kafka_protocol::messages::{OffsetFetchRequest, OffsetFetchResponse};

use crate::broker::Broker;
use crate::protocol::RequestContext;

/// Handles one OffsetFetch request. Errors are reported inside the response's error codes.
pub async fn handle(broker: &Arc<Broker>, ctx: &RequestContext, request: OffsetFetchRequest) -> OffsetFetchResponse {
    let _ = (broker, ctx, request);
    todo!("OffsetFetch")
}
