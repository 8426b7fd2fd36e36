//! DeleteRecords: TODO describe.

use std::sync::Arc;

use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};

use crate::broker::Broker;
use crate::protocol::RequestContext;

/// Handles one DeleteRecords request. Errors are reported inside the response's error codes.
pub async fn handle(broker: &Arc<Broker>, ctx: &RequestContext, request: DeleteRecordsRequest) -> DeleteRecordsResponse {
    let _ = (broker, ctx, request);
    todo!("DeleteRecords")
}
