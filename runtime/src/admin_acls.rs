//! The ACL routes of the admin HTTP API (what `sluice apply` uses for `Acl` manifests; Kafka
//! tools use CreateAcls / DescribeAcls / DeleteAcls, which reach the same `Broker` functions):
//!
//! | method and path | body | answer |
//! | --- | --- | --- |
//! | `GET /v1/acls` | | 200 every binding, ordered |
//! | `POST /v1/acls` | a JSON list of bindings | 200 the same list (existing ones are a no-op) |
//! | `DELETE /v1/acls` | a JSON list of bindings | 200 those that existed and were deleted |
//!
//! A binding is `{"resource_type": "topic", "resource_name", "pattern_type": "literal",
//! "principal": "User:alice", "host": "*", "operation": "read", "permission": "allow"}` and is
//! validated as CreateAcls validates. Listing needs DESCRIBE on the cluster, changes ALTER (as
//! Kafka's ACL APIs). Without `--authorizer` the list answers (empty unless bindings were made
//! while it was on) and changes are refused with `security_disabled`, as Kafka's APIs are.

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Extension, Json, Router};

use crate::admin::BrokerCell;
use crate::admin_auth::{require, AdminAuth};
use crate::admin_error::ApiError;
use crate::broker::{Broker, BrokerError};
use crate::protocol::authorize::{authorizer_enabled, Operation, Resource};
use crate::security::acl::{AclBinding, AclFilter, PatternFilter};

/// The routes, with the broker's cell as state.
pub fn routes(broker: BrokerCell) -> Router {
    Router::new().route("/v1/acls", get(list).post(create).delete(delete)).with_state(broker)
}

fn opened(cell: &BrokerCell) -> Result<Arc<Broker>, ApiError> {
    cell.get().cloned().ok_or_else(ApiError::starting)
}

fn refused(e: BrokerError) -> ApiError {
    let (status, kind) = match &e {
        BrokerError::AuthorizationFailed { .. } => (StatusCode::FORBIDDEN, "forbidden"),
        BrokerError::InvalidAcl { .. } | BrokerError::InvalidRequest { .. } => (StatusCode::BAD_REQUEST, "invalid_acl"),
        BrokerError::ShuttingDown => (StatusCode::SERVICE_UNAVAILABLE, "shutting_down"),
        _ => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
    };
    ApiError { status, kind, message: e.to_string() }
}

/// The principal's right to `operation` on the cluster, and for changes an authorizer.
fn permitted(broker: &Broker, auth: &Option<Extension<AdminAuth>>, operation: Operation) -> Result<(), ApiError> {
    require(auth.as_ref().map(|e| &e.0), operation, Resource::Cluster).map_err(refused)?;
    if operation != Operation::Describe && !authorizer_enabled(broker) {
        return Err(ApiError::bad_request("security_disabled", "ACLs are not enforced on this broker: start it with --authorizer"));
    }
    Ok(())
}

/// The body's bindings, each re-checked as CreateAcls checks its wire fields (JSON decoding
/// alone would accept, say, a READ on the cluster or a host that is not an address).
fn bindings(body: Result<Json<Vec<AclBinding>>, JsonRejection>) -> Result<Vec<AclBinding>, ApiError> {
    let Json(list) = body.map_err(|e| ApiError::bad_request("invalid_body", e.body_text()))?;
    list.into_iter()
        .enumerate()
        .map(|(i, b)| {
            AclBinding::from_wire(
                b.resource_type.code(),
                &b.resource_name,
                b.pattern_type.code(),
                &b.principal,
                &b.host,
                b.operation.code(),
                b.permission.code(),
            )
            .map_err(|e| ApiError::bad_request("invalid_acl", format!("binding {i}: {e}")))
        })
        .collect()
}

async fn list(State(cell): State<BrokerCell>, auth: Option<Extension<AdminAuth>>) -> Result<Json<Vec<AclBinding>>, ApiError> {
    let broker = opened(&cell)?;
    permitted(&broker, &auth, Operation::Describe)?;
    Ok(Json(broker.acls().matching(&AclFilter::default())))
}

async fn create(
    State(cell): State<BrokerCell>,
    auth: Option<Extension<AdminAuth>>,
    body: Result<Json<Vec<AclBinding>>, JsonRejection>,
) -> Result<Json<Vec<AclBinding>>, ApiError> {
    let broker = opened(&cell)?;
    permitted(&broker, &auth, Operation::Alter)?;
    let list = bindings(body)?;
    for result in broker.create_acls(list.iter().cloned().map(Ok).collect()).await {
        result.map_err(refused)?;
    }
    Ok(Json(list))
}

async fn delete(
    State(cell): State<BrokerCell>,
    auth: Option<Extension<AdminAuth>>,
    body: Result<Json<Vec<AclBinding>>, JsonRejection>,
) -> Result<Json<Vec<AclBinding>>, ApiError> {
    let broker = opened(&cell)?;
    permitted(&broker, &auth, Operation::Alter)?;
    // One exact filter per binding: every field set, the pattern type compared exactly.
    let filters = bindings(body)?
        .into_iter()
        .map(|b| {
            Ok(AclFilter {
                resource_type: Some(b.resource_type),
                resource_name: Some(b.resource_name),
                pattern: PatternFilter::Exact(b.pattern_type),
                principal: Some(b.principal),
                host: Some(b.host),
                operation: Some(b.operation),
                permission: Some(b.permission),
            })
        })
        .collect();
    let mut deleted = Vec::new();
    for result in broker.delete_acls(filters).await {
        deleted.extend(result.map_err(refused)?);
    }
    Ok(Json(deleted))
}
