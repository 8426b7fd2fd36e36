//! The Kafka wire protocol: framing, per-connection pipelining, and one handler file per API.
//!
//! # Layout
//! - `server`: the accept loop and connection limit.
//! - `connection`: reads size-prefixed frames, decodes headers with `kafka-protocol`, runs requests
//!   concurrently (bounded) and writes responses back in request order.
//! - `apis/`: one file per Kafka API (decode-handle-encode together); `dispatch` is the one match
//!   that routes a decoded request to its file, and `SUPPORTED_APIS` the version table.
//! - `error_code`: the one place internal errors become Kafka error codes.

use std::net::SocketAddr;

pub mod apis;
pub mod connection;
pub mod error_code;
pub mod server;

/// What a handler knows about the request besides its body.
#[derive(Debug, Clone)]
pub struct RequestContext {
    /// The negotiated version of this request's API.
    pub api_version: i16,
    pub correlation_id: i32,
    pub client_id: Option<String>,
    pub peer: SocketAddr,
}
