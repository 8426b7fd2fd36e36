//! JoinGroup: (re)joins a member; the response is held until the rebalance's join phase ends.
//! v4+ first joins get MEMBER_ID_REQUIRED with a generated id (KIP-394); v5+ carry static
//! membership (group.instance.id); v0 has no rebalance timeout (the session timeout serves).

use std::sync::Arc;

use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::{JoinGroupRequest, JoinGroupResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use crate::broker::Broker;
use crate::group::JoinRequest;
use crate::protocol::authorize::{allowed, Operation, Resource};
use crate::protocol::RequestContext;

/// Handles one JoinGroup request. Errors are reported inside the response's error codes.
pub async fn handle(broker: &Arc<Broker>, ctx: &RequestContext, request: JoinGroupRequest) -> JoinGroupResponse {
    let version = ctx.api_version;
    if !allowed(broker, ctx, Operation::Read, Resource::Group(request.group_id.0.as_str())) {
        return JoinGroupResponse::default()
            .with_error_code(ResponseError::GroupAuthorizationFailed.code())
            .with_generation_id(-1)
            .with_protocol_name(if version < 7 { Some(StrBytes::default()) } else { None })
            .with_member_id(request.member_id);
    }
    let join = JoinRequest {
        group_id: request.group_id.0.to_string(),
        member_id: request.member_id.to_string(),
        group_instance_id: request.group_instance_id.map(|s| s.to_string()),
        client_id: ctx.client_id.clone().unwrap_or_default(),
        // Kafka reports the host as InetAddress.toString(): "/127.0.0.1".
        client_host: format!("/{}", ctx.peer.ip()),
        session_timeout_ms: request.session_timeout_ms,
        rebalance_timeout_ms: if version >= 1 { request.rebalance_timeout_ms } else { request.session_timeout_ms },
        protocol_type: request.protocol_type.to_string(),
        protocols: request.protocols.into_iter().map(|p| (p.name.to_string(), p.metadata)).collect(),
        require_known_member_id: version >= 4,
    };
    let outcome = broker.groups.join_group(join).await;
    let members = outcome
        .members
        .into_iter()
        .map(|m| {
            JoinGroupResponseMember::default()
                .with_member_id(StrBytes::from_string(m.member_id))
                .with_group_instance_id(m.group_instance_id.filter(|_| version >= 5).map(StrBytes::from_string))
                .with_metadata(m.metadata)
        })
        .collect();
    // Before v7 the protocol name is not nullable: Kafka sends "" when there is none.
    let protocol_name = match outcome.protocol_name {
        None if version < 7 => Some(StrBytes::default()),
        name => name.map(StrBytes::from_string),
    };
    JoinGroupResponse::default()
        .with_error_code(outcome.error.map_or(0, |e| e.code()))
        .with_generation_id(outcome.generation_id)
        .with_protocol_type(outcome.protocol_type.map(StrBytes::from_string))
        .with_protocol_name(protocol_name)
        .with_leader(StrBytes::from_string(outcome.leader))
        .with_member_id(StrBytes::from_string(outcome.member_id))
        .with_members(members)
}
