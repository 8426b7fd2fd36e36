//! OffsetCommit: TODO describe.

use std::sync::Arc;

use kafka_protocol::messages::{OffsetCommitRequest, OffsetCommitResponse};

use crate::broker::Broker;
use crate::protocol::RequestContext;

/// Handles one OffsetCommit request. Errors are reported inside the response's error codes.
pub async fn handle(broker: &Arc<Broker>, ctx: &RequestContext, request: OffsetCommitRequest) -> OffsetCommitResponse {
    let _ = (broker, ctx, request);
    todo!("OffsetCommit")
}
