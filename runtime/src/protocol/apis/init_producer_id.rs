//! InitProducerId: hands an idempotent producer a fresh producer id (epoch 0). Ids come from
//! blocks recorded in the metadata log, so they never repeat across restarts. Transactional ids
//! are refused: transactions are not supported.

use std::sync::Arc;

use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};
use kafka_protocol::ResponseError;

use crate::broker::Broker;
use crate::protocol::authorize::{allowed, Operation, Resource};
use crate::protocol::error_code;
use crate::protocol::RequestContext;

/// Handles one InitProducerId request. Errors are reported inside the response's error codes.
///
/// A producer re-initialising with its current id and epoch (KIP-360, after an
/// OUT_OF_ORDER_SEQUENCE error) simply gets a new id: partitions treat an unknown producer id as
/// a fresh start, which is what an epoch bump achieves in Kafka.
pub async fn handle(broker: &Arc<Broker>, ctx: &RequestContext, request: InitProducerIdRequest) -> InitProducerIdResponse {
    let failed = |code: ResponseError| {
        InitProducerIdResponse::default().with_error_code(code.code()).with_producer_id(ProducerId(-1)).with_producer_epoch(-1)
    };
    if request.transactional_id.is_some() {
        return failed(ResponseError::TransactionalIdAuthorizationFailed);
    }
    // Kafka: IDEMPOTENT_WRITE on the cluster, or WRITE on any topic.
    let may_write = allowed(broker, ctx, Operation::IdempotentWrite, Resource::Cluster)
        || crate::protocol::authorize::allowed_on_any(broker, ctx, Operation::Write, crate::security::acl::ResourceType::Topic);
    if !may_write {
        return failed(ResponseError::ClusterAuthorizationFailed);
    }
    match broker.allocate_producer_id().await {
        Ok(id) => InitProducerIdResponse::default().with_producer_id(ProducerId(id)).with_producer_epoch(0),
        Err(e) => {
            tracing::warn!("cannot allocate a producer id: {e}");
            failed(error_code::response_error(&e))
        }
    }
}
