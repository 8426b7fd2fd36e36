//! The Kafka listener's accept loop.

use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::broker::Broker;

/// Accepts connections until `shutdown` turns true, then waits for open connections to finish
/// their in-flight requests.
pub async fn run(listener: TcpListener, broker: Arc<Broker>, shutdown: watch::Receiver<bool>) {
    let _ = (listener, broker, shutdown);
    todo!()
}
