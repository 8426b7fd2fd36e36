//! Fetch: TODO describe.

use std::sync::Arc;

use kafka_protocol::messages::{FetchRequest, FetchResponse};

use crate::broker::Broker;
use crate::protocol::RequestContext;

/// Handles one Fetch request. Errors are reported inside the response's error codes.
pub async fn handle(broker: &Arc<Broker>, ctx: &RequestContext, request: FetchRequest) -> FetchResponse {
    let _ = (broker, ctx, request);
    todo!("Fetch")
}
