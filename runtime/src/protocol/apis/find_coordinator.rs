//! FindCoordinator: this single broker coordinates every group. v0–3 ask for one key; v4+ send a
//! batch (`coordinator_keys`) and get one `Coordinator` entry per key.

use std::sync::Arc;

use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use crate::broker::Broker;
use crate::protocol::authorize::{allowed, Operation, Resource};
use crate::protocol::RequestContext;

/// Kafka's CoordinatorType.GROUP.
const KEY_TYPE_GROUP: i8 = 0;
/// Kafka's CoordinatorType.TRANSACTION: we have no transaction coordinator.
const KEY_TYPE_TRANSACTION: i8 = 1;

/// Handles one FindCoordinator request. Errors are reported inside the response's error codes.
pub async fn handle(broker: &Arc<Broker>, ctx: &RequestContext, request: FindCoordinatorRequest) -> FindCoordinatorResponse {
    let (host, port) = ctx.advertised();
    let me = BrokerId(broker.config.node_id);
    // Per key: DESCRIBE on the group (Kafka), then the key type.
    let answer = |key: &str| -> (BrokerId, StrBytes, i32, i16, Option<StrBytes>) {
        let error = match request.key_type {
            KEY_TYPE_GROUP if !allowed(broker, ctx, Operation::Describe, Resource::Group(key)) => {
                Some(ResponseError::GroupAuthorizationFailed)
            }
            KEY_TYPE_GROUP => None,
            // Clients only ask for these when using transactions, which we do not offer; a
            // retriable error keeps them from sending transactional requests here.
            KEY_TYPE_TRANSACTION => Some(ResponseError::CoordinatorNotAvailable),
            _ => Some(ResponseError::InvalidRequest),
        };
        match error {
            None => (me, StrBytes::from_string(host.to_owned()), port, 0, None),
            Some(e) => (BrokerId(-1), StrBytes::default(), -1, e.code(), Some(StrBytes::from_string(e.to_string()))),
        }
    };
    if ctx.api_version >= 4 {
        let coordinators = request
            .coordinator_keys
            .iter()
            .map(|key| {
                let (node_id, host, port, code, message) = answer(key.as_str());
                Coordinator::default()
                    .with_key(key.clone())
                    .with_node_id(node_id)
                    .with_host(host)
                    .with_port(port)
                    .with_error_code(code)
                    .with_error_message(message)
            })
            .collect();
        return FindCoordinatorResponse::default().with_coordinators(coordinators);
    }
    let (node_id, host, port, code, message) = answer(request.key.as_str());
    let response = FindCoordinatorResponse::default().with_error_code(code).with_node_id(node_id).with_host(host).with_port(port);
    if ctx.api_version >= 1 {
        response.with_error_message(message)
    } else {
        response
    }
}
