//! DescribeGroups: state, protocol and members (with subscription metadata and assignment while
//! Stable, as Kafka). An unknown group is described as Dead with no error, as Kafka does.

use std::sync::Arc;

use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::{DescribeGroupsRequest, DescribeGroupsResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use crate::broker::Broker;
use crate::protocol::authorize::{allowed, authorized_operations, Operation, Resource, GROUP_OPERATIONS};
use crate::protocol::RequestContext;

/// Handles one DescribeGroups request. Errors are reported inside the response's error codes.
pub async fn handle(broker: &Arc<Broker>, ctx: &RequestContext, request: DescribeGroupsRequest) -> DescribeGroupsResponse {
    let version = ctx.api_version;
    let groups = request
        .groups
        .into_iter()
        .map(|group_id| {
            if !allowed(broker, ctx, Operation::Describe, Resource::Group(group_id.0.as_str())) {
                return DescribedGroup::default().with_group_id(group_id).with_error_code(ResponseError::GroupAuthorizationFailed.code());
            }
            let d = broker.groups.describe_group(group_id.0.as_str());
            let members = d
                .members
                .into_iter()
                .map(|m| {
                    DescribedGroupMember::default()
                        .with_member_id(StrBytes::from_string(m.member_id))
                        .with_group_instance_id(m.group_instance_id.filter(|_| version >= 4).map(StrBytes::from_string))
                        .with_client_id(StrBytes::from_string(m.client_id))
                        .with_client_host(StrBytes::from_string(m.client_host))
                        .with_member_metadata(m.metadata)
                        .with_member_assignment(m.assignment)
                })
                .collect();
            let described = DescribedGroup::default()
                .with_group_id(group_id)
                .with_group_state(StrBytes::from_static_str(d.state.as_str()))
                .with_protocol_type(StrBytes::from_string(d.protocol_type))
                .with_protocol_data(StrBytes::from_string(d.protocol))
                .with_members(members);
            if version >= 3 && request.include_authorized_operations {
                let bits = authorized_operations(broker, ctx, Resource::Group(described.group_id.0.as_str()), &GROUP_OPERATIONS);
                described.with_authorized_operations(bits)
            } else {
                described
            }
        })
        .collect();
    DescribeGroupsResponse::default().with_groups(groups)
}
