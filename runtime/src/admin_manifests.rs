//! The manifest routes of the admin HTTP API: the broker's store of applied manifest documents
//! (`sluice apply` writes them, `sluice get pipelines -o yaml` reads them).
//!
//! | method and path | body | answer |
//! | --- | --- | --- |
//! | `GET /v1/manifests[?kind=Pipeline]` | | 200 `[{"kind", "name", "document"}]`, sorted by kind, name |
//! | `GET /v1/manifests/{kind}/{name}` | | 200 `{"kind", "name", "document"}`; 404 |
//! | `PUT /v1/manifests/{kind}/{name}` | the document as JSON | 200 `{"kind", "name", "document"}` |
//! | `DELETE /v1/manifests/{kind}/{name}` | | 204; 404 |
//!
//! `kind` is `Topic`, `Transform` or `Pipeline` (any case). A document's own `kind` and
//! `metadata.name` must match the path. Errors are `{"error": "<kind>", "message": "<text>"}`.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use crate::admin::BrokerCell;
use crate::manifest::Kind;

/// One stored document, as the routes answer it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredManifest {
    /// `Topic`, `Transform` or `Pipeline`.
    pub kind: String,
    /// `metadata.name`.
    pub name: String,
    /// The document as applied (YAML as JSON).
    pub document: serde_json::Value,
}

/// The routes, with the broker's cell as state.
pub fn routes(broker: BrokerCell) -> Router {
    Router::new()
        .route("/v1/manifests", get(list))
        .route("/v1/manifests/{kind}/{name}", get(describe).put(put).delete(delete))
        .with_state(broker)
}

fn error(status: StatusCode, kind: &str, message: impl Into<String>) -> Response {
    (status, Json(serde_json::json!({ "error": kind, "message": message.into() }))).into_response()
}

fn kind_of(s: &str) -> Result<Kind, Response> {
    Kind::ALL.into_iter().find(|k| k.as_str().eq_ignore_ascii_case(s)).ok_or_else(|| error(StatusCode::BAD_REQUEST, "invalid_kind", format!("unknown kind {s:?}; expected Topic, Transform or Pipeline")))
}

fn split_key(key: &str) -> Option<StoredManifest> {
    let (kind, name) = key.split_once('/')?;
    Some(StoredManifest { kind: kind.to_string(), name: name.to_string(), document: serde_json::Value::Null })
}

#[derive(Deserialize)]
struct ListQuery {
    kind: Option<String>,
}

async fn list(State(cell): State<BrokerCell>, Query(q): Query<ListQuery>) -> Response {
    let Some(broker) = cell.get().cloned() else { return starting() };
    let kind = match q.kind.as_deref().map(kind_of).transpose() {
        Ok(k) => k,
        Err(response) => return response,
    };
    let mut out = Vec::new();
    for (key, document) in broker.manifests().await {
        let Some(mut m) = split_key(&key) else { continue };
        if kind.is_some_and(|k| k.as_str() != m.kind) {
            continue;
        }
        m.document = document;
        out.push(m);
    }
    Json(out).into_response()
}

fn starting() -> Response {
    error(StatusCode::SERVICE_UNAVAILABLE, "starting", "the broker is still opening its logs")
}

async fn describe(State(cell): State<BrokerCell>, Path((kind, name)): Path<(String, String)>) -> Response {
    let Some(broker) = cell.get().cloned() else { return starting() };
    let kind = match kind_of(&kind) {
        Ok(k) => k,
        Err(response) => return response,
    };
    let key = crate::manifest::plan::store_key(kind, &name);
    match broker.manifests().await.remove(&key) {
        Some(document) => Json(StoredManifest { kind: kind.as_str().into(), name, document }).into_response(),
        None => error(StatusCode::NOT_FOUND, "unknown_manifest", format!("no applied manifest {key}")),
    }
}

async fn put(State(cell): State<BrokerCell>, Path((kind, name)): Path<(String, String)>, Json(document): Json<serde_json::Value>) -> Response {
    let Some(broker) = cell.get().cloned() else { return starting() };
    let kind = match kind_of(&kind) {
        Ok(k) => k,
        Err(response) => return response,
    };
    let own_kind = document.get("kind").and_then(|k| k.as_str());
    let own_name = document.get("metadata").and_then(|m| m.get("name")).and_then(|n| n.as_str());
    if own_kind != Some(kind.as_str()) || own_name != Some(name.as_str()) {
        return error(StatusCode::BAD_REQUEST, "invalid_manifest", format!("the document's kind and metadata.name ({own_kind:?}, {own_name:?}) do not match the path {}/{name}", kind.as_str()));
    }
    if let Err(e) = crate::broker::validate_topic_name(&name) {
        return error(StatusCode::BAD_REQUEST, "invalid_manifest", e.to_string());
    }
    let key = crate::manifest::plan::store_key(kind, &name);
    match broker.put_manifest(key, document.clone()).await {
        Ok(()) => Json(StoredManifest { kind: kind.as_str().into(), name, document }).into_response(),
        Err(crate::broker::BrokerError::InvalidRequest { reason }) => error(StatusCode::BAD_REQUEST, "invalid_manifest", reason),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()),
    }
}

async fn delete(State(cell): State<BrokerCell>, Path((kind, name)): Path<(String, String)>) -> Response {
    let Some(broker) = cell.get().cloned() else { return starting() };
    let kind = match kind_of(&kind) {
        Ok(k) => k,
        Err(response) => return response,
    };
    let key = crate::manifest::plan::store_key(kind, &name);
    match broker.delete_manifest(&key).await {
        Ok(true) => StatusCode::NO_CONTENT.into_response(),
        Ok(false) => error(StatusCode::NOT_FOUND, "unknown_manifest", format!("no applied manifest {key}")),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()),
    }
}
