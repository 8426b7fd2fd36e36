//! The transform routes of the admin HTTP API (the manifests CLI builds `sluice apply` on them):
//!
//! | method and path | body | answer |
//! | --- | --- | --- |
//! | `POST /v1/transforms` | multipart: `spec` (JSON [`TransformSpec`]), `wasm` (module bytes) | 200 status; deploy or redeploy |
//! | `GET /v1/transforms` | | 200 list of statuses |
//! | `GET /v1/transforms/{name}` | | 200 status (state, reason, lag, partitions, stats) |
//! | `POST /v1/transforms/{name}/pause` | | 200 status |
//! | `POST /v1/transforms/{name}/resume` | | 200 status |
//! | `POST /v1/transforms/{name}/reset` | JSON `"earliest"`, `"latest"`, `{"offset":N}`, `{"timestamp":MS}` | 200 status |
//! | `DELETE /v1/transforms/{name}` | | 204 |
//!
//! Errors are `{"error": "<kind>", "message": "<text>"}` with 400 (bad spec or module), 404
//! (unknown transform), 403 (the authorizer is on and the caller lacks READ on the input or
//! WRITE on the topics it writes; see `admin_auth`) or 500.

use std::sync::{Arc, OnceLock};

use axum::extract::{DefaultBodyLimit, Extension, Multipart, Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};

use crate::admin_auth::{has_changelog, may_manage_transform, AdminAuth};
use crate::admin_error::ApiError;
use crate::transform::module::MODULE_BYTES_MAX;
use crate::transform::{ResetTo, TransformError, TransformManager, TransformSpec, TransformStatus};

/// The transform manager once it has started; empty while the broker opens.
pub type TransformCell = Arc<OnceLock<Arc<TransformManager>>>;

/// The routes, with the manager's cell as state.
pub fn routes(manager: TransformCell) -> Router {
    Router::new()
        .route("/v1/transforms", post(deploy).get(list))
        .route("/v1/transforms/{name}", get(describe).delete(delete))
        .route("/v1/transforms/{name}/pause", post(pause))
        .route("/v1/transforms/{name}/resume", post(resume))
        .route("/v1/transforms/{name}/reset", post(reset))
        .layer(DefaultBodyLimit::max(MODULE_BYTES_MAX + 1024 * 1024))
        .with_state(manager)
}

/// The manager, or 503 while the broker is still opening.
fn started(cell: &TransformCell) -> Result<Arc<TransformManager>, ApiError> {
    cell.get().cloned().ok_or_else(ApiError::starting)
}

impl From<TransformError> for ApiError {
    fn from(e: TransformError) -> Self {
        let (status, kind) = match &e {
            TransformError::InvalidSpec { .. } => (StatusCode::BAD_REQUEST, "invalid_spec"),
            TransformError::ModuleTooLarge { .. } => (StatusCode::BAD_REQUEST, "module_too_large"),
            TransformError::NotWasm { .. } => (StatusCode::BAD_REQUEST, "not_wasm"),
            TransformError::AbiVersion { .. } => (StatusCode::BAD_REQUEST, "abi_version"),
            TransformError::MissingExport { .. } => (StatusCode::BAD_REQUEST, "missing_export"),
            TransformError::ExportType { .. } => (StatusCode::BAD_REQUEST, "export_type"),
            TransformError::ForbiddenImport { .. } => (StatusCode::BAD_REQUEST, "forbidden_import"),
            TransformError::Compile { .. } => (StatusCode::BAD_REQUEST, "compile"),
            TransformError::Config { .. } => (StatusCode::BAD_REQUEST, "config"),
            TransformError::Guest(_) => (StatusCode::BAD_REQUEST, "guest"),
            TransformError::Exists { .. } => (StatusCode::CONFLICT, "exists"),
            TransformError::Unknown { .. } => (StatusCode::NOT_FOUND, "unknown_transform"),
            _ => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        };
        ApiError { status, kind, message: e.to_string() }
    }
}

