//! The admin HTTP API on its own port: `/healthz`, `/v1/cluster`, `/metrics`.

use std::sync::Arc;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::broker::Broker;
use crate::serve::BoundAddrs;

#[derive(Clone)]
struct AdminState {
    broker: Arc<Broker>,
    addrs: BoundAddrs,
}

/// Serves the admin API until `shutdown` turns true.
pub async fn serve(listener: TcpListener, broker: Arc<Broker>, addrs: BoundAddrs, mut shutdown: watch::Receiver<bool>) {
    let app = Router::new()
        .route("/healthz", get(healthz))
        .route("/v1/cluster", get(cluster))
        .with_state(AdminState { broker, addrs });
    let stop = async move {
        // Err means the sender is gone, which also means stop.
        let _ = shutdown.wait_for(|stop| *stop).await;
    };
    if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(stop).await {
        tracing::error!("admin HTTP server failed: {e}");
    }
}

/// 200 once the broker accepts Kafka requests (the admin listener starts after recovery).
async fn healthz() -> &'static str {
    "ok\n"
}

#[derive(serde::Serialize)]
struct ClusterInfo {
    node_id: i32,
    cluster_id: String,
    kafka_addr: String,
    admin_addr: String,
    advertised_addr: String,
    data_dir: String,
    object_store: String,
}

async fn cluster(State(state): State<AdminState>) -> Json<ClusterInfo> {
    let config = &state.broker.config;
    Json(ClusterInfo {
        node_id: config.node_id,
        cluster_id: state.broker.cluster_id().to_string(),
        kafka_addr: state.addrs.kafka.to_string(),
        admin_addr: state.addrs.admin.to_string(),
        advertised_addr: state.addrs.advertised.clone(),
        data_dir: config.data_dir.display().to_string(),
        object_store: config.object_store.clone(),
    })
}
