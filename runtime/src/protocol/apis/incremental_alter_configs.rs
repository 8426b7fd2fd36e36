//! IncrementalAlterConfigs: TODO describe.

use std::sync::Arc;

use kafka_protocol::messages::{IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse};

use crate::broker::Broker;
use crate::protocol::RequestContext;

/// Handles one IncrementalAlterConfigs request. Errors are reported inside the response's error codes.
pub async fn handle(broker: &Arc<Broker>, ctx: &RequestContext, request: IncrementalAlterConfigsRequest) -> IncrementalAlterConfigsResponse {
    let _ = (broker, ctx, request);
    todo!("IncrementalAlterConfigs")
}