/// 403 unless the principal has the ACL rights on the spec's topics (and with `stateful` on
/// its state changelog).
fn permitted(auth: &Option<Extension<AdminAuth>>, spec: &TransformSpec, stateful: bool) -> Result<(), ApiError> {
    may_manage_transform(auth.as_ref().map(|e| &e.0), spec, stateful).map_err(|e| ApiError {
        status: StatusCode::FORBIDDEN,
        kind: "forbidden",
        message: e.to_string(),
    })
}

/// [`permitted`] for the deployed transform `name`.
async fn permitted_on(manager: &TransformManager, auth: &Option<Extension<AdminAuth>>, name: &str) -> Result<(), ApiError> {
    let spec = manager.describe(name).await?.spec;
    permitted(auth, &spec, has_changelog(auth.as_ref().map(|e| &e.0), &spec))
}

async fn deploy(
    State(cell): State<TransformCell>,
    auth: Option<Extension<AdminAuth>>,
    mut form: Multipart,
) -> Result<Json<TransformStatus>, ApiError> {
    let (mut spec, mut wasm) = (None, None);
    while let Some(field) = form.next_field().await.map_err(|e| ApiError::bad_request("multipart", e.to_string()))? {
        let name = field.name().unwrap_or_default().to_string();
        let bytes = field.bytes().await.map_err(|e| ApiError::bad_request("multipart", e.to_string()))?;
        match name.as_str() {
            "spec" => {
                spec = Some(
                    serde_json::from_slice::<TransformSpec>(&bytes)
                        .map_err(|e| ApiError::bad_request("invalid_spec", format!("invalid transform spec: {e}")))?,
                )
            }
            "wasm" => wasm = Some(bytes.to_vec()),
            other => return Err(ApiError::bad_request("multipart", format!("unknown form field {other:?}; expected spec and wasm"))),
        }
    }
    let spec = spec.ok_or_else(|| ApiError::bad_request("multipart", "missing form field spec"))?;
    let wasm = wasm.ok_or_else(|| ApiError::bad_request("multipart", "missing form field wasm"))?;
    // Whether the module keeps state decides whether it writes a changelog; the export name is
    // in its bytes (a false positive only asks for one right too many, never one too few).
    let stateful = sluice_abi::EXPORTS_V2.state.is_some_and(|name| wasm.windows(name.len()).any(|w| w == name.as_bytes()));
    permitted(&auth, &spec, stateful)?;
    Ok(Json(started(&cell)?.deploy(spec, wasm).await?))
}

async fn list(State(cell): State<TransformCell>) -> Result<Json<Vec<TransformStatus>>, ApiError> {
    Ok(Json(started(&cell)?.list().await))
}

async fn describe(State(cell): State<TransformCell>, Path(name): Path<String>) -> Result<Json<TransformStatus>, ApiError> {
    Ok(Json(started(&cell)?.describe(&name).await?))
}

async fn pause(
    State(cell): State<TransformCell>,
    auth: Option<Extension<AdminAuth>>,
    Path(name): Path<String>,
) -> Result<Json<TransformStatus>, ApiError> {
    let manager = started(&cell)?;
    permitted_on(&manager, &auth, &name).await?;
    Ok(Json(manager.pause(&name).await?))
}

async fn resume(
    State(cell): State<TransformCell>,
    auth: Option<Extension<AdminAuth>>,
    Path(name): Path<String>,
) -> Result<Json<TransformStatus>, ApiError> {
    let manager = started(&cell)?;
    permitted_on(&manager, &auth, &name).await?;
    Ok(Json(manager.resume(&name).await?))
}

async fn reset(
    State(cell): State<TransformCell>,
    auth: Option<Extension<AdminAuth>>,
    Path(name): Path<String>,
    Json(to): Json<ResetTo>,
) -> Result<Json<TransformStatus>, ApiError> {
    let manager = started(&cell)?;
    permitted_on(&manager, &auth, &name).await?;
    Ok(Json(manager.reset(&name, to).await?))
}

async fn delete(
    State(cell): State<TransformCell>,
    auth: Option<Extension<AdminAuth>>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    let manager = started(&cell)?;
    permitted_on(&manager, &auth, &name).await?;
    manager.delete(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}
