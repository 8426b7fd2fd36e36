//! The Kafka listener's accept loop: a connection limit, one task per connection, and a graceful
//! stop that lets every connection finish its in-flight requests.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;

use crate::broker::Broker;

/// Pause after a failed `accept` (e.g. EMFILE) so a persistent error does not spin a core.
const ACCEPT_ERROR_BACKOFF_MS: u64 = 100;

/// Accepts connections until `shutdown` turns true, then waits for open connections to finish
/// their in-flight requests.
///
/// At most `config.max_connections` connections are served at once; further clients wait in the
/// kernel's accept backlog rather than being refused, which is what Kafka clients expect from a
/// busy broker.
pub async fn run(listener: TcpListener, broker: Arc<Broker>, mut shutdown: watch::Receiver<bool>) {
    let limit = Arc::new(Semaphore::new(broker.config.max_connections.max(1)));
    let mut connections = JoinSet::new();
    loop {
        if *shutdown.borrow() {
            break;
        }
        let permit = tokio::select! {
            permit = Arc::clone(&limit).acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break, // the semaphore is never closed; treat it as shutdown
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
                let broker = Arc::clone(&broker);
                let shutdown = shutdown.clone();
                connections.spawn(async move {
                    super::connection::serve(stream, peer, broker, shutdown).await;
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
        tracing::info!(open, "waiting for connections to finish in-flight requests");
    }
    while let Some(result) = connections.join_next().await {
        if let Err(e) = result {
            if e.is_panic() {
                tracing::error!("a connection task panicked: {e}");
            }
        }
    }
}
