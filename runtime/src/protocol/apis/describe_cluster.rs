//! DescribeCluster: this broker as the only broker and controller.

use std::sync::Arc;

use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use crate::broker::Broker;
use crate::protocol::RequestContext;

/// Kafka's `EndpointType.BROKER`: the only endpoint type we serve.
const ENDPOINT_TYPE_BROKER: i8 = 1;

/// Handles one DescribeCluster request. Errors are reported inside the response's error codes.
pub async fn handle(broker: &Arc<Broker>, ctx: &RequestContext, request: DescribeClusterRequest) -> DescribeClusterResponse {
    let node_id = BrokerId(broker.config.node_id);
    if ctx.api_version >= 1 && request.endpoint_type != ENDPOINT_TYPE_BROKER {
        return DescribeClusterResponse::default()
            .with_error_code(ResponseError::UnsupportedEndpointType.code())
            .with_error_message(Some(StrBytes::from_static_str("only broker endpoints are served")));
    }
    let (host, port) = ctx.advertised();
    let me = DescribeClusterBroker::default().with_broker_id(node_id).with_host(StrBytes::from_string(host.to_string())).with_port(port);
    DescribeClusterResponse::default()
        .with_cluster_id(StrBytes::from_string(broker.cluster_id().to_string()))
        .with_controller_id(node_id)
        .with_brokers(vec![me])
}
