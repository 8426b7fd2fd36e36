//! The admin HTTP API over TLS (`admin_tls: true`), with the Kafka listeners' certificate files
//! and the same reloadable rustls configuration (`protocol::tls`, so a reload covers both).
//!
//! axum's `serve` takes any [`Listener`]; this one accepts TCP in a task of its own and runs
//! each TLS handshake in a separate task with a deadline, handing finished streams to `accept`.
//! A handshake inside `accept` itself would let one slow client stall every other connection.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::serve::Listener;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Semaphore};
use tokio_rustls::server::TlsStream;

use crate::protocol::tls::TlsAcceptorSource;

/// Handshakes running at once; more connections wait in the kernel's accept queue.
pub const ADMIN_TLS_HANDSHAKES_MAX: usize = 64;

/// A TLS listener for axum.
pub struct TlsListener {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
    accept_task: tokio::task::JoinHandle<()>,
}

impl TlsListener {
    /// Starts accepting on `tcp`; each handshake must finish within `handshake_timeout`.
    pub fn new(tcp: TcpListener, tls: Arc<TlsAcceptorSource>, handshake_timeout: Duration) -> std::io::Result<Self> {
        let local = tcp.local_addr()?;
        let (tx, ready) = mpsc::channel(ADMIN_TLS_HANDSHAKES_MAX);
        let accept_task = tokio::spawn(accept_loop(tcp, tls, handshake_timeout, tx));
        Ok(TlsListener { ready, local, accept_task })
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.accept_task.abort();
    }
}

async fn accept_loop(
    tcp: TcpListener,
    tls: Arc<TlsAcceptorSource>,
    handshake_timeout: Duration,
    tx: mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>,
) {
    let permits = Arc::new(Semaphore::new(ADMIN_TLS_HANDSHAKES_MAX));
    loop {
        let Ok(permit) = Arc::clone(&permits).acquire_owned().await else { return };
        let (stream, peer) = match tcp.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // EMFILE and friends: wait a little instead of spinning.
                tracing::warn!("admin listener accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let acceptor = tls.acceptor();
        let tx = tx.clone();
        tokio::spawn(async move {
            let _permit = permit;
            match tokio::time::timeout(handshake_timeout, acceptor.accept(stream)).await {
                Ok(Ok(stream)) => {
                    // Err: the server is stopping; the connection just closes.
                    let _ = tx.send((stream, peer)).await;
                }
                Ok(Err(e)) => tracing::debug!(%peer, "admin TLS handshake failed: {e}"),
                Err(_) => tracing::debug!(%peer, "admin TLS handshake timed out"),
            }
        });
    }
}

impl Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(accepted) => accepted,
            // The accept task ended (only on shutdown): accept nothing more.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}
