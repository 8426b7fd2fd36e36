//! FindCoordinator: TODO describe.

use std::sync::Arc;

use kafka_protocol::messages::{FindCoordinatorRequest, FindCoordinatorResponse};

use crate::broker::Broker;
use crate::protocol::RequestContext;

/// Handles one FindCoordinator request. Errors are reported inside the response's error codes.
pub async fn handle(broker: &Arc<Broker>, ctx: &RequestContext, request: FindCoordinatorRequest) -> FindCoordinatorResponse {
    let _ = (broker, ctx, request);
    todo!("FindCoordinator")
}
