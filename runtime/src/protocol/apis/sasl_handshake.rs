//! SaslHandshake (v0–v1): the client names a mechanism; the response lists the ones offered.
//! v0 means raw SASL tokens follow (no Kafka header); v1 means SaslAuthenticate carries them.

use std::sync::Arc;

use kafka_protocol::messages::{SaslHandshakeRequest, SaslHandshakeResponse};
use kafka_protocol::protocol::StrBytes;

use crate::broker::Broker;
use crate::protocol::{error_code, RequestContext};

/// Handles one SaslHandshake request. Errors are reported inside the response's error code.
pub async fn handle(broker: &Arc<Broker>, ctx: &RequestContext, request: SaslHandshakeRequest) -> SaslHandshakeResponse {
    let offered = if ctx.session.endpoint.protocol.uses_sasl() { broker.config.sasl_mechanisms.as_slice() } else { &[] };
    let mechanisms = offered.iter().map(|m| StrBytes::from_static_str(m.name())).collect();
    let response = SaslHandshakeResponse::default().with_mechanisms(mechanisms);
    match ctx.session.handshake(request.mechanism.as_str(), ctx.api_version, offered) {
        Ok(()) => response,
        Err(refusal) => response.with_error_code(error_code::handshake_refusal(refusal).code()),
    }
}
