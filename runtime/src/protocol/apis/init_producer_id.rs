//! InitProducerId: TODO describe.

use std::sync::Arc;

use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse};

use crate::broker::Broker;
use crate::protocol::RequestContext;

/// Handles one InitProducerId request. Errors are reported inside the response's error codes.
pub async fn handle(broker: &Arc<Broker>, ctx: &RequestContext, request: InitProducerIdRequest) -> InitProducerIdResponse {
    let _ = (broker, ctx, request);
    todo!("InitProducerId")
}
