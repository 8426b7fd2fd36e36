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
//! `kind` is `Topic`, `Transform`, `Pipeline` or `Acl` (any case). A document's own `kind` and
//! `metadata.name` must match the path. Errors are `admin_error::ApiError` (`invalid_kind`,
//! `invalid_manifest`, `invalid_body`, `invalid_request` (too large), `unknown_manifest`,
//! `starting`).

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::Extension;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use crate::admin::BrokerCell;
use crate::admin_auth::{require, AdminAuth};
use crate::admin_error::ApiError;
use crate::broker::Broker;
use crate::manifest::plan::store_key;
use crate::manifest::Kind;
use crate::protocol::authorize::{Operation, Resource};

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

fn opened(cell: &BrokerCell) -> Result<Arc<Broker>, ApiError> {
    cell.get().cloned().ok_or_else(ApiError::starting)
}

fn kind_of(s: &str) -> Result<Kind, ApiError> {
    Kind::ALL
        .into_iter()
        .find(|k| k.as_str().eq_ignore_ascii_case(s))
        .ok_or_else(|| ApiError::bad_request("invalid_kind", format!("unknown kind {s:?}; expected Topic, Transform, Pipeline or Acl")))
}

fn not_found(key: &str) -> ApiError {
    ApiError { status: StatusCode::NOT_FOUND, kind: "unknown_manifest", message: format!("no applied manifest {key}") }
}

#[derive(Deserialize)]
struct ListQuery {
    kind: Option<String>,
}

async fn list(
    State(cell): State<BrokerCell>,
    auth: Option<Extension<AdminAuth>>,
    Query(q): Query<ListQuery>,
) -> Result<Json<Vec<StoredManifest>>, ApiError> {
    let broker = opened(&cell)?;
    cluster_right(&auth, Operation::Describe)?;
    let kind = q.kind.as_deref().map(kind_of).transpose()?;
    let mut out = Vec::new();
    for (key, document) in broker.manifests().await {
        let Some((k, name)) = key.split_once('/') else { continue };
        if kind.is_none_or(|kind| kind.as_str() == k) {
            out.push(StoredManifest { kind: k.to_string(), name: name.to_string(), document });
        }
    }
    Ok(Json(out))
}

async fn describe(
    State(cell): State<BrokerCell>,
    auth: Option<Extension<AdminAuth>>,
    Path((kind, name)): Path<(String, String)>,
) -> Result<Json<StoredManifest>, ApiError> {
    let broker = opened(&cell)?;
    cluster_right(&auth, Operation::Describe)?;
    let kind = kind_of(&kind)?;
    let key = store_key(kind, &name);
    let document = broker.manifests().await.remove(&key).ok_or_else(|| not_found(&key))?;
    Ok(Json(StoredManifest { kind: kind.as_str().into(), name, document }))
}

async fn put(
    State(cell): State<BrokerCell>,
    auth: Option<Extension<AdminAuth>>,
    Path((kind, name)): Path<(String, String)>,
    body: Result<Json<serde_json::Value>, JsonRejection>,
) -> Result<Json<StoredManifest>, ApiError> {
    let broker = opened(&cell)?;
    cluster_right(&auth, Operation::Alter)?;
    let Json(document) = body.map_err(|e| ApiError::bad_request("invalid_body", e.body_text()))?;
    let kind = kind_of(&kind)?;
    let own_kind = document.get("kind").and_then(|k| k.as_str());
    let own_name = document.get("metadata").and_then(|m| m.get("name")).and_then(|n| n.as_str());
    if own_kind != Some(kind.as_str()) || own_name != Some(name.as_str()) {
        let message =
            format!("the document's kind and metadata.name ({own_kind:?}, {own_name:?}) do not match the path {}/{name}", kind.as_str());
        return Err(ApiError::bad_request("invalid_manifest", message));
    }
    crate::broker::validate_topic_name(&name).map_err(|e| ApiError::bad_request("invalid_manifest", e.to_string()))?;
    broker.put_manifest(store_key(kind, &name), document.clone()).await?;
    Ok(Json(StoredManifest { kind: kind.as_str().into(), name, document }))
}

async fn delete(
    State(cell): State<BrokerCell>,
    auth: Option<Extension<AdminAuth>>,
    Path((kind, name)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let broker = opened(&cell)?;
    cluster_right(&auth, Operation::Alter)?;
    let key = store_key(kind_of(&kind)?, &name);
    if broker.delete_manifest(&key).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(not_found(&key))
    }
}

/// Stored manifests describe the whole cluster's pipelines: reading them needs DESCRIBE on the
/// cluster, changing them ALTER (what changing ACLs needs too). The objects a manifest declares
/// are checked separately, by the routes that create them.
fn cluster_right(auth: &Option<Extension<AdminAuth>>, operation: Operation) -> Result<(), ApiError> {
    require(auth.as_ref().map(|e| &e.0), operation, Resource::Cluster).map_err(|e| ApiError {
        status: StatusCode::FORBIDDEN,
        kind: "forbidden",
        message: e.to_string(),
    })
}
