//! DeleteGroups: removes groups without members (NON_EMPTY_GROUP otherwise), writing tombstones
//! for their committed offsets so the deletion survives restarts and compaction.

use std::sync::Arc;

use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{DeleteGroupsRequest, DeleteGroupsResponse};
use kafka_protocol::ResponseError;

use crate::broker::Broker;
use crate::group::GroupOpError;
use crate::protocol::authorize::{allowed, Operation, Resource};
use crate::protocol::{error_code, RequestContext};

/// Handles one DeleteGroups request. Errors are reported inside the response's error codes.
pub async fn handle(broker: &Arc<Broker>, ctx: &RequestContext, request: DeleteGroupsRequest) -> DeleteGroupsResponse {
    let mut results = Vec::with_capacity(request.groups_names.len());
    for group_id in request.groups_names {
        let code = if !allowed(broker, ctx, Operation::Delete, Resource::Group(group_id.0.as_str())) {
            ResponseError::GroupAuthorizationFailed.code()
        } else if group_id.0.is_empty() {
            ResponseError::InvalidGroupId.code()
        } else {
            match broker.groups.delete_group(group_id.0.as_str()).await {
                Ok(()) => 0,
                Err(GroupOpError::Rejected(e)) => e.code(),
                Err(GroupOpError::Storage(e)) => {
                    tracing::error!(group = %group_id.0, "group deletion failed: {e}");
                    error_code::group_error(&e).code()
                }
            }
        };
        results.push(DeletableGroupResult::default().with_group_id(group_id).with_error_code(code));
    }
    DeleteGroupsResponse::default().with_results(results)
}
