//! A Kafka listener's accept loop: connection limits (total and per IP), the TLS handshake on
//! SSL/SASL_SSL listeners, one task per connection, and a graceful stop that lets every
//! connection finish its in-flight requests.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::listener::{ConnectionLimits, Endpoint};
use super::read_low_water::ReadLowWater;
use super::session::Session;
use super::tls::TlsAcceptorSource;
use super::tls_read;
use crate::broker::Broker;

/// Pause after a failed `accept` (e.g. EMFILE) so a persistent error does not spin a core.
const ACCEPT_ERROR_BACKOFF_MS: u64 = 100;

/// One listener to serve.
pub struct ListenerTask {
    /// The bound socket.
    pub listener: TcpListener,
    /// What connections learn about it.
    pub endpoint: Arc<Endpoint>,
    /// Present on SSL and SASL_SSL listeners.
    pub tls: Option<Arc<TlsAcceptorSource>>,
    /// Shared by every listener.
    pub limits: Arc<ConnectionLimits>,
}

/// Accepts connections until `shutdown` turns true, then waits for open connections to finish
/// their in-flight requests.
pub async fn run(task: ListenerTask, broker: Arc<Broker>, mut shutdown: watch::Receiver<bool>) {
    let ListenerTask { listener, endpoint, tls, limits } = task;
    let mut connections = JoinSet::new();
    loop {
        if *shutdown.borrow() {
            break;
        }
        let reserved = tokio::select! {
            permit = limits.reserve() => match permit {
                Some(p) => p,
                None => break, // the semaphore is never closed; treat it as shutdown
            },
            _ = shutdown.changed() => continue,
        };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.changed() => continue,
            // Reap finished connection tasks so the set does not grow without bound.
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
        };
        match accepted {
            Ok((stream, peer)) => {
                let Some(permit) = limits.admit(reserved, peer.ip()) else {
                    tracing::debug!(%peer, listener = %endpoint.name, "closing connection: max_connections_per_ip reached");
                    drop(stream);
                    continue;
                };
                let broker = Arc::clone(&broker);
                let shutdown = shutdown.clone();
                let endpoint = Arc::clone(&endpoint);
                let tls = tls.clone();
                connections.spawn(async move {
                    serve_connection(stream, peer, endpoint, tls, broker, shutdown).await;
                    drop(permit);
                });
            }
            Err(e) => {
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(ACCEPT_ERROR_BACKOFF_MS)).await;
            }
        }
    }
    drop(listener);
    let open = connections.len();
    if open > 0 {
        tracing::info!(open, listener = %endpoint.name, "waiting for connections to finish in-flight requests");
    }
    while let Some(result) = connections.join_next().await {
        if let Err(e) = result {
            if e.is_panic() {
                tracing::error!("a connection task panicked: {e}");
            }
        }
    }
}

/// Completes the TLS handshake if the listener needs one (bounded by `sasl_auth_timeout_ms`, so a
/// client that connects and says nothing cannot hold a place), then serves the connection.
async fn serve_connection(
    stream: TcpStream,
    peer: std::net::SocketAddr,
    endpoint: Arc<Endpoint>,
    tls: Option<Arc<TlsAcceptorSource>>,
    broker: Arc<Broker>,
    shutdown: watch::Receiver<bool>,
) {
    // Responses are small and latency-sensitive; batching is the client's job.
    if let Err(e) = stream.set_nodelay(true) {
        tracing::debug!(%peer, "cannot set TCP_NODELAY: {e}");
    }
    let session = Arc::new(Session::new(endpoint));
    let Some(tls) = tls else {
        let low_water = ReadLowWater::new(&stream);
        super::connection::serve(stream, low_water, peer, broker, session, shutdown).await;
        return;
    };
    let timeout = Duration::from_millis(broker.config.sasl_auth_timeout_ms);
    // Read-ahead under the session, whole reads over it: see `tls_read`.
    // No receive low-water mark under TLS: it stalled librdkafka (see `read_low_water`).
    let low_water = ReadLowWater::disabled();
    match tokio::time::timeout(timeout, tls.acceptor().accept(tls_read::tls_transport(stream))).await {
        Ok(Ok(stream)) => super::connection::serve(tls_read::DrainReads::new(stream), low_water, peer, broker, session, shutdown).await,
        Ok(Err(e)) => tracing::info!(%peer, "TLS handshake failed: {e}"),
        Err(_) => tracing::info!(%peer, "TLS handshake not finished within sasl_auth_timeout_ms"),
    }
}
