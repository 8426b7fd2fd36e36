//! LeaveGroup: v0–2 name one member; v3+ a batch (static members may leave by instance id).
//! Leaving triggers a rebalance for the members that stay.

use std::sync::Arc;

use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::{LeaveGroupRequest, LeaveGroupResponse};
use kafka_protocol::ResponseError;

use crate::broker::Broker;
use crate::group::LeavingMember;
use crate::protocol::authorize::{allowed, Operation, Resource};
use crate::protocol::RequestContext;

/// Handles one LeaveGroup request. Errors are reported inside the response's error codes.
pub async fn handle(broker: &Arc<Broker>, ctx: &RequestContext, request: LeaveGroupRequest) -> LeaveGroupResponse {
    let group_id = request.group_id.0.as_str();
    if !allowed(broker, ctx, Operation::Read, Resource::Group(group_id)) {
        return LeaveGroupResponse::default().with_error_code(ResponseError::GroupAuthorizationFailed.code());
    }
    if ctx.api_version < 3 {
        let member = LeavingMember { member_id: request.member_id.to_string(), group_instance_id: None };
        let code = match broker.groups.leave_group(group_id, std::slice::from_ref(&member)) {
            Ok(results) => results.into_iter().next().and_then(Result::err).map_or(0, |e| e.code()),
            Err(e) => e.code(),
        };
        return LeaveGroupResponse::default().with_error_code(code);
    }
    let leaving: Vec<LeavingMember> = request
        .members
        .iter()
        .map(|m| LeavingMember {
            member_id: m.member_id.to_string(),
            group_instance_id: m.group_instance_id.as_ref().map(|s| s.to_string()),
        })
        .collect();
    match broker.groups.leave_group(group_id, &leaving) {
        Err(e) => LeaveGroupResponse::default().with_error_code(e.code()),
        Ok(results) => {
            let members = request
                .members
                .into_iter()
                .zip(results)
                .map(|(m, result)| {
                    MemberResponse::default()
                        .with_member_id(m.member_id)
                        .with_group_instance_id(m.group_instance_id)
                        .with_error_code(result.err().map_or(0, |e| e.code()))
                })
                .collect();
            LeaveGroupResponse::default().with_members(members)
        }
    }
}
