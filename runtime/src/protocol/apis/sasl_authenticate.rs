//! SaslAuthenticate (v0–v2, KIP-152): one SASL token each way per request. A failure answers
//! SASL_AUTHENTICATION_FAILED with a message and the connection then closes. Sessions do not
//! expire (`session_lifetime_ms` 0: no KIP-368 re-authentication).
//!
//! Also [`raw_token`]: the pre-KIP-152 framing after a SaslHandshake v0, where tokens travel as
//! bare size-prefixed frames.

use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{SaslAuthenticateRequest, SaslAuthenticateResponse};
use kafka_protocol::protocol::StrBytes;

use crate::broker::Broker;
use crate::protocol::session::Session;
use crate::protocol::{error_code, RequestContext};

/// Handles one SaslAuthenticate request. Errors are reported inside the response's error code.
pub async fn handle(broker: &Arc<Broker>, ctx: &RequestContext, request: SaslAuthenticateRequest) -> SaslAuthenticateResponse {
    // PLAIN runs PBKDF2 here (a few ms at our iteration counts): acceptable on a request task,
    // and bounded by the per-connection one-request-at-a-time rule before authentication.
    match ctx.session.authenticate(&request.auth_bytes, broker.credentials()) {
        Ok(reply) => SaslAuthenticateResponse::default().with_auth_bytes(Bytes::from(reply)),
        Err(e) => {
            tracing::info!(peer = %ctx.peer, listener = %ctx.session.endpoint.name, "SASL authentication refused: {e}");
            SaslAuthenticateResponse::default()
                .with_error_code(error_code::session_auth_error(&e).code())
                .with_error_message(Some(StrBytes::from_string(e.to_string())))
        }
    }
}

/// Answers one raw SASL token (after SaslHandshake v0) with a size-prefixed raw token. A failure
/// closes the connection: that framing has no way to carry an error.
pub fn raw_token(broker: &Arc<Broker>, session: &Session, token: &[u8]) -> Result<Option<Bytes>, String> {
    let reply = session.authenticate(token, broker.credentials()).map_err(|e| format!("SASL authentication failed: {e}"))?;
    let size = i32::try_from(reply.len()).map_err(|_| "SASL token too large".to_string())?;
    let mut out = BytesMut::with_capacity(4 + reply.len());
    out.put_i32(size);
    out.put_slice(&reply);
    Ok(Some(out.freeze()))
}
