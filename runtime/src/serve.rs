//! `sluice serve`: bind the listeners, open the broker (recovering its logs), serve until
//! SIGINT/SIGTERM, then stop accepting, finish in-flight requests, flush and return. SIGHUP, or a
//! change of the files, re-reads the TLS certificates (`protocol/tls_reload.rs`: new handshakes
//! use them; open connections carry on).

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::admin::BrokerCell;
use crate::broker::{parse_host_port, Broker};
use crate::config::BrokerConfig;
use crate::health::Readiness;
use crate::protocol::listener::{ConnectionLimits, Endpoint};
use crate::protocol::server::ListenerTask;
use crate::protocol::tls::TlsAcceptorSource;

/// Readiness condition: the broker's logs and metadata are open (recovery done).
pub const RECOVERY: &str = "recovery";
/// Readiness condition: the Kafka listeners accept connections (cleared at shutdown).
pub const KAFKA_LISTENER: &str = "kafka_listener";

/// Addresses the listeners actually bound (port 0 resolved), reported at startup and by
/// `GET /v1/cluster`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BoundAddrs {
    /// The first Kafka listener's bound address.
    pub kafka: SocketAddr,
    /// The admin HTTP listener's bound address.
    pub admin: SocketAddr,
    /// host:port that clients of the first listener are told to connect to.
    pub advertised: String,
    /// Every Kafka listener, in configuration order (the first is `kafka`).
    pub listeners: Vec<BoundListener>,
}

#[allow(missing_docs)] // fields are named for what they hold
/// One bound Kafka listener.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BoundListener {
    pub name: String,
    pub security_protocol: &'static str,
    pub addr: SocketAddr,
    /// host:port given to clients of this listener.
    pub advertised: String,
}

/// Runs the broker until `shutdown` becomes true (or a signal arrives, if `handle_signals`).
/// `on_ready` receives the bound addresses once Kafka requests are being accepted.
pub async fn run(config: BrokerConfig, on_ready: impl FnOnce(&BoundAddrs)) -> anyhow::Result<()> {
    let tls = match &config.tls {
        Some(tls) if config.admin_tls || config.listeners.iter().any(|l| l.security_protocol.uses_tls()) => {
            Some(Arc::new(TlsAcceptorSource::load(tls).context("cannot load the TLS certificates")?))
        }
        _ => None,
    };
    let mut sockets = Vec::with_capacity(config.listeners.len());
    let mut bound = Vec::with_capacity(config.listeners.len());
    for (i, l) in config.listeners.iter().enumerate() {
        let socket = TcpListener::bind(l.addr).await.with_context(|| format!("cannot bind the Kafka listener {} on {}", l.name, l.addr))?;
        let addr = socket.local_addr()?;
        // The top-level advertised_addr belongs to the first listener (as before listeners).
        let advertised = l.advertised_addr.clone().or_else(|| if i == 0 { config.advertised_addr.clone() } else { None });
        let advertised = advertised.unwrap_or_else(|| addr.to_string());
        bound.push(BoundListener { name: l.name.clone(), security_protocol: l.security_protocol.name(), addr, advertised });
        sockets.push(socket);
    }
    let admin_listener =
        TcpListener::bind(config.admin_addr).await.with_context(|| format!("cannot bind the admin listener on {}", config.admin_addr))?;
    let admin = admin_listener.local_addr()?;
    let (kafka, advertised) = match bound.first() {
        Some(first) => (first.addr, first.advertised.clone()),
        None => anyhow::bail!("no Kafka listener configured"),
    };
    let addrs = BoundAddrs { kafka, admin, advertised, listeners: bound };

    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let readiness = Arc::new(Readiness::new(&[RECOVERY, KAFKA_LISTENER]));
    let cell: BrokerCell = Arc::default();
    let transforms_cell: crate::admin_transforms::TransformCell = Arc::default();
    let admin_tls = tls.clone().filter(|_| config.admin_tls).map(|t| (t, std::time::Duration::from_millis(config.sasl_auth_timeout_ms)));
    let admin_task = tokio::spawn(crate::admin::serve(
        admin_listener,
        admin_tls,
        Arc::clone(&cell),
        Arc::clone(&transforms_cell),
        Arc::clone(&readiness),
        addrs.clone(),
        shutdown_rx.clone(),
    ));

    let limits = ConnectionLimits::new(config.max_connections, config.max_connections_per_ip);
    let bootstrap = config.sasl_bootstrap.clone();
    let opened = async {
        let broker = Broker::open(config, &addrs).await.context("cannot open the broker")?;
        if let Some((user, password)) = bootstrap {
            broker.ensure_bootstrap_user(&user, &password).await.context("cannot create the SASL bootstrap user")?;
        }
        anyhow::Ok(broker)
    };
    let broker = match opened.await {
        Ok(broker) => broker,
        Err(e) => {
            let _ = shutdown_tx.send(true);
            let _ = admin_task.await;
            return Err(e);
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

    let mut kafka_tasks = Vec::with_capacity(sockets.len());
    for (socket, l) in sockets.into_iter().zip(&addrs.listeners) {
        let (host, port) = parse_host_port(&l.advertised).context("advertised address")?;
        let protocol = broker.config.listeners.iter().find(|c| c.name == l.name).map(|c| c.security_protocol);
        let Some(protocol) = protocol else { anyhow::bail!("listener {} vanished from the config", l.name) };
        let endpoint = Arc::new(Endpoint::new(&l.name, protocol, l.addr, host, port));
        let tls = if protocol.uses_tls() { tls.clone() } else { None };
        let task = ListenerTask { listener: socket, endpoint, tls, limits: Arc::clone(&limits) };
        kafka_tasks.push(tokio::spawn(crate::protocol::server::run(task, Arc::clone(&broker), shutdown_rx.clone())));
    }
    if let Some(tls) = tls {
        crate::protocol::tls_reload::spawn(tls);
    }
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
    for task in kafka_tasks {
        task.await.context("Kafka listener task failed")?;
    }
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
