//! ListGroups: every group this coordinator knows, including groups that only have committed
//! offsets (listed Empty, as Kafka does). v4+ may filter by state.

use std::sync::Arc;

use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{GroupId, ListGroupsRequest, ListGroupsResponse};
use kafka_protocol::protocol::StrBytes;

use crate::broker::Broker;
use crate::protocol::authorize::{allowed, Operation, Resource};
use crate::protocol::RequestContext;

/// Handles one ListGroups request. Errors are reported inside the response's error codes.
pub async fn handle(broker: &Arc<Broker>, ctx: &RequestContext, request: ListGroupsRequest) -> ListGroupsResponse {
    let states: Vec<String> = request.states_filter.iter().map(|s| s.to_string()).collect();
    // DESCRIBE on the cluster lists every group; otherwise only those the principal may describe.
    let everything = allowed(broker, ctx, Operation::Describe, Resource::Cluster);
    let groups = broker
        .groups
        .list_groups(&states)
        .into_iter()
        .filter(|g| everything || allowed(broker, ctx, Operation::Describe, Resource::Group(&g.group_id)))
        .map(|g| {
            let listed = ListedGroup::default()
                .with_group_id(GroupId(StrBytes::from_string(g.group_id)))
                .with_protocol_type(StrBytes::from_string(g.protocol_type));
            if ctx.api_version >= 4 {
                listed.with_group_state(StrBytes::from_static_str(g.state.as_str()))
            } else {
                listed
            }
        })
        .collect();
    ListGroupsResponse::default().with_groups(groups)
}
