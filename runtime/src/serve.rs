//! `sluice serve`: bind the listeners, open the broker (recovering its logs), serve until
//! SIGINT/SIGTERM, then stop accepting, finish in-flight requests, flush and return.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::admin::BrokerCell;
use crate::broker::Broker;
use crate::config::BrokerConfig;
use crate::health::Readiness;

/// Readiness condition: the broker's logs and metadata are open (recovery done).
pub const RECOVERY: &str = "recovery";
/// Readiness condition: the Kafka listener accepts connections (cleared at shutdown).
pub const KAFKA_LISTENER: &str = "kafka_listener";

/// Addresses the listeners actually bound (port 0 resolved), reported at startup and by
/// `GET /v1/cluster`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BoundAddrs {
    pub kafka: SocketAddr,
    pub admin: SocketAddr,
    /// host:port that clients are told to connect to.
    pub advertised: String,
}

/// Runs the broker until `shutdown` becomes true (or a signal arrives, if `handle_signals`).
/// `on_ready` receives the bound addresses once Kafka requests are being accepted.
pub async fn run(config: BrokerConfig, on_ready: impl FnOnce(&BoundAddrs)) -> anyhow::Result<()> {
    let kafka_listener = TcpListener::bind(config.kafka_addr)
        .await
        .with_context(|| format!("cannot bind the Kafka listener on {}", config.kafka_addr))?;
    let admin_listener = TcpListener::bind(config.admin_addr)
        .await
        .with_context(|| format!("cannot bind the admin listener on {}", config.admin_addr))?;
    let kafka = kafka_listener.local_addr()?;
    let admin = admin_listener.local_addr()?;
    let advertised = config.advertised_addr.clone().unwrap_or_else(|| kafka.to_string());
    let addrs = BoundAddrs { kafka, admin, advertised };

    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let readiness = Arc::new(Readiness::new(&[RECOVERY, KAFKA_LISTENER]));
    let cell: BrokerCell = Arc::default();
    let transforms_cell: crate::admin_transforms::TransformCell = Arc::default();
    let admin_task = tokio::spawn(crate::admin::serve(
        admin_listener,
        Arc::clone(&cell),
        Arc::clone(&transforms_cell),
        Arc::clone(&readiness),
        addrs.clone(),
        shutdown_rx.clone(),
    ));

    let broker = match Broker::open(config, &addrs).await {
        Ok(broker) => broker,
        Err(e) => {
            let _ = shutdown_tx.send(true);
            let _ = admin_task.await;
            return Err(e).context("cannot open the broker");
        }
    };
    // Set once, here; the admin routes read it.
    let _ = cell.set(Arc::clone(&broker));
    // Transforms restart from their checkpoints as part of opening (compiled code comes from the
    // on-disk cache).
    let transforms = match crate::transform::TransformManager::start(Arc::clone(&broker)).await {
        Ok(t) => t,
        Err(e) => {
            let _ = shutdown_tx.send(true);
            let _ = admin_task.await;
            let _ = broker.shutdown().await;
            return Err(e).context("cannot start the transform engine");
        }
    };
    let _ = transforms_cell.set(Arc::clone(&transforms));
    readiness.set(RECOVERY, true);

    let kafka_task = tokio::spawn(crate::protocol::server::run(kafka_listener, Arc::clone(&broker), shutdown_rx));
    // Handlers go in before the ready line: a SIGTERM sent right after it must stop the broker
    // gracefully, not kill it with the default action.
    let stop_signal = stop_signal();
    readiness.set(KAFKA_LISTENER, true);
    on_ready(&addrs);

    stop_signal.await;
    tracing::info!("shutting down: no new connections, finishing in-flight requests");
    readiness.set(KAFKA_LISTENER, false);
    // A send error means every receiver is gone, i.e. the tasks have already stopped.
    let _ = shutdown_tx.send(true);
    broker.begin_stop();
    kafka_task.await.context("Kafka listener task failed")?;
    admin_task.await.context("admin task failed")?;
    transforms.shutdown().await;
    broker.shutdown().await.context("cannot flush the broker's logs")?;
    tracing::info!("stopped cleanly");
    Ok(())
}

/// Registers SIGTERM and SIGINT handlers now; the returned future completes on either.
fn stop_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{signal, SignalKind};
    let terminate = signal(SignalKind::terminate());
    let interrupt = signal(SignalKind::interrupt());
    async move {
        match (terminate, interrupt) {
            (Ok(mut term), Ok(mut int)) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
            }
            (Err(e), Ok(mut int)) => {
                tracing::warn!("cannot listen for SIGTERM ({e}); only SIGINT stops the broker");
                int.recv().await;
            }
            (Ok(mut term), Err(e)) => {
                tracing::warn!("cannot listen for SIGINT ({e}); only SIGTERM stops the broker");
                term.recv().await;
            }
            (Err(e), Err(_)) => {
                tracing::error!("cannot listen for SIGTERM or SIGINT ({e}); stop the broker with SIGKILL");
                std::future::pending::<()>().await;
            }
        }
    }
}
