//! The admin HTTP API on its own port: `/healthz`, `/readyz`, `/metrics`, `/v1/cluster`, `/v1/tier`.
//!
//! It starts before the broker opens its logs, so `/healthz` (alive) answers during a long
//! recovery while `/readyz` says 503 until recovery is done and the Kafka listener accepts.
//! Routes that need the broker answer 503 until it is open.
//! The transform routes (`/v1/transforms…`) live in `admin_transforms` and answer 503 until the
//! transform manager has started; the topic and group routes (`/v1/topics…`, `/v1/groups…`) live
//! in `admin_topics`; the manifest store (`/v1/manifests…`) in `admin_manifests`.
//! Authentication (HTTP Basic against the SCRAM users when Kafka listeners need SASL) wraps every
//! route: see `admin_auth`.

use std::sync::{Arc, OnceLock};

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::serve::ListenerExt;
use axum::{Json, Router};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::broker::Broker;
use crate::health::Readiness;
use crate::protocol::tls::TlsAcceptorSource;
use crate::serve::BoundAddrs;

/// The broker once it is open; empty while it recovers.
pub type BrokerCell = Arc<OnceLock<Arc<Broker>>>;

#[derive(Clone)]
struct AdminState {
    broker: BrokerCell,
    readiness: Arc<Readiness>,
    addrs: BoundAddrs,
}

/// Serves the admin API until `shutdown` turns true.
/// With `tls`, HTTPS with the Kafka listeners' certificates (and that handshake deadline).
#[allow(clippy::too_many_arguments)]
pub async fn serve(
    listener: TcpListener,
    tls: Option<(Arc<TlsAcceptorSource>, Duration)>,
    broker: BrokerCell,
    transforms: crate::admin_transforms::TransformCell,
    readiness: Arc<Readiness>,
    addrs: BoundAddrs,
    mut shutdown: watch::Receiver<bool>,
) {
    let app = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/v1/cluster", get(cluster))
        .route("/v1/tier", get(tier))
        .with_state(AdminState { broker: Arc::clone(&broker), readiness, addrs })
        .merge(crate::admin_topics::routes(Arc::clone(&broker)))
        .merge(crate::admin_transforms::routes(transforms))
        .merge(crate::admin_manifests::routes(Arc::clone(&broker)))
        .merge(crate::admin_acls::routes(Arc::clone(&broker)))
        // Last, so it wraps every route above.
        .layer(axum::middleware::from_fn_with_state(crate::admin_auth::AuthState::new(broker), crate::admin_auth::authenticate));
    let stop = async move {
        // Err means the sender is gone, which also means stop.
        let _ = shutdown.wait_for(|stop| *stop).await;
    };
    // Connect info (the client address is the ACL host of admin requests) comes from `tap_io`,
    // which gives it for any listener whose address is a SocketAddr, TCP or TLS alike.
    let app = app.into_make_service_with_connect_info::<SocketAddr>();
    let served = match tls {
        None => axum::serve(listener.tap_io(|_| {}), app).with_graceful_shutdown(stop).await,
        Some((tls, handshake_timeout)) => match crate::admin_tls::TlsListener::new(listener, tls, handshake_timeout) {
            Ok(listener) => axum::serve(listener.tap_io(|_| {}), app).with_graceful_shutdown(stop).await,
            Err(e) => Err(e),
        },
    };
    if let Err(e) = served {
        tracing::error!("admin HTTP server failed: {e}");
    }
}

/// 200 while the process serves HTTP (liveness).
async fn healthz() -> &'static str {
    "ok\n"
}

/// 200 once every readiness condition holds; 503 naming the ones that do not.
async fn readyz(State(state): State<AdminState>) -> Response {
    let unmet = state.readiness.unmet();
    if unmet.is_empty() {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {}\n", unmet.join(", "))).into_response()
    }
}

fn recovering() -> Response {
    (StatusCode::SERVICE_UNAVAILABLE, "the broker is still opening its logs\n").into_response()
}

/// The Prometheus text exposition format.
async fn metrics(State(state): State<AdminState>) -> Response {
    let Some(broker) = state.broker.get().cloned() else { return recovering() };
    if !broker.metrics.enabled() {
        return (StatusCode::NOT_FOUND, "metrics are disabled (--metrics=false)\n").into_response();
    }
    // Gathering reads /proc and takes short locks over every partition: off the async threads.
    match tokio::task::spawn_blocking(move || broker.metrics.render()).await {
        Ok(text) => ([(header::CONTENT_TYPE, prometheus::TEXT_FORMAT)], text).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("cannot gather metrics: {e}\n")).into_response(),
    }
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
    /// Every Kafka listener: name, security protocol, bound and advertised address.
    listeners: Vec<crate::serve::BoundListener>,
}

async fn cluster(State(state): State<AdminState>) -> Response {
    let Some(broker) = state.broker.get() else { return recovering() };
    let config = &broker.config;
    Json(ClusterInfo {
        node_id: config.node_id,
        cluster_id: broker.cluster_id().to_string(),
        kafka_addr: state.addrs.kafka.to_string(),
        admin_addr: state.addrs.admin.to_string(),
        advertised_addr: state.addrs.advertised.clone(),
        data_dir: config.data_dir.display().to_string(),
        object_store: config.object_store.clone(),
        listeners: state.addrs.listeners.clone(),
    })
    .into_response()
}

/// Tiered storage counters (uploads, backlog, remote reads, cache), as JSON.
async fn tier(State(state): State<AdminState>) -> Response {
    let Some(broker) = state.broker.get() else { return recovering() };
    Json(broker.tier.stats()).into_response()
}
