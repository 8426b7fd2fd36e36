//! ListOffsets: TODO describe.

use std::sync::Arc;

use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};

use crate::broker::Broker;
use crate::protocol::RequestContext;

/// Handles one ListOffsets request. Errors are reported inside the response's error codes.
pub async fn handle(broker: &Arc<Broker>, ctx: &RequestContext, request: ListOffsetsRequest) -> ListOffsetsResponse {
    let _ = (broker, ctx, request);
    todo!("ListOffsets")
}
