//! The Kafka wire protocol: framing, per-connection pipelining, and one handler file per API.
//!
//! # Layout
//! - `server`: a listener's accept loop, connection limits and TLS handshake.
//! - `listener`: [`listener::Endpoint`] (name, protocol, advertised address) and the total and
//!   per-IP connection limits.
//! - `tls`: rustls server configuration from PEM files, reloadable.
//! - `tls_read`: read-ahead under a TLS session and whole reads over it (TLS throughput).
//! - `read_low_water`: the socket's receive low-water mark follows the rest of the frame being read,
//!   so a request that arrives in many small pieces wakes its connection a few times, not hundreds.
//! - `authorize`: the one authorization check (the seam ACLs will fill).
//! - `session`: a connection's SASL state and principal; which requests it admits.
//! - `connection`: reads size-prefixed frames, decodes headers with `kafka-protocol`, runs requests
//!   concurrently (bounded) and writes responses back in request order.
//! - `frame_pool`: recycled buffers for large request frames (no fresh pages per 1 MB Produce).
//! - `apis/`: one file per Kafka API (decode-handle-encode together); `dispatch` is the one match
//!   that routes a decoded request to its file, and `SUPPORTED_APIS` the version table.
//! - `error_code`: the one place internal errors become Kafka error codes.
//!
//! Handlers never see raw bytes except record batches: framing, headers and bodies are decoded
//! here with `kafka-protocol` before a handler runs, and encoded after it returns.

use std::net::SocketAddr;

use parking_lot::Mutex;
use tokio::sync::oneshot;

pub mod apis;
pub mod authorize;
pub mod connection;
pub mod error_code;
pub mod frame_pool;
pub mod listener;
pub mod read_low_water;
pub mod server;
pub mod session;
pub mod tls;
pub mod tls_read;
pub mod tls_reload;

/// What a handler knows about the request besides its body.
#[derive(Debug)]
pub struct RequestContext {
    /// The negotiated version of this request's API.
    pub api_version: i16,
    /// Echoed in the response header.
    pub correlation_id: i32,
    /// The client's self-reported id (logging only).
    pub client_id: Option<String>,
    /// The remote address of the connection.
    pub peer: SocketAddr,
    /// Keeps appends from one connection in request order (see [`AppendTurn`]).
    pub append_turn: AppendTurn,
    /// Who sent the request (`User:ANONYMOUS` on PLAINTEXT/SSL listeners). Authorization checks
    /// (ACLs) read this.
    pub principal: crate::security::Principal,
    /// The connection's listener and SASL state.
    pub session: std::sync::Arc<session::Session>,
}

impl RequestContext {
    /// `(host, port)` to give the client: that of the listener it connected to.
    pub fn advertised(&self) -> (&str, i32) {
        self.session.endpoint.advertised()
    }
}

/// Orders the *append* phase of Produce requests from one connection.
///
/// Kafka processes one request per connection at a time, so a client pipelining produce requests
/// (up to `max.in.flight.requests.per.connection`) relies on them being appended in the order sent;
/// idempotent producers would otherwise see OUT_OF_ORDER_SEQUENCE_NUMBER. We run requests
/// concurrently for throughput, so each Produce waits for the previous one's append (not its
/// fsync) before appending: the connection chains them with one-shot channels. A dropped sender
/// (an error, a panic) also releases the next request.
#[derive(Debug, Default)]
pub struct AppendTurn {
    previous: Mutex<Option<oneshot::Receiver<()>>>,
    done: Mutex<Option<oneshot::Sender<()>>>,
}

impl AppendTurn {
    /// A turn with no predecessor and no successor (tests, non-produce requests).
    pub fn free() -> Self {
        Self::default()
    }

    /// A turn that waits for `previous` and releases the returned receiver when finished.
    pub fn chained(previous: Option<oneshot::Receiver<()>>) -> (Self, oneshot::Receiver<()>) {
        let (tx, rx) = oneshot::channel();
        (Self { previous: Mutex::new(previous), done: Mutex::new(Some(tx)) }, rx)
    }

    /// Waits until every earlier Produce on this connection has appended (or failed).
    pub async fn wait(&self) {
        let previous = self.previous.lock().take();
        if let Some(rx) = previous {
            // Err: the predecessor was dropped without finishing, which also means "your turn".
            let _ = rx.await;
        }
    }

    /// Lets the next Produce on this connection append. Idempotent.
    pub fn finish(&self) {
        if let Some(tx) = self.done.lock().take() {
            // Err: nobody waits (no later produce); nothing to do.
            let _ = tx.send(());
        }
    }
}
